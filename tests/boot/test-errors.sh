#!/bin/bash
# SPDX-License-Identifier: MIT
# Every failure of vhdboot.efi is one clear line on the serial console, and
# the loader returns to the firmware (whose boot manager says so) instead
# of hanging: a missing VHD, a bad checksum, a missing parent, a disk with
# no ESP, a missing program, a bad vhdboot.conf, writable= on a dynamic
# image, a partition GUID that no partition has, and a command line too long
# for the kernel once the handoff's parameters are added.
. "$(dirname "$0")/lib.sh"

esp_disk "$T/good.raw"
vhdtool convert "$T/good.raw" "$T/good.vhd"
# Dynamic header checksum broken (the header follows the footer copy at 0).
cp "$T/good.vhd" "$T/badsum.vhd"
printf '\xde\xad' | dd of="$T/badsum.vhd" bs=1 seek=$((512 + 36)) conv=notrunc status=none
# A child whose parent is not on the disk.
(cd "$T" && vhdtool convert good.raw gone.vhd && vhdtool convert -B gone.vhd good.raw orphan.vhd)
# A GPT whose only partition holds no file system.
gpt_disk "$T/noesp.raw" 64
add_part "$T/noesp.raw" 1 1 40 8300
vhdtool convert "$T/noesp.raw" "$T/noesp.vhd"
# An ESP without any program.
noprog_vhd "$T/noprog.vhd"

# A 1 GiB disk for handoff=ramdisk on a 512 MiB machine.
vhdtool create "$T/huge.vhd" 1G >/dev/null

loader_disk "$T/host.raw" 100 /EFI/BOOT/BOOTX64.EFI
for f in good badsum orphan noesp noprog huge; do fat_put "$T/host.raw" 1 "$T/$f.vhd" "/$f.vhd"; done

n=0
error_case() { # NAME CONF EXPECTED-TEXT...
	local name=$1 conf=$2
	shift 2
	fat_text "$T/host.raw" 1 /EFI/BOOT/vhdboot.conf "$conf"
	run_qemu "$T/$name.log" 'BdsDxe: failed to start|VHDBOOT-PAYLOAD' 90 "$T/host.raw"
	local t
	for t in "$@"; do expect_serial "$T/$name.log" "$t"; done
	[ "$(grep -c '^vhdboot: error:' "$T/$name.log.txt")" = 1 ] ||
		{ cat "$T/$name.log.txt" >&2; fail "$name: want exactly one error line"; }
	expect_serial "$T/$name.log" "BdsDxe: failed to start"
	grep -q VHDBOOT-PAYLOAD "$T/$name.log.txt" && fail "$name: the payload ran"
	n=$((n + 1))
	echo "$name: $(grep '^vhdboot: error:' "$T/$name.log.txt")"
}

error_case missing $'vhd=\\nope\\disk.vhd\n' "vhdboot: error: VHD not found" '\nope\disk.vhd'
error_case badsum $'vhd=\\badsum.vhd\n' "vhdboot: error: bad checksum in \\badsum.vhd" "dynamic header checksum mismatch"
error_case orphan $'vhd=\\orphan.vhd\n' "vhdboot: error: cannot open \\orphan.vhd" "gone.vhd"
error_case noesp $'vhd=\\noesp.vhd\n' "vhdboot: error: no ESP inside \\noesp.vhd"
error_case noprog $'vhd=\\noprog.vhd\n' "vhdboot: error: program not found: no \\EFI\\BOOT\\BOOTX64.EFI"
error_case noprog2 $'vhd=\\good.vhd\nprogram=\\EFI\\other\\loader.efi\n' \
	"vhdboot: error: program not found: \\EFI\\other\\loader.efi"
error_case conf $'vhd=\\good.vhd\ncolour=blue\n' "vhdboot: error: \\EFI\\BOOT\\vhdboot.conf: line 2: unknown key 'colour'"
error_case noconf $'# no vhd= at all\n' "vhdboot: error:" "vhd"
error_case writable $'vhd=\\good.vhd\nwritable=yes\n' "vhdboot: error: writable=yes needs a fixed VHD"
error_case partuuid $'vhd=PARTUUID=01234567-89ab-cdef-0123-456789abcdef:\\good.vhd\n' \
	"no partition with PARTUUID 01234567-89ab-cdef-0123-456789abcdef"
error_case ramdisk $'vhd=\\huge.vhd\nhandoff=ramdisk\n' \
	"vhdboot: error: handoff=ramdisk: not enough memory: the disk needs 1024 MiB"
long=$(head -c 2000 /dev/zero | tr '\0' x)
error_case longline $'vhd=\\good.vhd\nhandoff=nbd\ncmdline=pad='"$long"$'\n' \
	"vhdboot: error: handoff=nbd: the kernel command line would be" "the kernel keeps 2048"
echo "$n failure cases, each one line on the serial console"
echo ok
