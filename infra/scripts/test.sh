#!/usr/bin/env bash
# The project's full test command (CI runs it through .ci/run):
#   install and start the local AWS emulators (infra/scripts/services.sh), check template.yaml
#   (cfn-lint, sam validate --lint; offline), then
#   cargo fmt --check, cargo clippy -D warnings, cargo test --workspace --all-targets [ARGS...].
# Extra arguments go to `cargo test`, e.g.  infra/scripts/test.sh -p some-crate -- --nocapture
# Exits with cargo's status; the emulators are stopped on any exit.
set -euo pipefail

# Work from the repo root whatever the caller's directory.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# A shell without rustup's profile (e.g. a bare CI environment) may lack ~/.cargo/bin on PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

step() { printf '\n==> [test.sh %4ds] %s\n' "$SECONDS" "$*" >&2; }

# A one-off build (CI's fresh clone) gains nothing from incremental caches, which would take
# gigabytes of disk; a developer's own setting wins.
if [[ "${CI:-}" == "true" ]]; then
    export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi
step "disk: $(df -h . | awk 'NR==2 {print $4 " free of " $2}')"

step "self-contained: nothing names a path outside the repository"
bash infra/scripts/check-self-contained.sh

step "services.sh install (moto_server, DynamoDB Local)"
bash infra/scripts/services.sh install

step "template.yaml: cfn-lint and sam validate --lint"
tools_bin="$(bash infra/scripts/services.sh install-tools)"
# Both work offline; a region and dummy credentials keep them from looking for real ones, and
# telemetry and update checks stay off.
(
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test \
        AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0 \
        SAM_CLI_DISABLE_UPDATE_CHECK=1
    "$tools_bin/cfn-lint" template.yaml
    "$tools_bin/sam" validate --lint --template template.yaml
)
# The Lambda Runtime API emulator of the runtime tests (tests/src/lambda_runtime.rs).
export TWILIO_EVENTS_CARGO_LAMBDA="$tools_bin/cargo-lambda"
# Stoplight Prism: Twilio's OpenAPI description of the Events API as a mock and a validating proxy
# (infra/cli/tests/it/prism.rs).
export TWILIO_EVENTS_PRISM="$tools_bin/prism"

step "services.sh install-kafka (Tansu, a Kafka-protocol broker; built once, then cached)"
# The Kafka forwarder's tests start, stop and restart their own brokers
# (functions/kafka-forward/tests/it/broker.rs).
TWILIO_EVENTS_TANSU="$(bash infra/scripts/services.sh install-kafka)"
export TWILIO_EVENTS_TANSU

# Set before start, so that a half-started set (one service up, the other failed) is stopped too.
# INT/TERM go through exit so that the EXIT trap runs and the status says what happened.
# shellcheck disable=SC2317  # called through the trap
cleanup() {
    step "services.sh stop"
    bash infra/scripts/services.sh stop || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "services.sh start"
# Assign first: `eval "$(cmd)"` would hide a failed start from set -e.
exports="$(bash infra/scripts/services.sh start)"
eval "$exports"
printf '%s\n' "$exports" | sed 's/^/    /' >&2

# Debian's chromium and chromedriver: the browser tests of serve's console
# (infra/cli/tests/it/console.rs), which keep their screenshots in target/console-screenshots/.
step "services.sh install-browser (chromium, chromium-driver)"
browser_exports="$(bash infra/scripts/services.sh install-browser)"
eval "$browser_exports"

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace --all-targets $*"
status=0
cargo test --workspace --all-targets "$@" || status=$?
step "cargo test exited with status $status"
step "disk: target/ is $(du -sh target 2>/dev/null | cut -f1); $(df -h . | awk 'NR==2 {print $4 " free"}')"
exit "$status"
