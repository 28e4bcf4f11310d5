#!/bin/bash
# SPDX-License-Identifier: MIT
# vhdtool boot-check: disks built with sgdisk, mkfs.vfat and mtools (nothing
# mounted), as fixed, dynamic and differencing VHDs: a bootable ESP, a
# program found only through the \EFI\*\ search, --program, no GPT, no
# protective MBR, no ESP, an ESP that is not FAT or is exFAT, broken GPT
# headers and arrays (the backup takes over, as in firmware), a backup
# header off the last LBA, a chain whose program lives in the child; exit
# codes, messages and JSON fields.  --dest: a plain folder, a FAT32 mounted
# with fusefat and an exFAT mounted with exfat-fuse, when FUSE works here.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/../disks.sh"
requires sgdisk
requires mkfs.vfat
requires mcopy
requires python3

# esp_disk IMG: 64 MiB, ESP FAT16 at 1..41 MiB (empty), a Linux partition after it.
esp_disk() {
	gpt_disk "$1" 64 1:1:40:ef00 2:41:20:8300
	fat_format "$1" 1 40 16
}

PE="MZ this stands for an EFI program"

# bc EXPECTED_STATUS IMG ARGS...: boot-check --json into $T/j.json, and the
# same in text into $T/.out/.err; both must exit EXPECTED_STATUS.
bc() {
	local want=$1 img=$2
	shift 2
	expect_status "$want" vhdtool boot-check --json "$@" "$img"
	cp "$T/.out" "$T/j.json"
	json_get "$T/j.json" 'j["bootable"]' >/dev/null || { cat "$T/j.json"; fail "boot-check --json: not JSON"; }
	expect_status "$want" vhdtool boot-check "$@" "$img"
}
jq_is() { # EXPR WANT
	local got
	got=$(json_get "$T/j.json" "$1")
	[ "$got" = "$2" ] || { cat "$T/j.json" >&2; fail "JSON $1 is '$got', expected '$2'"; }
}
err_has() { grep -qF -- "$1" "$T/.err" || { cat "$T/.out" "$T/.err" >&2; fail "stderr lacks: $1"; }; }
err_lacks() { ! grep -qF -- "$1" "$T/.err" || { cat "$T/.err" >&2; fail "stderr has: $1"; }; }
out_has() { grep -qF -- "$1" "$T/.out" || { cat "$T/.out" >&2; fail "stdout lacks: $1"; }; }

# every_type RAW NAME: NAME.fixed.vhd, NAME.dynamic.vhd and NAME.child.vhd
# (an empty differencing child of the dynamic one).
every_type() {
	vhdtool convert -O fixed "$1" "$T/$2.fixed.vhd"
	vhdtool convert -O dynamic "$1" "$T/$2.dynamic.vhd"
	vhdtool create -t differencing -b "$T/$2.dynamic.vhd" "$T/$2.child.vhd" >/dev/null
}

# ---- bootable: \EFI\BOOT\BOOTX64.EFI ----
esp_disk "$T/boot.raw"
fat_text "$T/boot.raw" 1 /EFI/BOOT/BOOTX64.EFI "$PE"
every_type "$T/boot.raw" boot
for t in fixed dynamic child; do
	bc 0 "$T/boot.$t.vhd"
	out_has 'bootable: vhdboot.efi would start \EFI\BOOT\BOOTX64.EFI from partition 1 (FAT16)'
	jq_is 'j["bootable"]' True
	jq_is 'j["reason"]' None
	jq_is 'j["esp"]' 1
	jq_is 'j["program"]' '\EFI\BOOT\BOOTX64.EFI'
	jq_is 'j["protective-mbr"]' True
	jq_is 'j["gpt"]["header"]' primary
	jq_is 'j["gpt"]["backup-at-end"]' True
	jq_is 'j["gpt"]["backup-lba"]' $(( 64 * 2048 - 1 ))
	jq_is 'len(j["partitions"])' 2
	jq_is 'j["partitions"][0]["type-name"]' 'EFI System'
	jq_is 'j["partitions"][0]["filesystem"]' FAT16
	jq_is 'j["partitions"][0]["offset"]' 1048576
	jq_is 'j["partitions"][0]["size"]' $(( 40 << 20 ))
	jq_is 'j["partitions"][1]["esp"]' False
	jq_is 'j["partitions"][1]["type-name"]' 'Linux filesystem'
	jq_is 'j["warnings"]' '[]'
done
jq_is 'j["vhd-type"]' differencing

# ---- the \EFI\*\ search: shimx64.efi in any folder before grubx64.efi ----
esp_disk "$T/shim.raw"
fat_text "$T/shim.raw" 1 /EFI/aaa/grubx64.efi "$PE"
fat_text "$T/shim.raw" 1 /EFI/debian/shimx64.efi "$PE"
fat_text "$T/shim.raw" 1 /EFI/.hidden/shimx64.efi "$PE"
every_type "$T/shim.raw" shim
for t in fixed dynamic child; do
	bc 0 "$T/shim.$t.vhd"
	jq_is 'j["program"]' '\EFI\debian\shimx64.efi'
done
# grubx64.efi when there is no shim; FAT32 this time.
gpt_disk "$T/grub.raw" 80 1:1:70:ef00
fat_format "$T/grub.raw" 1 70 32
fat_text "$T/grub.raw" 1 /EFI/ubuntu/grubx64.efi "$PE"
vhdtool convert -O dynamic "$T/grub.raw" "$T/grub.vhd"
bc 0 "$T/grub.vhd"
jq_is 'j["program"]' '\EFI\ubuntu\grubx64.efi'
jq_is 'j["partitions"][0]["filesystem"]' FAT32
# Only a '.'-folder holds the program: the loader skips those folders.
esp_disk "$T/hidden.raw"
fat_text "$T/hidden.raw" 1 /EFI/.hidden/shimx64.efi "$PE"
vhdtool convert -O dynamic "$T/hidden.raw" "$T/hidden.vhd"
bc 1 "$T/hidden.vhd"
err_has 'not bootable: partition 1 (ESP): program not found: no \EFI\BOOT\BOOTX64.EFI, \EFI\*\shimx64.efi or \EFI\*\grubx64.efi'

# ---- --program ----
bc 0 "$T/shim.dynamic.vhd" --program '\EFI\aaa\grubx64.efi'
jq_is 'j["program"]' '\EFI\aaa\grubx64.efi'
bc 0 "$T/shim.child.vhd" --program '/efi/DEBIAN/SHIMX64.EFI'
bc 1 "$T/boot.child.vhd" --program '\EFI\debian\missing.efi'
err_has 'not bootable: partition 1 (ESP): program not found: \EFI\debian\missing.efi'
jq_is 'j["bootable"]' False
jq_is 'j["program"]' None
jq_is 'j["partitions"][0]["problem"]' 'program not found: \EFI\debian\missing.efi'
bc 1 "$T/boot.fixed.vhd" --program '\EFI\BOOT'
err_has 'program not found: \EFI\BOOT'
expect_status 2 vhdtool boot-check --program '' "$T/boot.fixed.vhd"

# ---- a program that is not a PE image: bootable, with a warning ----
esp_disk "$T/text.raw"
fat_text "$T/text.raw" 1 /EFI/BOOT/BOOTX64.EFI "just text"
vhdtool convert -O fixed "$T/text.raw" "$T/text.vhd"
bc 0 "$T/text.vhd"
err_has "does not start with 'MZ'"
jq_is 'len(j["warnings"])' 1

# ---- not bootable ----
# No GPT at all.
truncate -s 16M "$T/blank.raw"
every_type "$T/blank.raw" blank
for t in fixed dynamic child; do
	bc 1 "$T/blank.$t.vhd"
	err_has "not bootable: no GPT: no 'EFI PART' header at LBA 1"
	jq_is 'j["gpt"]' None
	jq_is 'j["esp"]' None
	jq_is 'j["partitions"]' '[]'
done
# A GPT without an ESP.
gpt_disk "$T/noesp.raw" 32 1:1:20:8300 2:21:8:0700
every_type "$T/noesp.raw" noesp
for t in fixed dynamic child; do
	bc 1 "$T/noesp.$t.vhd"
	err_has 'not bootable: no ESP: no partition of type C12A7328-F81F-11D2-BA4B-00A0C93EC93B'
	jq_is 'len(j["partitions"])' 2
	jq_is 'j["partitions"][1]["type-name"]' 'Microsoft basic data'
done
# An ESP without a file system.
gpt_disk "$T/nofat.raw" 32 1:1:20:ef00
vhdtool convert -O dynamic "$T/nofat.raw" "$T/nofat.vhd"
bc 1 "$T/nofat.vhd"
err_has 'not bootable: partition 1 (ESP): the ESP holds no FAT file system'
jq_is 'j["partitions"][0]["filesystem"]' None
# An exFAT ESP: the loader could read it, the firmware inside cannot.
if command -v mkfs.exfat >/dev/null; then
	gpt_disk "$T/exesp.raw" 32 1:1:20:ef00
	truncate -s 20M "$T/ex.part"
	mkfs.exfat "$T/ex.part" >/dev/null
	dd if="$T/ex.part" of="$T/exesp.raw" bs=1M seek=1 conv=notrunc status=none
	vhdtool convert -O fixed "$T/exesp.raw" "$T/exesp.vhd"
	bc 1 "$T/exesp.vhd"
	err_has 'the ESP holds exFAT, which UEFI firmware does not read'
	jq_is 'j["partitions"][0]["filesystem"]' exFAT
else
	echo "note: mkfs.exfat missing, exFAT ESP not tested"
fi

# ---- broken GPTs (byte patches on the raw disk, then converted) ----
patch() { # FILE OFFSET HEXBYTES
	printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
last=$(( 64 * 2048 - 1 ))
# The primary header's CRC broken: firmware falls back to the backup.
cp "$T/boot.raw" "$T/crc1.raw"
patch "$T/crc1.raw" $(( 512 + 16 )) 00000000
every_type "$T/crc1.raw" crc1
for t in fixed dynamic child; do
	bc 0 "$T/crc1.$t.vhd"
	err_has 'the primary GPT is not valid (header CRC32 is 00000000'
	err_has "firmware uses the backup at LBA $last"
	jq_is 'j["gpt"]["header"]' backup
	jq_is 'j["program"]' '\EFI\BOOT\BOOTX64.EFI'
done
# Both headers' CRCs broken: no GPT.
cp "$T/crc1.raw" "$T/crc2.raw"
patch "$T/crc2.raw" $(( last * 512 + 16 )) 00000000
every_type "$T/crc2.raw" crc2
for t in fixed dynamic child; do
	bc 1 "$T/crc2.$t.vhd"
	err_has 'not bootable: no valid GPT: primary header: header CRC32 is 00000000, the header'"'"'s bytes give'
	err_has "backup header at LBA $last: header CRC32 is 00000000"
	jq_is 'j["gpt"]' None
done
# The primary partition array changed under its CRC.
cp "$T/boot.raw" "$T/arr.raw"
patch "$T/arr.raw" $(( 1024 + 56 )) 41
vhdtool convert -O dynamic "$T/arr.raw" "$T/arr.vhd"
bc 0 "$T/arr.vhd"
err_has 'the primary GPT is not valid (partition array CRC32 is'
# The backup header broken only: a warning.
cp "$T/boot.raw" "$T/bk.raw"
patch "$T/bk.raw" $(( last * 512 + 16 )) 00000000
vhdtool convert -O dynamic "$T/bk.raw" "$T/bk.vhd"
bc 0 "$T/bk.vhd"
err_has "the backup GPT header at LBA $last is not valid: header CRC32 is 00000000"
jq_is 'j["gpt"]["header"]' primary
# No protective MBR: EDK2 reads no GPT without one.
cp "$T/boot.raw" "$T/nopmbr.raw"
dd if=/dev/zero of="$T/nopmbr.raw" bs=512 count=1 conv=notrunc status=none
vhdtool convert -O fixed "$T/nopmbr.raw" "$T/nopmbr.vhd"
bc 1 "$T/nopmbr.vhd"
err_has 'not bootable: no protective MBR'
jq_is 'j["protective-mbr"]' False
# Partition entry past the usable LBAs: the ESP cannot be used.
cp "$T/boot.raw" "$T/outside.raw"
/usr/bin/python3 - "$T/outside.raw" <<'EOF'
import struct, sys, zlib
f = open(sys.argv[1], 'r+b')
f.seek(512); h = bytearray(f.read(92))
lba, n, size = struct.unpack_from('<QII', h, 72)
f.seek(lba * 512); arr = bytearray(f.read(n * size))
struct.pack_into('<Q', arr, 40, 10 ** 9)          # ESP's last LBA far past the disk
f.seek(lba * 512); f.write(arr)
struct.pack_into('<I', h, 88, zlib.crc32(arr))
struct.pack_into('<I', h, 16, 0); struct.pack_into('<I', h, 16, zlib.crc32(h))
f.seek(512); f.write(h)
EOF
vhdtool convert -O dynamic "$T/outside.raw" "$T/outside.vhd"
bc 1 "$T/outside.vhd"
err_has 'partition 1 (LBA 2048..1000000000) is not inside the usable LBAs'
err_has 'not bootable: partition 1 (ESP): the ESP lies outside'

# ---- the backup header off the last LBA (a disk grown after partitioning) ----
cp "$T/boot.dynamic.vhd" "$T/grown.vhd"
vhdtool resize "$T/grown.vhd" +1M
bc 0 "$T/grown.vhd"
err_has "the primary GPT header puts the backup header at LBA $last, but the disk's last LBA is $(( last + 2048 ))"
jq_is 'j["gpt"]["backup-at-end"]' False
jq_is 'j["gpt"]["backup-lba"]' $last

# ---- a chain: the program only in the child, written there by convert -B ----
esp_disk "$T/base.raw"
fat_text "$T/base.raw" 1 /EFI/README.TXT "no program here"
vhdtool convert -O dynamic "$T/base.raw" "$T/base.vhd"
cp "$T/base.raw" "$T/top.raw"
fat_text "$T/top.raw" 1 /EFI/fedora/shimx64.efi "$PE"
vhdtool convert -B "$T/base.vhd" "$T/top.raw" "$T/top.vhd"
bc 1 "$T/base.vhd"
err_has 'program not found'
bc 0 "$T/top.vhd"
jq_is 'j["program"]' '\EFI\fedora\shimx64.efi'
jq_is 'j["vhd-type"]' differencing
# ... and with its parent gone, reading fails: exit 2.
mv "$T/base.vhd" "$T/base.moved"
expect_status 2 vhdtool boot-check "$T/top.vhd"
mv "$T/base.moved" "$T/base.vhd"

# ---- errors: exit 2 ----
expect_status 2 vhdtool boot-check "$T/nonexistent.vhd"
expect_status 2 vhdtool boot-check "$T/boot.raw"     # not a VHD
expect_status 2 vhdtool boot-check
expect_status 2 vhdtool boot-check --dest "$T/no/such/folder/x.vhd" "$T/boot.fixed.vhd"

# ---- --dest ----
# A plain folder and a file to be: no warning.
bc 0 "$T/boot.dynamic.vhd" --dest "$T"
jq_is 'j["dest"]["fat"]' False
jq_is 'j["warnings"]' '[]'
err_lacks 'FAT'
bc 0 "$T/boot.dynamic.vhd" --dest "$T/not-yet.vhd"
jq_is 'j["dest"]["path"]' "$T/not-yet.vhd"
# A 5 GiB fixed image (sparse) and a 5 GiB dynamic one, both bootable.
vhdtool convert -O dynamic "$T/boot.raw" "$T/big.vhd"
vhdtool resize "$T/big.vhd" 5G
vhdtool convert -O fixed "$T/big.vhd" "$T/bigfixed.vhd"
[ "$(stat -c %s "$T/bigfixed.vhd")" -gt 4294967295 ] || fail "bigfixed.vhd is not past 4 GiB"

fuse_fat_checks() { # MOUNTPOINT
	bc 0 "$T/boot.dynamic.vhd" --dest "$1"
	jq_is 'j["dest"]["fat"]' True
	jq_is 'j["warnings"]' '[]'        # 64 MiB: fits, even grown
	out_has '(FAT: files up to 4 GiB - 1 byte)'
	bc 0 "$T/bigfixed.vhd" --dest "$1"
	err_has "bigfixed.vhd is 5 GiB (5368709632 bytes): the destination is FAT"
	err_has 'put the VHD on exFAT'
	bc 0 "$T/big.vhd" --dest "$1/big.vhd"
	err_has 'big.vhd is dynamic and can grow to 5 GiB'
	jq_is 'sum("can grow to" in w for w in j["warnings"])' 1
	# A differencing child: its parent is checked too, only the child grows.
	vhdtool create -t differencing -b "$T/bigfixed.vhd" "$T/bigchild.vhd" >/dev/null
	bc 0 "$T/bigchild.vhd" --dest "$1"
	err_has 'bigchild.vhd is differencing and can grow to'
	err_has 'bigfixed.vhd is 5 GiB'
	rm -f "$T/bigchild.vhd"
}

fuse_ok=no
if [ -c /dev/fuse ] && command -v fusefat >/dev/null && command -v fusermount >/dev/null; then
	truncate -s 64M "$T/fat32.img"
	mkfs.vfat -F 32 "$T/fat32.img" >/dev/null
	mkdir -p "$T/fatmnt"
	if fusefat -o rw+ "$T/fat32.img" "$T/fatmnt" >/dev/null 2>&1; then
		umount_fat() { fusermount -u "$T/fatmnt" 2>/dev/null || true; }
		on_exit umount_fat
		fuse_ok=yes
		fuse_fat_checks "$T/fatmnt"
		jq_is 'j["dest"]["filesystem"]' fuse.fusefat
		umount_fat
	fi
fi
[ $fuse_ok = yes ] || echo "note: no fusefat mount here (package fusefat, /dev/fuse): the FAT --dest warning is not tested"

if [ -c /dev/fuse ] && command -v mount.exfat-fuse >/dev/null && command -v losetup >/dev/null &&
	command -v mkfs.exfat >/dev/null; then
	truncate -s 64M "$T/exfat.img"
	mkfs.exfat "$T/exfat.img" >/dev/null
	mkdir -p "$T/exmnt"
	if EXLOOP=$(losetup -f --show "$T/exfat.img" 2>/dev/null); then
		unloop() { losetup -d "$EXLOOP" 2>/dev/null || true; }
		on_exit unloop
		if mount.exfat-fuse "$EXLOOP" "$T/exmnt" >/dev/null 2>&1; then
			umount_ex() { umount "$T/exmnt" 2>/dev/null || fusermount -u "$T/exmnt" 2>/dev/null || true; }
			# Hooks run in order: unmount before the loop device goes.
			cleanup_hooks="umount_ex $cleanup_hooks"
			bc 0 "$T/bigfixed.vhd" --dest "$T/exmnt"
			jq_is 'j["dest"]["fat"]' False
			jq_is 'j["dest"]["filesystem"]' 'fuseblk (exfat)'
			# Only the resize's GPT warning: nothing about FAT.
			jq_is 'len(j["warnings"])' 1
			jq_is 'sum("FAT" in w for w in j["warnings"])' 0
			umount_ex
		else
			echo "note: mount.exfat-fuse failed: the exFAT --dest check is not tested"
		fi
		unloop
	else
		echo "note: no loop device: the exFAT --dest check is not tested"
	fi
fi

# ---- documented ----
vhdtool --help | grep -q '^  boot-check ' || fail "boot-check is not in vhdtool --help"
grep -q '^\.SS boot-check$' "$TOP/docs/vhdtool.1" || fail "boot-check is not in docs/vhdtool.1"
echo "boot-check: all cases passed"
