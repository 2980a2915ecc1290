#!/bin/bash
# `baton supervise` as PID 1 of its own PID namespace (a container's
# entrypoint), with a daemon that leaves an orphan behind at every start
# (kvd --leave-orphan-ms: a double-forked helper that exits soon after).
# Through 20 upgrades every orphan must be reaped (no zombie left under
# baton), every upgrade must commit (the reaper never takes the exit status
# of a generation, which the supervisor reaps through its pidfd), and
# SIGTERM must drain and exit 0.
#
# Usage: pid1_test.sh BIN_DIR   (as root: unshare --pid)
set -euo pipefail

BIN=${1:?usage: pid1_test.sh BIN_DIR}
STEP="prerequisites"
die() { echo "FAIL [$STEP]: $*" >&2; [[ -f "${WORK:-}/supervise.log" ]] && tail -n 30 "$WORK/supervise.log" >&2; exit 1; }
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 0.05
  done
}
((EUID == 0)) || die "must run as root (unshare --pid)"
command -v unshare >/dev/null || die "unshare is missing (util-linux)"

WORK=$(mktemp -d /tmp/bt-pid1-XXXXXX)
UNSHARE=""
on_exit() {
  [[ -n "$UNSHARE" ]] && kill -KILL "$UNSHARE" 2>/dev/null
  if [[ -n "${BATON_KEEP_TEST_DIRS:-}" ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap on_exit EXIT

# The children of host pid $1, one "pid state" per line.
children() {
  local f ppid_state
  for f in /proc/[0-9]*/stat; do
    ppid_state=$(sed -n 's/.*) \(.\) \([0-9]*\) .*/\2 \1/p' "$f" 2>/dev/null) || continue
    [[ "${ppid_state%% *}" == "$1" ]] && echo "$(basename "$(dirname "$f")") ${ppid_state#* }"
  done
  return 0
}
zombies() { children "$1" | awk '$2 == "Z"' | wc -l; }
# The supervisor counts the generation as serving (it said Hello): status
# answers earlier, while it is still "starting", and an upgrade started then
# is refused.
serving() { [[ "$("$BIN/baton" status --runtime-dir "$WORK/run" --json)" == *'"state":"serving"'* ]]; }
# Only the serving generation is left under baton: every orphan is gone.
only_generation_left() { [[ "$(children "$1" | wc -l)" == 1 ]]; }

STEP="start"
mkdir -p "$WORK/data"
unshare --pid --fork --mount-proc "$BIN/baton" supervise --listen "http=unix:$WORK/http.sock" \
  --data-dir "$WORK/data" --runtime-dir "$WORK/run" -- "$BIN/kvd" --leave-orphan-ms 100 \
  >"$WORK/supervise.log" 2>&1 &
UNSHARE=$!
wait_for "baton to start in the namespace" 10 pgrep -P "$UNSHARE"
BATON=$(pgrep -P "$UNSHARE")
[[ "$(sed -n 's/^NSpid:.*\t//p' "/proc/$BATON/status")" == 1 ]] || die "baton is not PID 1 of its namespace"
wait_for "the first generation" 20 serving

STEP="upgrades"
for i in $(seq 1 20); do
  out=$("$BIN/baton" upgrade --runtime-dir "$WORK/run" --plain 2>&1) || die "upgrade #$i did not commit: $out"
done
wait_for "every orphan to be reaped ($(zombies "$BATON") zombies under baton now)" 10 only_generation_left "$BATON"
[[ "$(zombies "$BATON")" == 0 ]] || die "zombies under baton"
! grep -q 'vanished' "$WORK/supervise.log" || die "a generation's exit status was taken from the supervisor"
# One orphan per generation start (the first and 20 successors), each
# reaped by baton: the knob did leave them, and to baton.
ORPHANS=$(grep -o '"event":"reaper.reaped".*"count":[0-9]*' "$WORK/supervise.log" | sed 's/.*"count"://' |
  awk '{n += $1} END {print n + 0}')
((ORPHANS >= 21)) || die "baton reaped $ORPHANS orphans, expected at least 21"

STEP="SIGTERM to PID 1"
kill -TERM "$BATON"
rc=0
wait "$UNSHARE" || rc=$?
UNSHARE=""
((rc == 0)) || die "baton as PID 1 exited with $rc after SIGTERM"
grep -q '"event":"supervisor.stop"' "$WORK/supervise.log" || die "no supervisor.stop in the log"
STEP="done"
echo "passed: 20 upgrades, $ORPHANS orphans reaped, no zombie"
