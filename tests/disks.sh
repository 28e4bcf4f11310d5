# SPDX-License-Identifier: MIT
# Disk images with a GPT and FAT file systems, built without mounting
# anything (sgdisk, mkfs.vfat, mtools).  Sourced after functions.sh by the
# boot suite and the boot-check tests.
export MTOOLS_SKIP_CHECK=1

# gpt_disk IMG SIZE_MIB [NUM:START_MIB:SIZE_MIB:TYPE ...]: a disk image with
# a GPT and those partitions (one sgdisk run: each takes a while).
gpt_disk() {
	local img=$1 size=$2 args=() p n start len type
	shift 2
	for p in "$@"; do
		IFS=: read -r n start len type <<<"$p"
		args+=(-n "$n:$(( start * 2048 )):+${len}M" -t "$n:$type")
	done
	rm -f "$img"
	truncate -s "${size}M" "$img"
	sgdisk -o "${args[@]}" "$img" >/dev/null 2>&1 || fail "sgdisk cannot partition $img"
}

# add_part IMG NUM START_MIB SIZE_MIB TYPE [PARTUUID]: one GPT partition.
add_part() {
	local uuid=()
	[ $# -ge 6 ] && uuid=(-u "$2:$6")
	sgdisk -n "$2:$(( $3 * 2048 )):+$4M" -t "$2:$5" "${uuid[@]}" "$1" >/dev/null 2>&1 ||
		fail "sgdisk cannot add partition $2 to $1"
}

# fat_format IMG START_MIB SIZE_MIB FATBITS: a FAT file system in that place.
fat_format() {
	local part=$T/.fat.$$
	rm -f "$part"
	truncate -s "$3M" "$part"
	mkfs.vfat -F "$4" "$part" >/dev/null || fail "mkfs.vfat failed"
	dd if="$part" of="$1" bs=1M seek="$2" conv=notrunc,sparse status=none
	rm -f "$part"
}

# fat_put IMG START_MIB SRC DEST: copy SRC to DEST (a path like /EFI/BOOT/X),
# making the folders on the way; replaces DEST.
fat_put() {
	local img="$1@@$(( $2 * 1048576 ))" dir="" part
	local IFS=/
	for part in $(dirname "$4"); do
		[ -n "$part" ] || continue
		dir="$dir/$part"
		mmd -i "$img" "::$dir" 2>/dev/null || true
	done
	unset IFS
	mcopy -o -i "$img" "$3" "::$4" || fail "mcopy $3 -> $4 failed"
}

# fat_text IMG START_MIB DEST TEXT: write TEXT into a file.
fat_text() {
	printf '%s' "$4" >"$T/.text"
	fat_put "$1" "$2" "$T/.text" "$3"
}

