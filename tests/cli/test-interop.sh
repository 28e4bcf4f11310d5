#!/bin/bash
# SPDX-License-Identifier: MIT
# Interop both ways: our images read by qemu-img byte for byte, qemu-img's
# images read by us byte for byte, qemu-io writes into our layout.
. "$(dirname "$0")/../functions.sh"
requires qemu-img
requires qemu-io
requires openssl

make_raw() { # FILE SIZE: random runs at odd places, holes between
	truncate -s "$2" "$1"
	put_data "$1" a$2 0 70000
	[ "$2" -gt 3000000 ] && put_data "$1" b$2 2096640 5120   # straddles a 2 MiB block edge
	[ "$2" -gt 9000000 ] && put_data "$1" c$2 $(( $2 - 1536 )) 1536   # the last sectors
	true
}

for size in 1048576 $((10 * 1024 * 1024 + 3 * 512)) 33553920 $((64 * 1024 * 1024)); do
	raw=$T/src-$size.raw
	make_raw "$raw" $size
	for fmt in dynamic fixed; do
		out=$T/ours-$fmt.vhd
		vhdtool convert -O $fmt "$raw" "$out"
		qemu-img compare -q -f raw -F vpc "$raw" "$out" || fail "qemu-img reads our $fmt $size image differently"
		[ "$(qemu_size "$out" vpc)" = $size ] || fail "qemu-img size of our $fmt $size image"
		[ "$(vhdi_size "$out")" = $size ] || fail "vhdiinfo size of our $fmt $size image"
		expect_status 0 vhdtool check "$out"
		vhdtool convert -O raw "$out" "$T/back.raw"
		cmp "$raw" "$T/back.raw" || fail "our $fmt round trip of $size bytes differs"
		rm -f "$out" "$T/back.raw"

		# qemu-img's own image (exact size with force_size) read by us.
		qemu-img convert -f raw -O vpc -o subformat=$fmt,force_size=on "$raw" "$T/qemu.vhd"
		vhdtool convert -O raw "$T/qemu.vhd" "$T/fromqemu.raw"
		cmp "$raw" "$T/fromqemu.raw" || fail "we read qemu-img's $fmt $size image differently"
		expect_status 0 vhdtool check "$T/qemu.vhd"
		rm -f "$T/qemu.vhd" "$T/fromqemu.raw"
	done
done

# qemu-img's default sizing (creator 'qemu', size from CHS): we agree with it.
qemu-img create -q -f vpc "$T/chs.vhd" 1G
[ "$(our_size "$T/chs.vhd")" = "$(qemu_size "$T/chs.vhd" vpc)" ] || fail "CHS-sized qemu image: sizes disagree"
[ "$(our_size "$T/chs.vhd")" = 1073995776 ] || fail "CHS-sized 1G image is not 1073995776 bytes"

# qemu-io writes into our dynamic image; we read what it wrote.
vhdtool create "$T/w.vhd" 16M >/dev/null
qemu-io -f vpc -c 'write -P 0x5a 0 64k' -c 'write -P 0xa5 3M 4k' -c 'write -P 0x11 16773120 4096' "$T/w.vhd" >/dev/null
expect_status 0 vhdtool check "$T/w.vhd"
vhdtool convert -O raw "$T/w.vhd" "$T/w-ours.raw"
qemu-img convert -f vpc -O raw "$T/w.vhd" "$T/w-qemu.raw"
cmp "$T/w-ours.raw" "$T/w-qemu.raw" || fail "qemu-io's writes read differently by us"

# Multi-GiB sparse: only the data is stored, both tools agree.
big=$T/big.raw
truncate -s 5G "$big"
put_data "$big" big1 0 1048576
put_data "$big" big2 $((4 * 1024 * 1024 * 1024 + 12345 * 512)) 1048576
vhdtool convert "$big" "$T/big.vhd"
qemu-img compare -q -f raw -F vpc "$big" "$T/big.vhd" || fail "5 GiB sparse image differs"
alloc=$(vhdtool info --json "$T/big.vhd" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated-blocks"])')
[ "$alloc" -le 3 ] || fail "5 GiB sparse image allocated $alloc blocks, expected at most 3"
vhdtool convert -O fixed "$big" "$T/bigf.vhd"
[ "$(du -k "$T/bigf.vhd" | cut -f1)" -lt 8192 ] || fail "fixed output of a sparse source is not sparse"
qemu-img compare -q -f raw -F vpc "$big" "$T/bigf.vhd" || fail "5 GiB fixed differs"
echo ok
