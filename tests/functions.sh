# SPDX-License-Identifier: MIT
# Shared helpers for the shell tests.  Each test sources this file, gets a
# fresh scratch folder in $T (removed on exit) and exits 0 (pass), 77 (skip)
# or anything else (fail).
set -eu
export LC_ALL=C
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VHDTOOL=${VHDTOOL:-$TOP/build/vhdtool}
VHDNBD=${VHDNBD:-$TOP/build/vhd-nbd}
FIXTURES=$TOP/fixtures
T=$(mktemp -d /tmp/vhdt.XXXXXX)
cleanup_hooks=""
cleanup() {
	for h in $cleanup_hooks; do "$h" || true; done
	rm -rf "$T"
}
trap cleanup EXIT
on_exit() { cleanup_hooks="$cleanup_hooks $1"; }

vhdtool() { "$VHDTOOL" "$@"; }

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

requires() {
	command -v "$1" >/dev/null 2>&1 || { echo "SKIP: $1 is not installed"; exit 77; }
}

# A sanitizer report is a failure whatever the exit code.
no_sanitizer_report() {
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/.err"; then
		cat "$T/.err" >&2
		fail "'$*': sanitizer report"
	fi
}

# expect_status CODE CMD...: run CMD, fail unless it exits with CODE.
expect_status() {
	want=$1
	shift
	set +e
	"$@" >"$T/.out" 2>"$T/.err"
	got=$?
	set -e
	no_sanitizer_report "$@"
	if [ "$got" != "$want" ]; then
		cat "$T/.out" "$T/.err" >&2
		fail "'$*' exited $got, expected $want"
	fi
}

# expect_error PATTERN CMD...: CMD must fail (non-zero) and say PATTERN on stderr.
expect_error() {
	pattern=$1
	shift
	set +e
	"$@" >"$T/.out" 2>"$T/.err"
	got=$?
	set -e
	no_sanitizer_report "$@"
	[ "$got" != 0 ] || fail "'$*' succeeded; expected an error matching '$pattern'"
	[ "$got" -lt 128 ] || { cat "$T/.err" >&2; fail "'$*' died of a signal ($got)"; }
	grep -qE -- "$pattern" "$T/.err" || { cat "$T/.err" >&2; fail "'$*': error does not match '$pattern'"; }
}

# json_get FILE EXPR: evaluate a python expression on the parsed JSON (as j).
json_get() {
	/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

qemu_size() { qemu-img info --output=json -f "$2" "$1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }
vhdi_size() { vhdiinfo "$1" | sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p'; }
our_size() { vhdtool info --json "$1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }
digest() { md5sum "$1" | cut -d' ' -f1; }

# Deterministic pseudo-random bytes: rand_bytes SEED COUNT
rand_bytes() { openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c "$2"; }

# Fill a raw file with random runs at the given offsets (bytes): put_data FILE SEED OFFSET LEN
put_data() { rand_bytes "$2" "$4" | dd of="$1" bs=64k seek="$3" oflag=seek_bytes conv=notrunc status=none; }

# ---- NBD servers -----------------------------------------------------------

# start_nbd ARGS...: run vhd-nbd on a unix socket $SOCK in a short folder,
# wait until it listens, stop it at exit.  Sets SOCK, URI (default export)
# and NBD_PID.
start_nbd() {
	SOCKDIR=$(mktemp -d /tmp/nbd.XXXXXX)
	SOCK=$SOCKDIR/s
	URI="nbd+unix:///?socket=$SOCK"
	"$VHDNBD" --socket "$SOCK" "$@" 2>"$T/nbd.err" &
	NBD_PID=$!
	on_exit stop_nbd
	wait_listening "$SOCK"
}

wait_listening() {
	for _ in $(seq 1 100); do
		[ -S "$1" ] && return 0
		kill -0 "$NBD_PID" 2>/dev/null || { cat "$T/nbd.err" >&2; fail "vhd-nbd exited: $(cat "$T/nbd.err")"; }
		sleep 0.05
	done
	fail "vhd-nbd did not listen on $1"
}

# stop_nbd: SIGTERM, and the server must exit 0 within 20 s.
stop_nbd() {
	[ -n "${NBD_PID:-}" ] || return 0
	kill -TERM "$NBD_PID" 2>/dev/null || true
	local rc=0
	for _ in $(seq 1 200); do
		kill -0 "$NBD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$NBD_PID" 2>/dev/null; then
		kill -KILL "$NBD_PID"
		NBD_PID=
		echo "vhd-nbd did not stop on SIGTERM" >&2
		return 1
	fi
	wait "$NBD_PID" || rc=$?
	NBD_PID=
	rm -rf "${SOCKDIR:-/nonexistent}"
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/nbd.err" 2>/dev/null; then
		cat "$T/nbd.err" >&2
		echo "vhd-nbd: sanitizer report" >&2
		return 1
	fi
	[ $rc = 0 ] || { cat "$T/nbd.err" >&2; echo "vhd-nbd exited $rc" >&2; }
	return $rc
}

# free_port: a TCP port nobody listens on now.
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

nbdsh() { PATH=/usr/bin:$PATH command nbdsh "$@"; }
