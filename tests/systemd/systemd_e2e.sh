#!/bin/bash
# kvd under a real systemd, driven through systemctl exactly as
# docs/operations.md (section 2) tells an operator: a minimal Debian 12 root
# (mmdebstrap, cached under the build dir) booted with `systemd-nspawn -b`,
# baton installed into it, the units of tools/systemd/ enabled, then socket
# activation, reloads under load, a failing reload, a restart with the FD
# store, kill -9 of the supervisor, a stray SIGHUP, and a stop with a
# request in flight. Everything runs inside the container's own network
# namespace (its loopback only).
#
# Usage: systemd_e2e.sh BIN_DIR SOURCE_DIR CACHE_DIR
# Needs root and what tools/setup installs (systemd-container, mmdebstrap).
# A missing prerequisite or a machine that cannot boot a container is a
# failure, never a skip. BATON_KEEP_TEST_DIRS=1 keeps the work dir.
set -euo pipefail

BIN=${1:?usage: systemd_e2e.sh BIN_DIR SOURCE_DIR CACHE_DIR}
SRC=${2:?usage: systemd_e2e.sh BIN_DIR SOURCE_DIR CACHE_DIR}
CACHE=${3:?usage: systemd_e2e.sh BIN_DIR SOURCE_DIR CACHE_DIR}
STEP="prerequisites"

die() { echo "FAIL [$STEP]: $*" >&2; exit 1; }
note() { echo "-- $*" >&2; }
step() { STEP=$1; note "$STEP (${SECONDS}s)"; }
# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 0.1
  done
}
expect_eq() { [[ "$2" == "$3" ]] || die "$1: expected '$3', got '$2'"; }

source "$(dirname "$(realpath "$0")")/container.sh"

((EUID == 0)) || die "must run as root (systemd-nspawn, nsenter)"
for tool in systemd-nspawn mmdebstrap nsenter pgrep dpkg apt-cache ldd; do
  command -v "$tool" >/dev/null || die "$tool is missing: run tools/setup (systemd-container, mmdebstrap)"
done
for b in baton kvd baton-load; do [[ -x "$BIN/$b" ]] || die "$BIN/$b is not built"; done
for f in kvd.service kvd.socket kvd.toml; do [[ -f "$SRC/tools/systemd/$f" ]] || die "no tools/systemd/$f in $SRC"; done

WORK=$(mktemp -d /tmp/bt-systemd-XXXXXX)
on_exit() {
  local rc=$?
  if ((rc != 0)) && [[ -n "$CT_PID" ]]; then
    echo "---- journalctl -u kvd (last 60 lines) ----" >&2
    ct journalctl -u kvd.service -u kvd.socket --no-pager -n 60 >&2 || true
  fi
  shutdown_container
  if [[ -n "${BATON_KEEP_TEST_DIRS:-}" ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap on_exit EXIT

step "root"
ROOT=$(cached_root "$CACHE" "$(root_packages "$BIN/baton" "$BIN/kvd" "$BIN/baton-load")")

step "boot"
boot "$ROOT" "$WORK/nspawn.log" --bind-ro="$BIN:/opt/baton-build/bin" \
  --bind-ro="$SRC/tools/systemd:/opt/baton-build/systemd"

# The one step that puts baton into the root: the build's binaries where the
# units expect them. (A Debian package would be a `dpkg -i` here.)
install_baton() {
  ct install -m 0755 /opt/baton-build/bin/baton /opt/baton-build/bin/kvd /opt/baton-build/bin/baton-load \
    /usr/local/bin/
}

# http METHOD PATH [BODY]: one request on its own connection; prints the
# status code, a space, and the body.
http() {
  ct bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 || exit 7
    printf "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" \
      "$1" "$2" "${#3}" "$3" >&3
    tr -d "\r" <&3' _ "$1" "$2" "${3:-}" | awk 'NR == 1 {code = $2} body {print code, $0; code = ""} /^$/ {body = 1}
    END {if (code != "") print code}'
}
main_pid() { ct systemctl show -P MainPID kvd.service; }
kvd_pid() { ct baton status --runtime-dir /run/kvd --json | sed -n 's/.*"incumbent_pid":\([0-9]*\).*/\1/p'; }
status_text() { ct systemctl show -P StatusText kvd.service; }
# expect_status WHAT PATTERN: STATUS= matches the glob soon (systemd reads
# the notification and the reload's exit in either order).
status_matches() { [[ "$(status_text)" == $1 ]]; }
expect_status() {
  local deadline=$((SECONDS + 10))
  until status_matches "$2"; do
    ((SECONDS < deadline)) || die "$1: STATUS= is '$(status_text)', expected '$2'"
    sleep 0.1
  done
}
active() { ct systemctl is-active "$1"; }
revision() { http GET /stats | sed -n 's/.*"revision":\([0-9]*\).*/\1/p'; }
journal_has() {  # journal_has [journalctl args...] -- PATTERN
  local args=()
  while [[ "$1" != "--" ]]; do args+=("$1"); shift; done
  local lines  # (not a pipe into grep -q: under pipefail journalctl's SIGPIPE would count)
  lines=$(ct journalctl -u kvd.service --no-pager -o cat "${args[@]}")
  grep -qE -- "$2" <<<"$lines"
}
# Load in the background inside the container; stop_load ends it (SIGINT:
# it stops issuing requests, reads back every acknowledged write) and
# prints its JSON report.
start_load() {
  ct sh -c '(baton-load --target http://127.0.0.1:8080 --connections 8 --duration 10m --json \
      >/run/load.json 2>/run/load.err & echo $! >/run/load.pid; wait $!; echo $? >/run/load.rc) \
      >/dev/null 2>&1 &'
  wait_for "baton-load to start" 10 ct test -s /run/load.pid
  local r0
  r0=$(revision)
  wait_for "writes from baton-load" 20 test_revision_above "$((r0 + 100))"
}
test_revision_above() { (($(revision) > $1)); }
stop_load() {
  ct sh -c 'kill -INT "$(cat /run/load.pid)"'
  wait_for "baton-load to verify and exit" 90 ct test -s /run/load.rc
  ct cat /run/load.json
  ct rm -f /run/load.pid /run/load.rc /run/load.json /run/load.err
}
# expect_put KEY VALUE: kvd answers "200 <revision>".
expect_put() {
  local got
  got=$(http PUT "/kv/$1" "$2")
  [[ "$got" =~ ^200\ [0-9]+$ ]] || die "PUT /kv/$1: expected '200 <revision>', got '$got'"
}
summary() {
  note "baton-load: $(grep -o '"requests":[0-9]*,"writes_acked":[0-9]*' <<<"$1"), $(grep -o '"errors":{[^}]*}' <<<"$1"), $(grep -o '"lost_writes":[0-9]*,"verify_errors":[0-9]*,"verified":[0-9]*' <<<"$1")"
}
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$2"; }

step "install (docs/operations.md §1-2)"
install_baton
ct install -d /etc/baton
ct install -m 0644 /opt/baton-build/systemd/kvd.toml /etc/baton/kvd.toml
ct baton check-config /etc/baton/kvd.toml >/dev/null || die "baton check-config rejects the shipped kvd.toml"
ct cp /opt/baton-build/systemd/kvd.socket /opt/baton-build/systemd/kvd.service /etc/systemd/system/
ct systemctl daemon-reload
ct systemctl enable --now kvd.socket 2>/dev/null
ct systemctl enable kvd.service 2>/dev/null

step "socket activation"
expect_eq "kvd.service before the first connection" "$(active kvd.service || true)" inactive
expect_put hello world
expect_eq "kvd.service after the first connection" "$(active kvd.service)" active
expect_eq "GET /kv/hello" "$(http GET /kv/hello)" "200 world"
SUP=$(main_pid)
KVD=$(kvd_pid)
[[ "$SUP" -gt 0 && "$KVD" -gt 0 && "$SUP" != "$KVD" ]] || die "MainPID $SUP, kvd pid $KVD"
expect_status "STATUS= once serving" "kvd serving (generation pid $KVD (kvd-dev) is up)"
expect_eq "mode of the data dir" "$(ct stat -c %a /var/lib/kvd)" 700
[[ -z "$(ct find /var/lib/kvd -mindepth 1 -perm /077)" ]] || die "files in /var/lib/kvd readable by others: $(ct ls -l /var/lib/kvd)"
wait_for "kvd's lines under its own name" 10 journal_has -t kvd -- '"event":"kvd\.serving"'
# Priorities: an info line is not a warning.
if journal_has -p warning -- '"event":"(kvd\.serving|child\.hello)"'; then die "info lines filed as warnings"; fi

step "systemctl reload x10 under load"
start_load
for i in $(seq 1 10); do
  ct systemctl reload kvd || die "systemctl reload #$i failed: $(status_text)"
  expect_eq "MainPID after reload #$i" "$(main_pid)" "$SUP"
  NEW=$(kvd_pid)
  [[ "$NEW" != "$KVD" ]] || die "reload #$i: the kvd pid did not change ($KVD)"
  KVD=$NEW
  expect_status "STATUS= after reload #$i" "kvd serving (generation pid $KVD); last handoff committed"
done
REPORT=$(stop_load)
summary "$REPORT"
expect_eq "load errors during reloads" "$(field errors_total "$REPORT")" 0
expect_eq "lost writes during reloads" "$(field lost_writes "$REPORT")" 0
expect_eq "verify errors during reloads" "$(field verify_errors "$REPORT")" 0
[[ "$(field writes_acked "$REPORT")" -gt 0 ]] || die "baton-load acknowledged no writes"

step "a failing reload"
# The configured binary now fails in its begin hook (after the old one
# sealed): the handoff rolls back, the old generation resumes.
ct mv /usr/local/bin/kvd /usr/local/bin/kvd.real
ct sh -c 'printf "#!/bin/sh\nexec /usr/local/bin/kvd.real --fail-begin \"\$@\"\n" >/usr/local/bin/kvd; chmod 0755 /usr/local/bin/kvd'
if ct systemctl reload kvd 2>/dev/null; then die "systemctl reload succeeded with a failing binary"; fi
ct mv -f /usr/local/bin/kvd.real /usr/local/bin/kvd
expect_eq "kvd.service after the failed reload" "$(active kvd.service)" active
expect_eq "MainPID after the failed reload" "$(main_pid)" "$SUP"
expect_eq "kvd pid after the failed reload" "$(kvd_pid)" "$KVD"
expect_status "STATUS= after the failed reload" "kvd serving (generation pid $KVD); last handoff rolled back: *"
expect_eq "GET after the failed reload" "$(http GET /kv/hello)" "200 world"
expect_put after-rollback yes
wait_for "the rolled-back handoff in journalctl -p warning" 10 journal_has -p warning -- '"event":"handoff\.end".*"outcome":"rolled_back"'

step "a stray SIGHUP to kvd"
ct sh -c "kill -HUP $KVD"
wait_for "kvd to log the SIGHUP it ignored" 10 journal_has -t kvd -p warning -- '"event":"kvd\.sighup"'
expect_eq "kvd pid after SIGHUP" "$(kvd_pid)" "$KVD"
expect_eq "GET after SIGHUP" "$(http GET /kv/hello)" "200 world"

step "systemctl kill --kill-whom=main -s HUP (the documented way)"
ct systemctl kill --kill-whom=main -s HUP kvd
upgraded_from() { local p; p=$(kvd_pid); [[ -n "$p" && "$p" != "$1" && "$(status_text)" == *"last handoff committed" ]]; }
wait_for "the SIGHUP upgrade to commit" 30 upgraded_from "$KVD"
[[ "$(kvd_pid)" != "$KVD" ]] || die "SIGHUP to the supervisor did not upgrade"
KVD=$(kvd_pid)
expect_eq "MainPID after the SIGHUP upgrade" "$(main_pid)" "$SUP"

step "systemctl restart under load (FD store)"
start_load
ct systemctl restart kvd
NEWSUP=$(main_pid)
[[ "$NEWSUP" != "$SUP" ]] || die "restart kept the supervisor pid $SUP"
SUP=$NEWSUP
REPORT=$(stop_load)
summary "$REPORT"
expect_eq "connections refused during the restart" "$(field refused "$REPORT")" 0
expect_eq "lost writes during the restart" "$(field lost_writes "$REPORT")" 0
expect_eq "verify errors during the restart" "$(field verify_errors "$REPORT")" 0

step "kill -9 of the supervisor under load"
start_load
ct sh -c "kill -KILL $SUP"
restarted_from() { local p; p=$(main_pid); [[ "$p" != 0 && "$p" != "$1" && "$(active kvd.service)" == active ]]; }
wait_for "systemd to restart the supervisor" 30 restarted_from "$SUP"
SUP=$(main_pid)
serving() { [[ -n "$(kvd_pid)" && "$(status_text)" == "kvd serving"* ]]; }
wait_for "a generation serving after the restart" 30 serving
REPORT=$(stop_load)
summary "$REPORT"
expect_eq "acknowledged writes lost to kill -9" "$(field lost_writes "$REPORT")" 0
expect_eq "verify errors after kill -9" "$(field verify_errors "$REPORT")" 0
expect_eq "GET after kill -9" "$(http GET /kv/hello)" "200 world"
KVD=$(kvd_pid)

step "stopping kvd.service alone: the next connection starts it again"
ct systemctl stop kvd.service 2>/dev/null  # systemctl warns: kvd.socket can still activate it
expect_eq "kvd.service after stop" "$(active kvd.service || true)" inactive
expect_eq "GET with the socket still listening" "$(http GET /kv/hello)" "200 world"
expect_eq "kvd.service after that connection" "$(active kvd.service)" active

step "stop kvd.socket kvd.service with a request in flight"
CURSOR=$(ct journalctl --show-cursor -n 0 -q | sed -n 's/^-- cursor: //p')
# Headers and half the body now; the other half once the stop has begun.
ct bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 || exit 7
  printf "PUT /kv/inflight HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 10\r\n\r\n12345" >&3
  touch /run/inflight.sent
  until [ "$(systemctl show -P ActiveState kvd.service)" = deactivating ]; do sleep 0.05; done
  printf 67890 >&3
  tr -d "\r" <&3 >/run/inflight.out' >/dev/null 2>&1 &
INFLIGHT=$!
wait_for "the in-flight request to be sent" 10 ct test -e /run/inflight.sent
ct systemctl stop kvd.socket kvd.service
wait "$INFLIGHT" || die "the in-flight client failed"
[[ "$(ct head -n 1 /run/inflight.out)" == "HTTP/1.1 200"* ]] || die "the in-flight request got: $(ct cat /run/inflight.out)"
expect_eq "kvd.service after stop" "$(active kvd.service || true)" inactive
[[ "$(http GET /kv/hello 2>/dev/null || true)" == "" ]] || die "still answering after kvd.socket stopped"
if ct journalctl -u kvd.service --after-cursor="$CURSOR" -p warning -o cat --no-pager | grep -E '.'; then
  die "a clean stop logged warnings (above)"
fi

step "the data survives (start again)"
ct systemctl start kvd.socket
expect_eq "GET /kv/inflight after the stop" "$(http GET /kv/inflight)" "200 1234567890"
expect_eq "GET /kv/after-rollback" "$(http GET /kv/after-rollback)" "200 yes"

STEP="done"
note "passed in ${SECONDS}s"
