#!/usr/bin/env bash
# Ingest side by side with receivers written the way a team would by hand, and with the bare SDK
# calls underneath it, on the same signed deliveries, against the same emulator, in one run:
#   python: infra/bench/reference_receiver.py (twilio 9 RequestValidator + boto3 conditional
#           put_item + Kinesis put_record), pinned in infra/bench/requirements-receiver.txt
#   node:   infra/bench/reference_receiver.js (twilio 6 validateRequestWithBody + AWS SDK v3
#           conditional PutItem + Kinesis PutRecord), pinned in infra/bench/package(-lock).json
#   ingest: infra/cli/examples/ingest_core.rs: ingest::Ingest on its DynamoDB and Kinesis
#           adapters, with the Lambda's runtime flavour and SDK set-up, its JSON logs and EMF
#           metrics written to stdout as in Lambda
#   floor:  infra/cli/examples/sdk_floor.rs: only ingest's three SDK calls per new event
#           (claim PutItem, PutRecords, BatchWriteItem complete), same runtime and clients
# plus the same two Rust programs on the set-up the functions had before (multi-thread tokio
# runtime, `aws_config::load_from_env` clients): `ingest-before`, `floor-before`.
# Every receiver handles the deliveries one at a time, as one Lambda instance does. Reported per
# receiver: its own CPU time per delivery (the emulator's excluded), wall time per delivery
# (mostly the emulator's answers) and peak RSS; and the ratios the targets are stated in.
# Calls per new event: ingest 3 (a crash between publish and complete cannot lose the event),
# the peers 2 (a failure after their dedup write loses the event, its retries being taken for
# duplicates).
#
#   infra/bench/compare_receiver.sh [DELIVERIES]        # default 3000
#
# The emulator: its own moto on COMPARE_MOTO_PORT (default 5099), started and stopped here, run
# by infra/bench/moto_keepalive.py so that connections stay open as with AWS endpoints (the
# stock moto_server answers `Connection: close`: every call would then measure a TCP connect).
# It never uses a shared emulator (AWS_ENDPOINT_URL is replaced) and never resets one.
# COMPARE_PROFILE (default release) picks the cargo profile of the Rust programs; SKIP_BUILD=1
# uses what is built. Node's packages are installed with `npm ci` into ~/.cache/twilio-events.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
deliveries="${1:-3000}"
profile="${COMPARE_PROFILE:-release}"
target="${CARGO_TARGET_DIR:-target}"
cache="${HOME}/.cache/twilio-events"
venv="$cache/receiver-venv"
moto_python="$cache/moto-5.2.5/bin/python"
token="compare-receiver-token"

[[ -x "$moto_python" ]] || { echo "no $moto_python: run bash infra/scripts/services.sh install" >&2; exit 2; }
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import twilio, boto3' 2>/dev/null; then
    echo "==> creating $venv (infra/bench/requirements-receiver.txt)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r infra/bench/requirements-receiver.txt
fi
node_dir="$cache/node-receiver-$(sha256sum infra/bench/package-lock.json | cut -c1-12)"
if [[ ! -d "$node_dir/node_modules/twilio" ]]; then
    echo "==> npm ci into $node_dir (infra/bench/package-lock.json)" >&2
    mkdir -p "$node_dir"
    cp infra/bench/package.json infra/bench/package-lock.json "$node_dir/"
    (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund >&2)
fi
if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build -q --profile "$profile" -p twilio-events-cli --example ingest_core --example sdk_floor
fi
[[ "$profile" == dev ]] && profile_dir=debug || profile_dir="$profile"
examples="$target/$profile_dir/examples"

work="$(mktemp -d)"
moto_pid=""
cleanup() {
    [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port="${COMPARE_MOTO_PORT:-5099}"
if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is taken: set COMPARE_MOTO_PORT to a free port" >&2
    exit 2
fi
# shellcheck source=infra/bench/keepalive_moto.sh
source infra/bench/keepalive_moto.sh
start_keepalive_moto "$port" "$work/moto.log"

"$examples/ingest_core" cases --out "$work/cases.jsonl" --deliveries "$deliveries" --token "$token"
echo "==> $deliveries deliveries, the same bytes for each receiver, against $AWS_ENDPOINT_URL (keep-alive moto)" >&2

# Each prints one JSON object (the Rust programs: the line starting `RESULT `, after their logs).
rust() { "$@" | sed -n 's/^RESULT //p'; }
results=()
run() {
    local name="$1"
    shift
    echo "==> $name" >&2
    local out
    out="$("$@")"
    [[ -n "$out" ]] || { echo "$name printed no result" >&2; exit 1; }
    results+=("{\"name\":\"$name\",\"result\":$out}")
}
run python "$venv/bin/python" infra/bench/reference_receiver.py --cases "$work/cases.jsonl" --token "$token"
run node env NODE_PATH="$node_dir/node_modules" node infra/bench/reference_receiver.js --cases "$work/cases.jsonl" --token "$token"
run ingest rust "$examples/ingest_core" run --cases "$work/cases.jsonl" --token "$token" --runtime current --sdk lean
run floor rust "$examples/sdk_floor" --cases "$work/cases.jsonl" --runtime current --sdk lean
run ingest-before rust "$examples/ingest_core" run --cases "$work/cases.jsonl" --token "$token" --runtime multi --sdk stock
run floor-before rust "$examples/sdk_floor" --cases "$work/cases.jsonl" --runtime multi --sdk stock

printf '%s\n' "${results[@]}" >"$work/results.jsonl"
# The raw results, for the record (docs/benchmarks.md quotes them).
cat "$work/results.jsonl" >&2
python3 - "$work/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
by = {r["name"]: r["result"] for r in rows}
for name, r in by.items():
    assert r["ok"] == r["deliveries"], f"{name} refused a delivery: {r}"
    assert r["new_events"] == by["python"]["new_events"], f"dedup differs: {name} {r}"
cpu = {n: r["cpu_us_per_delivery"] for n, r in by.items()}
print("| receiver | CPU µs/delivery | wall µs/delivery | peak RSS MB |")
print("|---|---|---|---|")
for name, r in by.items():
    wall, rss = r["ns_per_delivery"] / 1000, r["peak_rss_kb"] / 1024
    print(f"| {name} | {r['cpu_us_per_delivery']:.1f} | {wall:.1f} | {rss:.1f} |")
better = min(cpu["python"], cpu["node"])
summary = {
    "deliveries": by["ingest"]["deliveries"],
    "new_events": by["ingest"]["new_events"],
    "better_peer_cpu_over_ingest": round(better / max(cpu["ingest"], 1e-9), 2),
    "python_cpu_over_ingest": round(cpu["python"] / max(cpu["ingest"], 1e-9), 2),
    "node_cpu_over_ingest": round(cpu["node"] / max(cpu["ingest"], 1e-9), 2),
    "ingest_cpu_over_floor": round(cpu["ingest"] / max(cpu["floor"], 1e-9), 2),
    "ingest_before_cpu_over_ingest": round(cpu["ingest-before"] / max(cpu["ingest"], 1e-9), 2),
    "better_peer_cpu_over_floor": round(better / max(cpu["floor"], 1e-9), 2),
    "floor_cpu_us_per_call": by["floor"].get("cpu_us_per_call"),
    "floor_before_cpu_us_per_call": by["floor-before"].get("cpu_us_per_call"),
    "ingest_peak_rss_mb": round(by["ingest"]["peak_rss_kb"] / 1024, 1),
    "python_rss_over_ingest": round(by["python"]["peak_rss_kb"] / by["ingest"]["peak_rss_kb"], 1),
    "node_rss_over_ingest": round(by["node"]["peak_rss_kb"] / by["ingest"]["peak_rss_kb"], 1),
}
print(json.dumps(summary, ensure_ascii=False))
PY
