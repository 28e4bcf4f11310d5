# SPDX-License-Identifier: MIT
# Helpers for the boot suite: disks with a GPT and a FAT ESP built without
# mounting anything (sgdisk, mkfs.vfat, mtools), and QEMU + OVMF runs that
# end when a line appears on the serial console, when the guest powers
# off, or at a time limit.
. "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
requires qemu-system-x86_64
requires sgdisk
requires mkfs.vfat
requires mcopy
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -r $OVMF_CODE ] && [ -r $OVMF_VARS ] || { echo "SKIP: OVMF is not installed"; exit 77; }
VHDBOOT=${VHDBOOT:-$TOP/build/vhdboot.efi}
PAYLOAD=${PAYLOAD:-$TOP/build/boot-payload.efi}
[ -r "$VHDBOOT" ] || fail "$VHDBOOT is missing (make efi)"
export MTOOLS_SKIP_CHECK=1

# gpt_disk IMG SIZE_MIB: a disk image with an empty GPT.
gpt_disk() {
	rm -f "$1"
	truncate -s "$2M" "$1"
	sgdisk -o "$1" >/dev/null 2>&1 || fail "sgdisk cannot write a GPT on $1"
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

# esp_disk IMG: a 64 MiB disk whose ESP (FAT16, 1 MiB..41 MiB) holds the
# test payload as \EFI\BOOT\BOOTX64.EFI.
esp_disk() {
	gpt_disk "$1" 64
	add_part "$1" 1 1 40 ef00
	fat_format "$1" 1 40 16
	fat_put "$1" 1 "$PAYLOAD" /EFI/BOOT/BOOTX64.EFI
}

# run_qemu LOG PATTERN SECONDS DISK...: boot OVMF with the disks (virtio, raw),
# serial console to LOG; return as soon as PATTERN (grep -E) appears in LOG,
# the guest powers off, or SECONDS pass; QEMU is killed in every case.
run_qemu() {
	local log=$1 pattern=$2 secs=$3
	shift 3
	local drives=() d
	for d in "$@"; do drives+=(-drive "file=$d,format=raw,if=virtio"); done
	cp $OVMF_VARS "$T/vars.fd"
	: >"$log"
	timeout "$secs" qemu-system-x86_64 -accel tcg -machine q35 -m 512 -nographic -nodefaults \
		-serial stdio -no-reboot \
		-drive if=pflash,format=raw,readonly=on,file=$OVMF_CODE \
		-drive if=pflash,format=raw,file="$T/vars.fd" "${drives[@]}" \
		</dev/null >"$log" 2>&1 &
	local pid=$! n=0
	while kill -0 $pid 2>/dev/null; do
		if grep -qaE "$pattern" "$log"; then
			sleep 0.3
			break
		fi
		sleep 0.2
		n=$((n + 1))
	done
	pkill -P $pid 2>/dev/null || true
	kill $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	tr -d '\r' <"$log" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' >"$log.txt"
}

# expect_serial LOG TEXT: the cleaned serial log holds TEXT (fixed string).
expect_serial() {
	grep -qaF -- "$2" "$1.txt" || { tail -c 3000 "$1.txt" >&2; fail "serial console lacks: $2"; }
}
