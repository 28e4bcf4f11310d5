#!/bin/bash
# SPDX-License-Identifier: MIT
# dracut module for vhdboot's OS handoff (docs/handoff.md, handoff/dracut/README).

check() {
	require_binaries vhd-handoff || return 1
	return 255 # only when asked for: dracut --add vhdboot
}

depends() {
	return 0
}

installkernel() {
	instmods dm-mod nbd nfit nd_pmem efivarfs vfat exfat ext4 nls_cp437 nls_ascii nls_utf8
}

install() {
	inst_multiple vhd-handoff mount mkdir sleep modprobe blockdev cat cp chmod
	inst_multiple -o vhd-nbd nbd-client
	inst_script "$moddir/vhdboot.sh" /sbin/vhdboot-handoff
	# After udev has settled (the host disk's driver is loaded), before
	# dracut waits for root= to appear.
	inst_hook initqueue/settled 50 "$moddir/vhdboot-settled.sh"
}
