#!/bin/bash
# SPDX-License-Identifier: MIT
# Differencing chains: -B children reproduce their source exactly and stay
# small; chains of depth 3; moved chains; missing and wrong parents; the
# Windows-made child from dfvfs over a parent the test builds.
. "$(dirname "$0")/../functions.sh"
requires openssl
PATCH=$(dirname "$0")/vhdpatch.py

size=$((24 * 1024 * 1024))
truncate -s $size "$T/a.raw"
put_data "$T/a.raw" base 0 $((8 * 1024 * 1024))
put_data "$T/a.raw" base2 $((16 * 1024 * 1024)) $((3 * 1024 * 1024))
cp "$T/a.raw" "$T/b.raw"
put_data "$T/b.raw" diff1 1000 300                 # partial sectors
put_data "$T/b.raw" diff2 $((5 * 1024 * 1024)) 4096
dd if=/dev/zero of="$T/b.raw" bs=512 seek=$((16 * 2048 + 7)) count=9 conv=notrunc status=none  # zeros over data
put_data "$T/b.raw" diff3 $((12 * 1024 * 1024)) 512   # data where the parent has a hole
cp "$T/b.raw" "$T/c.raw"
put_data "$T/c.raw" diff4 $((size - 512)) 512

mkdir "$T/chain"
vhdtool convert "$T/a.raw" "$T/chain/base.vhd"
vhdtool convert -B "$T/chain/base.vhd" "$T/b.raw" "$T/chain/child.vhd"
vhdtool convert -B "$T/chain/child.vhd" "$T/c.raw" "$T/chain/grandchild.vhd"

for img in base child grandchild; do expect_status 0 vhdtool check "$T/chain/$img.vhd"; done
vhdtool convert -O raw "$T/chain/child.vhd" "$T/child.raw"
cmp "$T/b.raw" "$T/child.raw" || fail "child does not reproduce its source"
vhdtool convert -O raw "$T/chain/grandchild.vhd" "$T/gc.raw"
cmp "$T/c.raw" "$T/gc.raw" || fail "grandchild does not reproduce its source"

# Small: the child holds only the blocks where something changed (4 blocks).
blocks=$(vhdtool info --json "$T/chain/child.vhd" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated-blocks"])')
[ "$blocks" = 4 ] || fail "child allocated $blocks blocks, expected 4"
[ "$(stat -c %s "$T/chain/child.vhd")" -lt $((9 * 1024 * 1024)) ] || fail "child file too large"
gcblocks=$(vhdtool info --json "$T/chain/grandchild.vhd" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated-blocks"])')
[ "$gcblocks" = 1 ] || fail "grandchild allocated $gcblocks blocks, expected 1"

# info shows the whole chain; map names the layer that holds each extent.
vhdtool info --json "$T/chain/grandchild.vhd" >"$T/info.json"
[ "$(json_get "$T/info.json" 'j["backing-image"]["backing-image"]["vhd-type"]')" = dynamic ] || fail "info chain"
[ "$(json_get "$T/info.json" 'j["backing-filename"]')" = child.vhd ] || fail "backing-filename"
vhdtool map --json "$T/chain/grandchild.vhd" >"$T/map.json"
json_get "$T/map.json" 'sorted(set(e["depth"] for e in j if e["present"]))' | grep -q '0, 1, 2' \
	|| fail "map does not show data at depths 0, 1 and 2: $(cat "$T/map.json")"
json_get "$T/map.json" '[e["filename"] for e in j if e["present"] and e["depth"] == 2][0]' | grep -q 'base.vhd$' \
	|| fail "map does not name base.vhd for depth 2"
# The extents cover the disk exactly once.
[ "$(json_get "$T/map.json" 'sum(e["length"] for e in j)')" = $size ] || fail "map does not cover the disk"

# Locators: W2ru relative and MacX absolute; the chain survives a move.
vhdtool info --json "$T/chain/child.vhd" >"$T/child.json"
[ "$(json_get "$T/child.json" '[l["path"] for l in j["parent-locators"] if l["code"]=="W2ru"][0]')" = '.\base.vhd' ] \
	|| fail "W2ru locator"
json_get "$T/child.json" '[l["path"] for l in j["parent-locators"] if l["code"]=="MacX"][0]' | grep -q "^file://$T/chain/base.vhd$" \
	|| fail "MacX locator"
mv "$T/chain" "$T/moved"
vhdtool convert -O raw "$T/moved/grandchild.vhd" "$T/gc2.raw"
cmp "$T/c.raw" "$T/gc2.raw" || fail "moved chain reads differently"
# A parent in another folder: relative path with ..
mkdir "$T/sub"
vhdtool create -b "$T/moved/base.vhd" "$T/sub/kid.vhd" >/dev/null
vhdtool info --json "$T/sub/kid.vhd" >"$T/kid.json"
[ "$(json_get "$T/kid.json" '[l["path"] for l in j["parent-locators"] if l["code"]=="W2ru"][0]')" = '..\moved\base.vhd' ] \
	|| fail "relative locator to another folder: $(cat "$T/kid.json")"
vhdtool convert -O raw "$T/sub/kid.vhd" "$T/kid.raw"
cmp "$T/a.raw" "$T/kid.raw" || fail "empty child does not read as its parent"

# Parent and child with the same file name, the child moved (stale W2ru):
# the candidates that name the child itself are skipped, MacX finds the parent.
mkdir -p "$T/same/a" "$T/same/b" "$T/same/c/d"
vhdtool convert "$T/a.raw" "$T/same/a/disk.vhd"
vhdtool create -b "$T/same/a/disk.vhd" "$T/same/b/disk.vhd" >/dev/null
mv "$T/same/b/disk.vhd" "$T/same/c/d/disk.vhd"
vhdtool convert -O raw "$T/same/c/d/disk.vhd" "$T/same.raw"
cmp "$T/a.raw" "$T/same.raw" || fail "same-named parent through MacX"

# Missing parent: info still works and names the paths tried; reads fail.
mv "$T/moved/base.vhd" "$T/base-away.vhd"
vhdtool info "$T/moved/child.vhd" >"$T/missing.txt" || fail "info must exit 0 with a missing parent"
grep -q 'MISSING' "$T/missing.txt" || fail "info does not show the missing parent"
grep -q 'base.vhd (not found)' "$T/missing.txt" || fail "info does not name the paths tried"
vhdtool info --json "$T/moved/child.vhd" >"$T/missing.json"
[ "$(json_get "$T/missing.json" 'j["backing-missing"]')" = True ] || fail "json backing-missing"
expect_error "parent .* not found; tried: .*base.vhd" vhdtool convert -O raw "$T/moved/child.vhd" "$T/x.raw"
[ ! -e "$T/x.raw" ] || fail "failed convert left its output"
expect_status 1 vhdtool check "$T/moved/child.vhd"

# A different image under the parent's name: UUID mismatch is an error.
vhdtool create "$T/moved/base.vhd" 24M >/dev/null
expect_error "UUID .* the child expects" vhdtool convert -O raw "$T/moved/child.vhd" "$T/x.raw"
expect_status 2 vhdtool check "$T/moved/child.vhd"
rm "$T/moved/base.vhd"
mv "$T/base-away.vhd" "$T/moved/base.vhd"

# A parent must be a regular file: a FIFO under the parent's name is refused
# without blocking.
mkdir "$T/fifo"
cp "$T/moved/child.vhd" "$T/fifo/child.vhd"
mkfifo "$T/fifo/base.vhd"
expect_error "not a regular file" timeout 10 "$VHDTOOL" convert -O raw "$T/fifo/child.vhd" "$T/x.raw"

# Depth: 64 parents are fine, a 65th is refused with a clear message.
mkdir "$T/deep"
vhdtool create "$T/deep/l0.vhd" 1M >/dev/null
for i in $(seq 1 65); do
	vhdtool create -b "$T/deep/l$((i - 1)).vhd" "$T/deep/l$i.vhd" >/dev/null 2>&1 || break
done
expect_status 0 vhdtool convert -O raw "$T/deep/l64.vhd" "$T/deep.raw"
[ ! -e "$T/deep/l65.vhd" ] || fail "created a child 65 levels deep"
expect_error "deeper than 64" vhdtool create -b "$T/deep/l64.vhd" "$T/deep/l65.vhd"

# The Windows-made child over a parent we build with the UUID it expects.
mkdir "$T/fat"
cp "$FIXTURES/dfvfs/fat-differential.vhd" "$T/fat/"
truncate -s 4M "$T/parent.raw"
put_data "$T/parent.raw" fatparent 0 $((4 * 1024 * 1024))
vhdtool convert "$T/parent.raw" "$T/fat/fat-parent.vhd"
/usr/bin/python3 "$PATCH" "$T/fat/fat-parent.vhd" footer-uuid 5fa21a55-f394-aa4d-9958-1951a67d5540
expect_status 0 vhdtool check "$T/fat/fat-parent.vhd"
expect_status 0 vhdtool check "$T/fat/fat-differential.vhd"
vhdtool convert -O raw "$T/fat/fat-differential.vhd" "$T/fat.raw"
# Expected: the parent's bytes, except the 18 sectors the child holds (its
# block 0 data starts at file offset 0x14000).
cp "$T/parent.raw" "$T/expect.raw"
for s in 134 143 152 153 154 155 156 157 158 159 184 185 188 190 191 192 194 196; do
	dd if="$T/fat/fat-differential.vhd" of="$T/expect.raw" bs=512 skip=$((0x14000 / 512 + s)) seek=$s count=1 conv=notrunc status=none
done
cmp "$T/expect.raw" "$T/fat.raw" || fail "Windows child over our parent reads wrongly"
# map: exactly those 18 sectors come from depth 0.
vhdtool map --json "$T/fat/fat-differential.vhd" >"$T/fatmap.json"
[ "$(json_get "$T/fatmap.json" 'sum(e["length"] for e in j if e["depth"]==0 and e["present"])')" = $((18 * 512)) ] \
	|| fail "map of the Windows child: $(cat "$T/fatmap.json")"
echo ok
