#!/bin/bash
# SPDX-License-Identifier: MIT
# efiboot's exFAT extent map (efiboot/fsmap.c) through tests/tools/fsmap-cat:
# images made by mkfs.exfat and filled through exfat-fuse on a loop device
# (the kernel here has no exfat), with fragmented and contiguous (NoFatChain)
# files, long names over several name entries, nested folders, a file past
# 4 GiB with data across the 4 GiB mark, ValidDataLength short of the size
# (bytes past it read as zeros), and hostile images: a FAT cycle, a bad
# entry-set checksum, ValidDataLength past DataLength, a broken boot sector.
. "$(dirname "$0")/../functions.sh"
requires mkfs.exfat
requires mount.exfat-fuse
requires losetup
requires python3
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a loop device and a FUSE mount"; exit 77; }
[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
FSMAP_CAT=${FSMAP_CAT:-$(dirname "$VHDTOOL")/tests/fsmap-cat}
[ -x "$FSMAP_CAT" ] || fail "$FSMAP_CAT missing: make BUILD=$(dirname "$VHDTOOL") $(dirname "$VHDTOOL")/tests/fsmap-cat"
cat_() { "$FSMAP_CAT" "$@"; }

MNT=$T/mnt
LOOP=""
FUSE_PID=""
mkdir -p "$MNT"
unmount() {
	if mountpoint -q "$MNT"; then umount "$MNT" || umount -l "$MNT"; fi
	# The daemon runs in the foreground (-d): its exit means all is written.
	[ -z "$FUSE_PID" ] || wait "$FUSE_PID" || true
	[ -z "$LOOP" ] || losetup -d "$LOOP"
	FUSE_PID="" LOOP=""
}
on_exit unmount
mount_img() {
	LOOP=$(losetup -f --show "$1")
	mount.exfat-fuse -d "$LOOP" "$MNT" >"$T/fuse.log" 2>&1 &
	FUSE_PID=$!
	for _ in $(seq 100); do mountpoint -q "$MNT" && return 0; sleep 0.1; done
	cat "$T/fuse.log" >&2
	fail "exfat-fuse did not mount $1"
}

# exfat_tool IMG flags NAME | vdl NAME VALUE | break-checksum NAME | setfat CLUSTER VALUE | clusters PATH
#   (NAME: a file in the root directory)
exfat_tool() {
	/usr/bin/python3 - "$FSMAP_CAT" "$@" <<'EOF'
import struct, subprocess, sys
cat, img, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
f = open(img, 'r+b')
b = f.read(512)
fat_off, _, heap, _, root = struct.unpack_from('<IIIII', b, 80)
ss = 1 << b[108]
cs = ss << b[109]
def fat(c, v=None):
    f.seek(fat_off * ss + c * 4)
    if v is None:
        return struct.unpack('<I', f.read(4))[0]
    f.write(struct.pack('<I', v))
def root_entries():
    c, offs = root, []
    while 2 <= c < 0xFFFFFFF7:
        offs += [heap * ss + (c - 2) * cs + i for i in range(0, cs, 32)]
        c = fat(c)
    return offs
def find_set(name):
    offs = root_entries()
    for i, o in enumerate(offs):
        f.seek(o); e = f.read(32)
        if e[0] != 0x85:
            continue
        sets = [offs[i + k] for k in range(e[1] + 1)]
        raw = b''
        for o2 in sets:
            f.seek(o2); raw += f.read(32)
        n = raw[32 + 3]
        nm = b''.join(raw[64 + 32 * k + 2:64 + 32 * k + 32] for k in range(e[1] - 1))[:2 * n].decode('utf-16-le')
        if nm == name:
            return sets, bytearray(raw)
    sys.exit('no entry set for ' + name)
def write_set(sets, raw, fix=True):
    if fix:
        s = 0
        for i, x in enumerate(raw):
            if i not in (2, 3):
                s = ((0x8000 if s & 1 else 0) + (s >> 1) + x) & 0xFFFF
        struct.pack_into('<H', raw, 2, s)
    for k, o in enumerate(sets):
        f.seek(o); f.write(raw[32 * k:32 * k + 32])
if cmd == 'flags':
    print(find_set(args[0])[1][33])
elif cmd == 'vdl':
    sets, raw = find_set(args[0])
    struct.pack_into('<Q', raw, 40, int(args[1], 0))
    write_set(sets, raw)
elif cmd == 'break-checksum':
    sets, raw = find_set(args[0])
    raw[2] ^= 0x55
    write_set(sets, raw, fix=False)
elif cmd == 'setfat':
    fat(int(args[0], 0), int(args[1], 0))
elif cmd == 'clusters':
    out = subprocess.run([cat, img, args[0], '--extents'], check=True, capture_output=True, text=True).stdout.split('\n')
    cl = []
    for line in out[1:]:
        if line:
            fo, d, n = map(int, line.split())
            cl += [(d - heap * ss) // cs + 2 + i for i in range((n + cs - 1) // cs)]
    print(*cl)
EOF
}

# ---- a small volume: fragmented, contiguous, names, folders ----
img=$T/ex.img
truncate -s 64M "$img"
mkfs.exfat -c 4096 -L FSMAPTEST "$img" >/dev/null
mount_img "$img"
long="A Long Virtual Disk Name That Needs Several Name Entries.vhd"
mkdir -p "$MNT/Virtual Disks/Nested Folder"
# Two rounds of holes: one for frag.bin (in the root, for the hostile
# cases), one for the big file in the nested folder.
for i in $(seq 1 48); do rand_bytes "ex$i" $((1000 + (i % 24) * 700)) >"$T/s$i"; done
for i in $(seq 1 24); do cp "$T/s$i" "$MNT/filler$i.dat"; done
for i in $(seq 1 2 24); do rm "$MNT/filler$i.dat"; done
rand_bytes exfrag 100000 >"$T/frag"
cp "$T/frag" "$MNT/frag.bin"
for i in $(seq 25 48); do cp "$T/s$i" "$MNT/filler$i.dat"; done
for i in $(seq 25 2 48); do rm "$MNT/filler$i.dat"; done
rand_bytes exbig 700000 >"$T/big"
cp "$T/big" "$MNT/Virtual Disks/Nested Folder/$long"
rand_bytes excont 300000 >"$T/cont"
cp "$T/cont" "$MNT/contig.bin"
rand_bytes exvdl 100000 >"$T/vdl"
cp "$T/vdl" "$MNT/short-valid.bin"
: >"$MNT/empty.txt"
unmount

path="/Virtual Disks/Nested Folder/$long"
head=$(cat_ "$img" "$path" --extents | head -1)
case $head in "exFAT size 700000 valid 700000 cluster 4096 "*) ;; *) fail "exFAT: --extents says '$head'" ;; esac
n=$(cat_ "$img" "$path" --extents | sed -n 's/.* extents //p')
[ "$n" -ge 4 ] || fail "exFAT: the big file has $n extents: the image is not fragmented"
cat_ "$img" "$path" --extents | tail -n +2 | awk -v size=700000 '
	{ if ($1 != want) bad = "gap at " $1; if (NR > 1 && $2 == end) bad = "unmerged at " $1;
	  want = $1 + $3; end = $2 + $3 }
	END { if (want != size) bad = bad " ends at " want; if (bad) { print bad; exit 1 } }' ||
	fail "exFAT: extent list is not sorted, merged and whole"
same() { cat_ "$img" "$1" | cmp -s - "$2" || fail "exFAT: '$1' differs from what was written"; }
same "$path" "$T/big"
same "virtual disks\\NESTED FOLDER\\$(echo "$long" | tr 'a-z' 'A-Z')" "$T/big"
same "./Virtual Disks/../Virtual Disks/Nested Folder/./$long" "$T/big"
same "/frag.bin" "$T/frag"
[ "$(cat_ "$img" /frag.bin --extents | sed -n 's/.* extents //p')" -ge 3 ] || fail "frag.bin is not fragmented"
same "/CONTIG.BIN" "$T/cont"
same "/empty.txt" /dev/null
for i in $(seq 2 2 48); do same "filler$i.dat" "$T/s$i"; done
# exfat-fuse marks a file written in one go NoFatChain: the contiguous path.
flags=$(exfat_tool "$img" flags contig.bin)
[ $((flags & 2)) = 2 ] || fail "contig.bin is not NoFatChain (flags $flags): the contiguous path is untested"
[ "$(cat_ "$img" /contig.bin --extents | sed -n 's/.* extents //p')" = 1 ] || fail "contig.bin: not one extent"
expect_error "no such file: '/Virtual Disks/nope'" cat_ "$img" "/Virtual Disks/nope"
expect_error "is a directory" cat_ "$img" "/Virtual Disks/Nested Folder"
expect_error "is not a directory" cat_ "$img" "/contig.bin/x"
# ValidDataLength short of the size: the disk holds data past it, which
# must read as zeros.
exfat_tool "$img" vdl short-valid.bin 30000
cat_ "$img" short-valid.bin --extents | grep -q "^exFAT size 100000 valid 30000 " || fail "valid length not reported"
{ head -c 30000 "$T/vdl"; head -c 70000 /dev/zero; } | cmp -s - <(cat_ "$img" short-valid.bin) ||
	fail "bytes past ValidDataLength do not read as zeros"
echo "exFAT: $n extents, NoFatChain, long names, ValidDataLength: read as written"

# ---- hostile images ----
read -r c1 c2 _ <<<"$(exfat_tool "$img" clusters /frag.bin)"
[ -n "$c2" ] || fail "frag.bin clusters: $c1 $c2"
hostile() { # WHAT PATTERN PATH EDIT...
	local what=$1 pattern=$2 p=$3
	shift 3
	cp "$img" "$T/h.img"
	"$@"
	expect_error "$pattern" cat_ "$T/h.img" "$p"
	echo "  exFAT $what: $(cat "$T/.err")"
}
hostile "cycle" "cycle" /frag.bin exfat_tool "$T/h.img" setfat "$c2" "$c1"
hostile "short chain" "ends after 1 clusters" /frag.bin exfat_tool "$T/h.img" setfat "$c1" 0xFFFFFFFF
hostile "cluster out of range" "out of range" /frag.bin exfat_tool "$T/h.img" setfat "$c1" 0x7FFFFFFF
hostile "free cluster" "free cluster" /frag.bin exfat_tool "$T/h.img" setfat "$c1" 0
hostile "bad checksum" "no such file: '/frag.bin' \(corrupt entry sets were skipped\)" /frag.bin \
	exfat_tool "$T/h.img" break-checksum frag.bin
hostile "valid past size" "ValidDataLength 200000 is beyond DataLength" /frag.bin \
	exfat_tool "$T/h.img" vdl frag.bin 200000
bootbyte() { printf "$(printf '\\%03o' "$2")" | dd of="$T/h.img" bs=1 seek="$1" conv=notrunc status=none; }
hostile "sector shift" "BytesPerSectorShift 13" /frag.bin bootbyte 108 13
hostile "cluster size" "exceed 32 MiB" /frag.bin bootbyte 109 20
hostile "number of FATs" "NumberOfFats 3" /frag.bin bootbyte 110 3
hostile "FAT BPB bytes" "must be zero" /frag.bin bootbyte 11 2
hostile "cluster count" "cluster heap of" /frag.bin bootbyte 95 0x40
hostile "truncated partition" "larger than the partition" /frag.bin truncate -s 32M "$T/h.img"

# ---- past 4 GiB ----
# exfat-fuse zero-fills up to each write, so both files hold real zeros on
# disk (about 10 s each); ValidDataLength short of the size is the case
# above.  The data straddles the 4 GiB mark and sits at the very end.
big=$T/big.img
truncate -s 9G "$big"
mkfs.exfat "$big" >/dev/null
mount_img "$big"
size=4500000000
truncate -s $size "$MNT/sparse.vhd"
truncate -s $size "$T/want.vhd"
put_data "$T/want.vhd" b0 0 1048576
put_data "$T/want.vhd" b1 $((4 * 1024 * 1024 * 1024 - 1500)) 3000
put_data "$T/want.vhd" b2 $((size - 4096)) 4096
rand_bytes b0 1048576 | dd of="$MNT/data.vhd" bs=64k status=none
rand_bytes b1 3000 | dd of="$MNT/data.vhd" bs=64k seek=$((4 * 1024 * 1024 * 1024 - 1500)) oflag=seek_bytes conv=notrunc status=none
rand_bytes b2 4096 | dd of="$MNT/data.vhd" bs=64k seek=$((size - 4096)) oflag=seek_bytes conv=notrunc status=none
unmount
cat_ "$big" data.vhd --extents | grep -q "^exFAT size $size valid $size " || fail "data.vhd: $(cat_ "$big" data.vhd --extents | head -1)"
cat_ "$big" sparse.vhd --extents | grep -q "^exFAT size $size " || fail "sparse.vhd: $(cat_ "$big" sparse.vhd --extents | head -1)"
cat_ "$big" data.vhd | cmp - "$T/want.vhd" || fail "data.vhd: a file past 4 GiB reads wrong"
cat_ "$big" sparse.vhd | cmp - <(head -c $size /dev/zero) || fail "sparse.vhd does not read as zeros"
echo "exFAT: $size-byte files read back whole ($(cat_ "$big" data.vhd --extents | sed -n 's/.* extents //p') extent(s))"
echo ok
