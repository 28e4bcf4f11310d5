#!/bin/bash
# SPDX-License-Identifier: MIT
# handoff=linear: the OS keeps its root on a VHD through device-mapper over
# the file's extents.  vhdboot.efi passes the extents (on the command line,
# or in an EFI variable when the file is fragmented); the initramfs's
# vhd-handoff checks the file has not moved or changed size, maps it, and
# the root inside is mounted, read and written.  The writes land in the VHD
# on the host disk.  A forged (stale) extent list or size is refused and
# nothing is mounted.
. "$(dirname "$0")/handoff-lib.sh"
CONF_BASE=$'program=\\vmlinuz\nhandoff=linear\ncmdline=initrd=\\initrd.img console=ttyS0 panic=-1\n'

handoff_initrd "$T/initrd.img"
linux_vhd_raw "$T/linux.raw" "$T/initrd.img"
host_disk "$T/host.raw"

# 1. A fixed VHD, contiguous: the lists fit on the command line.
vhdtool convert -O fixed "$T/linux.raw" "$T/fixed.vhd"
fat_put "$T/host.raw" 1 "$T/fixed.vhd" /fixed.vhd
boot_handoff "$T/fixed.log" "vhd=\\fixed.vhd"$'\n'"$CONF_BASE"
expect_serial "$T/fixed.log" "vhd.handoff=linear vhd.host=PARTUUID=0e6c5d1a-4b2f-4e8a-9c3d-5f7a8b9c0d1e vhd.path=/fixed.vhd"
grep -qa 'vhd\.dm=[0-9]' "$T/fixed.log.txt" || fail "the extents were not on the command line"
expect_serial "$T/fixed.log" "handoff-test: marker: root of the VHD"
expect_serial "$T/fixed.log" "handoff-test: wrote boot-1.txt"
host_get fixed.vhd "$T/fixed.after"
[ "$(vhd_root_cat "$T/fixed.after" /boot-1.txt)" = "written by boot 1 over linear" ] ||
	fail "the write did not reach the fixed VHD"
expect_status 0 vhdtool check "$T/fixed.after"
params=$(grep -a '^vhdboot: starting' "$T/fixed.log.txt" | grep -o 'vhd\.handoff=.*')

# 1b/1c. The same file with a long command line of the user's, at the
#     kernel's limit (2048 bytes with the NUL; it cuts the rest silently).
#     One byte over with the lists: they go to the EFI variable, whose two
#     "efivar" words are shorter.  Exactly at the limit: they stay.
opts=$(grep -a '^vhdboot: starting' "$T/fixed.log.txt" | sed 's/^vhdboot: starting [^ ]* //')
long_line() { # LOG LENGTH: boot with the line of boot 1, " pad=" and padding
	local pad="pad=$(head -c $(($2 - ${#opts} - 5)) /dev/zero | tr '\0' x)"
	boot_handoff "$1" "vhd=\\fixed.vhd"$'\n'"${CONF_BASE%$'\n'} $pad"$'\n'
}
long_line "$T/long.log" 2048
expect_serial "$T/long.log" "handoff-test: vhd.fext=efivar"
expect_serial "$T/long.log" "handoff-test: wrote boot-2.txt"
long_line "$T/limit.log" 2047
grep -qa "handoff-test: vhd.fext=[0-9]" "$T/limit.log.txt" || fail "at 2047 bytes the lists left the line"
expect_serial "$T/limit.log" "handoff-test: wrote boot-3.txt"

# 2. A preallocated dynamic VHD written into the holes of a fragmented FAT:
#    the lists are too long for the command line and go to an EFI variable.
vhdtool convert "$T/linux.raw" "$T/dyn.vhd"
vhdtool preallocate "$T/dyn.vhd" >/dev/null
head -c $((256 << 10)) /dev/zero >"$T/filler"
for i in $(seq 1 120); do fat_put "$T/host.raw" 1 "$T/filler" "/fill/f$i"; done
for i in $(seq 1 2 120); do mdel -i "$T/host.raw@@1048576" "::/fill/f$i"; done
# mtools allocates after the FSInfo "next free" hint: point it at the start.
printf '\xff\xff\xff\xff' | dd of="$T/host.raw" bs=1 seek=$((1048576 + 512 + 492)) conv=notrunc status=none
# In a folder with a blank: the loader quotes vhd.path= (next_arg() splits at blanks).
fat_put "$T/host.raw" 1 "$T/dyn.vhd" "/my vhds/dyn.vhd"
boot_handoff "$T/dyn.log" "vhd=\\my vhds\\dyn.vhd"$'\n'"$CONF_BASE"
expect_serial "$T/dyn.log" 'vhd.path="/my vhds/dyn.vhd"'
expect_serial "$T/dyn.log" "vhd.fext=efivar vhd.dm=efivar"
expect_serial "$T/dyn.log" "handoff-test: marker: root of the VHD"
expect_serial "$T/dyn.log" "handoff-test: wrote boot-1.txt"
host_get "my vhds/dyn.vhd" "$T/dyn.after"
[ "$(vhd_root_cat "$T/dyn.after" /boot-1.txt)" = "written by boot 1 over linear" ] ||
	fail "the write did not reach the dynamic VHD"
expect_status 0 vhdtool check "$T/dyn.after"

# 3. The file changed after a loader mapped it: boot with the parameters
#    boot 1 got (handoff=none, so the loader adds none of its own) once the
#    file has moved, and once it has grown.  Refused with one clear line;
#    nothing mapped, nothing mounted, the file untouched.
refused() { # NAME
	fat_text "$T/host.raw" 1 /EFI/BOOT/vhdboot.conf \
		$'vhd=\\fixed.vhd\nprogram=\\vmlinuz\ncmdline=initrd=\\initrd.img console=ttyS0 panic=-1 '"$params"$'\n'
	run_qemu "$T/$1.log" 'reboot: Power down|Kernel panic|vhdboot: error' 180 "$T/host.raw"
	expect_serial "$T/$1.log" "refusing to map it"
	expect_serial "$T/$1.log" "handoff-test: FAILED: local-top/vhdboot failed"
	grep -qa "handoff-test: marker" "$T/$1.log.txt" && fail "$1: the root was mounted"
	echo "$1: $(grep -a 'refusing to map it' "$T/$1.log.txt" | head -1)"
}
# Moved: the same bytes, written again after a small file took their start.
mdel -i "$T/host.raw@@1048576" ::/fixed.vhd
head -c 65536 /dev/zero >"$T/pad"
fat_put "$T/host.raw" 1 "$T/pad" /pad
fat_put "$T/host.raw" 1 "$T/fixed.after" /fixed.vhd
refused moved
# Resized: grown by 1 MiB.
cp "$T/fixed.after" "$T/fixed.grown"
vhdtool resize "$T/fixed.grown" +1M >/dev/null 2>&1
fat_put "$T/host.raw" 1 "$T/fixed.grown" /fixed.vhd
refused resized
host_get fixed.vhd "$T/fixed.final"
cmp -s "$T/fixed.final" "$T/fixed.grown" || fail "a refused boot changed the VHD"
echo ok
