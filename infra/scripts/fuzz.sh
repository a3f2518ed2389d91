#!/usr/bin/env bash
# Fuzzes signature verification and body parsing (the shared crate) with cargo fuzz, each
# target for a bounded time, and fails if any target crashes.
#
#   infra/scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 600: ten minutes per target)
#
# NOT part of CI: four targets at ten minutes each is too long for every push. Run it by hand
# after changing shared/src/signature, shared/src/event or shared/src/usage_trigger.rs, and
# before a release. docs/fuzzing.md describes the targets and the last measured runs.
#
# Environment:
#   FUZZ_TARGETS   space-separated targets to run (default: all four, one after another)
#   FUZZ_PARALLEL  how many targets to run at once (default 1; each is one libFuzzer process)
#
# The machine has a stable toolchain only; cargo-fuzz needs nightly flags (-Z sanitizer=...),
# which RUSTC_BOOTSTRAP=1 unlocks on stable. cargo-fuzz is installed from crates.io when
# missing. Builds go to fuzz/target (not the workspace's target/), libFuzzer's growing corpus
# to fuzz/corpus/<target> (the committed seeds in fuzz/seeds/<target> are read, never
# written), crash inputs to fuzz/artifacts/<target>, logs to fuzz/target/logs/<target>.log;
# all of those are gitignored.
#
# Exit status: 0 when every target ran its time without a crash; 1 otherwise, after printing
# each crash file (path and hex dump) and how to reproduce it.
set -euo pipefail

seconds="${1:-600}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fuzz_dir="$root/fuzz"
targets=(${FUZZ_TARGETS:-verify parse_delivery usage_trigger parse_event})
parallel="${FUZZ_PARALLEL:-1}"

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$fuzz_dir/target"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
echo "== building ${targets[*]}"
for target in "${targets[@]}"; do
    cargo fuzz build "$target"
done

logs="$CARGO_TARGET_DIR/logs"
mkdir -p "$logs"
stamp="$(mktemp)"
trap 'rm -f "$stamp"' EXIT

run_target() {
    local target="$1"
    mkdir -p "corpus/$target" "artifacts/$target"
    # One process, no -jobs (with -jobs libFuzzer forks and writes fuzz-N.log files instead);
    # -timeout turns a hang into a failure; the seeds are a read-only second corpus directory.
    cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1
}

echo "== fuzzing ${targets[*]} for ${seconds}s each, $parallel at a time (logs in $logs)"
declare -A status
pids=()
names=()
for target in "${targets[@]}"; do
    run_target "$target" &
    pids+=($!)
    names+=("$target")
    if [ "${#pids[@]}" -ge "$parallel" ]; then
        wait "${pids[0]}" && status[${names[0]}]=0 || status[${names[0]}]=$?
        pids=("${pids[@]:1}")
        names=("${names[@]:1}")
    fi
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" && status[${names[$i]}]=0 || status[${names[$i]}]=$?
done

# The results: libFuzzer's last status line and final stats for each target.
failed=0
printf '\n%-15s %-6s %12s %8s %7s %7s %7s  %s\n' target result runs exec/s cov ft corpus crashes
for target in "${targets[@]}"; do
    log="$logs/$target.log"
    last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    cov="$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)"
    ft="$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)"
    corpus="$(find "corpus/$target" -type f | wc -l)"
    crashes="$(find "artifacts/$target" -type f -newer "$stamp" | wc -l)"
    result=ok
    if [ "${status[$target]}" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        result=FAILED
        failed=1
    fi
    printf '%-15s %-6s %12s %8s %7s %7s %7s  %s\n' "$target" "$result" "${runs:-?}" \
        "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$crashes"
done

if [ "$failed" -ne 0 ]; then
    for target in "${targets[@]}"; do
        [ "${status[$target]}" -eq 0 ] && continue
        echo
        echo "== $target failed (exit ${status[$target]}); end of $logs/$target.log:"
        tail -n 40 "$logs/$target.log"
        while IFS= read -r crash; do
            echo
            echo "== crash file: $fuzz_dir/$crash"
            od -A d -c "$crash" | head -n 40
            echo "reproduce: RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo fuzz run $target $fuzz_dir/$crash"
            echo "minimise:  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo fuzz tmin $target $fuzz_dir/$crash"
        done < <(find "artifacts/$target" -type f -newer "$stamp")
    done
    exit 1
fi
echo
echo "== no crash in ${#targets[@]} targets at ${seconds}s each"
