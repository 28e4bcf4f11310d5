#!/bin/bash
# SPDX-License-Identifier: MIT
# handoff=ramdisk: vhdboot.efi copies a dynamic VHD into reserved memory and
# registers it with EFI_RAM_DISK_PROTOCOL; Debian's kernel starts from the
# RAM disk, Linux shows it as /dev/pmem0 (NFIT), the initramfs mounts the
# root inside, reads its marker and writes a file.  The RAM disk is
# volatile: the VHD on the host disk is unchanged afterwards.
. "$(dirname "$0")/handoff-lib.sh"

handoff_initrd "$T/initrd.img"
linux_vhd_raw "$T/linux.raw" "$T/initrd.img"
vhdtool convert "$T/linux.raw" "$T/linux.vhd"
host_disk "$T/host.raw"
fat_put "$T/host.raw" 1 "$T/linux.vhd" /linux.vhd

boot_handoff "$T/ram.log" $'vhd=\\linux.vhd\nprogram=\\vmlinuz\nhandoff=ramdisk\ncmdline=initrd=\\initrd.img console=ttyS0 panic=-1\n'
expect_serial "$T/ram.log" "vhdboot: copying the 128 MiB disk into memory"
expect_serial "$T/ram.log" "vhd.handoff=ramdisk"
expect_serial "$T/ram.log" "handoff-test: marker: root of the VHD"
expect_serial "$T/ram.log" "handoff-test: wrote boot-1.txt"
grep -q "pmem0" "$T/ram.log.txt" || fail "Linux did not show the RAM disk as pmem0"

host_get linux.vhd "$T/after.vhd"
cmp -s "$T/after.vhd" "$T/linux.vhd" || fail "the VHD changed: the RAM disk is meant to be volatile"
[ -z "$(vhd_root_cat "$T/after.vhd" /boot-1.txt)" ] || fail "boot-1.txt reached the VHD"
[ "$(vhd_root_cat "$T/after.vhd" /marker.txt)" = "root of the VHD" ] || fail "marker unreadable on the host"
expect_status 0 vhdtool check "$T/after.vhd"
echo ok
