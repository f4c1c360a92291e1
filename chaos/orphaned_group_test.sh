#!/bin/bash
# The chaos runner survives the end of whatever started it, while it holds a
# daemon stopped.
#
# When the shell or CI step that started a run ends, the run's process
# group can be orphaned (no member's parent left in another group of its
# session). POSIX then has the kernel send SIGHUP and SIGCONT to every
# member of that group if one of them is stopped: a daemon the runner holds
# stopped (its "stop" fault) died of SIGHUP, and the run blamed the
# transport ("fence: daemon 25 did not exit as fenced", status 1), in a
# 10-minute run started in the background. The runner keeps each process it
# attacks in a process group of its own, whose link (the runner) lives as
# long as the run, so no outside exit can reach them.
#
# Deterministic: the crash walk's one stop holds the daemon for 1.5
# heartbeat timeouts and until its successor serves; this test orphans the
# runner's group the moment it sees a stopped child, then checks the run's
# verdict. If it never saw a stopped child (nothing to judge), it says so
# and returns 77 (ctest: skipped), never PASS.
#
# usage: orphaned_group_test.sh MEMLINK-CHAOS [ARGS...]
#   ARGS: memlink-chaos's run (default: --crash-walk --seed 1); through a
#   driver, e.g. --driver build/release/memlink-shm-driver --duration 10s
set -u
chaos=${1:?usage: orphaned_group_test.sh MEMLINK-CHAOS [ARGS...]}
shift
[ $# -gt 0 ] || set -- --crash-walk --seed 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A new session, so that this test decides which groups exist: bash (the
# session's leader, group G0) runs the link below as a job of its own
# (set -m: group G1). The link starts the runner in G1 and exits once the
# runner holds a child stopped: the runner's parent leaves the session, G1
# is orphaned with that child in it.
# shellcheck disable=SC2016  # the inner script expands its own arguments
setsid bash -c '
  set -m
  chaos=$1 work=$2
  shift 2
  (
    "$chaos" --json "$work/walk.json" "$@" > "$work/log" 2>&1 &
    runner=$!
    echo "$runner" > "$work/runner.pid"
    while [ -d "/proc/$runner" ]; do
      for child in $(cat "/proc/$runner/task/$runner/children" 2>/dev/null); do
        # /proc/PID/stat: "pid (comm) state ...": the state after the last ")".
        stat=$(cat "/proc/$child/stat" 2>/dev/null) || continue
        state=${stat##*) }
        if [ "${state%% *}" = T ]; then
          echo "$child" > "$work/stopped.pid"
          exit 0   # the link leaves while the child is stopped
        fi
      done
      sleep 0.005
    done
  ) &
  wait
' orphaner "$chaos" "$work" "$@" < /dev/null > /dev/null 2>&1

runner=$(cat "$work/runner.pid" 2>/dev/null) || { echo "FAIL: the runner did not start"; exit 1; }
# The runner is no child of this shell now: wait for it to go (bounded by
# its own hang guard; the crash walk takes a few seconds).
for _ in $(seq 1 6000); do
  [ -d "/proc/$runner" ] || break
  sleep 0.05
done
if [ -d "/proc/$runner" ]; then
  echo "FAIL: memlink-chaos (pid $runner) still runs after 300 s"
  kill -9 "$runner"
  exit 1
fi
if [ ! -s "$work/walk.json" ]; then
  echo "FAIL: the runner left no verdict (it died: the hangup reached it too?); its log:"
  cat "$work/log"
  exit 1
fi
if [ ! -s "$work/stopped.pid" ]; then
  echo "SKIP: the runner finished before this test saw a stopped child; nothing was judged"
  exit 77
fi
if ! grep -q '"ok": *true' "$work/walk.json"; then
  echo "FAIL: with its group orphaned while child $(cat "$work/stopped.pid") was stopped, the run failed:"
  cat "$work/log"
  exit 1
fi
echo "PASS: the run's group was orphaned while child $(cat "$work/stopped.pid") was stopped; the run passed"
