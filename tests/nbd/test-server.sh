#!/bin/bash
# SPDX-License-Identifier: MIT
# The command line and the process: usage errors, --snapshot, --pidfile,
# --daemon, SIGTERM with clients attached, the connection limit, the
# writer's lock against a second server.
. "$(dirname "$0")/../functions.sh"
requires nbdinfo
requires qemu-io

vhdtool create "$T/d.vhd" 16M >/dev/null
expect_error "either one FILE or --export" "$VHDNBD" --socket "$T/x" --export a="$T/d.vhd" "$T/d.vhd"
expect_error "either one FILE or --export" "$VHDNBD" --socket "$T/x"
expect_error "exclude each other" "$VHDNBD" --socket "$T/x" --port 10000 "$T/d.vhd"
expect_error "NAME=FILE" "$VHDNBD" --socket "$T/x" --export nofile
expect_error "given twice" "$VHDNBD" --socket "$T/x" --export a="$T/d.vhd" --export a="$T/d.vhd"
expect_error "not found|No such file" "$VHDNBD" --socket "$T/x" "$T/missing.vhd"
expect_error "invalid port" "$VHDNBD" --port 99999 "$T/d.vhd"
head -c 4096 /dev/zero >"$T/junk.vhd"
expect_error "not a VHD" "$VHDNBD" --socket "$T/x" "$T/junk.vhd"
[ ! -e "$T/x" ] || fail "a refused start left a socket"

# --snapshot: writes are seen during the session, the base never changes,
# and nothing is left in TMPDIR.
mkdir "$T/tmp"
sum=$(digest "$T/d.vhd")
TMPDIR=$T/tmp start_nbd --snapshot "$T/d.vhd"
qemu-io -f raw -c 'write -P 0x42 0 1M' "$URI" >/dev/null
qemu-io -f raw -c 'read -P 0x42 0 1M' "$URI" | grep -q 'read 1048576' || fail "snapshot write not visible"
[ -z "$(ls "$T/tmp")" ] || fail "snapshot file visible in TMPDIR while serving"
stop_nbd || fail "snapshot server did not stop cleanly"
[ "$(digest "$T/d.vhd")" = "$sum" ] || fail "--snapshot changed the base image"
[ -z "$(ls "$T/tmp")" ] || fail "snapshot left files behind"

# --pidfile and SIGTERM while a client is connected and idle.
start_nbd --pidfile "$T/pid" "$T/d.vhd"
[ "$(cat "$T/pid")" = "$NBD_PID" ] || fail "pidfile does not hold the server's pid"
/usr/bin/python3 - "$SOCK" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(18); time.sleep(30)
PY
idle=$!
sleep 0.3
start=$(date +%s)
stop_nbd || fail "server did not exit 0 on SIGTERM with a client attached"
[ $(( $(date +%s) - start )) -lt 10 ] || fail "SIGTERM took too long"
[ ! -e "$T/pid" ] || fail "pidfile left behind"
kill $idle 2>/dev/null || true

# --daemon: returns once listening; SIGTERM via the pidfile stops it.
D=$(mktemp -d /tmp/nbdd.XXXXXX)
"$VHDNBD" --daemon --socket "$D/s" --pidfile "$D/pid" "$T/d.vhd" || fail "--daemon failed"
[ -S "$D/s" ] || fail "--daemon returned before listening"
nbdinfo "nbd+unix:///?socket=$D/s" >/dev/null || fail "daemon does not serve"
kill -TERM "$(cat "$D/pid")"
for _ in $(seq 1 100); do [ -e "$D/pid" ] || break; sleep 0.1; done
[ ! -e "$D/pid" ] || fail "daemon did not stop"
rm -rf "$D"

# The writer's lock: a second server on the same image is refused; readers share.
start_nbd "$T/d.vhd"
expect_error "another process has the image open for writing" "$VHDNBD" --socket "$T/y" "$T/d.vhd"
vhdtool info "$T/d.vhd" >/dev/null || fail "info while the image is served"
stop_nbd || fail "server did not stop cleanly"

# Connection limit: the third client is turned away, the first two served.
start_nbd --max-connections 2 "$T/d.vhd"
/usr/bin/python3 - "$SOCK" <<'PY' || fail "connection limit"
import socket, sys
def hello(path):
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(path)
    return s, s.recv(18)
a, ha = hello(sys.argv[1]); b, hb = hello(sys.argv[1])
assert ha[:8] == b"NBDMAGIC" and hb[:8] == b"NBDMAGIC"
c, hc = hello(sys.argv[1])
assert hc == b"", "third connection was served"
a.close()
import time; time.sleep(0.3)
d, hd = hello(sys.argv[1])
assert hd[:8] == b"NBDMAGIC", "slot not freed"
PY
stop_nbd || fail "server did not stop cleanly"
expect_status 0 vhdtool check "$T/d.vhd"

# Clients that queue big reads and never read the replies hold at most
# their own share of memory: another client is served at once.
D=$(cd "$(dirname "$0")" && pwd)
vhdtool create "$T/big.vhd" 64M >/dev/null
start_nbd "$T/big.vhd"
coproc H { /usr/bin/python3 "$D/stall_clients.py" "$SOCK" budget 2>&1; }
hogs=$H_PID
read -r line <&"${H[0]}" || true
case $line in "served a third client"*) ;; *) fail "stalled clients starved another: $line" ;; esac
# ... and SIGTERM still ends the server (after the grace time) with exit 0.
start=$(date +%s)
stop_nbd || fail "server did not stop with clients that do not read"
[ $(( $(date +%s) - start )) -lt 20 ] || fail "SIGTERM took more than 20 s"
kill "$hogs" 2>/dev/null || true

# SIGTERM right after a burst of writes: every write already sent is done
# and answered before the server exits.
start_nbd "$T/big.vhd"
coproc W { /usr/bin/python3 "$D/stall_clients.py" "$SOCK" pipeline; }
read -r line <&"${W[0]}"
[ "$line" = ready ] || fail "pipeline client: $line"
kill -TERM "$NBD_PID"
read -r line <&"${W[0]}" || true
[ "$line" = "all 32 writes answered" ] || fail "writes sent before SIGTERM were dropped: $line"
wait "$W_PID" || fail "pipeline client failed"
stop_nbd || fail "server did not exit 0"
expect_status 0 vhdtool check "$T/big.vhd"
echo ok
