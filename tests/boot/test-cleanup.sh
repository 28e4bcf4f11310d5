#!/bin/bash
# SPDX-License-Identifier: MIT
# A boot that fails after the loader put a disk in place leaves nothing
# behind for whatever the firmware starts next: the UEFI shell runs
# vhdboot.efi on a VHD whose ESP holds no program, once with its own
# virtual disk and once with handoff=ramdisk, and then lists the disks
# (map -r) and the reserved memory (memmap): neither the virtual disk
# (VenHw with vhdboot's GUID) nor the RAM disk (VirtualDisk) is left, and
# the reserved pages are what they were before.
. "$(dirname "$0")/lib.sh"

noprog_vhd "$T/noprog.vhd"

loader_disk "$T/host.raw" 100 /EFI/vhdboot/vhdboot.efi
fat_put "$T/host.raw" 1 "$T/noprog.vhd" /noprog.vhd
fat_text "$T/host.raw" 1 /startup.nsh "$(printf '%s\r\n' \
	'fs0:' \
	'echo CLEANUP-BEFORE' \
	'memmap' \
	'echo CLEANUP-RUN-1' \
	'\EFI\vhdboot\vhdboot.efi vhd=\noprog.vhd' \
	'echo CLEANUP-RUN-2' \
	'\EFI\vhdboot\vhdboot.efi vhd=\noprog.vhd handoff=ramdisk' \
	'echo CLEANUP-AFTER' \
	'map -r' \
	'memmap' \
	'echo CLEANUP-DONE')"

run_qemu "$T/cleanup.log" '^CLEANUP-DONE' 150 "$T/host.raw"
log=$T/cleanup.log.txt
grep -qx CLEANUP-DONE "$log" || { tail -c 3000 "$log" >&2; fail "the shell script did not finish"; }
section() { sed -n "/^$1\$/,/^$2\$/p" "$log"; }
[ "$(section CLEANUP-RUN-1 CLEANUP-RUN-2 | grep -c 'vhdboot: error: program not found')" = 1 ] ||
	{ section CLEANUP-RUN-1 CLEANUP-RUN-2 >&2; fail "run 1: want one 'program not found' line"; }
[ "$(section CLEANUP-RUN-2 CLEANUP-AFTER | grep -c 'vhdboot: error: program not found')" = 1 ] ||
	{ section CLEANUP-RUN-2 CLEANUP-AFTER >&2; fail "run 2: want one 'program not found' line"; }
expect_serial "$T/cleanup.log" "vhdboot: copying the 64 MiB disk into memory"
grep -q "still in use" "$log" && fail "the loader could not remove a disk: $(grep 'still in use' "$log")"

after=$(section CLEANUP-AFTER CLEANUP-DONE)
grep -q "FS0:" <<<"$after" || { echo "$after" >&2; fail "map -r listed no file systems"; }
grep -qi "VenHw(5D1A7E3C" <<<"$after" && { echo "$after" >&2; fail "vhdboot's virtual disk is still installed"; }
grep -qi "VirtualDisk(" <<<"$after" && { echo "$after" >&2; fail "the RAM disk is still registered"; }

# memmap's summary line: "Reserved  : N Pages (M Bytes)".
reserved() { grep -m1 -E '^ *Reserved *:' | tr -s ' '; }
r0=$(section CLEANUP-BEFORE CLEANUP-RUN-1 | reserved)
r1=$(section CLEANUP-AFTER CLEANUP-DONE | reserved)
[ -n "$r0" ] || { section CLEANUP-BEFORE CLEANUP-RUN-1 >&2; fail "memmap printed no Reserved line"; }
[ "$r0" = "$r1" ] || fail "reserved memory before: '$r0', after: '$r1'"
echo "reserved memory before and after: $r0"
echo ok
