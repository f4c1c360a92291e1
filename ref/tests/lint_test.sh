#!/usr/bin/env bash
# scripts/lint catches what it is for, in a scratch repository: a changed
# line clang-format would write differently, and a use after move that
# clang-tidy's check set reports; and passes both once they are fixed.
# usage: ref/tests/lint_test.sh SOURCE_DIR WORK_DIR
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR WORK_DIR" >&2; exit 2; }
src=$1 work=$2
rm -rf "$work" && mkdir -p "$work/build" && cd "$work" || exit 2
git init -q . && git config user.email t@t && git config user.name t
cp "$src/.clang-format" "$src/.clang-tidy" .
cat >ok.cpp <<'CPP'
#include <string>
#include <utility>

int length(std::string s) { return static_cast<int>(s.size()); }
CPP
git add -A && git commit -qm base
failures=0
expect() {  # expect STATUS WHAT ARGS...
  local want=$1 what=$2; shift 2
  out=$("$src/scripts/lint" -C "$work" --base HEAD "$@" 2>&1); got=$?
  if [ "$got" -ne "$want" ]; then echo "FAIL: $what: exit $got, not $want"; echo "$out"; failures=$((failures + 1)); fi
}
# 1. A badly formatted changed line.
printf 'int   twice( int x ){return x*2;}\n' >>ok.cpp
expect 1 "a misformatted line" --no-tidy
[[ $out == *"FAILED format"* && $out == *"int twice(int x) { return x * 2; }"* ]] ||
  { echo "FAIL: the report names neither the failure nor the line clang-format wants"; failures=$((failures + 1)); }
git checkout -q ok.cpp
printf 'int twice(int x) { return x * 2; }\n' >>ok.cpp
expect 0 "a well formatted line" --no-tidy
# 2. A use after move, in a file the compilation database knows.
cat >moved.cpp <<'CPP'
#include <string>
#include <utility>

int use(std::string s) {
  std::string t = std::move(s);
  return static_cast<int>(s.size() + t.size());
}
CPP
printf '[{"directory": "%s", "file": "%s/moved.cpp", "command": "clang++ -std=c++20 -c moved.cpp"}]\n' "$work" "$work" \
  >build/compile_commands.json
git add moved.cpp
expect 1 "a use after move" --build build
[[ $out == *"bugprone-use-after-move"* ]] || { echo "FAIL: the report does not name bugprone-use-after-move"; echo "$out"; failures=$((failures + 1)); }
sed -i 's/s.size() + t.size()/t.size()/' moved.cpp
expect 0 "the same file fixed" --build build
expect 2 "a nonsense flag" --no-such-flag
echo "lint test: $failures failures"
[ $failures -eq 0 ]
