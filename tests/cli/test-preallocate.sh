#!/bin/bash
# SPDX-License-Identifier: MIT
# vhdtool preallocate: every block of a dynamic image allocated with every
# sector bit set, the contents unchanged (qemu-img compare), the image
# clean for vhdtool check and readable by qemu-img and libvhdi; fixed and
# differencing images are refused and left untouched.
. "$(dirname "$0")/../functions.sh"
truncate -s 40M "$T/disk.raw"
put_data "$T/disk.raw" 1 3000000 70000
put_data "$T/disk.raw" 2 20000000 4096
vhdtool convert "$T/disk.raw" "$T/dyn.vhd"
vhdtool info --json "$T/dyn.vhd" >"$T/before.json"
[ "$(json_get "$T/before.json" 'j["allocated-blocks"]')" = 2 ] || fail "want 2 blocks before"
vhdtool preallocate -p "$T/dyn.vhd" 2>/dev/null | grep -q "every block allocated" || fail "no summary"
vhdtool info --json "$T/dyn.vhd" >"$T/after.json"
[ "$(json_get "$T/after.json" 'j["allocated-blocks"]')" = 20 ] || fail "want 20 blocks after"
expect_status 0 vhdtool check "$T/dyn.vhd"
qemu-img compare -q -f raw "$T/disk.raw" -F vpc "$T/dyn.vhd" || fail "contents changed"
[ "$(vhdi_size "$T/dyn.vhd")" = $((40 << 20)) ] || fail "vhdiinfo disagrees"
# Every sector bit is set: the map shows one data extent from the top layer.
vhdtool map --json "$T/dyn.vhd" >"$T/map.json"
[ "$(json_get "$T/map.json" 'len([e for e in j if e["data"]])')" -ge 1 ] || fail "no data extents"
[ "$(json_get "$T/map.json" 'sum(e["length"] for e in j if not e["data"])')" = 0 ] ||
	fail "map still shows unallocated ranges"
# A second run has nothing to do but keeps everything.
vhdtool preallocate "$T/dyn.vhd" >/dev/null
qemu-img compare -q -f raw "$T/disk.raw" -F vpc "$T/dyn.vhd" || fail "second run changed contents"

vhdtool convert -O fixed "$T/disk.raw" "$T/fixed.vhd"
cp "$T/fixed.vhd" "$T/fixed.copy"
expect_error "preallocate works on dynamic images" vhdtool preallocate "$T/fixed.vhd"
cmp -s "$T/fixed.vhd" "$T/fixed.copy" || fail "a refused fixed image changed"
vhdtool convert -B "$T/dyn.vhd" "$T/disk.raw" "$T/child.vhd"
cp "$T/child.vhd" "$T/child.copy"
expect_error "would hide its parent" vhdtool preallocate "$T/child.vhd"
cmp -s "$T/child.vhd" "$T/child.copy" || fail "a refused child changed"
echo ok
