#!/bin/bash
# SPDX-License-Identifier: MIT
# create: exact sizes of every type, read back identically by qemu-img and
# libvhdi; bad sizes refused; fixed images sparse; Azure rounding.
. "$(dirname "$0")/../functions.sh"
requires qemu-img
requires vhdiinfo

check_sizes() { # FILE SIZE
	[ "$(our_size "$1")" = "$2" ] || fail "$1: vhdtool says $(our_size "$1"), expected $2"
	[ "$(qemu_size "$1" vpc)" = "$2" ] || fail "$1: qemu-img says $(qemu_size "$1" vpc), expected $2"
	[ "$(vhdi_size "$1")" = "$2" ] || fail "$1: vhdiinfo says $(vhdi_size "$1"), expected $2"
	expect_status 0 vhdtool check "$1"
}

# 512-byte steps around block and geometry edges, odd sector counts, big sparse.
for size in 512 1024 1536 4096 65024 1048064 1048576 1049088 2097152 2097664 \
	    $((3 * 1024 * 1024 * 1024 + 512)) $((100 * 1000 * 1000 * 512 / 512 * 512)) \
	    $((127 * 1024 * 1024 * 1024)) $((2040 * 1024 * 1024 * 1024)); do
	for type in dynamic fixed; do
		f=$T/$type-$size.vhd
		vhdtool create -t $type "$f" $size >/dev/null
		check_sizes "$f" $size
		rm -f "$f"
	done
done

# A fixed image is sparse: no data blocks were written.
vhdtool create -t fixed "$T/sparse.vhd" 1G >/dev/null
used=$(du -k "$T/sparse.vhd" | cut -f1)
[ "$used" -lt 1024 ] || fail "fixed 1 GiB image uses $used KiB: not sparse"
[ "$(stat -c %s "$T/sparse.vhd")" = $((1024 * 1024 * 1024 + 512)) ] || fail "fixed file size"

# Suffixes are binary.
vhdtool create "$T/suffix.vhd" 3M >/dev/null
[ "$(our_size "$T/suffix.vhd")" = 3145728 ] || fail "3M is not 3145728 bytes"

# Block sizes: every power of two from 512 KiB to 256 MiB; others refused.
for bs in 512K 1M 2M 4M 8M 16M 32M 64M 128M 256M; do
	vhdtool create --block-size $bs "$T/bs.vhd" 1G >/dev/null
	got=$(vhdtool info --json "$T/bs.vhd" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster-size"])')
	want=$(/usr/bin/python3 -c "print({'K':1<<10,'M':1<<20}['$bs'[-1]]*int('$bs'[:-1]))")
	[ "$got" = "$want" ] || fail "block size $bs: info says $got"
	[ "$(qemu_size "$T/bs.vhd" vpc)" = $((1 << 30)) ] || fail "qemu-img size with block size $bs"
	rm -f "$T/bs.vhd"
done
expect_error "power of two" vhdtool create --block-size 256K "$T/x.vhd" 1G
expect_error "power of two" vhdtool create --block-size 3M "$T/x.vhd" 1G
expect_error "power of two" vhdtool create --block-size 512M "$T/x.vhd" 1G

# Bad sizes: clear errors, nothing left behind.
expect_error "not a multiple of 512" vhdtool create "$T/x.vhd" 1000
expect_error "not a multiple of 512" vhdtool create -t fixed "$T/x.vhd" 513
expect_error "2040 GiB" vhdtool create -t dynamic "$T/x.vhd" 2041G
expect_error "invalid size" vhdtool create "$T/x.vhd" 12Q
expect_error "invalid (size|option)" vhdtool create "$T/x.vhd" -5
expect_error "must not be zero" vhdtool create "$T/x.vhd" 0
[ ! -e "$T/x.vhd" ] || fail "a refused create left a file behind"

# An existing file is never overwritten.
echo keep >"$T/exists.vhd"
expect_error "exists" vhdtool create "$T/exists.vhd" 1M
[ "$(cat "$T/exists.vhd")" = keep ] || fail "create changed an existing file"

# Fixed images above 2040 GiB are allowed, with a warning.
vhdtool create -t fixed "$T/huge.vhd" 3T >/dev/null 2>"$T/warn"
grep -q "qemu-img refuses" "$T/warn" || fail "no warning for a 3 TiB fixed image"
[ "$(our_size "$T/huge.vhd")" = $((3 << 40)) ] || fail "3 TiB fixed size"
[ "$(vhdi_size "$T/huge.vhd")" = $((3 << 40)) ] || fail "vhdiinfo 3 TiB size"
rm -f "$T/huge.vhd"

# Azure: fixed, whole MiB (rounded up), 20 MiB to 32 TiB, file = size + 512.
vhdtool create --azure "$T/az.vhd" $((30 * 1024 * 1024 + 1000)) >/dev/null
[ "$(our_size "$T/az.vhd")" = $((31 * 1024 * 1024)) ] || fail "azure rounding"
[ "$(stat -c %s "$T/az.vhd")" = $((31 * 1024 * 1024 + 512)) ] || fail "azure file size"
[ "$(vhdtool info --json "$T/az.vhd" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["vhd-type"])')" = fixed ] || fail "azure type"
expect_error "Azure" vhdtool create --azure "$T/small.vhd" 10M
expect_error "fixed" vhdtool create --azure -t dynamic "$T/small.vhd" 30M

# Creator and geometry: qem2 (qemu's current_size list), spec geometry.
vhdtool create "$T/geo.vhd" 1G >/dev/null
vhdtool info --json "$T/geo.vhd" >"$T/geo.json"
[ "$(json_get "$T/geo.json" 'j["creator-app"]')" = qem2 ] || fail "creator app"
[ "$(json_get "$T/geo.json" '"%d/%d/%d" % tuple(j["geometry"][k] for k in ("cylinders","heads","sectors"))')" = 2080/16/63 ] \
	|| fail "geometry of 1 GiB"
now=$(date +%s)
ts=$(json_get "$T/geo.json" 'j["timestamp"] + 946684800')
[ $((now - ts)) -lt 120 ] && [ $((now - ts)) -ge -5 ] || fail "timestamp $ts is not now ($now)"

# Differencing: size from the parent; SIZE refused.
vhdtool create "$T/base.vhd" 64M >/dev/null
vhdtool create -b "$T/base.vhd" "$T/child.vhd" >/dev/null
[ "$(our_size "$T/child.vhd")" = $((64 << 20)) ] || fail "child size"
expect_error "takes its size from the parent" vhdtool create -b "$T/base.vhd" "$T/c2.vhd" 1G
expect_error "differencing image needs a parent" vhdtool create -t differencing "$T/c3.vhd"
expect_error "not found|No such file" vhdtool create -b "$T/nothere.vhd" "$T/c4.vhd"
[ ! -e "$T/c4.vhd" ] || fail "failed differencing create left a file"
echo ok
