#!/bin/sh
# The example drivers build alone: each copied out of the tree, configured
# and built as a project of its own (no path into this repository), then
# asked for its version. Usage: standalone_drivers_test.sh SOURCE_DIR NAME...
set -u
src=$1; shift
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
status=0
for name in "$@"; do
  cp -r "$src/conformance/drivers/$name" "$work/$name"
  if ! cmake -S "$work/$name" -B "$work/$name-build" >"$work/$name.log" 2>&1 ||
     ! cmake --build "$work/$name-build" -j1 >>"$work/$name.log" 2>&1; then
    echo "FAIL: $name does not build alone from a copy:"; tail -20 "$work/$name.log"; status=1; continue
  fi
  exe=$(find "$work/$name-build" -maxdepth 1 -type f -name 'memlink-driver-*' -perm -u+x | head -1)
  if [ -z "$exe" ] || ! "$exe" --version | grep -q "driver protocol 2"; then
    echo "FAIL: $name built alone, but its --version does not name driver protocol 2"; status=1; continue
  fi
  echo "ok: $name builds alone from a copy ($("$exe" --version))"
done
exit $status
