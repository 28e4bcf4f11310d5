#!/bin/bash
# SPDX-License-Identifier: MIT
# efiboot's FAT extent map (efiboot/fsmap.c) through tests/tools/fsmap-cat:
# FAT12/16/32 images made by mkfs.vfat and filled by mtools, with files
# fragmented on purpose, long and 8.3 names and nested folders, read back
# byte for byte against mcopy; then hostile images (a broken BPB, a FAT
# cycle, a chain too short, clusters out of range, a directory that loops)
# must fail with one clear line, never crash.  exFAT: test-fsmap-exfat.sh.
. "$(dirname "$0")/../functions.sh"
requires mkfs.vfat
requires mcopy
requires python3
FSMAP_CAT=${FSMAP_CAT:-$(dirname "$VHDTOOL")/tests/fsmap-cat}
[ -x "$FSMAP_CAT" ] || fail "$FSMAP_CAT missing: make BUILD=$(dirname "$VHDTOOL") $(dirname "$VHDTOOL")/tests/fsmap-cat"
cat_() { "$FSMAP_CAT" "$@"; }

# fat_tool IMG clusters PATH | setfat CLUSTER VALUE | dirent NAME11 | bpb OFF SIZE VALUE
#   clusters: the file's clusters in order (from fsmap-cat --extents);
#   setfat: write one entry of the first FAT; dirent: byte offset of the
#   8.3 entry; bpb: overwrite a little-endian BPB field.
fat_tool() {
	/usr/bin/python3 - "$FSMAP_CAT" "$@" <<'EOF'
import struct, subprocess, sys
cat, img, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
b = open(img, 'rb').read(512)
bps, spc, rsvd, nfats, rootents = struct.unpack_from('<HBHBH', b, 11)
fatsz = struct.unpack_from('<H', b, 22)[0] or struct.unpack_from('<I', b, 36)[0]
data = (rsvd + nfats * fatsz + (rootents * 32 + bps - 1) // bps) * bps
cs = bps * spc
if cmd == 'clusters':
    out = subprocess.run([cat, img, args[0], '--extents'], check=True, capture_output=True, text=True).stdout.split('\n')
    bits = {'FAT12': 12, 'FAT16': 16, 'FAT32': 32}[out[0].split()[0]]
    cl = []
    for line in out[1:]:
        if line:
            f, d, n = map(int, line.split())
            cl += [(d - data) // cs + 2 + i for i in range((n + cs - 1) // cs)]
    print(bits, *cl)
elif cmd == 'setfat':
    bits, c, v = int(args[0]), int(args[1], 0), int(args[2], 0)
    with open(img, 'r+b') as f:
        base = rsvd * bps
        if bits == 12:
            f.seek(base + c + c // 2); w = struct.unpack('<H', f.read(2))[0]
            w = (w & 0x000F) | (v << 4) if c & 1 else (w & 0xF000) | v
            f.seek(base + c + c // 2); f.write(struct.pack('<H', w))
        elif bits == 16:
            f.seek(base + c * 2); f.write(struct.pack('<H', v))
        else:
            f.seek(base + c * 4); f.write(struct.pack('<I', v))
elif cmd == 'dirent':
    whole = open(img, 'rb').read()
    at = whole.find(args[0].encode(), data if rootents == 0 else 0)
    while at >= 0 and at % 32:
        at = whole.find(args[0].encode(), at + 1)
    if at < 0:
        sys.exit('no entry ' + args[0])
    print(at)
elif cmd == 'bpb':
    off, size, v = int(args[0]), int(args[1]), int(args[2], 0)
    with open(img, 'r+b') as f:
        f.seek(off); f.write(v.to_bytes(size, 'little'))
EOF
}

same_as_mcopy() { # IMG PATH-IN-FSMAP PATH-IN-MTOOLS
	mcopy -n -o -i "$1" "::$3" "$T/want" || fail "mcopy $3"
	cat_ "$1" "$2" >"$T/got" || fail "fsmap-cat $1 '$2' failed"
	cmp -s "$T/got" "$T/want" || fail "$1: '$2' differs from mcopy's '$3'"
}

# Fragment on purpose: small files interleaved, every other one deleted,
# then the big files fill the holes.  On FAT32 mtools starts allocating at
# the FSInfo hint; clearing it makes it reuse the holes too.
make_fat() { # BITS SIZE IMG
	truncate -s "$2" "$3"
	mkfs.vfat -F "$1" -n "FSMAP$1" "$3" >/dev/null
	mmd -i "$3" "::/Virtual Disks" "::/Virtual Disks/Nested Folder" ::/SHORT
	for i in $(seq 1 24); do
		rand_bytes "s$1-$i" $((1000 + i * 700)) >"$T/s$i"
		mcopy -i "$3" "$T/s$i" "::/filler$i.dat"
	done
	for i in $(seq 1 2 24); do mdel -i "$3" "::/filler$i.dat"; done
	[ "$1" != 32 ] || printf '\377\377\377\377' | dd of="$3" bs=1 seek=$((512 + 492)) conv=notrunc status=none
	rand_bytes "big$1" 700000 >"$T/big"
	mcopy -i "$3" "$T/big" "::/Virtual Disks/Nested Folder/Debian Bookworm Disk.vhd"
	rand_bytes "mid$1" 5000 >"$T/mid"
	mcopy -i "$3" "$T/mid" "::/SHORT/DATA.BIN"
	: >"$T/empty"
	mcopy -i "$3" "$T/empty" "::/Empty File.txt"
	rand_bytes "root$1" 12345 >"$T/root"
	mcopy -i "$3" "$T/root" "::/root-file.bin"
	# A hostile target: its own root entry and a chain of several clusters.
	mcopy -i "$3" "$T/big" "::/HOSTILE.BIN"
}

for bits in 12 16 32; do
	case $bits in 12) size=4M ;; 16) size=24M ;; 32) size=40M ;; esac
	img=$T/fat$bits.img
	make_fat $bits $size "$img"
	path="/Virtual Disks/Nested Folder/Debian Bookworm Disk.vhd"
	head=$(cat_ "$img" "$path" --extents | head -1)
	case $head in "FAT$bits size 700000 valid 700000 "*) ;; *) fail "FAT$bits: --extents says '$head'" ;; esac
	n=$(cat_ "$img" "$path" --extents | sed -n 's/.* extents //p')
	[ "$n" -ge 4 ] || fail "FAT$bits: the big file has $n extents: the image is not fragmented"
	# Sorted, merged (no two consecutive extents adjacent on disk), covering [0, size).
	cat_ "$img" "$path" --extents | tail -n +2 | awk -v size=700000 '
		{ if ($1 != want) bad = "gap at " $1; if (NR > 1 && $2 == end) bad = "unmerged at " $1;
		  want = $1 + $3; end = $2 + $3 }
		END { if (want != size) bad = bad " ends at " want; if (bad) { print bad; exit 1 } }' ||
		fail "FAT$bits: extent list is not sorted, merged and whole"
	same_as_mcopy "$img" "$path" "$path"
	same_as_mcopy "$img" "virtual disks\\NESTED FOLDER\\debian bookworm disk.VHD" "$path"
	same_as_mcopy "$img" "\\Virtual Disks\\.\\SHORT\\..\\Nested Folder/./Debian Bookworm Disk.vhd" "$path"
	same_as_mcopy "$img" "/../VIRTUA~1/NESTED~1/DEBIAN~1.VHD" "$path"
	same_as_mcopy "$img" "short/data.bin" "/SHORT/DATA.BIN"
	same_as_mcopy "$img" "/Empty File.txt" "/Empty File.txt"
	same_as_mcopy "$img" "ROOT-FILE.BIN" "/root-file.bin"
	for i in $(seq 2 2 24); do same_as_mcopy "$img" "filler$i.dat" "/filler$i.dat"; done
	# A partition inside a bigger disk.
	{ head -c 1048576 /dev/zero; cat "$img"; } >"$T/disk.img"
	cat_ --offset 1048576 "$T/disk.img" "$path" | cmp -s - "$T/big" || fail "FAT$bits: --offset"
	expect_error "no such file: '/filler3.dat'" cat_ "$img" /filler3.dat
	expect_error "no such file: '/Virtual Disks/Nested Folder/nope'" cat_ "$img" "/Virtual Disks/Nested Folder/nope"
	expect_error "is a directory" cat_ "$img" "/Virtual Disks"
	expect_error "root directory" cat_ "$img" "/"
	expect_error "is not a directory" cat_ "$img" "/root-file.bin/x"
	expect_error "not valid UTF-8" cat_ "$img" "$(printf '/\377\376')"
	echo "FAT$bits: $n extents, names and paths read as mcopy does"

	# ---- hostile images: one defect each ----
	read -r fb c1 c2 c3 _ <<<"$(fat_tool "$img" clusters /HOSTILE.BIN)"
	[ "$fb" = "$bits" ] && [ -n "$c3" ] || fail "FAT$bits: HOSTILE.BIN clusters: $fb $c1 $c2 $c3"
	case $bits in 12) eoc=0xFFF; bad=0xFF7; big=0xFF0 ;; 16) eoc=0xFFFF; bad=0xFFF7; big=0xFFF0 ;;
		32) eoc=0x0FFFFFFF; bad=0x0FFFFFF7; big=0x0FFFFF00 ;; esac
	hostile() { # WHAT PATTERN PATH EDIT...
		local what=$1 pattern=$2 p=$3
		shift 3
		cp "$img" "$T/h.img"
		"$@"
		expect_error "$pattern" cat_ "$T/h.img" "$p"
		echo "  FAT$bits $what: $(cat "$T/.err")"
	}
	hostile "cycle" "cycle" /HOSTILE.BIN fat_tool "$T/h.img" setfat $bits "$c2" "$c1"
	hostile "short chain" "ends after 1 clusters" /HOSTILE.BIN fat_tool "$T/h.img" setfat $bits "$c1" $eoc
	hostile "cluster out of range" "out of range" /HOSTILE.BIN fat_tool "$T/h.img" setfat $bits "$c1" $big
	hostile "free cluster" "free cluster" /HOSTILE.BIN fat_tool "$T/h.img" setfat $bits "$c2" 0
	hostile "bad cluster" "bad cluster" /HOSTILE.BIN fat_tool "$T/h.img" setfat $bits "$c1" $bad
	ent=$(fat_tool "$img" dirent "HOSTILE BIN")
	hostile "size past the volume" "larger than the volume" /HOSTILE.BIN \
		fat_tool "$T/h.img" bpb $((ent + 28)) 4 0xFFFFFFF0
	far_start() {
		fat_tool "$T/h.img" bpb $((ent + 26)) 2 0xFFF0
		[ "$bits" != 32 ] || fat_tool "$T/h.img" bpb $((ent + 20)) 2 0x0FFF
	}
	hostile "first cluster out of range" "starts at cluster [0-9]+, out of range" /HOSTILE.BIN far_start
	hostile "bytes per sector" "bytes per sector 3000" /HOSTILE.BIN fat_tool "$T/h.img" bpb 11 2 3000
	hostile "sectors per cluster" "sectors per cluster 3" /HOSTILE.BIN fat_tool "$T/h.img" bpb 13 1 3
	hostile "no FAT" "no FAT" /HOSTILE.BIN fat_tool "$T/h.img" bpb 16 1 0
	hostile "huge FAT" "no data region" /HOSTILE.BIN fat_tool "$T/h.img" bpb 22 2 0xFFFF
	hostile "no signature" "no boot signature" /HOSTILE.BIN fat_tool "$T/h.img" bpb 510 2 0
	hostile "truncated partition" "larger than the partition" /HOSTILE.BIN \
		truncate -s $(( $(stat -c %s "$img") - 4096 )) "$T/h.img"
	# A directory whose chain loops onto itself, all its entries deleted
	# (no end marker): the scan must stop, not spin.
	read -r _ d1 _ <<<"$(fat_tool "$img" clusters /SHORT/DATA.BIN)"
	dent=$(fat_tool "$img" dirent "SHORT      ")
	dclus=$(od -An -tu2 -j $((dent + 26)) -N2 "$img" | tr -d ' ')
	[ "$bits" != 32 ] || dclus=$((dclus + 65536 * $(od -An -tu2 -j $((dent + 20)) -N2 "$img" | tr -d ' ')))
	cs=$(( $(od -An -tu2 -j 11 -N2 "$img" | tr -d ' ') * $(od -An -tu1 -j 13 -N1 "$img" | tr -d ' ') ))
	doff=$(cat_ "$img" /SHORT/DATA.BIN --extents | awk 'NR == 2 { print $2 }')
	dir_off=$((doff - (d1 - dclus) * cs))
	loop_dir() {
		fat_tool "$T/h.img" setfat $bits "$dclus" "$dclus"
		head -c "$cs" /dev/zero | tr '\0' '\345' | dd of="$T/h.img" bs=1 seek="$dir_off" conv=notrunc status=none
	}
	hostile "directory loop" "a cycle" /SHORT/NOPE.BIN loop_dir
done

echo ok
