#!/usr/bin/env bash
# The measured side of the latency model in docs/cost.md: ingest's release binary under
# cargo-lambda's Runtime API emulator (tests/it/lambda_runtime.rs,
# ingest_init_and_invocation_figures_under_the_runtime_api), first with the whole machine, then
# with the CPU share Lambda gives each memory size (memory / 1,769 MB of one vCPU) as a CPU
# cgroup quota. Prints one JSON line per run and a table; then the consumers' CPU per record
# (consumer_cpu_per_record_under_the_runtime_api), with the whole machine.
#
#   infra/latency/measure.sh [deliveries per run] [memory sizes in MB...]
#   infra/latency/measure.sh 300 128 256 512 1024          (the defaults)
#
# Needs the AWS emulators (eval "$(bash infra/scripts/services.sh start)", or the shared ones'
# environment) and cargo-lambda (TWILIO_EVENTS_CARGO_LAMBDA, from services.sh install-tools).
# The quotas need a writable cgroup cpu controller (v1 or v2, usually root); without one only
# the unthrottled run is made. LATENCY_CFS_PERIOD_US sets the quota period (default 100000):
# Lambda does not document its own, so try 20000 as well to see how much it matters.
set -euo pipefail
cd "$(dirname "$0")/../.."

deliveries="${1:-300}"
shift || true
sizes=("$@")
[ "${#sizes[@]}" -gt 0 ] || sizes=(128 256 512 1024)
period_us="${LATENCY_CFS_PERIOD_US:-100000}"
target="${CARGO_TARGET_DIR:-target}"

cargo build --release -p ingest -p crm-sync -p quota-alert >&2
release="$(cd "$target/release" && pwd)"
binary="$release/ingest"
cargo test -p twilio-events-testkit --test it --no-run >&2

results="$(mktemp)"
cgroups=()
cleanup() {
    for dir in "${cgroups[@]}"; do rmdir "$dir" 2>/dev/null || true; done
    rm -f "$results"
}
trap cleanup EXIT

# One run; $1 labels it, $2 is its cgroup (empty: none, the whole machine).
run() {
    local label="$1" cgroup="$2" line
    line="$(
        env TWILIO_EVENTS_LATENCY_BINARY="$binary" TWILIO_EVENTS_LATENCY_DELIVERIES="$deliveries" \
            ${cgroup:+TWILIO_EVENTS_LATENCY_CGROUP="$cgroup"} \
            cargo test -q -p twilio-events-testkit --test it \
            lambda_runtime::ingest_init_and_invocation_figures_under_the_runtime_api \
            -- --exact --nocapture 2>&1 | sed -n 's/^LATENCY //p'
    )"
    [ -n "$line" ] || { echo "no figures from the $label run" >&2; return 1; }
    echo "{\"run\": \"$label\", \"figures\": $line}" | tee -a "$results"
}

# A cgroup of the given quota, v2 (cpu.max) or v1 (cpu.cfs_quota_us); prints its directory.
make_cgroup() {
    local name="$1" quota_us="$2" dir
    if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
        dir="/sys/fs/cgroup/$name"
        mkdir "$dir" && echo "$quota_us $period_us" >"$dir/cpu.max"
    elif [ -d /sys/fs/cgroup/cpu ]; then
        dir="/sys/fs/cgroup/cpu/$name"
        mkdir "$dir" && echo "$period_us" >"$dir/cpu.cfs_period_us" \
            && echo "$quota_us" >"$dir/cpu.cfs_quota_us"
    else
        return 1
    fi
    echo "$dir"
}

run unthrottled ""
for mb in "${sizes[@]}"; do
    quota_us=$((period_us * mb / 1769))
    if ! dir="$(make_cgroup "twilio-events-latency-$mb-$$" "$quota_us" 2>/dev/null)"; then
        echo "no writable CPU cgroup here: only the unthrottled run" >&2
        break
    fi
    cgroups+=("$dir")
    run "${mb}MB" "$dir"
done

python3 - "$results" "$period_us" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"\nquota period {int(sys.argv[2]) // 1000} ms; ms unless stated")
cols = ["init_ms", "init_cpu_ms", "first_invocation_ms", "cpu_per_delivery_ms",
        "invocation_p50_ms", "invocation_p99_ms", "invocation_max_ms", "peak_rss_mb"]
print("| run | " + " | ".join(c.replace("_ms", "").replace("_", " ") for c in cols) + " |")
print("|---" * (len(cols) + 1) + "|")
for r in rows:
    f = r["figures"]
    print(f"| {r['run']} | " + " | ".join(f"{f[c]:.2f}" for c in cols) + " |")
PY

# The consumers: CPU per record in batches of 100, release binaries, the whole machine.
env TWILIO_EVENTS_LATENCY_BIN_DIR="$release" TWILIO_EVENTS_LATENCY_BATCHES="${LATENCY_BATCHES:-5}" \
    cargo test -q -p twilio-events-testkit --test it \
    lambda_runtime::consumer_cpu_per_record_under_the_runtime_api -- --exact --nocapture 2>&1 \
    | sed -n 's/^CONSUMERS //p'
