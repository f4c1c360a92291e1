#!/usr/bin/env bash
# The memlink-shm tool across processes, as a user runs it:
#   daemon in the background, client round trips checked, a second daemon
#   refused while the first lives, kill -9, cleanup of what it left.
# usage: tool_smoke.sh TOOL [RUNNER...]
# RUNNER runs TOOL (scripts/wine-run for the Windows build; empty on Linux).
# The same script checks the Linux build and, under Wine, the Windows one.
set -uo pipefail
tool=$1
shift
run=("$@")
name=memlink-tool-smoke-$$
fail() { echo "tool_smoke: FAIL: $*" >&2; [ -n "${daemon_pid:-}" ] && kill -9 "$daemon_pid" 2>/dev/null; exit 1; }
step() { echo "tool_smoke: $*"; }

step "--help"
"${run[@]}" "$tool" --help >/dev/null || fail "--help exited non-zero"

step "daemon $name"
"${run[@]}" "$tool" daemon "$name" --quiet &
daemon_pid=$!
for _ in $(seq 300); do
  "${run[@]}" "$tool" inspect "$name" --json >/dev/null 2>&1 && break
  kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon exited at start"
  sleep 0.1
done
"${run[@]}" "$tool" inspect "$name" --json >/dev/null || fail "inspect never saw the segment"

step "client: 2000 checked round trips"
out=$("${run[@]}" "$tool" client "$name" --count 2000 --payload 64 --json - 2>&1) || fail "client exited non-zero: $out"
grep -q '"matched": *2000' <<<"$out" && grep -q '"ok": *true' <<<"$out" || fail "client JSON lacks \"matched\": 2000 and \"ok\": true: $out"

step "a second daemon is refused while the first lives"
if second=$("${run[@]}" "$tool" daemon "$name" --quiet 2>&1); then
  fail "a second daemon started: $second"
fi
grep -qi "running" <<<"$second" || fail "the refusal does not say a daemon is running: $second"

step "kill -9 the daemon, then cleanup"
kill -9 "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=
cleaned=0
for _ in $(seq 100); do  # the OS drops the lock as the process goes
  if "${run[@]}" "$tool" cleanup "$name" >/dev/null 2>&1; then cleaned=1; break; fi
  sleep 0.1
done
[ $cleaned = 1 ] || fail "cleanup never succeeded after the daemon was killed"
if "${run[@]}" "$tool" inspect "$name" >/dev/null 2>&1; then fail "the segment is still there after cleanup"; fi
step "ok"
