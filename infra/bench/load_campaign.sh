#!/usr/bin/env bash
# Load campaign for `twilio-events serve` (release build, embedded store, loopback only): the
# same `twilio-events simulate` traffic at a rising rate, STEP_SECONDS per step, until p99
# latency passes 1 s, errors appear (any answer but 2xx, a timeout, a connection error) or the
# rate reached falls below 90 % of the target (serve cannot keep up). Reports the knee (the
# highest rate of accepted deliveries per second before that) and p50/p99 at half of it.
# Bounded in time (at most ~12 steps), stops by itself.
#
#   infra/bench/load_campaign.sh
#   STEP_SECONDS=10 LOAD_RATES="500 1000 2000" infra/bench/load_campaign.sh
#
# On a small machine simulate and serve share the CPU: the knee is that of the pair, a floor
# for serve alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/twilio-events"
port="${LOAD_PORT:-3998}"
step="${STEP_SECONDS:-5}"
concurrency="${LOAD_CONCURRENCY:-64}"
rates="${LOAD_RATES:-250 500 1000 2000 3000 4000 6000 8000 12000 16000 24000 32000}"
export TWILIO_AUTH_TOKEN="load-campaign-token"

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build -q --release -p twilio-events-cli --bin twilio-events
fi
work="$(mktemp -d)"
serve_pid=""
cleanup() {
    [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$bin" serve --port "$port" --data-dir "$work/data" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

run_step() { # rate/s -> one JSON report
    # No retries within a step (a failure is what we look for), no duplicates or disorder:
    # this measures capacity.
    timeout $((step * 6 + 30)) "$bin" simulate --url "http://127.0.0.1:$port" \
        --rate "$1/s" --duration "${step}s" --concurrency "$concurrency" \
        --duplicates 0 --reorder 0 --max-retry-time 1ms --quiet --json
}

knee=0
knee_rate=0
printf '%-8s %-10s %-8s %-8s %-8s %s\n' target achieved p50_ms p99_ms errors verdict >&2
for rate in $rates; do
    report="$(run_step "$rate")"
    echo "$report" >>"$work/steps.jsonl"
    read -r achieved p50 p99 errors < <(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
a = r["answers"]
errors = r["sent"] - a["2xx"]
print(r["deliveries_per_s"], r["p50_ms"], r["p99_ms"], errors)' "$report")
    verdict=ok
    if python3 -c 'import sys; t,a,p99,e=map(float,sys.argv[1:]); sys.exit(0 if (p99>1000 or e>0 or a<0.9*t) else 1)' \
        "$rate" "$achieved" "$p99" "$errors"; then
        verdict=saturated
    fi
    printf '%-8s %-10s %-8s %-8s %-8s %s\n' "$rate" "$achieved" "$p50" "$p99" "$errors" "$verdict" >&2
    if [[ "$verdict" == saturated ]]; then
        # The knee: the best rate sustained before, or what this step still achieved.
        knee="$(python3 -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[2]) if float(sys.argv[3])==0 else 0))' "$knee" "$achieved" "$errors")"
        break
    fi
    knee="$achieved"
    knee_rate="$rate"
done
half="$(python3 -c 'import sys; print(max(1, int(float(sys.argv[1]) / 2)))' "$knee")"
echo "at half the knee: $half/s" >&2
half_report="$(run_step "$half")"
python3 - "$knee" "$half" "$half_report" "$knee_rate" <<'PY'
import json, sys
knee, half, r, knee_rate = float(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
print(json.dumps({
    "knee_deliveries_per_s": round(knee),
    "last_unsaturated_target_per_s": int(knee_rate),
    "half_knee_target_per_s": half,
    "half_knee_achieved_per_s": r["deliveries_per_s"],
    "half_knee_p50_ms": r["p50_ms"],
    "half_knee_p99_ms": r["p99_ms"],
    "half_knee_errors": r["sent"] - r["answers"]["2xx"],
}))
PY
rss_kb="$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status" 2>/dev/null || echo 0)"
echo "{\"serve_peak_rss_mb\": $((rss_kb / 1024))}"
