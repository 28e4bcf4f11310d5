#!/bin/bash
# SPDX-License-Identifier: MIT
# handoff=nbd: the root lives in a dynamic VHD (and in a differencing child
# over a parent) served by vhd-nbd from the initramfs, attached as
# /dev/nbd0 by the kernel's nbd driver.  Writes persist: the host's VHD
# holds the new file after power-off (through /run/initramfs/shutdown), a
# second boot reads it, the parent of a child stays unchanged, and every
# VHD passes vhdtool check.
. "$(dirname "$0")/handoff-lib.sh"
CONF_BASE=$'program=\\vmlinuz\nhandoff=nbd\ncmdline=initrd=\\initrd.img console=ttyS0 panic=-1\n'

handoff_initrd "$T/initrd.img"
linux_vhd_raw "$T/linux.raw" "$T/initrd.img"
host_disk "$T/host.raw"

# A dynamic VHD, booted twice.
vhdtool convert "$T/linux.raw" "$T/dyn.vhd"
fat_put "$T/host.raw" 1 "$T/dyn.vhd" /vhd/dyn.vhd
boot_handoff "$T/dyn1.log" "vhd=\\vhd\\dyn.vhd"$'\n'"$CONF_BASE"
expect_serial "$T/dyn1.log" "vhd.handoff=nbd vhd.host=PARTUUID=0e6c5d1a-4b2f-4e8a-9c3d-5f7a8b9c0d1e vhd.path=/vhd/dyn.vhd"
expect_serial "$T/dyn1.log" "handoff-test: marker: root of the VHD"
expect_serial "$T/dyn1.log" "handoff-test: wrote boot-1.txt"
expect_serial "$T/dyn1.log" "handoff-test: leaving through /run/initramfs/shutdown"
expect_serial "$T/dyn1.log" "vhd-handoff shutdown: in the initramfs: vhd-nbd closed the VHD; poweroff"
host_get vhd/dyn.vhd "$T/dyn.after1"
expect_status 0 vhdtool check "$T/dyn.after1"
[ "$(vhd_root_cat "$T/dyn.after1" /boot-1.txt)" = "written by boot 1 over nbd" ] ||
	fail "the first boot's file is not in the VHD"

boot_handoff "$T/dyn2.log" "vhd=\\vhd\\dyn.vhd"$'\n'"$CONF_BASE"
expect_serial "$T/dyn2.log" "handoff-test: found boot-1.txt: written by boot 1 over nbd"
expect_serial "$T/dyn2.log" "handoff-test: wrote boot-2.txt"
host_get vhd/dyn.vhd "$T/dyn.after2"
expect_status 0 vhdtool check "$T/dyn.after2"
[ "$(vhd_root_cat "$T/dyn.after2" /boot-2.txt)" = "written by boot 2 over nbd" ] ||
	fail "the second boot's file is not in the VHD"

# A differencing child over a parent, both on the host partition.
(cd "$T" && vhdtool convert linux.raw base.vhd && vhdtool convert -B base.vhd linux.raw child.vhd)
fat_put "$T/host.raw" 1 "$T/base.vhd" /vhd/base.vhd
fat_put "$T/host.raw" 1 "$T/child.vhd" /vhd/child.vhd
boot_handoff "$T/child.log" "vhd=\\vhd\\child.vhd"$'\n'"$CONF_BASE"
expect_serial "$T/child.log" "differencing VHD"
expect_serial "$T/child.log" "handoff-test: wrote boot-1.txt"
host_get vhd/base.vhd "$T/base.after"
host_get vhd/child.vhd "$T/child.after"
cmp -s "$T/base.after" "$T/base.vhd" || fail "the parent changed"
mv "$T/child.after" "$T/child2.vhd"
expect_status 0 vhdtool check "$T/child2.vhd"
[ "$(vhd_root_cat "$T/child2.vhd" /boot-1.txt)" = "written by boot 1 over nbd" ] ||
	fail "the write is not in the child"
[ -z "$(vhd_root_cat "$T/base.vhd" /boot-1.txt)" ] || fail "the write reached the parent"
echo ok
