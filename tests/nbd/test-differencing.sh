#!/bin/bash
# SPDX-License-Identifier: MIT
# A differencing export: reads show the parent's data through the child,
# writes land in the child only (the parent's bytes are unchanged), zeroing
# hides the parent, and vhdtool check accepts both files afterwards.
. "$(dirname "$0")/../functions.sh"
requires nbdcopy
requires qemu-io
requires openssl

truncate -s 32M "$T/base.raw"
put_data "$T/base.raw" p1 0 $((8 * 1024 * 1024))
put_data "$T/base.raw" p2 $((20 * 1024 * 1024)) 1048576
vhdtool convert "$T/base.raw" "$T/base.vhd"
vhdtool create -b "$T/base.vhd" "$T/child.vhd" >/dev/null
parent_sum=$(digest "$T/base.vhd")

start_nbd "$T/child.vhd"
nbdcopy "$URI" "$T/read.raw"
cmp "$T/base.raw" "$T/read.raw" || fail "the child does not show the parent's data"
# Partial-sector writes over parent data, a hole, and a block edge.
qemu-io -f raw -c 'write -P 0x77 1000 100' -c 'write -P 0x66 25165824 4096' \
	-c 'write -P 0x55 2097000 400' -c 'flush' "$URI" >/dev/null
# WRITE_ZEROES of a whole block: must read zeros, not the parent.
qemu-io -f raw -c 'write -z 4194304 2097152' "$URI" >/dev/null
nbdcopy "$URI" "$T/after.raw"
stop_nbd || fail "server did not stop cleanly"

cp "$T/base.raw" "$T/expect.raw"
/usr/bin/python3 - "$T/expect.raw" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    for off, byte, n in ((1000, 0x77, 100), (25165824, 0x66, 4096), (2097000, 0x55, 400)):
        f.seek(off); f.write(bytes([byte]) * n)
    f.seek(4194304); f.write(bytes(2097152))
PY
cmp "$T/expect.raw" "$T/after.raw" || fail "reads through the server after writes"
[ "$(digest "$T/base.vhd")" = "$parent_sum" ] || fail "the parent changed"
expect_status 0 vhdtool check "$T/base.vhd"
expect_status 0 vhdtool check "$T/child.vhd"
vhdtool convert -O raw "$T/child.vhd" "$T/file.raw"
cmp "$T/expect.raw" "$T/file.raw" || fail "the child file reads differently after the server stopped"
# The child holds only the blocks it was written in (0, 1, 2, 12).
blocks=$(vhdtool info --json "$T/child.vhd" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated-blocks"])')
[ "$blocks" = 4 ] || fail "child holds $blocks blocks, expected 4"
echo ok
