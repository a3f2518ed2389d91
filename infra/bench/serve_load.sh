#!/usr/bin/env bash
# Throughput of `twilio-events serve` on the embedded store, over loopback: unique signed
# deliveries from infra/cli/examples/load.rs, then a check that every 200 is in the stream.
#   infra/bench/serve_load.sh [REQUESTS] [CONCURRENCY]
# SERVE_LOAD_BIN runs another build of `twilio-events` (another commit's, to compare).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
requests="${1:-50000}"
concurrency="${2:-64}"
port="${SERVE_LOAD_PORT:-3999}"
bin="${SERVE_LOAD_BIN:-target/release/twilio-events}"
cargo build -q --release -p twilio-events-cli --bin twilio-events --example load
data="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
"$bin" serve --port "$port" --data-dir "$data" --auth-token bench-token >"$data/serve.log" 2>&1 &
pid=$!
until (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
report="$(target/release/examples/load --url "http://127.0.0.1:$port" --token bench-token --requests "$requests" --concurrency "$concurrency")"
rss_kb="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
kill "$pid"; wait "$pid" 2>/dev/null || true
in_stream="$("$bin" stream dump --data-dir "$data" | wc -l)"
echo "$report"
echo "{\"serve_peak_rss_mb\": $((rss_kb / 1024)), \"events_in_stream\": $in_stream}"
ok="$(echo "$report" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok_200"])')"
if [[ "$ok" != "$in_stream" ]]; then
    echo "MISMATCH: $ok deliveries answered 200 but $in_stream events in the stream" >&2
    exit 1
fi
