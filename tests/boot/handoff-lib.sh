# SPDX-License-Identifier: MIT
# The handoff tests' disks: a VHD holding a GPT with an ESP (Debian's kernel
# and a test initramfs with the project's handoff scripts) and an ext4 root
# with a marker; a host disk whose FAT32 ESP holds vhdboot.efi and the VHD.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/initramfs.sh"
requires mkfs.ext4
requires debugfs
requires depmod
KDIR=$("$TOP/tests/boot/fetch-kernel.sh") || fail "cannot fetch Debian's kernel"
VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* | head -1)
HANDOFF_DIR=${HANDOFF_DIR:-$TOP/handoff}
VHD_HANDOFF=${VHD_HANDOFF:-$(dirname "$VHDTOOL")/vhd-handoff}

# handoff_initrd OUT: busybox, modules, the project's scripts and tools.
handoff_initrd() {
	local d=$T/initramfs
	rm -rf "$d"
	ird_start "$d"
	ird_modules "$d" "$KDIR" virtio_pci virtio_blk crc32c_generic ext4 vfat nls_cp437 nls_ascii nls_iso8859_1 \
		nls_utf8 exfat efivarfs dm-mod nbd nfit nd_pmem nd_btt
	mkdir -p "$d/scripts/local-top"
	cp "$HANDOFF_DIR/initramfs-tools/scripts/local-top/vhdboot" "$d/scripts/local-top/vhdboot"
	[ -f "$HANDOFF_DIR/initramfs-tools/scripts/functions" ] &&
		cp "$HANDOFF_DIR/initramfs-tools/scripts/functions" "$d/scripts/functions"
	ird_exec "$d" "$VHD_HANDOFF" "$VHDNBD" /usr/sbin/nbd-client
	# The scripts look for the tools on PATH.
	for b in "$VHD_HANDOFF" "$VHDNBD"; do
		[ "$(dirname "$b")" = /usr/sbin ] || ln -sf "$b" "$d/sbin/$(basename "$b")"
	done
	cp "$TOP/tests/boot/handoff-init" "$d/init"
	chmod 755 "$d/init"
	ird_pack "$d" "$1"
}

# linux_vhd_raw OUT INITRD: 128 MiB disk: ESP (1-65 MiB, FAT32: vmlinuz,
# initrd.img), root (66-126 MiB, ext4 with marker.txt).
linux_vhd_raw() {
	gpt_disk "$1" 128
	add_part "$1" 1 1 64 ef00
	add_part "$1" 2 66 60 8300
	fat_format "$1" 1 64 32
	fat_put "$1" 1 "$VMLINUZ" /vmlinuz
	fat_put "$1" 1 "$2" /initrd.img
	mkdir -p "$T/rootdir"
	echo "root of the VHD" >"$T/rootdir/marker.txt"
	rootfs_image "$T/root.img" 60 "$T/rootdir"
	dd if="$T/root.img" of="$1" bs=1M seek=66 conv=notrunc,sparse status=none
}

# host_disk OUT: 400 MiB disk, FAT32 ESP 1..390 MiB with vhdboot.efi.
host_disk() {
	gpt_disk "$1" 400
	add_part "$1" 1 1 390 ef00 0e6c5d1a-4b2f-4e8a-9c3d-5f7a8b9c0d1e
	fat_format "$1" 1 390 32
	fat_put "$1" 1 "$VHDBOOT" /EFI/BOOT/BOOTX64.EFI
}

# boot_handoff LOG CONF: write vhdboot.conf and boot until power-off.
boot_handoff() {
	fat_text "$T/host.raw" 1 /EFI/BOOT/vhdboot.conf "$2"
	run_qemu "$1" 'reboot: Power down|vhdboot: error|Kernel panic|handoff-test: FAILED' 180 "$T/host.raw"
	grep -q 'handoff-test: FAILED\|Kernel panic\|vhdboot: error' "$1.txt" &&
		{ grep -av "^\[ *[0-9.]*\]  " "$1.txt" | tail -40 >&2; fail "the handoff boot failed"; }
	return 0
}

# vhd_root_cat VHD PATH: a file of the root partition inside a VHD.
vhd_root_cat() {
	vhdtool convert -O raw --overwrite "$1" "$T/back.raw" >/dev/null
	dd if="$T/back.raw" of="$T/back.root" bs=1M skip=66 count=60 status=none
	ext4_cat "$T/back.root" "$2"
}

# host_get NAME OUT: copy a file out of the host ESP.
host_get() {
	mcopy -n -o -i "$T/host.raw@@1048576" "::/$1" "$2" || fail "no $1 on the host disk"
}
