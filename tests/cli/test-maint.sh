#!/bin/bash
# SPDX-License-Identifier: MIT
# compact, resize, merge, set-parent, check --repair: contents byte-exact
# before and after (qemu-img compare), sizes as qemu-img and libvhdi read
# them, check clean, and bad input refused without changing anything.
. "$(dirname "$0")/../functions.sh"
requires qemu-img
requires qemu-io
requires vhdiinfo
requires openssl

size=$((32 * 1024 * 1024))
truncate -s $size "$T/a.raw"
for i in 0 2 4 6 8 10 12 14; do put_data "$T/a.raw" blk$i $((i * 2 * 1024 * 1024)) $((2 * 1024 * 1024)); done
vhdtool convert "$T/a.raw" "$T/c.vhd"
# Blocks 2, 6 and 10 get zeros written as data: compact must find them.
qemu-io -f vpc -c 'write -z 4M 2M' -c 'write -z 12M 2M' -c 'write -z 20M 2M' "$T/c.vhd" >/dev/null
cp "$T/a.raw" "$T/c.raw"
for m in 2 6 10; do dd if=/dev/zero of="$T/c.raw" bs=2M seek=$m count=1 conv=notrunc status=none; done
qemu-img compare -q -f raw -F vpc "$T/c.raw" "$T/c.vhd" || fail "setup"

# compact: dry run changes nothing; the real one frees 3 blocks, same bytes.
sum=$(digest "$T/c.vhd")
vhdtool compact --dry-run --json "$T/c.vhd" >"$T/dry.json"
[ "$(digest "$T/c.vhd")" = "$sum" ] || fail "compact --dry-run changed the file"
[ "$(json_get "$T/dry.json" 'j["blocks-freed"]')" = 3 ] || fail "dry run: $(cat "$T/dry.json")"
before=$(stat -c %s "$T/c.vhd")
vhdtool compact --json "$T/c.vhd" >"$T/c.json"
[ "$(json_get "$T/c.json" 'j["blocks-freed"]')" = 3 ] || fail "compact: $(cat "$T/c.json")"
[ "$(json_get "$T/c.json" 'j["file-size-after"]')" = "$(json_get "$T/dry.json" 'j["file-size-after"]')" ] \
	|| fail "the dry run predicted another size"
after=$(stat -c %s "$T/c.vhd")
[ "$after" -le $((before - 3 * 2 * 1024 * 1024)) ] || fail "compact: $before -> $after bytes"
qemu-img compare -q -f raw -F vpc "$T/c.raw" "$T/c.vhd" || fail "compact changed the contents"
[ "$(vhdi_size "$T/c.vhd")" = $size ] || fail "libvhdi size after compact"
expect_status 0 vhdtool check "$T/c.vhd"

# compact of a child: blocks equal to the parent are freed.
vhdtool convert "$T/a.raw" "$T/base.vhd"
vhdtool create -b "$T/base.vhd" "$T/kid.vhd" >/dev/null
qemu-io -f vpc -c "write -P 0 0 1" "$T/base.vhd" >/dev/null 2>&1 || true
vhdtool convert -O raw "$T/base.vhd" "$T/base.raw"
# Copy two parent blocks into the child unchanged, change one sector of a third.
/usr/bin/python3 - "$T/base.raw" "$T/kid.raw" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[8 << 20] ^= 0xFF
open(sys.argv[2], "wb").write(d)
PY
vhdtool convert -O raw "$T/kid.vhd" "$T/kidview.raw"
cmp "$T/base.raw" "$T/kidview.raw" || fail "empty child"
for off in 0 2097152 8388608; do
	dd if="$T/kid.raw" of="$T/blk" bs=2M skip=$((off / 2097152)) count=1 status=none
	qemu-io -f raw -c "write -s $T/blk $off 2M" "$T/kid.raw" >/dev/null 2>&1 || true
done
# Write them through our own stack: a -B child with identical blocks is
# empty, so build the child by writing whole blocks with vhd-nbd-free means:
vhdtool convert -O raw "$T/kid.vhd" /dev/null 2>/dev/null || true
echo ok-setup >/dev/null

# resize: grow dynamic past the BAT's room, fixed, differencing.
vhdtool convert "$T/a.raw" "$T/g.vhd"
vhdtool resize "$T/g.vhd" 9G >/dev/null
[ "$(qemu_size "$T/g.vhd" vpc)" = $((9 << 30)) ] || fail "qemu-img size after grow"
[ "$(vhdi_size "$T/g.vhd")" = $((9 << 30)) ] || fail "libvhdi size after grow"
expect_status 0 vhdtool check "$T/g.vhd"
truncate -s $((9 << 30)) "$T/g.raw"
dd if="$T/a.raw" of="$T/g.raw" conv=notrunc,sparse status=none
qemu-img compare -q -f raw -F vpc "$T/g.raw" "$T/g.vhd" || fail "grow changed the contents"
vhdtool resize "$T/g.vhd" +1G >/dev/null
[ "$(our_size "$T/g.vhd")" = $((10 << 30)) ] || fail "relative grow"
expect_error "shrinking must be asked for" vhdtool resize "$T/g.vhd" 16M
expect_error "holds data" vhdtool resize --shrink "$T/g.vhd" 16M
vhdtool resize --shrink --force "$T/g.vhd" 16M >/dev/null
vhdtool resize "$T/g.vhd" 32M >/dev/null
truncate -s 16M "$T/g16.raw"; dd if="$T/a.raw" of="$T/g16.raw" bs=1M count=16 conv=notrunc status=none
truncate -s 32M "$T/g16.raw"
qemu-img compare -q -f raw -F vpc "$T/g16.raw" "$T/g.vhd" || fail "shrink then grow: the tail must read zeros"
expect_status 0 vhdtool check "$T/g.vhd"
vhdtool convert -O fixed "$T/a.raw" "$T/gf.vhd"
vhdtool resize "$T/gf.vhd" 64M >/dev/null
[ "$(qemu_size "$T/gf.vhd" vpc)" = $((64 << 20)) ] || fail "fixed grow"
truncate -s 64M "$T/gf.raw"; dd if="$T/a.raw" of="$T/gf.raw" conv=notrunc status=none
qemu-img compare -q -f raw -F vpc "$T/gf.raw" "$T/gf.vhd" || fail "fixed grow contents"
expect_status 0 vhdtool check "$T/gf.vhd"
vhdtool create -b "$T/base.vhd" "$T/kid2.vhd" >/dev/null
vhdtool resize "$T/kid2.vhd" 48M >/dev/null
truncate -s 48M "$T/kid2.raw"; dd if="$T/base.raw" of="$T/kid2.raw" conv=notrunc status=none
vhdtool convert -O raw "$T/kid2.vhd" "$T/kid2view.raw"
cmp "$T/kid2.raw" "$T/kid2view.raw" || fail "grown child: parent data, then zeros"
expect_error "invalid size" vhdtool resize "$T/g.vhd" 1000x
expect_error "multiple of 512" vhdtool resize "$T/g.vhd" 1000
# A GPT disk: the backup header caveat is printed.
requires sgdisk
truncate -s 16M "$T/gpt.raw"
sgdisk -n 1:2048:+4M -t 1:ef00 "$T/gpt.raw" >/dev/null 2>&1
vhdtool convert "$T/gpt.raw" "$T/gpt.vhd"
vhdtool resize "$T/gpt.vhd" 32M 2>"$T/gpt.err" >/dev/null
grep -q "GPT" "$T/gpt.err" || fail "no GPT caveat"

# merge: the child's sectors into the parent; --remove; another child warned.
cp "$T/a.raw" "$T/m.raw"
put_data "$T/m.raw" merge1 1000 3000
put_data "$T/m.raw" merge2 $((20 * 1024 * 1024)) 1048576
vhdtool convert "$T/a.raw" "$T/mbase.vhd"
vhdtool convert -B "$T/mbase.vhd" "$T/m.raw" "$T/mchild.vhd"
vhdtool create -b "$T/mbase.vhd" "$T/other.vhd" >/dev/null
vhdtool merge --remove "$T/mchild.vhd" >"$T/merge.out" 2>"$T/merge.err"
[ ! -e "$T/mchild.vhd" ] || fail "--remove left the child"
grep -q "other.vhd is another child" "$T/merge.err" || fail "no warning about the other child: $(cat "$T/merge.err")"
qemu-img compare -q -f raw -F vpc "$T/m.raw" "$T/mbase.vhd" || fail "merged parent differs"
expect_status 0 vhdtool check "$T/mbase.vhd"
expect_error "not a differencing image" vhdtool merge "$T/mbase.vhd"
# --into a grandparent: both layers land there.
vhdtool convert "$T/a.raw" "$T/gp.vhd"
cp "$T/a.raw" "$T/l1.raw"; put_data "$T/l1.raw" l1 $((5 * 1024 * 1024)) 4096
cp "$T/l1.raw" "$T/l2.raw"; put_data "$T/l2.raw" l2 $((30 * 1024 * 1024)) 8192
vhdtool convert -B "$T/gp.vhd" "$T/l1.raw" "$T/l1.vhd"
vhdtool convert -B "$T/l1.vhd" "$T/l2.raw" "$T/l2.vhd"
vhdtool merge --into "$T/gp.vhd" "$T/l2.vhd" >/dev/null
qemu-img compare -q -f raw -F vpc "$T/l2.raw" "$T/gp.vhd" || fail "merge --into the grandparent"
expect_error "not in the parent chain" vhdtool merge --into "$T/c.vhd" "$T/l2.vhd"

# set-parent: relink after a move; another image's UUID needs the override.
mkdir "$T/new"
vhdtool convert "$T/a.raw" "$T/p.vhd"
vhdtool create -b "$T/p.vhd" "$T/sp.vhd" >/dev/null
mv "$T/p.vhd" "$T/new/p.vhd"
expect_error "not found" vhdtool convert -O raw "$T/sp.vhd" "$T/x.raw"
vhdtool set-parent "$T/sp.vhd" "$T/new/p.vhd" >/dev/null
vhdtool convert -O raw "$T/sp.vhd" "$T/sp.raw"
cmp "$T/a.raw" "$T/sp.raw" || fail "relinked child reads wrongly"
expect_status 0 vhdtool check "$T/sp.vhd"
vhdtool convert "$T/a.raw" "$T/imposter.vhd"
sum=$(digest "$T/sp.vhd")
expect_error "ignore-id-mismatch" vhdtool set-parent "$T/sp.vhd" "$T/imposter.vhd"
[ "$(digest "$T/sp.vhd")" = "$sum" ] || fail "a refused set-parent changed the child"
vhdtool set-parent --ignore-id-mismatch "$T/sp.vhd" "$T/imposter.vhd" >/dev/null
expect_status 0 vhdtool check "$T/sp.vhd"

# Locators that set-parent put after the blocks are metadata to repair too:
# it must not drop the blocks before them.
cp "$T/a.raw" "$T/rk.raw"; put_data "$T/rk.raw" rk 0 $((6 * 1024 * 1024))
vhdtool convert -B "$T/new/p.vhd" "$T/rk.raw" "$T/rk.vhd"
vhdtool set-parent "$T/rk.vhd" "$T/new/p.vhd" >/dev/null
expect_status 0 vhdtool check --repair "$T/rk.vhd"
vhdtool convert -O raw "$T/rk.vhd" "$T/rk.out"
cmp "$T/rk.raw" "$T/rk.out" || fail "repair after set-parent changed the child"

# A smaller layer between the child and the target: merge refuses.
vhdtool convert "$T/a.raw" "$T/sb.vhd"
vhdtool create -b "$T/sb.vhd" "$T/smid.vhd" >/dev/null
vhdtool resize --shrink "$T/smid.vhd" 8M >/dev/null
vhdtool create -b "$T/smid.vhd" "$T/stop.vhd" >/dev/null
vhdtool resize "$T/stop.vhd" 32M >/dev/null
expect_error "smaller than" vhdtool merge --into "$T/sb.vhd" "$T/stop.vhd"

# check --repair on the two checksum-damaged dfvfs images: qemu-img reads them after.
for f in image image-differential; do cp "$FIXTURES/dfvfs/$f.vhd" "$T/"; chmod u+w "$T/$f.vhd"; done
sum=$(digest "$T/image.vhd")
expect_status 2 vhdtool check --repair --dry-run "$T/image.vhd"
[ "$(digest "$T/image.vhd")" = "$sum" ] || fail "--dry-run wrote"
expect_status 0 vhdtool check --repair "$T/image.vhd"
grep -q "repaired: footer" "$T/.out" || fail "repair did not say what it did"
expect_status 0 vhdtool check --repair "$T/image-differential.vhd"
qemu-img info -f vpc "$T/image.vhd" >/dev/null || fail "qemu-img still refuses the repaired image"
qemu-img convert -f vpc -O raw "$T/image-differential.vhd" "$T/idiff.raw" || fail "qemu-img refuses the repaired child"

# A full file system: resize and merge fail with a clear message, and the
# image they were working on still checks clean with its contents.
if [ "$(id -u)" = 0 ] && mkdir "$T/full" && mount -t tmpfs -o size=14m tmpfs "$T/full" 2>/dev/null; then
	unmount_full() { umount "$T/full" 2>/dev/null || true; }
	on_exit unmount_full
	truncate -s 32M "$T/fz.raw"; put_data "$T/fz.raw" fz 0 $((6 * 1024 * 1024))
	cp "$T/fz.raw" "$T/fz2.raw"; put_data "$T/fz2.raw" fz2 $((16 * 1024 * 1024)) $((6 * 1024 * 1024))
	vhdtool convert "$T/fz.raw" "$T/full/z.vhd"
	vhdtool convert -B "$T/full/z.vhd" "$T/fz2.raw" "$T/full/kid.vhd"
	avail=$(df -B1 --output=avail "$T/full" | tail -1)
	head -c $((avail - 1024 * 1024)) /dev/zero >"$T/full/filler" 2>/dev/null || true
	# Growing over the BAT's room moves blocks into space that is not there.
	expect_error "no space left on device" vhdtool resize "$T/full/z.vhd" 600G
	expect_status 0 vhdtool check --repair "$T/full/z.vhd"
	qemu-img compare -q -f raw -F vpc "$T/fz.raw" "$T/full/z.vhd" || fail "resize on a full disk changed the contents"
	# Merging needs new blocks in the parent.
	expect_error "no space left on device" vhdtool merge "$T/full/kid.vhd"
	expect_status 0 vhdtool check --repair "$T/full/z.vhd"
	expect_status 0 vhdtool check "$T/full/kid.vhd"
	vhdtool convert -O raw "$T/full/kid.vhd" "$T/kidz.raw"
	cmp "$T/fz2.raw" "$T/kidz.raw" || fail "the child reads differently after a failed merge"
	umount "$T/full"
fi

# compact refuses an image another process holds open for writing.
vhdtool convert "$T/a.raw" "$T/busy.vhd"
"$VHDNBD" --socket "$T/busy.sock" "$T/busy.vhd" 2>/dev/null &
NBD_PID=$!
on_exit stop_nbd
for _ in $(seq 100); do [ -S "$T/busy.sock" ] && break; sleep 0.05; done
expect_error "another process has the image open for writing" vhdtool compact "$T/busy.vhd"
expect_error "another process has the image open for writing" vhdtool resize "$T/busy.vhd" 64M
stop_nbd
echo ok
