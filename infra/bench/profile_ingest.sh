#!/usr/bin/env bash
# Where ingest's CPU goes on the AWS path: `perf record` of infra/cli/examples/ingest_core.rs (or
# sdk_floor.rs) handling signed deliveries one at a time against a keep-alive moto, built with
# the `profiling` cargo profile (release, symbols kept), then the top symbols by self time.
#
#   infra/bench/profile_ingest.sh [DELIVERIES] [-- EXTRA ARGS]
#   infra/bench/profile_ingest.sh 3000 -- --runtime multi --sdk stock   # the set-up before
#   PROFILE_PROGRAM=sdk_floor infra/bench/profile_ingest.sh 3000        # the SDK floor
#
# Writes $PROFILE_OUT (default ./perf-ingest.data) and prints `perf report --no-children` top
# symbols. Its own moto on PROFILE_MOTO_PORT (default 5096), started and stopped here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
deliveries="${1:-3000}"
shift || true
[[ "${1:-}" == "--" ]] && shift
program="${PROFILE_PROGRAM:-ingest_core}"
out="${PROFILE_OUT:-perf-ingest.data}"
target="${CARGO_TARGET_DIR:-target}"
token="profile-token"
[[ -n "${SKIP_BUILD:-}" ]] || cargo build -q --profile profiling -p twilio-events-cli --example ingest_core --example sdk_floor
examples="$target/profiling/examples"

work="$(mktemp -d)"
moto_pid=""
cleanup() {
    [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port="${PROFILE_MOTO_PORT:-5096}"
# shellcheck source=infra/bench/keepalive_moto.sh
source infra/bench/keepalive_moto.sh
start_keepalive_moto "$port" "$work/moto.log"

"$examples/ingest_core" cases --out "$work/cases.jsonl" --deliveries "$deliveries" --token "$token"
if [[ "$program" == ingest_core ]]; then
    cmd=("$examples/ingest_core" run --cases "$work/cases.jsonl" --token "$token" "$@")
else
    cmd=("$examples/$program" --cases "$work/cases.jsonl" --per-call 0 "$@")
fi
perf record -q -F 1999 -g -o "$out" -- "${cmd[@]}" | sed -n 's/^RESULT //p'
perf report -i "$out" --no-children --sort symbol --stdio -g none --percent-limit 0.7 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+/ /g; s/ - - $//' | head -45
