# Shared by the scripts in scripts/: dependency installation and logging.
# shellcheck shell=bash

# Let ccache reuse objects across clones of the repository (CI clones afresh).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 2; }

# Debian packages, by what needs them: each script installs only its own.
MEMLINK_BUILD_PACKAGES=(cmake ninja-build g++ ccache)
# The suite, the chaos runner and the reference driver (scripts/conformance, scripts/chaos).
MEMLINK_CONFORMANCE_PACKAGES=("${MEMLINK_BUILD_PACKAGES[@]}" python3 librapidcheck-dev libcli11-dev nlohmann-json3-dev)
# The benchmarks and their peers (scripts/bench): Boost.Interprocess, ZeroMQ, iceoryx.
MEMLINK_BENCH_PACKAGES=("${MEMLINK_CONFORMANCE_PACKAGES[@]}" libgtest-dev libbenchmark-dev libboost-dev libzmq3-dev
                        python3-matplotlib iceoryx libiceoryx-posh-dev)
# Everything scripts/test builds and runs (every preset, every test).
MEMLINK_PACKAGES=("${MEMLINK_BENCH_PACKAGES[@]}" clang libfmt-dev pkg-config clang-format-14 clang-tidy-14 python3-yaml)

# What scripts/test-windows adds: the mingw-w64 cross compiler (posix
# threads), Wine, and GoogleTest's sources (to build it for Windows).
MEMLINK_WINDOWS_PACKAGES=(cmake ninja-build ccache g++-mingw-w64-x86-64-posix wine64 googletest)

# What scripts/test-aarch64 adds: the aarch64 cross compiler, qemu-user, and
# Debian's arm64 GoogleTest and RapidCheck (multiarch; the script adds the
# arm64 architecture to dpkg first), plus what the native runner needs.
MEMLINK_AARCH64_PACKAGES=("${MEMLINK_CONFORMANCE_PACKAGES[@]}" g++-aarch64-linux-gnu qemu-user
                          libgtest-dev:arm64 librapidcheck-dev:arm64)

# The release version (ref/memlink/shm/version.hpp), for every script's --version.
memlink_version() { sed -n 's/^#define MEMLINK_SHM_VERSION "\(.*\)"$/\1/p' ref/memlink/shm/version.hpp; }
print_version() { echo "scripts/$(basename "$0") $(memlink_version)"; }

# Installs whichever of the given packages are missing (apt-get, as root or
# via sudo). Off Debian (no dpkg-query) or with MEMLINK_NO_APT=1 it installs
# nothing and says so: CMake then names whatever is really missing.
ensure_packages() {
  if [ "${MEMLINK_NO_APT:-0}" = 1 ] || ! command -v dpkg-query >/dev/null; then
    log "not installing packages (${MEMLINK_NO_APT:+MEMLINK_NO_APT=1}${MEMLINK_NO_APT:-no dpkg-query: not Debian}); this needs the equivalents of: $*"
    return 0
  fi
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]} (or set MEMLINK_NO_APT=1 if they are installed another way)"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The preset a script that runs the suite or the chaos runner builds in: the
# developer's release tree if it is there, else the lean "conformance" preset
# (no benchmarks, so no Boost, ZeroMQ or iceoryx needed).
suite_preset() {
  if [ -f build/release/build.ninja ]; then echo release; else echo conformance; fi
}

# Builds those of the given targets the preset's configuration has (an
# optional one, such as the Boost driver without Boost, is left out).
build_targets() {
  local preset=$1; shift
  local present=()
  for t in "$@"; do grep -q "^build $t:" "build/$preset/build.ninja" && present+=("$t"); done
  cmake --build --preset "$preset" --target "${present[@]}" >/dev/null || die "build failed (run: cmake --build --preset $preset)"
}

# Configures a CMake preset once. MEMLINK_CMAKE_ARGS (e.g. -DMEMLINK_WERROR=ON, from scripts/test --werror)
# are added to the configure step, which then runs even on a configured tree.
configure_preset() {
  local preset=$1
  if [ ! -f "build/$preset/build.ninja" ] || [ -n "${MEMLINK_CMAKE_ARGS:-}" ]; then
    # shellcheck disable=SC2086
    cmake --preset "$preset" ${MEMLINK_CMAKE_ARGS:-} >/dev/null || die "configure failed for preset $preset"
  fi
}

# Configures (see above) and builds a CMake preset.
build_preset() {
  local preset=$1
  configure_preset "$preset"
  cmake --build --preset "$preset" || die "build failed for preset $preset"
}
