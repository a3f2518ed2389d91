#!/usr/bin/env bash
# `twilio-events serve` (release build, embedded store, its default limits, loopback only)
# under slow and idle connections: genuine signed deliveries at a steady rate, first alone,
# then while 300 connections that never finish a request are held open (a quarter each:
# silent, a head trickled a line a second, a body trickled a byte a second, idle after an
# answer), each reopened as soon as serve closes it. Reports p50/p99 of the genuine deliveries
# in both phases, how long serve took to close each kind of slow connection against its
# timeout, and checks that every delivery answered 200 is in the stream once.
# Bounded in time (two phases of SLOW_SECONDS, 40 s each by default), stops what it started.
#
#   infra/bench/slow_clients.sh
#   SLOW_CONNECTIONS=300 SLOW_SECONDS=40 GENUINE_RATE=50 SKIP_BUILD=1 infra/bench/slow_clients.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/twilio-events"
port="${SLOW_PORT:-3996}"
connections="${SLOW_CONNECTIONS:-300}"
seconds="${SLOW_SECONDS:-40}"
rate="${GENUINE_RATE:-50}"
token="slow-clients-token"
# serve's defaults, passed explicitly so that the report and the server agree.
header_timeout=5 body_timeout=10 idle_timeout=30
load="python3 infra/bench/slow_clients.py"

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build -q --release -p twilio-events-cli --bin twilio-events
fi
work="$(mktemp -d)"
serve_pid="" slow_pid=""
cleanup() {
    [[ -n "$slow_pid" ]] && kill "$slow_pid" 2>/dev/null || true
    [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$bin" serve --port "$port" --data-dir "$work/data" --auth-token "$token" \
    --header-read-timeout "${header_timeout}s" --body-read-timeout "${body_timeout}s" \
    --idle-timeout "${idle_timeout}s" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

genuine() {
    $load genuine --port "$port" --token "$token" --seconds "$seconds" --rate "$rate"
}

# The machine's load average, with each phase: on shared cores it moves the figures.
load_alone="$(cut -d' ' -f1 /proc/loadavg)"
echo "phase 1: $rate genuine deliveries/s for ${seconds}s, alone" >&2
alone="$(genuine)"

echo "phase 2: the same while $connections slow or idle connections are held" >&2
mkfifo "$work/slow.out"
# The slow clients run until told to stop, a little after the genuine ones end, so that every
# genuine delivery meets them.
$load slow --port "$port" --token "$token" --connections "$connections" \
    --seconds $((seconds * 3)) --header-timeout "$header_timeout" \
    --body-timeout "$body_timeout" --idle-timeout "$idle_timeout" >"$work/slow.out" &
slow_pid=$!
exec 3<"$work/slow.out"
read -r ready <&3
[[ "$ready" == "ready" ]] || { echo "slow clients did not start: $ready" >&2; exit 1; }
open_now="$(ls "/proc/$serve_pid/fd" | wc -l)"
load_slow="$(cut -d' ' -f1 /proc/loadavg)"
with_slow="$(genuine)"
sleep 1
kill -TERM "$slow_pid"
slow_report="$(cat <&3)"
wait "$slow_pid" || true
slow_pid=""
rss_kb="$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")"
kill "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
serve_pid=""
in_stream="$("$bin" stream dump --data-dir "$work/data" | wc -l)"
distinct="$("$bin" stream dump --data-dir "$work/data" | sort -u | wc -l)"

python3 - "$alone" "$with_slow" "$slow_report" "$in_stream" "$distinct" "$open_now" "$rss_kb" \
    "$load_alone" "$load_slow" <<'EOF'
import json, sys
alone, with_slow, slow = (json.loads(a) for a in sys.argv[1:4])
in_stream, distinct, open_fds, rss_kb = (int(a) for a in sys.argv[4:8])
alone["load_average"], with_slow["load_average"] = (float(a) for a in sys.argv[8:10])
print(json.dumps({"alone": alone, "with_slow": with_slow, "slow": slow,
                  "serve_open_fds_under_slow": open_fds, "serve_peak_rss_mb": rss_kb // 1024,
                  "events_in_stream": in_stream}))
print(f"\n{'genuine deliveries':<28}{'alone':>10}{'with slow':>12}")
for field in ("deliveries", "ok_200", "errors_or_timeouts", "p50_ms", "p99_ms", "max_ms",
              "load_average"):
    print(f"{field:<28}{alone[field]:>10}{with_slow[field]:>12}")
print(f"\n{'slow kind':<12}{'timeout s':>10}{'closed':>8}{'min s':>8}{'p50 s':>8}{'max s':>8}{'late':>6}{'early':>7}{'open past timeout':>19}")
for name, k in slow["kinds"].items():
    shown = {f: "-" if k[f] is None else k[f] for f in k}
    print(f"{name:<12}{shown['timeout_s']:>10}{shown['closed_by_server']:>8}"
          f"{shown['closed_after_s_min']:>8}{shown['closed_after_s_p50']:>8}"
          f"{shown['closed_after_s_max']:>8}{shown['closed_late']:>6}{shown['closed_early']:>7}"
          f"{shown['open_past_timeout_at_end']:>19}")
print(f"\nserve: {open_fds} open descriptors under the slow clients, peak RSS {rss_kb // 1024} MB")
ok = alone["ok_200"] + with_slow["ok_200"]
problems = []
if ok != in_stream or distinct != in_stream:
    problems.append(f"{ok} deliveries answered 200, {in_stream} events in the stream ({distinct} distinct)")
if slow["not_closed_within_timeout"]:
    problems.append(f"{slow['not_closed_within_timeout']} slow connections not closed within their timeout")
if with_slow["ok_200"] != with_slow["deliveries"]:
    problems.append("genuine deliveries failed under the slow clients")
for p in problems:
    print("PROBLEM:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
