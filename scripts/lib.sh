# Shared by the scripts in scripts/: dependency installation and logging.
# shellcheck shell=bash

# Let ccache reuse objects across clones of the repository (CI clones afresh).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 2; }

# Debian packages the build and the tests need.
MEMLINK_PACKAGES=(cmake ninja-build g++ clang ccache libgtest-dev libbenchmark-dev
                  librapidcheck-dev libcli11-dev nlohmann-json3-dev libfmt-dev
                  libboost-dev libzmq3-dev python3-matplotlib iceoryx libiceoryx-posh-dev)

# What scripts/test-windows adds: the mingw-w64 cross compiler (posix
# threads), Wine, and GoogleTest's sources (to build it for Windows).
MEMLINK_WINDOWS_PACKAGES=(cmake ninja-build ccache g++-mingw-w64-x86-64-posix wine64 googletest)

# Installs whichever of the given packages are missing (apt-get, as root or via sudo).
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures (once) and builds a CMake preset.
build_preset() {
  local preset=$1
  if [ ! -f "build/$preset/build.ninja" ]; then
    cmake --preset "$preset" >/dev/null || die "configure failed for preset $preset"
  fi
  cmake --build --preset "$preset" || die "build failed for preset $preset"
}
