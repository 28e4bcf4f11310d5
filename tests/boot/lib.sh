# SPDX-License-Identifier: MIT
# Helpers for the boot suite: disks with a GPT and a FAT ESP built without
# mounting anything (sgdisk, mkfs.vfat, mtools), and QEMU + OVMF runs that
# end when a line appears on the serial console, when the guest powers
# off, or at a time limit.
. "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../disks.sh"
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

# esp_disk IMG: a 64 MiB disk whose ESP (FAT16, 1 MiB..41 MiB) holds the
# test payload as \EFI\BOOT\BOOTX64.EFI.
esp_disk() {
	gpt_disk "$1" 64
	add_part "$1" 1 1 40 ef00
	fat_format "$1" 1 40 16
	fat_put "$1" 1 "$PAYLOAD" /EFI/BOOT/BOOTX64.EFI
}

# loader_disk IMG MIB PATH: a MIB MiB host disk whose FAT32 ESP (1 MiB up
# to 10 MiB before the end) holds vhdboot.efi as PATH.
loader_disk() {
	gpt_disk "$1" "$2"
	add_part "$1" 1 1 $(($2 - 10)) ef00
	fat_format "$1" 1 $(($2 - 10)) 32
	fat_put "$1" 1 "$VHDBOOT" "$3"
}

# noprog_vhd VHD: a dynamic VHD of a 64 MiB disk whose ESP (FAT16) holds
# no program.
noprog_vhd() {
	gpt_disk "$T/noprog.raw" 64
	add_part "$T/noprog.raw" 1 1 40 ef00
	fat_format "$T/noprog.raw" 1 40 16
	fat_text "$T/noprog.raw" 1 /readme.txt "nothing to boot"
	vhdtool convert "$T/noprog.raw" "$1"
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
