#!/usr/bin/env bash
# Each script needs only its own dependencies (issue 16): the presets that
# scripts/conformance and scripts/chaos build in, and an embedding project's
# build, must configure with every dependency they do not need hidden from
# CMake. ctest preset-dependencies; configure only (seconds).
# usage: cmake/preset_deps_test.sh SOURCE_DIR WORK_DIR
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR WORK_DIR" >&2; exit 2; }
src=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
failures=0
# configure NAME HIDDEN-PACKAGES ARGS...: configure with those packages hidden.
configure() {
  local name=$1 hidden=$2; shift 2
  local hide=()
  for p in $hidden; do hide+=("-DCMAKE_DISABLE_FIND_PACKAGE_$p=ON"); done
  if cmake -S "$src" -B "$work/$name" -G Ninja "${hide[@]}" "$@" >"$work/$name.log" 2>&1; then
    echo "ok   $name configures without: $hidden"
  else
    echo "FAIL $name needs one of: $hidden"; tail -15 "$work/$name.log"; failures=$((failures + 1))
  fi
}
bench_deps="benchmark Boost iceoryx_posh GTest"
# The conformance preset's cache variables (scripts/conformance, scripts/chaos without build/release).
configure conformance "$bench_deps" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMLINK_BUILD_TESTS=OFF -DMEMLINK_BUILD_BENCH=OFF \
  -DMEMLINK_BUILD_EXAMPLES=OFF -DMEMLINK_BUILD_TOOLS=ON -DMEMLINK_BUILD_CONFORMANCE=ON
grep -q "memlink-driver-boost-mq" "$work/conformance/build.ninja" 2>/dev/null &&
  { echo "FAIL the conformance configuration builds the Boost driver with Boost hidden"; failures=$((failures + 1)); }
# The library alone, as an embedding project gets it: nothing but threads.
configure library-only "$bench_deps rapidcheck CLI11 nlohmann_json" -DMEMLINK_BUILD_TESTS=OFF -DMEMLINK_BUILD_TOOLS=OFF \
  -DMEMLINK_BUILD_CONFORMANCE=OFF -DMEMLINK_BUILD_EXAMPLES=OFF
# The latency matrix's build of bench_futex_portable (scripts/ci-latency-build).
configure portable-bench "$bench_deps rapidcheck CLI11 nlohmann_json" -DMEMLINK_BUILD_TESTS=OFF -DMEMLINK_BUILD_TOOLS=OFF \
  -DMEMLINK_BUILD_CONFORMANCE=OFF -DMEMLINK_BUILD_EXAMPLES=ON
# And the check bites: the full release configuration does need Google Benchmark.
if cmake -S "$src" -B "$work/release-without-benchmark" -G Ninja -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON \
     -DMEMLINK_BUILD_BENCH=ON >"$work/release-without-benchmark.log" 2>&1; then
  echo "FAIL the benchmarks configured with Google Benchmark hidden: the hiding does not work"; failures=$((failures + 1))
else
  echo "ok   (the benchmarks do fail to configure with Google Benchmark hidden)"
fi
echo "preset dependencies: $failures failures"
[ $failures -eq 0 ]
