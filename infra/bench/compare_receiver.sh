#!/usr/bin/env bash
# Our ingest core against a receiver written the way a team would by hand, on the same signed
# deliveries, against the same moto_server, in one go:
#   ours:   infra/cli/examples/ingest_core.rs (ingest::Ingest on DynamoDedupStore + KinesisPublisher)
#   theirs: infra/bench/reference_receiver.py (twilio's RequestValidator + boto3 conditional put
#           + Kinesis put_record), deps pinned in infra/bench/requirements-receiver.txt
# Both handle the deliveries one at a time. Reports wall-clock time per delivery (dominated by
# the emulator's answers), the receiver's own CPU time per delivery (the emulator excluded) and
# peak RSS, and the ratios (Python / Rust). Calls per new event: ours 3 (claim, put_records,
# complete: a crash between publish and complete cannot lose the event), the reference 2
# (conditional put, put_record: a failure after the put loses the event, its retries being
# taken for duplicates).
#
#   AWS_ENDPOINT_URL=http://127.0.0.1:5000 infra/bench/compare_receiver.sh [DELIVERIES]
#   infra/bench/compare_receiver.sh 2000     # no AWS_ENDPOINT_URL: starts its own moto_server
#
# Without AWS_ENDPOINT_URL it starts (and stops) its own moto_server on COMPARE_MOTO_PORT
# (default 5099) from the venv `infra/scripts/services.sh install` creates; it never stops an
# emulator it did not start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
deliveries="${1:-2000}"
target="${CARGO_TARGET_DIR:-target}"
cache="${HOME}/.cache/twilio-events"
venv="$cache/receiver-venv"
token="compare-receiver-token"

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import twilio, boto3' 2>/dev/null; then
    echo "==> creating $venv (infra/bench/requirements-receiver.txt)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r infra/bench/requirements-receiver.txt
fi
if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build -q --release -p twilio-events-cli --example ingest_core
fi

work="$(mktemp -d)"
moto_pid=""
cleanup() {
    [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
    moto="$cache/moto-5.2.5/bin/moto_server"
    [[ -x "$moto" ]] || { echo "no $moto: run bash infra/scripts/services.sh install, or set AWS_ENDPOINT_URL" >&2; exit 2; }
    port="${COMPARE_MOTO_PORT:-5099}"
    "$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
    moto_pid=$!
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
fi
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"

example="$target/release/examples/ingest_core"
"$example" cases --out "$work/cases.jsonl" --deliveries "$deliveries" --token "$token"
echo "==> $deliveries deliveries, same bytes for both, against $AWS_ENDPOINT_URL" >&2
rust="$("$example" run --cases "$work/cases.jsonl" --token "$token")"
python="$("$venv/bin/python" infra/bench/reference_receiver.py --cases "$work/cases.jsonl" --token "$token")"
echo "$rust"
echo "$python"
python3 - "$rust" "$python" <<'PY'
import json, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert r["ok"] == r["deliveries"] and p["ok"] == p["deliveries"], "a receiver refused a delivery"
assert r["new_events"] == p["new_events"], f"dedup differs: {r['new_events']} vs {p['new_events']}"
print(json.dumps({
    "deliveries": r["deliveries"],
    "new_events": r["new_events"],
    "rust_us_per_delivery": round(r["ns_per_delivery"] / 1000, 1),
    "python_us_per_delivery": round(p["ns_per_delivery"] / 1000, 1),
    "time_ratio_python_over_rust": round(p["ns_per_delivery"] / r["ns_per_delivery"], 2),
    "rust_cpu_us_per_delivery": round(r["cpu_us_per_delivery"], 1),
    "python_cpu_us_per_delivery": round(p["cpu_us_per_delivery"], 1),
    "cpu_ratio_python_over_rust": round(p["cpu_us_per_delivery"] / max(r["cpu_us_per_delivery"], 1e-9), 1),
    "rust_peak_rss_mb": round(r["peak_rss_kb"] / 1024, 1),
    "python_peak_rss_mb": round(p["peak_rss_kb"] / 1024, 1),
    "rss_ratio_python_over_rust": round(p["peak_rss_kb"] / r["peak_rss_kb"], 2),
}))
PY
