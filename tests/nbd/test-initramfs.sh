#!/bin/bash
# SPDX-License-Identifier: MIT
# vhd-nbd --initramfs, as the nbd handoff's initramfs starts it (issue #8):
# returns once listening, with the pidfile written and the process
# hardened (memory locked, oom_score_adj, argv[0] '@'); ignores SIGTERM,
# SIGINT and SIGHUP and handshake-only probes; serves reads and writes;
# exits 0 once its last client is gone (or on SIGUSR1), leaving the image
# clean.  The kernel's nbd driver is not used here (the boot suite does).
. "$(dirname "$0")/../functions.sh"
requires nbdinfo
requires nbdcopy
PY=/usr/bin/python3
REAPER=$(cd "$(dirname "$0")" && pwd)/reaper.py

# Does this process hold CAP_SYS_RESOURCE (bit 24)?  Needed for
# oom_score_adj -1000 and PR_SET_IO_FLUSHER; containers often drop it.
cap_eff=$(sed -n 's/^CapEff:\t//p' /proc/self/status)
if (( (16#$cap_eff >> 24) & 1 )); then has_sys_resource=1; else has_sys_resource=0; fi

# reaped_status OUT PID: wait (20 s) until the reaper saw PID exit; print its status.
reaped_status() {
	for _ in $(seq 1 200); do
		st=$(sed -n "s/^reaped $2 //p" "$1")
		[ -n "$st" ] && { echo "$st"; return 0; }
		sleep 0.1
	done
	echo "timeout"
}
# Every test daemon is SIGKILLed at exit if a failure left it running.
DAEMONS=""
kill_daemons() { for p in $DAEMONS; do kill -KILL "$p" 2>/dev/null || true; done; }
on_exit kill_daemons

vhdtool create -t dynamic "$T/root.vhd" 1G >/dev/null
vhdtool create -t dynamic "$T/other.vhd" 64M >/dev/null
D=$(mktemp -d /tmp/nbdi.XXXXXX)
rm_sockdir() { rm -rf "$D"; }
on_exit rm_sockdir
SOCK=$D/s
URI="nbd+unix:///root?socket=$SOCK"

# ---- refusals: said before anything forks -----------------------------------
expect_error 'exactly one export' "$VHDNBD" --initramfs --socket "$SOCK" \
	--export root="$T/root.vhd" --export b="$T/other.vhd"
expect_error 'needs --socket' "$VHDNBD" --initramfs --export root="$T/root.vhd"
expect_error 'no --snapshot' "$VHDNBD" --initramfs --snapshot --socket "$SOCK" --export root="$T/root.vhd"
expect_error 'no TLS' "$VHDNBD" --initramfs --tls=off --socket "$SOCK" --export root="$T/root.vhd"
expect_error 'missing.vhd' "$VHDNBD" --initramfs --socket "$SOCK" --export root="$T/missing.vhd"
expect_error "--log $T/no/log" "$VHDNBD" --initramfs --log "$T/no/log" --socket "$SOCK" \
	--export root="$T/root.vhd"
[ ! -e "$SOCK" ] || fail "a refused start left a socket"
# A failure in the forked child (the pidfile cannot be written) still
# reaches the caller: non-zero, with the message.
expect_error "$T/no/pid" "$VHDNBD" --initramfs --socket "$SOCK" --pidfile "$T/no/pid" \
	--export root="$T/root.vhd"
vhdtool check "$T/root.vhd" >/dev/null || fail "a refused start changed the image"
rm -f "$SOCK"

# ---- started as the initramfs starts it ---------------------------------------
$PY "$REAPER" "$T/reaped" "$SOCK" "$D/pid" -- \
	bash -c 'exec -a @vhd-nbd "$0" "$@"' "$VHDNBD" --initramfs --socket "$SOCK" \
	--pidfile "$D/pid" --export root="$T/root.vhd" 2>"$T/start.err" &
for _ in $(seq 1 200); do grep -q '^parent ' "$T/reaped" 2>/dev/null && break; sleep 0.05; done
grep -qx 'parent 0' "$T/reaped" || { cat "$T/reaped" "$T/start.err" >&2; fail "--initramfs start did not return 0"; }
grep -qx "exists $SOCK 1" "$T/reaped" || fail "the parent returned before the socket existed"
grep -qx "exists $D/pid 1" "$T/reaped" || fail "the parent returned before the pidfile existed"
PID=$(cat "$D/pid")
DAEMONS="$DAEMONS $PID"
kill -0 "$PID" || fail "no server process $PID"
# Detached: its own session; stdin, stdout and stderr on /dev/null.
sid=$(awk '{print $6}' "/proc/$PID/stat")
[ "$sid" = "$PID" ] || fail "server is not a session leader (session $sid)"
for fd in 0 1 2; do
	[ "$(readlink "/proc/$PID/fd/$fd")" = /dev/null ] || fail "fd $fd is $(readlink "/proc/$PID/fd/$fd"), not /dev/null"
done
# Hardened before it reported ready.
argv0=$(tr '\0' '\n' <"/proc/$PID/cmdline" | head -1)
[ "$argv0" = "@vhd-nbd" ] || fail "argv[0] is '$argv0', not @vhd-nbd"
vmlck=$(awk '/^VmLck:/ {print $2}' "/proc/$PID/status")
# ASan intercepts mlockall and makes it do nothing (its shadow memory
# could not be locked): the plain build checks the lock.
[ "${SANITIZED:-0}" = 1 ] || [ "$vmlck" -gt 0 ] || fail "VmLck is $vmlck kB: memory not locked"
if [ $has_sys_resource = 1 ]; then
	[ "$(cat "/proc/$PID/oom_score_adj")" = -1000 ] || fail "oom_score_adj is $(cat "/proc/$PID/oom_score_adj")"
	! grep -q warning "$T/start.err" || { cat "$T/start.err" >&2; fail "warnings with CAP_SYS_RESOURCE"; }
else
	# Without the capability the kernel refuses both: warned, not fatal.
	grep -q 'warning: /proc/self/oom_score_adj' "$T/start.err" || fail "no oom_score_adj warning"
	grep -q 'warning: PR_SET_IO_FLUSHER' "$T/start.err" || fail "no PR_SET_IO_FLUSHER warning"
	echo "note: no CAP_SYS_RESOURCE here: oom_score_adj and PR_SET_IO_FLUSHER checked as warnings"
fi

# The shutdown's kill passes and the session's end do not stop it.
for sig in TERM INT HUP; do
	kill -$sig "$PID"
	sleep 0.2
	kill -0 "$PID" 2>/dev/null || fail "SIG$sig stopped the --initramfs server"
done
# Neither does a probe that never reaches the transmission phase.
nbdinfo --list "nbd+unix://?socket=$SOCK" >"$T/list" || fail "nbdinfo --list failed"
grep -q 'export="root"' "$T/list" || fail "export root not listed"
sleep 0.3
kill -0 "$PID" 2>/dev/null || fail "a listing client stopped the server"

# A client that holds the disk the whole time, as the kernel does; others
# come and go meanwhile.
$PY - "$URI" "$T/release" <<'PY' &
import os, sys, time
import nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
h.shutdown()
PY
holder=$!
# Writes and reads, through nbdcopy: a sparse 1 GiB source with data runs.
truncate -s 1G "$T/src.raw"
put_data "$T/src.raw" a 0 1048576
put_data "$T/src.raw" b 536870912 3145728
put_data "$T/src.raw" c 1073676288 65536
nbdcopy "$T/src.raw" "$URI" || fail "nbdcopy to the server failed"
nbdcopy "$URI" "$T/back.raw" || fail "nbdcopy from the server failed"
cmp "$T/src.raw" "$T/back.raw" || fail "read back differs from what was written"
kill -0 "$PID" 2>/dev/null || fail "server exited while a client still held the disk"
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status")
echo "server peak RSS after nbdcopy of 1 GiB both ways: $hwm kB (VmLck $(awk '/^VmLck:/ {print $2}' "/proc/$PID/status") kB)"
[ "${SANITIZED:-0}" = 1 ] || [ "$hwm" -lt 65536 ] || fail "peak RSS $hwm kB is not under 64 MiB"
# The last client leaves: the server flushes, closes the image and exits 0.
touch "$T/release"
wait "$holder" || fail "holding client failed"
st=$(reaped_status "$T/reaped" "$PID")
[ "$st" = 0 ] || fail "server exit status $st after its last client left, expected 0"
[ ! -e "$D/pid" ] || fail "pidfile left behind"
[ ! -e "$SOCK" ] || fail "socket left behind"
vhdtool check "$T/root.vhd" >/dev/null || fail "image not clean after the server exited"
vhdtool convert -O raw "$T/root.vhd" "$T/final.raw" >/dev/null
cmp "$T/src.raw" "$T/final.raw" || fail "image does not hold what was written"

# ---- read-only, a plain start (argv[0] marked by the server), --log, SIGUSR1 ----
: >"$T/reaped2"
$PY "$REAPER" "$T/reaped2" -- "$VHDNBD" --initramfs -r --log "$T/log" --socket "$SOCK" \
	--pidfile "$D/pid" --export root="$T/root.vhd" 2>"$T/start2.err" &
for _ in $(seq 1 200); do grep -q '^parent ' "$T/reaped2" 2>/dev/null && break; sleep 0.05; done
grep -qx 'parent 0' "$T/reaped2" || { cat "$T/reaped2" "$T/start2.err" >&2; fail "read-only start failed"; }
PID=$(cat "$D/pid")
DAEMONS="$DAEMONS $PID"
argv0=$(tr '\0' '\n' <"/proc/$PID/cmdline" | head -1)
[ "${argv0:0:1}" = @ ] || fail "argv[0] '$argv0' does not begin with @"
[ "$(readlink "/proc/$PID/fd/2")" = "$T/log" ] || fail "stderr is not the --log file"
nbdinfo --list "nbd+unix://?socket=$SOCK" >/dev/null
kill -TERM "$PID"
sleep 0.2
kill -0 "$PID" 2>/dev/null || fail "SIGTERM stopped the read-only server"
kill -USR1 "$PID"
st=$(reaped_status "$T/reaped2" "$PID")
[ "$st" = 0 ] || fail "exit status $st on SIGUSR1, expected 0"
vhdtool check "$T/root.vhd" >/dev/null || fail "image not clean after SIGUSR1"
cmp "$T/src.raw" <(vhdtool convert -O raw "$T/root.vhd" - 2>/dev/null) || fail "read-only run changed the image"
echo "ok"
