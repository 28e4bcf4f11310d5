#!/bin/bash
# SPDX-License-Identifier: MIT
# Every command and flag through nbdsh, requests a strict client refuses
# (strict mode off), and raw bytes no library sends; the server keeps
# serving throughout and the image stays sound.
. "$(dirname "$0")/../functions.sh"
requires nbdinfo
[ -x /usr/bin/nbdsh ] || { echo "SKIP: nbdsh (python3-libnbd) is not installed"; exit 77; }
D=$(cd "$(dirname "$0")" && pwd)

vhdtool create "$T/p.vhd" 64M >/dev/null
start_nbd "$T/p.vhd"
SIZE=$((64 << 20)) nbdsh --base-allocation -u "$URI" -c "exec(open('$D/protocol.py').read())" \
	>"$T/proto.out" 2>&1 || { cat "$T/proto.out"; fail "nbdsh protocol checks"; }
grep -q "protocol checks passed" "$T/proto.out" || fail "nbdsh script did not finish"
/usr/bin/python3 "$D/raw_protocol.py" "$SOCK" || fail "raw protocol checks"
# Still serving after all that.
nbdinfo "$URI" >/dev/null || fail "server stopped serving"
stop_nbd || fail "server did not stop cleanly"
expect_status 0 vhdtool check "$T/p.vhd"
echo ok
