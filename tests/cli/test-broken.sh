#!/bin/bash
# SPDX-License-Identifier: MIT
# Broken images, one defect each (fixtures/make-corrupt.sh): check gives the
# exit code the manifest names; info, map and convert give a clear error or
# a correct result, never a crash; nothing writes to the input.
. "$(dirname "$0")/../functions.sh"
requires qemu-img
requires qemu-io
VHDTOOL=$VHDTOOL bash "$FIXTURES/make-corrupt.sh" "$T/c" >"$T/make.log" 2>&1 || { cat "$T/make.log"; fail "make-corrupt.sh failed"; }
[ -s "$T/c/MANIFEST" ] || fail "no manifest"

cases=0
while IFS=$'\t' read -r file want what; do
	case $file in ''|'#'*) continue ;; esac
	f=$T/c/$file
	[ -e "$f" ] || fail "manifest names $file, which was not made"
	sum=$(digest "$f")
	set +e
	timeout 20 "$VHDTOOL" check "$f" >"$T/.out" 2>"$T/.err"
	got=$?
	set -e
	no_sanitizer_report check "$file"
	[ "$got" = "$want" ] || { cat "$T/.out" "$T/.err" >&2; fail "check $file ($what): exit $got, expected $want"; }
	for cmd in info "info --json" map "map --json" "convert -O raw"; do
		rm -f "$T/out.raw"
		set +e
		# shellcheck disable=SC2086
		timeout 20 "$VHDTOOL" $cmd "$f" ${cmd:+$( [ "$cmd" = "convert -O raw" ] && echo "$T/out.raw")} >"$T/.out" 2>"$T/.err"
		rc=$?
		set -e
		no_sanitizer_report "$cmd" "$file"
		[ $rc -lt 124 ] || fail "$cmd $file ($what): killed or timed out (exit $rc)"
		if [ $rc != 0 ]; then
			[ -s "$T/.err" ] || fail "$cmd $file ($what): failed without a message"
			grep -q "^vhdtool" "$T/.err" || fail "$cmd $file ($what): message does not start with vhdtool: $(head -1 "$T/.err")"
		fi
	done
	# Served read-only by vhd-nbd: a clear refusal, or an export a client reads.
	if [ -x "${VHDNBD:-}" ] && command -v nbdcopy >/dev/null; then
		sd=$(mktemp -d /tmp/brk.XXXXXX)
		"$VHDNBD" -r --socket "$sd/s" "$f" 2>"$T/nbd.err" &
		npid=$!
		for _ in $(seq 100); do
			[ -S "$sd/s" ] && break
			kill -0 $npid 2>/dev/null || break
			sleep 0.02
		done
		if [ -S "$sd/s" ]; then
			timeout 20 nbdcopy "nbd+unix:///?socket=$sd/s" null: 2>/dev/null \
				|| echo "note: $file: the export reads with errors ($what)"
			kill -TERM $npid
		fi
		set +e
		wait $npid
		rc=$?
		set -e
		rm -rf "$sd"
		grep -qE 'AddressSanitizer|runtime error:' "$T/nbd.err" && { cat "$T/nbd.err"; fail "vhd-nbd on $file: sanitizer report"; }
		[ $rc -lt 124 ] || fail "vhd-nbd on $file ($what): died (exit $rc)"
		[ $rc = 0 ] || grep -q "^vhd-nbd: " "$T/nbd.err" || fail "vhd-nbd on $file refused without a message"
	fi
	[ "$(digest "$f")" = "$sum" ] || fail "a command wrote to $file ($what)"
	cases=$((cases + 1))
done <"$T/c/MANIFEST"
[ $cases -ge 20 ] || fail "only $cases broken images"
echo "broken images: $cases cases checked"
echo ok
