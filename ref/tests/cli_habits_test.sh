#!/usr/bin/env bash
# Every command-line program and script of the repository does the same:
# --version prints "NAME VERSION" (the version of ref/memlink/shm/version.hpp)
# and exits 0; --help exits 0; a nonsense flag exits 2 with a message on
# stderr (docs/cli.md). ctest cli-habits runs it on the build tree.
# usage: ref/tests/cli_habits_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2; exit 2; }
src=$1 build=$2
version=$(sed -n 's/^#define MEMLINK_SHM_VERSION "\(.*\)"$/\1/p' "$src/ref/memlink/shm/version.hpp")
[ -n "$version" ] || { echo "no MEMLINK_SHM_VERSION in version.hpp" >&2; exit 1; }
failures=0 checked=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# check NAME CMD...: the three habits of one program. The example drivers
# are built alone from a copy (conformance/drivers/*/) and carry their own
# version: theirs must name the driver protocol instead ($want).
check() {
  local name=$1; shift
  local out err status want=$version
  case $name in memlink-driver-*) want="(driver protocol 2" ;; esac
  out=$("$@" --version 2>/dev/null); status=$?
  [ $status -eq 0 ] || fail "$name --version exits $status, not 0"
  [[ $out == *"$want"* ]] || fail "$name --version prints '$out', without '$want'"
  "$@" --help >/dev/null 2>&1; status=$?
  [ $status -eq 0 ] || fail "$name --help exits $status, not 0"
  err=$("$@" --no-such-flag-xyz 2>&1 >/dev/null </dev/null); status=$?
  [ $status -eq 2 ] || fail "$name --no-such-flag-xyz exits $status, not 2"
  [ -n "$err" ] || fail "$name --no-such-flag-xyz says nothing on stderr"
  checked=$((checked + 1))
}

for prog in memlink-shm memlink-conformance memlink-chaos memlink-shm-driver memlink-driver-posix-mq \
            memlink-driver-boost-mq memlink-driver-iceoryx bench_futex_portable fuzz_make_seeds bench_roundtrip bench_throughput \
            bench_futex bench_costs; do
  if [ -x "$build/$prog" ]; then
    check "$prog" "$build/$prog"
  else
    echo "not built here: $prog"
  fi
done
# The scripts that parse their own flags (scripts/conformance and
# scripts/chaos hand unknown flags to the programs checked above, after a
# build; their --version and --help are checked without one).
for script in bench compare-latency flakiness-proof fuzz mutate test test-windows wine-run check-workflows lint \
              check-clusterfuzzlite ci-debian-setup ci-latency-build ci-latency-run ci-latency-compare readme-figures; do
  [ -x "$src/scripts/$script" ] || { echo "no script: $script"; continue; }
  check "scripts/$script" "$src/scripts/$script"
done
# bench/upper_bounds.py (measurement-only variants of the hot path).
check "bench/upper_bounds.py" "$src/bench/upper_bounds.py"
for script in conformance chaos; do
  out=$("$src/scripts/$script" --version 2>/dev/null); status=$?
  [ $status -eq 0 ] && [[ $out == *"$version"* ]] || fail "scripts/$script --version: status $status, '$out'"
  "$src/scripts/$script" --help >/dev/null 2>&1 || fail "scripts/$script --help exits $?"
  checked=$((checked + 1))
done
# A flag that wants a value, given without one (or a bad one), is a usage
# error, not a shift past the end of the arguments.
for bad in "bench --out" "bench --filter" "bench --cpus" "test --presets" "test --jobs" "test --jobs x"; do
  # shellcheck disable=SC2086
  "$src/scripts/"$bad >/dev/null 2>&1 </dev/null; status=$?
  [ $status -eq 2 ] || fail "scripts/$bad exits $status, not 2"
done
# memlink-shm's subcommands are usage errors on their own too.
if [ -x "$build/memlink-shm" ]; then
  "$build/memlink-shm" >/dev/null 2>&1; status=$?
  [ $status -eq 2 ] || fail "memlink-shm without a subcommand exits $status, not 2"
  "$build/memlink-shm" daemon /dev/shm/x --version 3 >/dev/null 2>&1; status=$?
  [ $status -eq 2 ] || fail "memlink-shm daemon --version 3 (the old protocol flag) exits $status, not 2"
fi
if [ -x "$build/memlink-conformance" ]; then
  "$build/memlink-conformance" --depth nope >/dev/null 2>&1; status=$?
  [ $status -eq 2 ] || fail "memlink-conformance --depth nope exits $status, not 2"
fi
if [ -x "$build/memlink-chaos" ]; then
  for bad in "--duration 10x" "--duration -5s" "--duration 0"; do
    # shellcheck disable=SC2086
    "$build/memlink-chaos" $bad >/dev/null 2>&1; status=$?
    [ $status -eq 2 ] || fail "memlink-chaos $bad exits $status, not 2"
  done
fi
echo "cli habits: $checked programs and scripts checked, $failures failures"
[ $failures -eq 0 ] && [ $checked -gt 0 ]
