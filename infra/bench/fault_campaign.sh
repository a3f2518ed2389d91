#!/usr/bin/env bash
# Fault campaign for `twilio-events serve` (release build, embedded store, loopback only):
#   (a) kill -9 of serve under load, restart on the same data directory; `simulate` keeps
#       retrying as Twilio does (connection refused = retry with backoff);
#   (b) the store locked for a while: another process holds SQLite's write lock
#       (BEGIN EXCLUSIVE) for STORE_LOCK_SECONDS, so serve's writer waits (busy timeout) and then
#       fails, and ingest must answer 503 (retry), never 4xx (drop) and never 200 without a write.
#   (c) an outage longer than Twilio's retries: serve down for OUTAGE_SECONDS, longer than the
#       (scaled) retry window, so `simulate` drops what it could not deliver, as Twilio does after
#       4 hours; then `twilio-events reconcile` against a fake of Twilio's REST API holding what
#       the simulation did (infra/bench/twilio_rest_fake.py, fed by `simulate --resources`).
#       Lost there = a message or call whose final status is not in the stream.
# Each part reports lost (must be 0) and duplicated in the stream; the script exits 1 if any
# event is lost. Bounded in time (a few minutes), stops by itself.
#
#   infra/bench/fault_campaign.sh            # all three parts (or: kill, store, outage)
#   FAULT_EVENTS=20000 infra/bench/fault_campaign.sh kill
#
# Why a held write lock for (b): it is what really happens to a SQLite store (an operator's
# `sqlite3` session, a backup tool, a second writer); it makes the store first slow (every write
# waits for the lock) and then failing (SQLITE_BUSY after the busy timeout), without touching
# serve's code or files, and the store recovers by itself when the lock is released.
# (chmod of the database would not do: serve keeps its file descriptors open.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
parts="${1:-all}"
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/twilio-events"
port="${FAULT_PORT:-3997}"
events="${FAULT_EVENTS:-20000}"
rate="${FAULT_RATE:-1000/s}"
kill_after="${FAULT_KILL_AFTER:-5}"
down_for="${FAULT_DOWN_SECONDS:-3}"
lock_seconds="${STORE_LOCK_SECONDS:-8}"
outage_seconds="${OUTAGE_SECONDS:-12}"
outage_window="${OUTAGE_RETRY_WINDOW:-6s}"
export TWILIO_AUTH_TOKEN="fault-campaign-token"

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build -q --release -p twilio-events-cli --bin twilio-events
fi
work="$(mktemp -d)"
serve_pid=""
sim_pid=""
lock_pid=""
fake_pid=""
cleanup() {
    for pid in "$sim_pid" "$serve_pid" "$lock_pid" "$fake_pid"; do
        [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start_serve() { # data dir
    "$bin" serve --port "$port" --data-dir "$1" >>"$work/serve.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "serve did not start; see its log:" >&2
    cat "$work/serve.log" >&2
    exit 2
}

start_simulate() { # data dir, report file
    # --retry-scale 0.01: Twilio's backoff (1 s doubling to 10 min, 4 h) scaled to 10 ms…6 s
    # within 144 s, so a campaign takes minutes, not hours.
    timeout 600 "$bin" simulate --url "http://127.0.0.1:$port" --events "$events" --rate "$rate" \
        --duplicates 0.05 --reorder 0.20 --concurrency 32 --retry-scale 0.01 \
        --data-dir "$1" --json >"$2" 2>"$2.progress" &
    sim_pid=$!
}

field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

summarise() { # name, report
    local name="$1" report="$2"
    python3 - "$name" "$report" <<'EOF'
import json, sys
name, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
keys = ["events", "deliveries", "sent", "accepted", "retried", "dropped", "never_accepted",
        "in_stream", "lost", "duplicated"]
print(json.dumps({"part": name, **{k: r[k] for k in keys}, "answers": r["answers"]}))
EOF
}

failed=0
if [[ "$parts" == all || "$parts" == kill ]]; then
    data="$work/kill"
    start_serve "$data"
    start_simulate "$data" "$work/kill.json"
    sleep "$kill_after"
    echo "fault (a): kill -9 serve (pid $serve_pid) under load; down for ${down_for}s" >&2
    kill -9 "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    sleep "$down_for"
    start_serve "$data"
    echo "fault (a): serve restarted on the same data directory (pid $serve_pid)" >&2
    sleep "$kill_after"
    echo "fault (a): second kill -9 (pid $serve_pid)" >&2
    kill -9 "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    sleep "$down_for"
    start_serve "$data"
    wait "$sim_pid" || true
    sim_pid=""
    summarise kill_9 "$work/kill.json"
    [[ "$(field "$work/kill.json" lost)" == 0 ]] || failed=1
    kill "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
fi

if [[ "$parts" == all || "$parts" == store ]]; then
    data="$work/store"
    start_serve "$data"
    start_simulate "$data" "$work/store.json"
    sleep 3
    echo "fault (b): the store's write lock held for ${lock_seconds}s by another process" >&2
    python3 - "$data/twilio-events.db" "$lock_seconds" <<'EOF' &
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
EOF
    lock_pid=$!
    wait "$lock_pid" || true
    lock_pid=""
    echo "fault (b): lock released" >&2
    wait "$sim_pid" || true
    sim_pid=""
    summarise store_locked "$work/store.json"
    [[ "$(field "$work/store.json" lost)" == 0 ]] || failed=1
fi

if [[ "$parts" == all || "$parts" == outage ]]; then
    data="$work/outage"
    start_serve "$data"
    since="$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)"
    timeout 600 "$bin" simulate --url "http://127.0.0.1:$port" --events "$events" --rate "$rate" \
        --duplicates 0.05 --reorder 0.20 --concurrency 32 --retry-scale 0.001 \
        --max-retry-time "$outage_window" --resources "$work/resources.jsonl" \
        --data-dir "$data" --json >"$work/outage.json" 2>"$work/outage.json.progress" &
    sim_pid=$!
    sleep 3
    echo "fault (c): serve down for ${outage_seconds}s, longer than the ${outage_window} retry window" >&2
    kill -9 "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    sleep "$outage_seconds"
    start_serve "$data"
    wait "$sim_pid" || true
    sim_pid=""
    summarise outage_before_reconcile "$work/outage.json"
    fake_port=$((port + 1))
    python3 infra/bench/twilio_rest_fake.py "$work/resources.jsonl" "$fake_port" "$TWILIO_AUTH_TOKEN" &
    fake_pid=$!
    sleep 1
    account="$(head -1 "$work/resources.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["account_sid"])')"
    "$bin" reconcile --data-dir "$data" --since "$since" --until "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" \
        --account-sid "$account" --api-base "http://127.0.0.1:$fake_port" --json >"$work/reconcile.json"
    sleep 5 # serve's consumers read what reconcile stored
    kill "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
    "$bin" stream dump --data-dir "$data" >"$work/outage-stream.jsonl"
    python3 - "$work/resources.jsonl" "$work/outage-stream.jsonl" "$work/reconcile.json" <<'EOF' || failed=1
import json, sys
# A status is in the stream when an event of its resource carries it (a call's precise status
# is in its parameters: busy and no-answer come as `completed` events).
seen = set()
for line in open(sys.argv[2]):
    e = json.loads(line)
    data = e.get("data") or {}
    if isinstance(data, str):
        data = json.loads(data)
    if "messageSid" in data:
        seen.add((data["messageSid"], data["messageStatus"].lower()))
    params = (data.get("request") or {}).get("parameters") or {}
    if "CallSid" in params:
        seen.add((params["CallSid"], params["CallStatus"]))
resources = [json.loads(l) for l in open(sys.argv[1])]
lost = [r["sid"] for r in resources if (r["sid"], r["status"]) not in seen]
report = json.load(open(sys.argv[3]))
print(json.dumps({"part": "outage_after_reconcile", "messages_and_calls": len(resources),
                  "reconcile_stored": report["stored"], "advanced": report["advanced"],
                  "never_seen": report["discovered"], "lost": len(lost)}))
sys.exit(1 if lost else 0)
EOF
    kill "$fake_pid" 2>/dev/null || true
    fake_pid=""
fi

if [[ "$failed" != 0 ]]; then
    echo "FAILED: events answered 2xx are missing from the stream" >&2
    exit 1
fi
