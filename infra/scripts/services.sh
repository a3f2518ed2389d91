#!/usr/bin/env bash
# Local AWS emulators for tests and local runs (why these two: docs/testing.md):
#   - moto_server 5.2.5 (PyPI): DynamoDB, Kinesis, SQS, SNS.
#   - DynamoDB Local 1.25.1 (AWS's own jar, shipped inside the npm package
#     amplify-dynamodb-simulator@2.9.30): exact DynamoDB semantics (conditions, transactions).
#
# Usage:
#   services.sh install         install both into the cache dir (idempotent; needs python3, npm, java)
#   services.sh start           start both in the background; prints `export` lines on stdout:
#                                 eval "$(infra/scripts/services.sh start)"
#   services.sh stop            stop both (by PID file)
#   services.sh status          show what runs; exit 0 if both run, 3 otherwise
#   services.sh install-browser Debian's chromium and chromium-driver (apt-get, as root, when
#                               missing) for serve's console's browser tests; prints `export`
#                               lines with their paths
#   services.sh install-bench   venv with infra/bench/requirements.txt (Twilio's Python helper, for
#                               infra/bench/python_reference.py); prints the venv's python path
#   services.sh install-tools   venv with the template checkers, cfn-lint and the AWS SAM CLI, and
#                               cargo-lambda (PyPI, pinned below), and Stoplight Prism (npm, pinned
#                               by infra/tools/prism/package-lock.json); idempotent; prints the
#                               venv's bin dir, where all four are.
#   services.sh install-kafka   Tansu (crates.io, pinned below), a Kafka-protocol broker for the
#                               Kafka forwarder's tests; built once with cargo install (about 10
#                               minutes) and cached; idempotent; prints the binary's path.
#
# Environment (all optional):
#   TWILIO_EVENTS_CACHE    install dir            (default ~/.cache/twilio-events)
#   TWILIO_EVENTS_RUN_DIR  logs and PID files     (default <repo>/target/services)
#   MOTO_PORT              moto_server port       (default 5000)
#   DDB_LOCAL_PORT         DynamoDB Local port    (default 8000)
#   PYTHON                 python used for venvs  (default python3)
#   SERVICES_READY_TIMEOUT_S  how long start waits for each port (default 60)
#
# Progress goes to stderr; stdout carries only what a caller captures (exports, status, paths).
# Note: DynamoDB Local has no bind-address flag and listens on all interfaces; only ever send it
# traffic on 127.0.0.1.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${TWILIO_EVENTS_CACHE:-${HOME:-/tmp}/.cache/twilio-events}"
RUN_DIR="${TWILIO_EVENTS_RUN_DIR:-$REPO_ROOT/target/services}"
MOTO_PORT="${MOTO_PORT:-5000}"
DDB_LOCAL_PORT="${DDB_LOCAL_PORT:-8000}"
PYTHON="${PYTHON:-python3}"
READY_TIMEOUT_S="${SERVICES_READY_TIMEOUT_S:-60}"
STOP_TIMEOUT_S=5

MOTO_VERSION=5.2.5
DDB_NPM_PKG=amplify-dynamodb-simulator
DDB_NPM_VERSION=2.9.30
DDB_LOCAL_VERSION=1.25.1

# Versioned dirs, so that changing a pin above installs alongside instead of reusing a stale copy.
MOTO_VENV="$CACHE_DIR/moto-$MOTO_VERSION"
DDB_DIR="$CACHE_DIR/dynamodb-local-$DDB_LOCAL_VERSION"
BENCH_VENV="$CACHE_DIR/bench-venv"
BENCH_REQUIREMENTS="$REPO_ROOT/infra/bench/requirements.txt"

# Template checkers (install-tools). aws-sam-cli runs its own cfn-lint for `sam validate --lint`.
CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
TOOLS_VENV="$CACHE_DIR/tools-sam-$SAM_CLI_VERSION-cfn-lint-$CFN_LINT_VERSION"
# cargo-lambda (PyPI; brings Zig): the Lambda Runtime API emulator of the runtime tests, and the
# arm64 cross-compiler of `sam build` (infra/scripts/sam-build.sh).
CARGO_LAMBDA_VERSION=1.9.2
# Stoplight Prism (npm): serves Twilio's OpenAPI description of the Events API as a mock and as a
# validating proxy for the setup tests. 5.14.2 is the last release that runs on Node.js 20.
PRISM_DIR="$REPO_ROOT/infra/tools/prism"
# Tansu (Apache-2.0): speaks the Kafka protocol, one static binary; its SQLite storage engine
# (feature libsql) reports high watermarks right, its memory engine does not. Tests start their
# own brokers (tests stop and restart one), so it is installed here, not started.
TANSU_VERSION=0.6.0
TANSU_DIR="$CACHE_DIR/tansu-$TANSU_VERSION"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { printf '[services] %s\n' "$*" >&2; }
die() {
    printf '[services] error: %s\n' "$*" >&2
    exit 1
}

# Serialise concurrent runs (two test runs, or install racing start) with flock on fd 9.
# Children started while holding it must close fd 9 (9>&-), or they would keep the lock forever.
lock() {
    mkdir -p "$1"
    exec 9>"$1/.lock"
    flock 9
}

# Make sure a command exists; as root on Debian, install its package instead of failing
# (a new machine of this kind has them, but this keeps CI on a bare image working).
ensure_cmd() {
    local cmd=$1 deb=$2
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "$cmd not found: apt-get install $deb"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >&2
    fi
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found (install the Debian package $deb)"
}

# ---------------------------------------------------------------------------------------------
# install

install_moto() {
    # The marker is written last, so an interrupted install is redone from scratch.
    if [[ -f "$MOTO_VENV/.installed" && -x "$MOTO_VENV/bin/moto_server" ]]; then
        log "moto $MOTO_VERSION: already installed ($MOTO_VENV)"
        return 0
    fi
    ensure_cmd "$PYTHON" python3-venv
    log "moto $MOTO_VERSION: creating venv and pip install (about 10 s)"
    rm -rf "$MOTO_VENV"
    "$PYTHON" -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install --quiet "moto[dynamodb]==$MOTO_VERSION" flask flask-cors >&2
    "$MOTO_VENV/bin/pip" freeze >"$MOTO_VENV/.installed"
    log "moto $MOTO_VERSION: installed"
}

install_ddb_local() {
    # Unpacked into a temp dir and moved into place whole, so the jar's presence means complete.
    if [[ -f "$DDB_DIR/DynamoDBLocal.jar" && -d "$DDB_DIR/DynamoDBLocal_lib" ]]; then
        log "DynamoDB Local $DDB_LOCAL_VERSION: already installed ($DDB_DIR)"
        return 0
    fi
    ensure_cmd npm npm
    log "DynamoDB Local $DDB_LOCAL_VERSION: npm pack $DDB_NPM_PKG@$DDB_NPM_VERSION and unpack"
    local tmp
    tmp="$(mktemp -d "$CACHE_DIR/.ddb-tmp.XXXXXX")"
    # npm pack only fetches the tarball (no install scripts run, nothing fetched at run time).
    (cd "$tmp" && npm pack --silent "$DDB_NPM_PKG@$DDB_NPM_VERSION" >/dev/null </dev/null)
    tar -xzf "$tmp/$DDB_NPM_PKG-$DDB_NPM_VERSION.tgz" -C "$tmp" package/emulator
    [[ -f "$tmp/package/emulator/DynamoDBLocal.jar" ]] ||
        die "$DDB_NPM_PKG@$DDB_NPM_VERSION has no package/emulator/DynamoDBLocal.jar"
    rm -rf "$DDB_DIR"
    mv "$tmp/package/emulator" "$DDB_DIR"
    rm -rf "$tmp"
    log "DynamoDB Local $DDB_LOCAL_VERSION: installed"
}

cmd_install() {
    lock "$CACHE_DIR"
    rm -rf "$CACHE_DIR"/.ddb-tmp.* # leftovers of an interrupted install
    install_moto
    install_ddb_local
    ensure_cmd java default-jre-headless # DynamoDB Local needs Java 11+; the image has 17
}

cmd_install_bench() {
    # Reinstall when requirements.txt changes: its hash is the marker.
    [[ -f "$BENCH_REQUIREMENTS" ]] || die "missing $BENCH_REQUIREMENTS"
    lock "$CACHE_DIR"
    local want
    want="$(sha256sum "$BENCH_REQUIREMENTS" | cut -d' ' -f1)"
    if [[ -x "$BENCH_VENV/bin/python" && "$(cat "$BENCH_VENV/.installed" 2>/dev/null)" == "$want" ]]; then
        log "bench venv: already installed ($BENCH_VENV)"
    else
        ensure_cmd "$PYTHON" python3-venv
        log "bench venv: pip install -r infra/bench/requirements.txt"
        rm -rf "$BENCH_VENV"
        "$PYTHON" -m venv "$BENCH_VENV"
        "$BENCH_VENV/bin/pip" install --quiet -r "$BENCH_REQUIREMENTS" >&2
        printf '%s\n' "$want" >"$BENCH_VENV/.installed"
        log "bench venv: installed"
    fi
    printf '%s\n' "$BENCH_VENV/bin/python"
}

# npm ci from the committed lock file, into a dir named by the lock's hash (a changed pin installs
# alongside); linked into the tools venv's bin dir so that one dir holds every tool.
install_prism() {
    local lock_hash dir
    lock_hash="$(sha256sum "$PRISM_DIR/package-lock.json" | cut -c1-12)"
    dir="$CACHE_DIR/prism-$lock_hash"
    if [[ ! -f "$dir/.installed" || ! -x "$dir/node_modules/.bin/prism" ]]; then
        ensure_cmd npm npm
        log "tools: npm ci Stoplight Prism (infra/tools/prism, about 30 s)"
        rm -rf "$dir"
        mkdir -p "$dir"
        cp "$PRISM_DIR/package.json" "$PRISM_DIR/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --silent --no-audit --no-fund </dev/null >&2)
        touch "$dir/.installed"
    fi
    ln -sfn "$dir/node_modules/.bin/prism" "$TOOLS_VENV/bin/prism"
}

cmd_install_tools() {
    lock "$CACHE_DIR"
    # The marker is written last, so an interrupted install is redone from scratch.
    if [[ -f "$TOOLS_VENV/.installed" && -x "$TOOLS_VENV/bin/sam" && -x "$TOOLS_VENV/bin/cfn-lint" ]]; then
        log "tools (aws-sam-cli $SAM_CLI_VERSION, cfn-lint $CFN_LINT_VERSION): already installed ($TOOLS_VENV)"
    else
        ensure_cmd "$PYTHON" python3-venv
        log "tools: creating venv and pip install aws-sam-cli==$SAM_CLI_VERSION cfn-lint==$CFN_LINT_VERSION (about 30 s)"
        rm -rf "$TOOLS_VENV"
        "$PYTHON" -m venv "$TOOLS_VENV"
        "$TOOLS_VENV/bin/pip" install --quiet "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION" >&2
        "$TOOLS_VENV/bin/pip" freeze >"$TOOLS_VENV/.installed"
        log "tools: installed"
    fi
    local marker="$TOOLS_VENV/.cargo-lambda-$CARGO_LAMBDA_VERSION"
    if [[ ! -f $marker || ! -x "$TOOLS_VENV/bin/cargo-lambda" ]]; then
        log "tools: pip install cargo-lambda==$CARGO_LAMBDA_VERSION (seconds)"
        "$TOOLS_VENV/bin/pip" install --quiet "cargo-lambda==$CARGO_LAMBDA_VERSION" >&2
        touch "$marker"
    fi
    install_prism
    printf '%s\n' "$TOOLS_VENV/bin"
}

# ---------------------------------------------------------------------------------------------
# start / stop / status
#
# Each service NAME has RUN_DIR/NAME.pid, NAME.port and NAME.log. A PID counts as ours only if
# the process is alive and its command line still names the service (PIDs get reused).

SERVICES=(moto ddb-local)

service_port() { case $1 in moto) echo "$MOTO_PORT" ;; ddb-local) echo "$DDB_LOCAL_PORT" ;; esac; }
service_pattern() { case $1 in moto) echo moto_server ;; ddb-local) echo DynamoDBLocal.jar ;; esac; }

# True if PID is a live process of service NAME. A zombie (exited, not yet reaped) or a
# recycled PID has an empty or different command line, so this is stricter than kill -0.
is_service_pid() {
    local name=$1 pid=$2
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$(service_pattern "$name")"
}

# Prints the PID if RUN_DIR/NAME.pid names a live process of that service.
running_pid() {
    local name=$1 pid
    pid="$(cat "$RUN_DIR/$name.pid" 2>/dev/null)" || return 1
    is_service_pid "$name" "$pid" || return 1
    echo "$pid"
}

port_in_use() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        # Any listener on that port, whatever address it is bound to.
        [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

# True once the port gives any HTTP answer (DynamoDB Local says 400 to a bare GET: fine).
http_answers() {
    local code
    code="$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null)" || true
    [[ -n $code && $code != 000 ]]
}

# Seconds since $1 (an $EPOCHREALTIME value), with 2 decimals.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

launch() {
    local name=$1 port=$2 logf=$3
    case $name in
    moto)
        "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$logf" 2>&1 9>&- &
        ;;
    ddb-local)
        # exec, so that $! is java's own PID; -inMemory keeps nothing on disk.
        (cd "$DDB_DIR" && exec java -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" \
            -jar DynamoDBLocal.jar -inMemory -port "$port" -disableTelemetry) \
            </dev/null >"$logf" 2>&1 9>&- &
        ;;
    esac
    echo $!
}

fail_with_log() {
    local name=$1 logf=$2 why=$3
    {
        printf '[services] error: %s %s; last lines of %s:\n' "$name" "$why" "$logf"
        tail -n 30 "$logf" 2>/dev/null | awk '{ print "    " $0 }'
    } >&2
    exit 1
}

wait_ready() {
    local name=$1 port=$2 pid=$3 logf=$4
    # Microsecond clock ($EPOCHREALTIME without its dot): SECONDS would be off by up to 1 s.
    local deadline=$((${EPOCHREALTIME/./} + READY_TIMEOUT_S * 1000000))
    until http_answers "$port"; do
        if ! is_service_pid "$name" "$pid"; then
            rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.port"
            fail_with_log "$name" "$logf" "exited before answering on port $port"
        fi
        if ((${EPOCHREALTIME/./} >= deadline)); then
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.port"
            fail_with_log "$name" "$logf" "did not answer on port $port within ${READY_TIMEOUT_S}s (killed)"
        fi
        sleep 0.1
    done
}

start_one() {
    local name=$1 port pid old_port logf
    port="$(service_port "$name")"
    logf="$RUN_DIR/$name.log"
    if pid="$(running_pid "$name")"; then
        old_port="$(cat "$RUN_DIR/$name.port" 2>/dev/null || echo '?')"
        [[ $old_port == "$port" ]] ||
            die "$name already runs (pid $pid) on port $old_port, not $port: run '$0 stop' first"
        wait_ready "$name" "$port" "$pid" "$logf"
        log "$name: reusing running instance (pid $pid, port $port)"
        return 0
    fi
    rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.port" # stale, if any
    if port_in_use "$port"; then
        local who
        who="$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 3 || true)"
        die "port $port (for $name) is taken by a process this script did not start${who:+:
$who}
Stop it, or choose another port with $([[ $name == moto ]] && echo MOTO_PORT || echo DDB_LOCAL_PORT)=..."
    fi
    local t0=$EPOCHREALTIME
    pid="$(launch "$name" "$port" "$logf")"
    echo "$pid" >"$RUN_DIR/$name.pid"
    echo "$port" >"$RUN_DIR/$name.port"
    wait_ready "$name" "$port" "$pid" "$logf"
    log "$name: started in $(elapsed "$t0") s (pid $pid, port $port, log $logf)"
}

cmd_start() {
    [[ -x "$MOTO_VENV/bin/moto_server" && -f "$MOTO_VENV/.installed" ]] ||
        die "moto is not installed: run '$0 install' first"
    [[ -f "$DDB_DIR/DynamoDBLocal.jar" ]] || die "DynamoDB Local is not installed: run '$0 install' first"
    command -v java >/dev/null 2>&1 || die "java not found: run '$0 install' first"
    command -v curl >/dev/null 2>&1 || die "curl not found"
    lock "$RUN_DIR"
    local name
    for name in "${SERVICES[@]}"; do start_one "$name"; done
    # Same dummy credentials for every client: DynamoDB Local keeps one database per key+region.
    cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export TWILIO_EVENTS_TEST_MOTO=http://127.0.0.1:$MOTO_PORT
export TWILIO_EVENTS_TEST_DDB_LOCAL=http://127.0.0.1:$DDB_LOCAL_PORT
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
EOF
}

stop_one() {
    local name=$1 pid i
    if pid="$(running_pid "$name")"; then
        log "$name: stopping pid $pid"
        kill "$pid" 2>/dev/null || true
        # Poll (the process is usually not our child, so `wait` cannot be used).
        for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
            running_pid "$name" >/dev/null || break
            sleep 0.1
        done
        if running_pid "$name" >/dev/null; then
            log "$name: still running after ${STOP_TIMEOUT_S}s: kill -9 $pid"
            kill -9 "$pid" 2>/dev/null || true
        fi
    elif [[ -f "$RUN_DIR/$name.pid" ]]; then
        log "$name: not running (removing stale PID file)"
    else
        log "$name: not running"
    fi
    rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.port"
}

cmd_stop() {
    [[ -d $RUN_DIR ]] || {
        log "nothing to stop ($RUN_DIR does not exist)"
        return 0
    }
    lock "$RUN_DIR"
    local name
    for name in "${SERVICES[@]}"; do stop_one "$name"; done
}

# ---------------------------------------------------------------------------------------------
# install-browser: Debian's chromium and chromium-driver, for the browser tests of serve's
# console (infra/cli/tests/it/console.rs). Prints the exports that say where they are.

cmd_install_browser() {
    ensure_cmd chromium chromium
    ensure_cmd chromedriver chromium-driver
    echo "export TWILIO_EVENTS_CHROMIUM=$(command -v chromium)"
    echo "export TWILIO_EVENTS_CHROMEDRIVER=$(command -v chromedriver)"
}

cmd_status() {
    local name pid rc=0
    for name in "${SERVICES[@]}"; do
        if pid="$(running_pid "$name")"; then
            echo "$name: running (pid $pid, port $(cat "$RUN_DIR/$name.port" 2>/dev/null || echo '?'), log $RUN_DIR/$name.log)"
        else
            echo "$name: stopped"
            rc=3
        fi
    done
    echo "cache: $CACHE_DIR (moto: $([[ -f $MOTO_VENV/.installed ]] && echo installed || echo missing)," \
        "DynamoDB Local: $([[ -f $DDB_DIR/DynamoDBLocal.jar ]] && echo installed || echo missing))"
    return "$rc"
}

cmd_install_kafka() {
    lock "$CACHE_DIR"
    if [[ -f "$TANSU_DIR/.installed" && -x "$TANSU_DIR/bin/tansu" ]]; then
        log "tansu $TANSU_VERSION: already installed ($TANSU_DIR)"
    else
        ensure_cmd cargo cargo
        log "tansu $TANSU_VERSION: cargo install --locked --features libsql (about 30 CPU-minutes, once)"
        rm -rf "$TANSU_DIR"
        local build
        build="$(mktemp -d "$CACHE_DIR/.tansu-build.XXXXXX")"
        # Its own target dir, removed after: the build is 2 GB and nothing else reuses it.
        cargo install --quiet --locked "tansu@$TANSU_VERSION" --features libsql \
            --root "$TANSU_DIR" --target-dir "$build" >&2
        rm -rf "$build"
        touch "$TANSU_DIR/.installed"
        log "tansu $TANSU_VERSION: installed"
    fi
    printf '%s\n' "$TANSU_DIR/bin/tansu"
}

case "${1:-}" in
install) cmd_install ;;
install-kafka) cmd_install_kafka ;;
install-bench) cmd_install_bench ;;
install-tools) cmd_install_tools ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
install-browser) cmd_install_browser ;;
*)
    echo "usage: $0 {install|start|stop|status|install-bench|install-tools|install-kafka}" >&2
    exit 2
    ;;
esac
