#!/bin/bash -eu
# Builds the libFuzzer targets of fuzz/ for ClusterFuzzLite (and OSS-Fuzz),
# inside the image of .clusterfuzzlite/Dockerfile, with the environment that
# image sets: $CC $CXX $CFLAGS $CXXFLAGS (sanitizer and coverage flags),
# $LIB_FUZZING_ENGINE, $SRC, $OUT, $WORK. Writes nothing into the source
# tree: it builds in $WORK and puts into $OUT, for each target T,
#   fuzz_T                    the fuzzer
#   fuzz_T_seed_corpus.zip    fuzz/corpus/T (and fuzz/regressions/T)
#   fuzz_T.options            fuzz/T.options (libFuzzer flags)
#   fuzz_T.dict               fuzz/T.dict, where there is one
# Overrides: MEMLINK_SRC (the repository, default $SRC/memlink-shm),
# MEMLINK_BUILD_DIR (default $WORK/memlink-build). Checked without Docker by
# scripts/check-clusterfuzzlite.
set -euo pipefail

src=${MEMLINK_SRC:-$SRC/memlink-shm}
build=${MEMLINK_BUILD_DIR:-$WORK/memlink-build}
deps=$WORK/memlink-deps
targets=(bounds segment_open hostile_peer ops_differential driver_answer)
jobs=$(nproc)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

# Dependencies of the conformance adapter that the image cloned (Dockerfile):
# built with the image's compiler and flags (libc++), installed under $deps.
# Where they are not there (a Debian machine, scripts/check-clusterfuzzlite),
# the system's packages are used.
mkdir -p "$deps"
for header_only in nlohmann_json CLI11; do
  [ -d "$SRC/$header_only" ] || continue
  cmake -S "$SRC/$header_only" -B "$WORK/deps-build/$header_only" "${generator[@]}" \
    -DCMAKE_INSTALL_PREFIX="$deps" -DCMAKE_BUILD_TYPE=Release \
    -DJSON_BuildTests=OFF -DCLI11_BUILD_TESTS=OFF -DCLI11_BUILD_EXAMPLES=OFF -DCLI11_BUILD_DOCS=OFF
  cmake --build "$WORK/deps-build/$header_only" -j "$jobs"
  cmake --install "$WORK/deps-build/$header_only"
done
if [ -d "$SRC/rapidcheck" ]; then
  # CMAKE_CXX_FLAGS_RELEASE comes after RapidCheck's own -Werror.
  cmake -S "$SRC/rapidcheck" -B "$WORK/deps-build/rapidcheck" "${generator[@]}" \
    -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-Wno-error" \
    -DRC_ENABLE_TESTS=OFF -DRC_ENABLE_EXAMPLES=OFF
  cmake --build "$WORK/deps-build/rapidcheck" --target rapidcheck -j "$jobs"
  lib=$(find "$WORK/deps-build/rapidcheck" -maxdepth 2 -name 'librapidcheck.a' -print -quit)
  [ -n "$lib" ] || { echo "build.sh: librapidcheck.a was not built" >&2; exit 1; }
  # The target name the project links with (find_package(rapidcheck CONFIG)).
  mkdir -p "$deps/lib/cmake/rapidcheck"
  cat >"$deps/lib/cmake/rapidcheck/rapidcheckConfig.cmake" <<CONFIG
if(NOT TARGET rapidcheck)
  add_library(rapidcheck STATIC IMPORTED)
  set_target_properties(rapidcheck PROPERTIES IMPORTED_LOCATION "$lib"
    INTERFACE_INCLUDE_DIRECTORIES "$SRC/rapidcheck/include")
endif()
CONFIG
fi

# The fuzz preset's choices (CMakePresets.json), with this environment's
# compiler, flags and fuzzing engine; no CMAKE_BUILD_TYPE: $CXXFLAGS decide.
cmake -S "$src" -B "$build" "${generator[@]}" \
  -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_CXX_FLAGS="$CXXFLAGS" -DCMAKE_BUILD_TYPE= \
  -DCMAKE_PREFIX_PATH="$deps" \
  -DMEMLINK_BUILD_FUZZERS=ON -DMEMLINK_FUZZING_ENGINE="$LIB_FUZZING_ENGINE" \
  -DMEMLINK_BUILD_TESTS=OFF -DMEMLINK_BUILD_TOOLS=OFF -DMEMLINK_BUILD_BENCH=OFF \
  -DMEMLINK_WERROR=OFF
cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}"

for t in "${targets[@]}"; do
  cp "$build/fuzz_$t" "$OUT/fuzz_$t"
  zip="$OUT/fuzz_${t}_seed_corpus.zip"
  rm -f "$zip"
  seeds=()
  for dir in "$src/fuzz/corpus/$t" "$src/fuzz/regressions/$t"; do
    [ -d "$dir" ] && seeds+=("$dir")
  done
  # Flat (-j): corpus files are named by their contents' hashes, regression
  # inputs by what they catch, so no two collide.
  if [ ${#seeds[@]} -gt 0 ]; then
    find "${seeds[@]}" -type f -print | zip -q -j "$zip" -@
  fi
  if [ -f "$src/fuzz/$t.options" ]; then cp "$src/fuzz/$t.options" "$OUT/fuzz_$t.options"; fi
  if [ -f "$src/fuzz/$t.dict" ]; then cp "$src/fuzz/$t.dict" "$OUT/fuzz_$t.dict"; fi
done
echo "build.sh: built ${targets[*]/#/fuzz_} into $OUT"
