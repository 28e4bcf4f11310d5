#!/bin/bash
# SPDX-License-Identifier: MIT
# vhdboot.efi starts Debian's kernel (an EFI application) from the ESP
# inside a dynamic VHD; the kernel's EFI stub loads its initramfs from the
# same virtual disk, and the initramfs's /init prints a marker and powers off.
. "$(dirname "$0")/lib.sh"
requires gcc
kdir=$("$TOP/tests/boot/fetch-kernel.sh") || fail "cannot fetch Debian's kernel"
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -1)

mkdir -p "$T/initramfs/dev" "$T/initramfs/proc"
gcc -static -O2 -o "$T/initramfs/init" "$TOP/tests/boot/init.c" || fail "cannot build the static init"
"$TOP/tests/boot/newc.py" "$T/initrd.img" "$T/initramfs" dev/console:c:5:1

gpt_disk "$T/inner.raw" 96
add_part "$T/inner.raw" 1 1 80 ef00
fat_format "$T/inner.raw" 1 80 32
fat_put "$T/inner.raw" 1 "$vmlinuz" /vmlinuz
fat_put "$T/inner.raw" 1 "$T/initrd.img" /initrd.img
vhdtool convert "$T/inner.raw" "$T/linux.vhd"

loader_disk "$T/host.raw" 150 /EFI/BOOT/BOOTX64.EFI
fat_put "$T/host.raw" 1 "$T/linux.vhd" /linux.vhd
fat_text "$T/host.raw" 1 /EFI/BOOT/vhdboot.conf \
	$'vhd=\\linux.vhd\nprogram=\\vmlinuz\ncmdline=initrd=\\initrd.img console=ttyS0 quiet panic=-1\n'
run_qemu "$T/linux.log" 'VHDBOOT-LINUX-OK|Kernel panic|vhdboot: error' 120 "$T/host.raw"
expect_serial "$T/linux.log" "vhdboot: starting \\vmlinuz initrd=\\initrd.img"
expect_serial "$T/linux.log" "VHDBOOT-LINUX-OK Linux 6."
echo ok
