#!/bin/bash
# SPDX-License-Identifier: MIT
# Write the seed inputs (seed-*) of tests/fuzz/corpus/fuzz_fsmap/: the
# smallest FAT12 and exFAT partitions mkfs makes (64 KiB), and a FAT16 one
# with its zero tail cut off (fuzz_fsmap reads zeros past the input in its
# second pass), each holding files at the paths fuzz_fsmap.c looks up,
# some of them fragmented.  The exFAT files go in through exfat-fuse on a
# loop device, so that seed needs root; without it the seed is an empty
# volume.  Inputs that `make fuzz` merged in (hash names) are left alone.
#   tests/fuzz/make-fsmap-seeds.sh        (run from the top of the tree)
set -eu
C=tests/fuzz/corpus/fuzz_fsmap
for t in mkfs.vfat mcopy mkfs.exfat; do
	command -v $t >/dev/null || { echo "$0: needs $t (scripts/deps.sh test)" >&2; exit 1; }
done
mkdir -p "$C"
rm -f "$C"/seed-*
W=$(mktemp -d /tmp/fsmap-seeds.XXXXXX)
MNT=$W/mnt
LOOP=""
PID=""
cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT" || umount -l "$MNT"; fi
	[ -z "$PID" ] || wait "$PID" || true
	[ -z "$LOOP" ] || losetup -d "$LOOP"
	rm -rf "$W"
}
trap cleanup EXIT
# Deterministic bytes, so the seeds are the same on every run.
bytes() { python3 -c 'import sys; n=int(sys.argv[2]); s=sys.argv[1].encode(); sys.stdout.buffer.write((s * (n // len(s) + 1))[:n])' "$1" "$2"; }
for f in a b c d e f g h; do bytes "$f" 700 >"$W/$f"; done
bytes DISK 3000 >"$W/disk"
bytes NESTED 5000 >"$W/nested"
bytes FRAG 2500 >"$W/frag"
: >"$W/empty"

fat_seed() { # BITS SIZE NAME
	img=$W/$3
	truncate -s "$2" "$img"
	# Fixed volume id and label: the same seed every run.
	mkfs.vfat -F "$1" -s 1 -i 12345678 -n SEED "$img" >/dev/null
	export MTOOLS_NO_VFAT=0
	for f in a b c d e f g h; do mcopy -i "$img" "$W/$f" "::/$f.dat"; done
	for f in a c e g; do mdel -i "$img" "::/$f.dat"; done
	mcopy -i "$img" "$W/frag" ::/frag.bin
	mmd -i "$img" "::/Virtual Disks" "::/Virtual Disks/Nested Folder"
	mcopy -i "$img" "$W/nested" "::/Virtual Disks/Nested Folder/Debian Bookworm Disk.vhd"
	mcopy -i "$img" "$W/disk" ::/DISK.VHD
	mcopy -i "$img" "$W/empty" ::/empty.txt
}
fat_seed 12 64K fat12.img
cp "$W/fat12.img" "$C/seed-fat12"
fat_seed 16 2100K fat16.img
# Cut the zero tail (whole 512-byte sectors).
python3 - "$W/fat16.img" "$C/seed-fat16-trimmed" <<'EOF'
import sys
b = open(sys.argv[1], 'rb').read().rstrip(b'\0')
n = (len(b) + 511) // 512 * 512
open(sys.argv[2], 'wb').write(open(sys.argv[1], 'rb').read()[:n])
EOF

img=$W/exfat.img
truncate -s 64K "$img"
mkfs.exfat -c 512 -b 512 -L SEED "$img" >/dev/null
if [ "$(id -u)" = 0 ] && command -v mount.exfat-fuse >/dev/null && [ -c /dev/fuse ]; then
	mkdir -p "$MNT"
	LOOP=$(losetup -f --show "$img")
	mount.exfat-fuse -d "$LOOP" "$MNT" >"$W/fuse.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
	mountpoint -q "$MNT" || { cat "$W/fuse.log" >&2; exit 1; }
	for f in a b c d e f g h; do cp "$W/$f" "$MNT/$f.dat"; done
	for f in a c e g; do rm "$MNT/$f.dat"; done
	cp "$W/frag" "$MNT/frag.bin"
	mkdir -p "$MNT/Virtual Disks/Nested Folder"
	cp "$W/nested" "$MNT/Virtual Disks/Nested Folder/Debian Bookworm Disk.vhd"
	cp "$W/disk" "$MNT/DISK.VHD"
	: >"$MNT/empty.txt"
	umount "$MNT"
	wait "$PID"
	PID=""
	losetup -d "$LOOP"
	LOOP=""
else
	echo "$0: not root or no exfat-fuse: the exFAT seed is an empty volume" >&2
fi
cp "$img" "$C/seed-exfat"
ls -l "$C"/seed-*
