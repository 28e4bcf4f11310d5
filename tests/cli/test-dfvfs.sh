#!/bin/bash
# SPDX-License-Identifier: MIT
# The four real images from dfvfs behave as fixtures/dfvfs/README.md says.
. "$(dirname "$0")/../functions.sh"
requires qemu-img
requires vhdiinfo
D=$FIXTURES/dfvfs
for f in ext2 image image-differential fat-differential; do cp "$D/$f.vhd" "$T/"; done
before=$(cd "$T" && md5sum ./*.vhd)

# ext2.vhd: creator 'qemu', sized by CHS; same bytes as qemu-img reads.
[ "$(our_size "$T/ext2.vhd")" = 4212736 ] || fail "ext2.vhd size"
[ "$(qemu_size "$T/ext2.vhd" vpc)" = 4212736 ] || fail "qemu-img ext2.vhd size"
expect_status 0 vhdtool check "$T/ext2.vhd"
vhdtool convert -O raw "$T/ext2.vhd" "$T/ext2-ours.raw"
qemu-img convert -f vpc -O raw "$T/ext2.vhd" "$T/ext2-qemu.raw"
cmp "$T/ext2-ours.raw" "$T/ext2-qemu.raw" || fail "ext2.vhd reads differently from qemu-img"
# It really is an ext2 file system (magic 0xEF53 at 1024 + 56).
[ "$(od -A n -t x2 -j 1080 -N 2 "$T/ext2-ours.raw" | tr -d ' ')" = ef53 ] || fail "no ext2 superblock"

# image.vhd: stale footer checksum. Readable with a warning naming the
# field; check reports it (exit 2); libvhdi agrees on the size.
vhdtool info "$T/image.vhd" >"$T/out" 2>"$T/err" || fail "info image.vhd"
grep -q "footer checksum mismatch (field checksum at offset" "$T/err" || fail "no warning naming the footer checksum"
[ "$(our_size "$T/image.vhd" 2>/dev/null)" = 104448 ] || fail "image.vhd size"
[ "$(vhdi_size "$T/image.vhd")" = 104448 ] || fail "vhdiinfo image.vhd size"
expect_status 2 vhdtool check "$T/image.vhd"
grep -q "footer.checksum" "$T/.out" || fail "check does not name footer.checksum"
vhdtool convert -O raw "$T/image.vhd" "$T/image.raw" 2>/dev/null
[ "$(stat -c %s "$T/image.raw")" = 104448 ] || fail "image.vhd raw size"
if qemu-img info -f vpc "$T/image.vhd" >/dev/null 2>&1; then fail "qemu-img now accepts image.vhd; update the README"; fi

# image-differential.vhd: parent by Unicode name only; both checksums stale.
vhdtool info --json "$T/image-differential.vhd" >"$T/idiff.json" 2>"$T/err"
grep -q "dynamic header checksum mismatch" "$T/err" || fail "no warning for the header checksum"
[ "$(json_get "$T/idiff.json" 'j["parent-name"]')" = image.vhd ] || fail "parent name"
[ "$(json_get "$T/idiff.json" 'len(j["parent-locators"])')" = 0 ] || fail "image-differential has no locators"
[ "$(json_get "$T/idiff.json" 'j["backing-image"]["uuid"]')" = "$(json_get "$T/idiff.json" 'j["parent-uuid"]')" ] || fail "parent uuid"
expect_status 2 vhdtool check "$T/image-differential.vhd"
grep -q "header.checksum" "$T/.out" || fail "check does not name header.checksum"
grep -q "footer.checksum" "$T/.out" || fail "check does not name footer.checksum"
vhdtool convert -O raw "$T/image-differential.vhd" "$T/idiff.raw" 2>/dev/null
[ "$(stat -c %s "$T/idiff.raw")" = 104448 ] || fail "image-differential raw size"

# fat-differential.vhd: parent absent. Opening fails naming the Windows
# path; info still shows the metadata and the locators.
expect_error 'C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd' vhdtool convert -O raw "$T/fat-differential.vhd" "$T/fat.raw"
grep -q "not found" "$T/.err" || fail "missing parent message"
vhdtool info --json "$T/fat-differential.vhd" >"$T/fat.json" || fail "info must read fat-differential.vhd"
[ "$(json_get "$T/fat.json" '[l["path"] for l in j["parent-locators"] if l["code"]=="W2ku"][0]')" = 'C:\Projects\dfvfs\test_data\fat-parent.vhd' ] || fail "W2ku"
[ "$(json_get "$T/fat.json" '[l["path"] for l in j["parent-locators"] if l["code"]=="W2ru"][0]')" = '.\fat-parent.vhd' ] || fail "W2ru"
[ "$(json_get "$T/fat.json" 'j["parent-uuid"]')" = 5fa21a55-f394-aa4d-9958-1951a67d5540 ] || fail "parent uuid"
[ "$(json_get "$T/fat.json" 'j["creator-app"]')" = 'win ' ] || fail "creator"
[ "$(json_get "$T/fat.json" 'j["virtual-size"]')" = 4194304 ] || fail "size"
expect_status 1 vhdtool check "$T/fat-differential.vhd"

# Nothing above wrote to the images.
after=$(cd "$T" && md5sum ./*.vhd)
[ "$before" = "$after" ] || fail "a read-only command changed a fixture"
echo ok
