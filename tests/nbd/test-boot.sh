#!/bin/bash
# SPDX-License-Identifier: MIT
# A hypervisor boots from a VHD exported by vhd-nbd: QEMU with OVMF reads
# the GPT and the FAT32 ESP inside a dynamic VHD, runs startup.nsh from it,
# and the marker appears on the serial console.
. "$(dirname "$0")/../functions.sh"
requires qemu-system-x86_64
requires sgdisk
requires mkfs.vfat
requires mcopy
CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -r $CODE ] && [ -r $VARS ] || { echo "SKIP: OVMF is not installed"; exit 77; }

marker="VHD-NBD-BOOT-$$"
truncate -s 80M "$T/disk.raw"
sgdisk -n 1:2048:+64M -t 1:ef00 "$T/disk.raw" >/dev/null 2>&1
sgdisk -p "$T/disk.raw" | grep -q "EF00" || fail "sgdisk made no ESP"
truncate -s 64M "$T/esp.img"
mkfs.vfat -F 32 "$T/esp.img" >/dev/null
printf 'echo %s\r\nreset -s\r\n' "$marker" >"$T/startup.nsh"
mcopy -i "$T/esp.img" "$T/startup.nsh" ::/startup.nsh
dd if="$T/esp.img" of="$T/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
vhdtool convert "$T/disk.raw" "$T/disk.vhd"

start_nbd --export boot="$T/disk.vhd"
cp $VARS "$T/vars.fd"
timeout 60 qemu-system-x86_64 -accel tcg -machine q35 -m 256 -nographic -nodefaults \
	-serial stdio -no-reboot \
	-drive if=pflash,format=raw,readonly=on,file=$CODE \
	-drive if=pflash,format=raw,file="$T/vars.fd" \
	-drive "file=nbd+unix:///boot?socket=$SOCK,format=raw,if=virtio" \
	</dev/null >"$T/serial.log" 2>&1 || true
grep -q "$marker" "$T/serial.log" || { tail -c 2000 "$T/serial.log"; fail "no boot marker on the serial console"; }
stop_nbd || fail "server did not stop cleanly"
expect_status 0 vhdtool check "$T/disk.vhd"
echo ok
