#!/usr/bin/env bash
# scripts/compare-latency reads bench_futex_portable --json (Google Benchmark
# JSON): two smoke runs side by side, and one beside a scripts/bench run of
# bench/results/, where the process floors are the same rows. Checks the
# table's shape, never a timing.
# usage: compare_test.sh BENCH_FUTEX_PORTABLE SOURCE_DIR
set -uo pipefail
bench=$1
src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memlink-compare-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "compare_test: FAIL: $*" >&2; exit 1; }
compare() { "$src/scripts/compare-latency" "$@" 2>&1; }
# No `echo "$out" | grep -q` or `| head -1` here: under pipefail, a reader
# that exits early makes bash's echo (one write per line) die of SIGPIPE now
# and then, and the pipeline fails although the line is there.
has_line() { grep -F -- "$1" <<<"$out" >/dev/null; }

for run in a b; do
  "$bench" --smoke --json "$tmp/$run.json" >"$tmp/$run.txt" 2>&1 || { cat "$tmp/$run.txt" >&2; fail "bench run $run failed"; }
done

out=$(compare "$tmp/a.json" "$tmp/b.json" --labels run1,run2) || fail "compare exited non-zero: $out"
echo "$out"
header=$(sed -n 1p <<<"$out")
for col in "run1 p50" "run1 p99" "run2 p50" "run2 p99" "run2 / run1"; do
  [[ $header == *"| $col |"* ]] || fail "no column '$col' in: $header"
done
floor=$(echo "$out" | grep -F "| floor_futex | 8 |") || fail "no floor_futex row"
# Both files have the row: a time (not '-') in each p50/p99 cell, and a ratio.
IFS='|' read -r -a cells <<<"$floor"
[ "${#cells[@]}" -ge 8 ] || fail "floor_futex row has ${#cells[@]} cells: $floor"
for i in 3 4 5 6; do
  [[ ${cells[$i]} =~ [0-9]+(\.[0-9]+)?\ (ns|us|ms) ]] || fail "cell $i of the floor_futex row is not a time: $floor"
done
[[ ${cells[7]} =~ [0-9]+\.[0-9]{2}x ]] || fail "no ratio in the floor_futex row: $floor"
has_line "| round_trip/memlink_futex_threads | - |" || fail "no threads row"
has_line "| wake_no_waiter/memlink_futex | - |" || fail "no wake row"

# Default labels come from the context (os and kernel release).
out=$(compare "$tmp/a.json" "$tmp/b.json") || fail "compare without --labels exited non-zero: $out"
os=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["context"]["os"])' "$tmp/a.json") ||
  fail "no context.os in the JSON"
header=$(sed -n 1p <<<"$out")
[[ $header == *"| $os"* ]] || fail "the default label has not the OS '$os': $header"

# Beside a scripts/bench run: the floor rows match bench_roundtrip's, the
# portable-only rows are rows of their own.
linux=$src/bench/results/2026-11-26-debian12-vm-2cpu.json
out=$(compare "$linux" "$tmp/a.json" --labels vm,portable) || fail "compare with $linux exited non-zero: $out"
echo "$out"
floor=$(echo "$out" | grep -F "| floor_futex | 8 |") || fail "no floor_futex row beside $linux"
[[ $floor =~ [0-9]\.[0-9]{2}x\ \|$ ]] || fail "floor_futex is not matched across the two programs: $floor"
has_line "| memlink_adaptive | 64 |" || fail "the bench_roundtrip rows are missing"
threads=$(echo "$out" | grep -F "| round_trip/memlink_futex_threads | - |") || fail "no portable threads row"
[[ $threads =~ \|\ -\ \|\ -\ \|\ [0-9] ]] || fail "the portable-only row is not its own: $threads"
# The plot: portable runs alone have no payload series, so one bar per run
# and row (the latency matrix's case); beside a scripts/bench run, lines.
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  out=$(compare "$tmp/a.json" "$tmp/b.json" --labels run1,run2 --plot "$tmp/p.png") || fail "plot exited non-zero: $out"
  [[ $out == *"plot: $tmp/p.png (2 series)"* ]] || fail "portable plot without its two runs: $out"
  [ "$(head -c 4 "$tmp/p.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "$tmp/p.png is not a PNG"
  out=$(compare "$linux" --labels vm --plot "$tmp/q.svg") || fail "plot of $linux exited non-zero: $out"
  [[ $out =~ plot:\ .*q\.svg\ \(([0-9]+)\ series\) ]] && [ "${BASH_REMATCH[1]}" -ge 3 ] || fail "no payload series: $out"
else
  echo "compare_test: matplotlib not installed; the plot is not checked"
fi
echo "compare_test: OK"
