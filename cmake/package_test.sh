#!/usr/bin/env bash
# The package as a consumer sees it (ctest package-installed and
# package-subdirectory): builds examples/consumer against memlink-shm
#   installed     `cmake --install` of BUILD into a prefix, then
#                 find_package(memlink-shm) and, separately, pkg-config;
#   subdirectory  add_subdirectory of the sources, which must build only the
#                 library (no GoogleTest, CLI11, RapidCheck found or needed)
# and runs what it built.
# usage: cmake/package_test.sh installed|subdirectory SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 installed|subdirectory SOURCE_DIR BUILD_DIR WORK_DIR" >&2; exit 2; }
mode=$1 src=$2 build=$3 work=$4
rm -rf "$work"
mkdir -p "$work"
fail() { echo "package-$mode: FAILED: $*" >&2; exit 1; }
# The consumer builds with the compiler and flags of the tree under test
# (sanitizer presets need their runtime on the consumer's link line too).
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
flags=$(sed -n 's/^CMAKE_CXX_FLAGS:[A-Z]*=//p' "$build/CMakeCache.txt")
ldflags=$(sed -n 's/^CMAKE_EXE_LINKER_FLAGS:[A-Z]*=//p' "$build/CMakeCache.txt")
common=(-G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags"
        -DCMAKE_BUILD_TYPE=RelWithDebInfo)

case $mode in
  installed)
    prefix=$work/prefix
    cmake --install "$build" --prefix "$prefix" >"$work/install.log" || fail "cmake --install (see $work/install.log)"
    for f in include/memlink/shm/transport.hpp include/memlink/shm/version.hpp lib/libmemlink_shm.a \
             lib/cmake/memlink-shm/memlink-shmConfig.cmake lib/cmake/memlink-shm/memlink-shmConfigVersion.cmake \
             lib/pkgconfig/memlink_shm.pc bin/memlink-shm; do
      [ -e "$prefix/$f" ] || fail "not installed: $f"
    done
    grep -q "$src" "$prefix/lib/cmake/memlink-shm/memlink-shmTargets.cmake" &&
      fail "the installed targets name the source tree ($src): not relocatable"
    cmake -S "$src/examples/consumer" -B "$work/consumer" "${common[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
      >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configure against the installed package"; }
    cmake --build "$work/consumer" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "build against the installed package"; }
    "$work/consumer/consumer_echo" || fail "consumer_echo (find_package)"
    if [ -x "$work/consumer/consumer_conformance" ]; then
      "$work/consumer/consumer_conformance" || fail "consumer_conformance (the suite as a library)"
    elif grep -q "memlink_conformance" "$prefix/lib/cmake/memlink-shm/memlink-shmTargets.cmake"; then
      fail "the package has memlink::conformance but the consumer did not build against it"
    fi
    # A version the package does not promise (another minor, 0.x) is refused.
    mkdir -p "$work/wrong-version"
    printf 'cmake_minimum_required(VERSION 3.25)\nproject(w LANGUAGES CXX)\nfind_package(memlink-shm 0.1 CONFIG REQUIRED)\n' \
      >"$work/wrong-version/CMakeLists.txt"
    if cmake -S "$work/wrong-version" -B "$work/wrong-version/build" -DCMAKE_PREFIX_PATH="$prefix" \
         >"$work/wrong-version.log" 2>&1; then
      fail "find_package(memlink-shm 0.1) accepted version $(sed -n 's/.*PACKAGE_VERSION "\(.*\)".*/\1/p' \
        "$prefix/lib/cmake/memlink-shm/memlink-shmConfigVersion.cmake" | sed -n 1p)"
    fi
    grep -q "version" "$work/wrong-version.log" || fail "a wrong version was refused without naming the version"
    # pkg-config, for builds without CMake.
    if command -v pkg-config >/dev/null; then
      export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
      # shellcheck disable=SC2046
      "$cxx" $flags $ldflags -o "$work/echo-pkgconfig" "$src/examples/consumer/echo.cpp" \
        $(pkg-config --cflags --libs memlink_shm) || fail "build with pkg-config"
      "$work/echo-pkgconfig" || fail "echo built with pkg-config"
    else
      echo "package-$mode: pkg-config not installed; the .pc file was installed but not used"
    fi
    ;;
  subdirectory)
    cmake -S "$src/examples/consumer" -B "$work/consumer" "${common[@]}" -DMEMLINK_SOURCE_DIR="$src" \
      >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configure with add_subdirectory"; }
    for dep in GTest rapidcheck CLI11 nlohmann_json benchmark; do
      grep -q "^${dep}_DIR:" "$work/consumer/CMakeCache.txt" && fail "embedding looked for $dep (only the library should be built)"
    done
    cmake --build "$work/consumer" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "build with add_subdirectory"; }
    [ -e "$work/consumer/memlink-shm/memlink_unit_tests" ] && fail "embedding built memlink-shm's tests"
    "$work/consumer/consumer_echo" || fail "consumer_echo (add_subdirectory)"
    ;;
  *) echo "unknown mode '$mode'" >&2; exit 2 ;;
esac
echo "package-$mode: ok"
