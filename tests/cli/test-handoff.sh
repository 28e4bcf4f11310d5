#!/bin/bash
# SPDX-License-Identifier: MIT
# vhd-handoff (handoff/), the initramfs side of the OS handoff, without QEMU:
# `gpt` against sgdisk's own listing; `find-host` over loop devices described
# by a fake sysfs tree (partition scanning of loop devices is not available
# everywhere); `check` and `linear` against a real ext4 host partition whose
# VHD file's extents come from debugfs, not from vhd-handoff's own FIEMAP
# code.  Every refusal must print the one documented line and create no
# device: no test here ever reaches device-mapper.
. "$(dirname "$0")/../functions.sh"
requires sgdisk
requires losetup
requires mkfs.ext4
requires debugfs
HANDOFF=${VHDHANDOFF:-$(dirname "$VHDTOOL")/vhd-handoff}
[ -x "$HANDOFF" ] || fail "$HANDOFF missing: make BUILD=$(dirname "$VHDTOOL") $HANDOFF"
ho() { "$HANDOFF" "$@"; }

HOSTG=3f2504e0-4f89-41d3-9a0c-0305e82c3301
ESPG=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
DISKG=01234567-89ab-cdef-0123-456789abcdef

# ---- gpt: the listing agrees with sgdisk --------------------------------
truncate -s 64M "$T/disk.img"
sgdisk -n1:2048:+40M -t1:8300 -c1:host -u1:"$HOSTG" -n2:0:+8M -t2:ef00 -u2:"$ESPG" \
	-U "$DISKG" "$T/disk.img" >/dev/null
ho gpt "$T/disk.img" >"$T/gpt.out"
cat >"$T/gpt.want" <<W
disk $DISKG lba-size 512 lbas 131072 usable 34-131038 entries 128
1 2048 83967 0fc63daf-8483-4772-8e79-3d69d8477de4 $HOSTG host
2 83968 100351 c12a7328-f81f-11d2-ba4b-00a0c93ec93b $ESPG
W
diff -u "$T/gpt.want" "$T/gpt.out" || fail "gpt listing"
# sgdisk's own numbers for the same table.
sgdisk -i1 "$T/disk.img" | grep -qi "unique GUID: $HOSTG" || fail "sgdisk disagrees on the GUID"
[ "$(sgdisk -i1 "$T/disk.img" | awk '/^Last sector/ {print $3}')" = 83967 ] || fail "sgdisk disagrees on the end"
# A broken header CRC, a broken entry array: refused, one line each.
cp "$T/disk.img" "$T/bad.img"
printf 'X' | dd of="$T/bad.img" bs=1 seek=$((512 + 60)) conv=notrunc status=none
expect_status 1 ho gpt "$T/bad.img"
grep -qx "vhd-handoff: $T/bad.img: GPT: header CRC32 is [0-9a-f]\{8\}, the header's bytes give [0-9a-f]\{8\}" "$T/.err" ||
	fail "header CRC: $(cat "$T/.err")"
cp "$T/disk.img" "$T/bad.img"
printf 'X' | dd of="$T/bad.img" bs=1 seek=$((1024 + 200)) conv=notrunc status=none
expect_status 1 ho gpt "$T/bad.img"
grep -q "GPT: partition array CRC32 is" "$T/.err" || fail "array CRC: $(cat "$T/.err")"
expect_status 1 ho gpt /dev/null
expect_status 2 ho gpt

# ---- param: the scripts' view of the command line ------------------------
line="ro vhd.handoff=nbd vhd.host=PARTUUID=${HOSTG^^} \"vhd.path=/my vhds/a.vhd\" vhd.size=4096"
[ "$(ho param handoff --cmdline "$line")" = nbd ] || fail "param handoff"
[ "$(ho param path --cmdline "$line")" = "/my vhds/a.vhd" ] || fail "param path"
[ "$(ho param host --cmdline "$line")" = "PARTUUID=$HOSTG" ] || fail "param host"
expect_status 1 ho param handoff --cmdline "ro quiet"
expect_status 1 ho param path --cmdline "vhd.path=/a/../b"
grep -q "vhd.path= must be an absolute path" "$T/.err" || fail "param: bad path message"

# ---- the host partition: ext4 with a fragmented VHD file ------------------
[ "$(id -u)" = 0 ] || { echo "SKIP: find-host/linear need root (loop devices, mount)"; exit 77; }
truncate -s 40M "$T/part.img"
mkfs.ext4 -q -b 4096 -E nodiscard "$T/part.img"
P=$(losetup -f --show "$T/part.img" 2>/dev/null) || { echo "SKIP: no loop devices"; exit 77; }
D=""
detach() {
	umount "$T/mnt" 2>/dev/null || true
	losetup -d "$P" 2>/dev/null || true
	[ -z "$D" ] || losetup -d "$D" 2>/dev/null || true
}
on_exit detach
mkdir -p "$T/mnt"
mount "$P" "$T/mnt" 2>/dev/null || { echo "SKIP: cannot mount ext4 here"; exit 77; }
# Fill with 64 KiB files, free every other one: the VHD lands in the holes.
mkdir "$T/mnt/fill" "$T/mnt/vhd"
for i in $(seq 1 1000); do head -c 65536 /dev/zero >"$T/mnt/fill/$i" 2>/dev/null || break; done
sync
for i in $(seq 1 2 "$i"); do rm -f "$T/mnt/fill/$i"; done
sync
"$VHDTOOL" create -t fixed -s 3M "$T/mnt/vhd/disk.vhd" >/dev/null 2>&1 ||
	head -c $((3 * 1048576 + 512)) /dev/urandom >"$T/mnt/vhd/disk.vhd"
sync
umount "$T/mnt"
SIZE=$(stat -c %s "$T/part.img")
SIZE=$(debugfs -R "stat /vhd/disk.vhd" "$T/part.img" 2>/dev/null | awk '/Size: / {for (i=1;i<=NF;i++) if ($i=="Size:") print $(i+1)}' | head -1)
[ -n "$SIZE" ] && [ "$SIZE" -gt 0 ] || fail "debugfs: no size for the VHD file"
# debugfs's extent tree: its leaves ("d/ d" levels) are the data runs,
# logical and physical 4 KiB blocks; turned into 512-byte sectors.
debugfs -R "ex /vhd/disk.vhd" "$T/part.img" 2>/dev/null | sed 's|/| / |g; s|-| - |g' >"$T/ex"
FEXT=$(awk '$1 == $3 && $4 ~ /^[0-9]+$/ && NF >= 13 { printf "%s%d:%d:%d", sep, $7 * 8, $13 * 8, $10 * 8; sep = "," }
	END { print "" }' "$T/ex")
[ -n "$FEXT" ] || fail "no extents from debugfs: $(cat "$T/ex")"
nruns=$(echo "$FEXT" | tr ',' '\n' | wc -l)
[ "$nruns" -ge 2 ] || echo "note: the VHD file is not fragmented ($FEXT)"
# vhd.dm: the VHD's data (all but the 512-byte footer) over the same runs.
DM=$(echo "$FEXT" | awk -v total=$(( SIZE / 512 - 1 )) -F, '{ at = 0; sep = "";
	for (i = 1; i <= NF && at < total; i++) { split($i, e, ":"); n = e[2]; if (at + n > total) n = total - at;
		printf "%s%d:%d:%d", sep, at, n, e[3]; sep = ","; at += n } print "" }')

# The whole disk (host partition at sector 2048) and a loop device per view.
dd if="$T/part.img" of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
D=$(losetup -f --show "$T/disk.img")
losetup -d "$P"
P=$(losetup -f --show -o $((2048 * 512)) --sizelimit $((40 * 1048576)) "$T/disk.img")
dn=$(basename "$D")
pd=$(cat /sys/class/block/$(basename "$P")/dev)
# A fake sysfs: the disk, and its partition 1 as the partition loop device.
S=$T/sys/class/block
mkdir -p "$S/$dn/${dn}p1" "$S/$dn/${dn}p2" "$T/dev" "$T/run"
cp /sys/class/block/$dn/dev /sys/class/block/$dn/size "$S/$dn/"
echo 1 >"$S/$dn/${dn}p1/partition"; echo "$pd" >"$S/$dn/${dn}p1/dev"
echo 2048 >"$S/$dn/${dn}p1/start"; echo $((40 * 2048)) >"$S/$dn/${dn}p1/size"
echo 2 >"$S/$dn/${dn}p2/partition"; echo "7:250" >"$S/$dn/${dn}p2/dev"
echo 83968 >"$S/$dn/${dn}p2/start"; echo 16384 >"$S/$dn/${dn}p2/size"
# An unused loop device, as in any sysfs: size 0, skipped.
mkdir -p "$S/loop200"; echo 7:200 >"$S/loop200/dev"; echo 0 >"$S/loop200/size"
FAKE=(--sysfs "$T/sys" --dev "$T/dev" --run "$T/run")

# ---- find-host ----------------------------------------------------------
node=$(ho find-host --partuuid "$HOSTG" "${FAKE[@]}" --timeout 0) || fail "find-host"
[ "$node" = "$T/dev/${dn}p1" ] || fail "find-host printed $node"
[ -b "$node" ] && [ "$(stat -c '%t:%T' "$node")" = "$(stat -c '%t:%T' "$P")" ] || fail "find-host made a wrong node"
[ "$(ho find-host --cmdline "quiet vhd.host=PARTUUID=$HOSTG" "${FAKE[@]}")" = "$node" ] || fail "find-host --cmdline"
start=$(date +%s%N)
expect_status 1 ho find-host --partuuid 3f2504e0-4f89-41d3-9a0c-0305e82c3302 "${FAKE[@]}" --timeout 1
el=$(( ($(date +%s%N) - start) / 1000000 ))
grep -qx "vhd-handoff: no partition with PARTUUID=3f2504e0-4f89-41d3-9a0c-0305e82c3302 appeared within 1 s" "$T/.err" || fail "find-host timeout message: $(cat "$T/.err")"
[ "$el" -ge 1000 ] && [ "$el" -lt 4000 ] || fail "find-host --timeout 1 took $el ms"
expect_status 1 ho find-host --cmdline "ro" "${FAKE[@]}"
grep -q "no vhd.host=PARTUUID" "$T/.err" || fail "find-host without vhd.host"
# The kernel's idea of the partition must match the GPT's.
echo 2049 >"$S/$dn/${dn}p1/start"
expect_status 1 ho find-host --partuuid "$HOSTG" "${FAKE[@]}" --timeout 0
grep -q "the kernel has it at sectors 2049" "$T/.err" || fail "start mismatch: $(cat "$T/.err")"
echo 2048 >"$S/$dn/${dn}p1/start"
# Two disks with the same GUID (a cloned disk): refuse to guess.
mkdir -p "$S/clone"; cp "$S/$dn/dev" "$S/$dn/size" "$S/clone/"
expect_status 1 ho find-host --partuuid "$HOSTG" "${FAKE[@]}" --timeout 0
grep -q "found on both" "$T/.err" || fail "duplicate GUID: $(cat "$T/.err")"
rm -r "$S/clone"

# ---- check / linear -----------------------------------------------------
base="vhd.handoff=linear vhd.host=PARTUUID=$HOSTG vhd.path=/vhd/disk.vhd"
good="$base vhd.size=$SIZE vhd.fext=$FEXT vhd.dm=$DM"
ho check --cmdline "$good" "${FAKE[@]}" >"$T/check.out" || fail "check of an unmoved file: $(cat "$T/check.out")"
grep -q '\\vhd\\disk.vhd on .* is where the loader mapped it' "$T/check.out" || fail "check output: $(cat "$T/check.out")"
ho check --no-fiemap --cmdline "$good" "${FAKE[@]}" >/dev/null || fail "check through FIBMAP"
[ -z "$(ls -A "$T/run")" ] || fail "check left a mount point behind"
grep -q "$T/run" /proc/self/mounts && fail "check left a mount behind"

# The VHD text in an EFI variable: 4 attribute bytes, then the lists.
mkdir -p "$T/efivars"
{ printf '\007\000\000\000'; printf 'vhd.fext=%s vhd.dm=%s' "$FEXT" "$DM"; } \
	>"$T/efivars/VhdbootHandoff-5d1a7e3c-9b0f-4c55-8e07-1f0a6b2d8c41"
ho check --cmdline "$base vhd.size=$SIZE vhd.fext=efivar vhd.dm=efivar" "${FAKE[@]}" \
	--efivars "$T/efivars" >/dev/null || fail "check with the lists in the EFI variable"

# refused LINE WHY: linear refuses with the documented line and maps nothing.
refused() {
	expect_status 1 ho linear --cmdline "$1" "${FAKE[@]}" --timeout 0
	grep -qxF "vhd-handoff: \\vhd\\disk.vhd has moved or changed size since the loader mapped it ($2); refusing to map it" "$T/.err" ||
		fail "refusal message: $(cat "$T/.err"), wanted ($2)"
	[ ! -e "$T/dev/mapper" ] || fail "a refusal touched device-mapper"
}
refused "$base vhd.size=$((SIZE + 512)) vhd.fext=$FEXT vhd.dm=$DM" \
	"$SIZE bytes now, the loader saw $((SIZE + 512))"
# The first run one 4 KiB block further on (still inside the partition).
first=${FEXT%%,*}; h=${first##*:}; rest=${FEXT#"$first"}
shifted="${first%:*}:$((h + 8))$rest"
dmshift=$(echo "$DM" | sed "s/^\\([0-9]*:[0-9]*:\\)$h/\\1$((h + 8))/")
refused "$base vhd.size=$SIZE vhd.fext=$shifted vhd.dm=$dmshift" \
	"file sector 0 is at host sector $h now, the loader saw $((h + 8))"
expect_status 1 ho linear --cmdline "${good/disk.vhd/gone.vhd}" "${FAKE[@]}" --timeout 0
grep -qxF "vhd-handoff: \vhd\gone.vhd has moved or changed size since the loader mapped it (/vhd/gone.vhd: No such file or directory); refusing to map it" "$T/.err" ||
	fail "missing file: $(cat "$T/.err")"

# Hostile lists are refused before anything is mounted.
expect_status 1 ho linear --cmdline "$base vhd.size=$SIZE vhd.fext=$FEXT vhd.dm=0:8:8" "${FAKE[@]}" --timeout 0
grep -q "vhd.dm segment 1 maps host sector 8, which is not part of the VHD file" "$T/.err" || fail "dm outside the file: $(cat "$T/.err")"
expect_status 1 ho linear --cmdline "$base vhd.size=$SIZE vhd.fext=0:8:999999999 vhd.dm=$DM" "${FAKE[@]}" --timeout 0
grep -q "runs past the 81920-sector host partition" "$T/.err" || fail "fext past the partition: $(cat "$T/.err")"
expect_status 1 ho linear --cmdline "vhd.handoff=nbd vhd.host=PARTUUID=$HOSTG" "${FAKE[@]}"
grep -q "vhd.handoff=linear is not on the kernel command line (it says nbd)" "$T/.err" || fail "linear on nbd"
expect_status 1 ho linear --cmdline "$base vhd.size=$SIZE" "${FAKE[@]}"
grep -q "needs vhd.host, vhd.path, vhd.size, vhd.fext and vhd.dm" "$T/.err" || fail "linear without lists"
expect_status 2 ho linear --name "../x" --cmdline "$good" "${FAKE[@]}"
[ ! -e "$T/dev/mapper" ] || fail "a refusal touched device-mapper"

# The real case: the file is copied away and back (same name, same size,
# new blocks) after the loader mapped it.
mount "$P" "$T/mnt"
cp "$T/mnt/vhd/disk.vhd" "$T/mnt/vhd/copy"
rm "$T/mnt/vhd/disk.vhd"
head -c 262144 /dev/zero >"$T/mnt/fill/pin"
mv "$T/mnt/vhd/copy" "$T/mnt/vhd/disk.vhd"
umount "$T/mnt"
expect_status 1 ho linear --cmdline "$good" "${FAKE[@]}" --timeout 0
grep -qE '^vhd-handoff: \\vhd\\disk.vhd has moved or changed size since the loader mapped it \(file sector [0-9]+ (is at host sector|is not where|has no block).*\); refusing to map it$' "$T/.err" ||
	fail "moved file: $(cat "$T/.err")"
[ ! -e "$T/dev/mapper" ] || fail "a refusal touched device-mapper"

# ---- the rest of the command surface ------------------------------------
expect_status 2 ho
expect_status 2 ho nosuch
ho --help | grep -q '^  shutdown ' || fail "--help lacks shutdown"
expect_status 2 ho shutdown poweroff
grep -q "not PID 1: refusing" "$T/.err" || fail "shutdown outside PID 1"
[ "$(ho exec-as @fancy /bin/sh -c 'echo $0')" = "@fancy" ] || fail "exec-as does not set argv[0]"
[ -n "${SANITIZED:-}" ] || ! readelf -l "$HANDOFF" | grep -q INTERP || fail "vhd-handoff is not static"
echo "ok: gpt, param, find-host, check (FIEMAP, FIBMAP, efivar) and $nruns-run refusals"
