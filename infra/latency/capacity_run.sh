#!/usr/bin/env bash
# The scaled run of docs/cost.md §4: `twilio-events simulate` as fast as it can, at rising
# concurrency, against `twilio-events serve --backend aws` (ingest's libraries, as in Lambda)
# on the AWS emulators (a DynamoDB Local dedup table, a moto Kinesis stream), reading the
# stream back to count lost and duplicated events. Prints one JSON report per concurrency and a
# table: throughput, latency, and Little's law (in flight = throughput × latency), the relation
# the Lambda concurrency estimate of §4 rests on.
#
#   infra/latency/capacity_run.sh [events per run] [concurrency...]
#   infra/latency/capacity_run.sh 2000 1 4 16 64          (the defaults)
#
# Needs the emulators' environment: AWS_ENDPOINT_URL (moto) and TWILIO_EVENTS_TEST_DDB_LOCAL
# (DynamoDB Local), as infra/scripts/services.sh start prints them; python3 with boto3.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${AWS_ENDPOINT_URL:?set the emulators environment (infra/scripts/services.sh start)}"
: "${TWILIO_EVENTS_TEST_DDB_LOCAL:?set the emulators environment (infra/scripts/services.sh start)}"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" \
    AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL_DYNAMODB="$TWILIO_EVENTS_TEST_DDB_LOCAL"

events="${1:-2000}"
shift || true
levels=("$@")
[ "${#levels[@]}" -gt 0 ] || levels=(1 4 16 64)
port="${CAPACITY_RUN_PORT:-3987}"
token=capacity-run-token
target="${CARGO_TARGET_DIR:-target}"

# CAPACITY_RUN_PROFILE=dev uses the debug build (quicker to build; the emulators, not the CLI,
# bound the throughput either way).
profile="${CAPACITY_RUN_PROFILE:-release}"
cargo build --profile "$profile" -p twilio-events-cli --bin twilio-events >&2
[ "$profile" = dev ] && cli="$target/debug/twilio-events" || cli="$target/$profile/twilio-events"

work="$(mktemp -d)"
serve_pid=""
cleanup() {
    [ -z "$serve_pid" ] || { kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT

for concurrency in "${levels[@]}"; do
    # A fresh table and stream per run, so that each run's read-back counts only its events.
    name="capacity-$$-$concurrency"
    python3 - "$name" <<'PY'
import os, sys, time, boto3
name = sys.argv[1]
region = os.environ["AWS_REGION"]
ddb = boto3.client("dynamodb", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
kinesis = boto3.client("kinesis", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
kinesis.create_stream(StreamName=name, ShardCount=1)
while kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.2)
PY
    "$cli" serve --backend aws --port "$port" --data-dir "$work/$concurrency" \
        --auth-token "$token" --dedup-table "$name" --stream-name "$name" \
        >"$work/serve-$concurrency.log" 2>&1 &
    serve_pid=$!
    until (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
    report="$("$cli" simulate --url "http://127.0.0.1:$port" --auth-token "$token" \
        --events "$events" --rate max --concurrency "$concurrency" --retry-scale 0.001 \
        --kinesis-stream "$name" --seed "$concurrency" --json --quiet || true)"
    rss_kb="$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")"
    kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
    echo "{\"concurrency\": $concurrency, \"serve_peak_rss_mb\": $((rss_kb / 1024)), \"report\": $report}" \
        | tee -a "$work/results.jsonl"
done

python3 - "$work/results.jsonl" <<'PY'
import json, sys
print("\n| requests in flight | deliveries/s | p50 ms | p99 ms | in flight = rate × mean latency (p50) | accepted | lost | duplicated |")
print("|---|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    rep = r["report"]
    rate, p50 = rep["deliveries_per_s"], rep["p50_ms"]
    print(f"| {r['concurrency']} | {rate:,.0f} | {p50:.1f} | {rep['p99_ms']:.1f} | "
          f"{rate * p50 / 1000:.1f} | {rep['accepted']} | {rep['lost']} | {rep['duplicated']} |")
PY
