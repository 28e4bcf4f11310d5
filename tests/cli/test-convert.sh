#!/bin/bash
# SPDX-License-Identifier: MIT
# convert: every direction, sparse output, progress, and bad input that
# must fail cleanly without touching anything.
. "$(dirname "$0")/../functions.sh"
requires qemu-img
requires openssl

truncate -s 40M "$T/src.raw"
put_data "$T/src.raw" s1 0 3000000
put_data "$T/src.raw" s2 $((20 * 1024 * 1024 + 4096)) 8192
put_data "$T/src.raw" s3 $((40 * 1024 * 1024 - 4096)) 4096
# A block of zeros written as data: must not be allocated in the output.
dd if=/dev/zero of="$T/src.raw" bs=1M seek=30 count=2 conv=notrunc status=none

# Every output format, and VHD -> VHD of every type.
vhdtool convert -O dynamic "$T/src.raw" "$T/d.vhd"
vhdtool convert -O fixed "$T/d.vhd" "$T/f.vhd"
vhdtool convert -O dynamic --block-size 512K "$T/f.vhd" "$T/d2.vhd"
vhdtool convert -O raw "$T/d2.vhd" "$T/back.raw"
cmp "$T/src.raw" "$T/back.raw" || fail "raw -> dynamic -> fixed -> dynamic -> raw changed the data"
for f in d f d2; do
	qemu-img compare -q -f raw -F vpc "$T/src.raw" "$T/$f.vhd" || fail "qemu-img: $f.vhd differs"
	expect_status 0 vhdtool check "$T/$f.vhd"
done
# Zero runs: 4 blocks hold data (0-2 MiB twice over 3 MB, 20 MiB, 38 MiB).
blocks=$(vhdtool info --json "$T/d.vhd" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated-blocks"])')
[ "$blocks" = 4 ] || fail "dynamic output allocated $blocks blocks, expected 4"
# Raw and fixed outputs are sparse: holes where the source reads zero.
[ "$(du -k "$T/back.raw" | cut -f1)" -lt 4096 ] || fail "raw output not sparse: $(du -k "$T/back.raw")"
[ "$(du -k "$T/f.vhd" | cut -f1)" -lt 4096 ] || fail "fixed output not sparse"
# The source's own file holes are skipped without reading (SEEK_DATA).
vhdtool map --json "$T/f.vhd" >"$T/fmap.json"
json_get "$T/fmap.json" '[e for e in j if e["zero"]]' | grep -q start || fail "fixed map shows no hole"

# Progress: -p reports up to 100%.
vhdtool convert -p "$T/src.raw" "$T/p.vhd" 2>"$T/progress"
grep -q '100/100%' "$T/progress" || fail "no progress to 100%: $(cat "$T/progress")"

# A raw source of a size a VHD cannot hold exactly.
head -c 1000 /dev/zero >"$T/odd.raw"
expect_error "not a multiple of 512" vhdtool convert "$T/odd.raw" "$T/odd.vhd"
[ ! -e "$T/odd.vhd" ] || fail "refused convert left output behind"
vhdtool convert -O raw "$T/odd.raw" "$T/odd-copy.raw"
cmp "$T/odd.raw" "$T/odd-copy.raw" || fail "raw to raw of an odd size"
# --azure rounds up to whole MiB, minimum 20 MiB.
vhdtool convert --azure "$T/src.raw" "$T/az.vhd"
[ "$(stat -c %s "$T/az.vhd")" = $((40 * 1024 * 1024 + 512)) ] || fail "azure file size"
head -c 1048576 /dev/zero >"$T/small.raw"
expect_error "Azure" vhdtool convert --azure "$T/small.raw" "$T/az2.vhd"

# Existing destination: refused unless --overwrite; never the source itself.
echo precious >"$T/exists.vhd"
expect_error "already exists" vhdtool convert "$T/src.raw" "$T/exists.vhd"
[ "$(cat "$T/exists.vhd")" = precious ] || fail "convert overwrote without --overwrite"
vhdtool convert --overwrite "$T/src.raw" "$T/exists.vhd"
qemu-img compare -q -f raw -F vpc "$T/src.raw" "$T/exists.vhd" || fail "--overwrite result differs"
expect_error "same file" vhdtool convert --overwrite "$T/d.vhd" "$T/d.vhd"
expect_status 0 vhdtool check "$T/d.vhd"

# Usage errors.
expect_error "unknown output format" vhdtool convert -O qcow2 "$T/src.raw" "$T/x.vhd"
expect_error "cannot be combined" vhdtool convert -O raw -B "$T/d.vhd" "$T/src.raw" "$T/x.vhd"
expect_error "usage" vhdtool convert "$T/src.raw"
expect_error "No such file" vhdtool convert "$T/missing.raw" "$T/x.vhd"
# -B with a parent of another size.
vhdtool create "$T/other.vhd" 8M >/dev/null
expect_error "equal sizes" vhdtool convert -B "$T/other.vhd" "$T/src.raw" "$T/x.vhd"
[ ! -e "$T/x.vhd" ] || fail "failed convert left output behind"

# A full destination: ENOSPC is reported and the partial output removed.
if [ "$(id -u)" = 0 ] && mkdir "$T/full" && mount -t tmpfs -o size=2m tmpfs "$T/full" 2>/dev/null; then
	unmount_full() { umount "$T/full"; }
	on_exit unmount_full
	expect_error "no space left on device" vhdtool convert "$T/src.raw" "$T/full/out.vhd"
	[ ! -e "$T/full/out.vhd" ] || fail "output left on a full file system"
fi
echo ok
