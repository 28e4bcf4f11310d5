#!/bin/bash
# SPDX-License-Identifier: MIT
# A fixed VHD larger than 4 GiB (FAT32 cannot hold it) on an exFAT
# partition, which the firmware cannot read: vhdboot.efi maps the file on
# exFAT itself and boots the payload from an ESP that lies past 4 GiB in
# the virtual disk.  The loader is started from the UEFI shell
# (startup.nsh) with its settings in LoadOptions, the shell's way: the
# loader's own path first, then vhd=PARTUUID=...:\path, writable=yes and
# cmdline=.  Nothing but the loader changes the host disk.
. "$(dirname "$0")/lib.sh"
requires mkfs.exfat
requires mount.exfat-fuse
requires losetup
[ -e /dev/fuse ] || fail "/dev/fuse is missing: the exFAT test needs FUSE (exfat-fuse)"

partuuid=6a1c5a3e-2f4b-4c1d-9e8f-0123456789ab
# The inner disk: 4400 MiB, its ESP at 4300 MiB.
truncate -s 4400M "$T/inner.raw"
sgdisk -o -n 1:$((4300 * 2048)):+40M -t 1:ef00 "$T/inner.raw" >/dev/null 2>&1 || fail "sgdisk"
fat_format "$T/inner.raw" 4300 40 16
fat_put "$T/inner.raw" 4300 "$PAYLOAD" /EFI/BOOT/BOOTX64.EFI

# The host disk: a FAT32 ESP with the loader and startup.nsh, and an exFAT
# partition with the VHD.
gpt_disk "$T/host.raw" 4700
add_part "$T/host.raw" 1 1 64 ef00
add_part "$T/host.raw" 2 66 4600 0700 "$partuuid"
fat_format "$T/host.raw" 1 64 32
fat_put "$T/host.raw" 1 "$VHDBOOT" /EFI/vhdboot/vhdboot.efi
fat_text "$T/host.raw" 1 /startup.nsh \
	"fs0:\\EFI\\vhdboot\\vhdboot.efi vhd=PARTUUID=${partuuid^^}:\\disks\\big.vhd writable=yes cmdline=from-shell on=exfat"$'\r\n'

mnt=$T/mnt
mkdir -p "$mnt"
loop=$(losetup -f --show -o $((66 * 1048576)) --sizelimit $((4600 * 1048576)) "$T/host.raw") ||
	fail "losetup failed"
release() { fusermount -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true; losetup -d "$loop" 2>/dev/null || true; }
on_exit release
mkfs.exfat "$loop" >/dev/null || fail "mkfs.exfat failed"
mount.exfat-fuse "$loop" "$mnt" >/dev/null 2>&1 || fail "cannot mount the exFAT partition with FUSE"
mkdir "$mnt/disks"
vhdtool convert -O fixed "$T/inner.raw" "$mnt/disks/big.vhd"
size=$(stat -c %s "$mnt/disks/big.vhd")
[ "$size" -gt $((4 << 30)) ] || fail "big.vhd is only $size bytes"
release
# exfat-fuse wrote the zeros out: give the host file its holes back.
fallocate --dig-holes "$T/host.raw" 2>/dev/null || true
sum_before=$(sha256sum <"$T/host.raw")

run_qemu "$T/exfat.log" 'VHDBOOT-PAYLOAD|vhdboot: error' 120 "$T/host.raw"
expect_serial "$T/exfat.log" "vhdboot: \\disks\\big.vhd: fixed VHD, 4 GiB, writable"
expect_serial "$T/exfat.log" "VHDBOOT-PAYLOAD-OK"
expect_serial "$T/exfat.log" "options=[from-shell on=exfat]"
[ "$(sha256sum <"$T/host.raw")" = "$sum_before" ] || fail "booting changed the host disk"

loop=$(losetup -f --show -r -o $((66 * 1048576)) --sizelimit $((4600 * 1048576)) "$T/host.raw")
mount.exfat-fuse -o ro "$loop" "$mnt" >/dev/null 2>&1 || fail "cannot mount the exFAT partition again"
expect_status 0 vhdtool check "$mnt/disks/big.vhd"
echo ok
