#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/vhdboot-install against a plain folder standing for the ESP (the
# disk and partition given with --disk/--part) and a stand-in efibootmgr
# first in PATH that records its arguments: --dry-run changes nothing and
# runs nothing; a real run copies the loader, writes vhdboot.conf and runs
# the efibootmgr command it printed; boot-check stops a VHD that cannot boot.
. "$(dirname "$0")/../functions.sh"
requires sgdisk
requires mkfs.vfat
requires mcopy
export MTOOLS_SKIP_CHECK=1
INSTALL=$TOP/scripts/vhdboot-install
export VHDTOOL

# A stand-in efibootmgr: it must never run in a dry run.
mkdir -p "$T/bin"
cat >"$T/bin/efibootmgr" <<EOF
#!/bin/sh
for a in "\$@"; do printf '%s\n' "\$a"; done >"$T/efibootmgr.args"
EOF
chmod +x "$T/bin/efibootmgr"
export PATH="$T/bin:$PATH"

# The ESP folder, with a bootable VHD in \vhd and a stand-in loader.
mkdir -p "$T/esp/vhd"
truncate -s 64M "$T/disk.raw"
sgdisk -o -n 1:2048:+40M -t 1:ef00 "$T/disk.raw" >/dev/null 2>&1 || fail "sgdisk"
truncate -s 40M "$T/esp.part"
mkfs.vfat -F 16 "$T/esp.part" >/dev/null
printf 'MZ payload' >"$T/payload.efi"
mmd -i "$T/esp.part" ::/EFI ::/EFI/BOOT
mcopy -i "$T/esp.part" "$T/payload.efi" ::/EFI/BOOT/BOOTX64.EFI
dd if="$T/esp.part" of="$T/disk.raw" bs=1M seek=1 conv=notrunc status=none
vhdtool convert -O dynamic "$T/disk.raw" "$T/esp/vhd/disk.vhd"
truncate -s 16M "$T/blank.raw"
vhdtool convert -O dynamic "$T/blank.raw" "$T/esp/vhd/blank.vhd"
printf 'MZ stand-in loader' >"$T/loader.efi"

snapshot() { (cd "$T/esp" && find . -printf '%p %s %T@\n' | sort && find . -type f -exec md5sum {} + | sort); }
inst() { "$INSTALL" --esp "$T/esp" --loader "$T/loader.efi" "$@"; }

# ---- --dry-run: prints the plan, changes and runs nothing ----
before=$(snapshot)
expect_status 0 inst --vhd '\vhd\disk.vhd' --disk /dev/sdz --part 3 --label 'My VHD' \
	--cmdline 'root=/dev/sda2 quiet' --dry-run
[ "$(snapshot)" = "$before" ] || fail "--dry-run changed the ESP folder"
[ ! -e "$T/efibootmgr.args" ] || fail "--dry-run ran efibootmgr"
grep -qF 'bootable: vhdboot.efi would start \EFI\BOOT\BOOTX64.EFI' "$T/.out" || { cat "$T/.out"; fail "no boot-check in the dry run"; }
grep -qxF "would run: efibootmgr -c -d /dev/sdz -p 3 -L 'My VHD' -l '\\EFI\\vhdboot\\vhdboot.efi'" "$T/.out" ||
	{ cat "$T/.out"; fail "dry run: wrong efibootmgr command"; }
grep -qxF '    vhd=\vhd\disk.vhd' "$T/.out" || { cat "$T/.out"; fail "dry run: no vhd= line"; }
grep -qxF '    cmdline=root=/dev/sda2 quiet' "$T/.out" || { cat "$T/.out"; fail "dry run: no cmdline= line"; }
# The LoadOptions variant.
expect_status 0 inst --vhd '/vhd/disk.vhd' --disk /dev/sdz --part 3 --options \
	--program '\EFI\BOOT\BOOTX64.EFI' --cmdline 'root=/dev/sda2 quiet' --dry-run
grep -qxF "would run: efibootmgr -c -d /dev/sdz -p 3 -L 'VHD boot' -l '\\EFI\\vhdboot\\vhdboot.efi' -u 'vhd=/vhd/disk.vhd program=\\EFI\\BOOT\\BOOTX64.EFI cmdline=root=/dev/sda2 quiet'" "$T/.out" ||
	{ cat "$T/.out"; fail "dry run --options: wrong efibootmgr command"; }
[ "$(snapshot)" = "$before" ] || fail "--dry-run --options changed the ESP folder"
[ ! -e "$T/efibootmgr.args" ] || fail "--dry-run --options ran efibootmgr"

# --handoff goes into vhdboot.conf; an unknown kind is refused.
expect_status 0 inst --vhd '\vhd\disk.vhd' --disk /dev/sdz --part 3 --handoff nbd --dry-run
grep -qxF '    handoff=nbd' "$T/.out" || { cat "$T/.out"; fail "dry run: no handoff= line"; }
expect_error "linear, ramdisk or nbd" inst --vhd '\vhd\disk.vhd' --disk /dev/sdz --part 3 --handoff loop --dry-run

# ---- refusals ----
expect_error 'not bootable' inst --vhd '\vhd\blank.vhd' --disk /dev/sdz --part 3 --dry-run
grep -qF 'not bootable: no GPT' "$T/.err" || { cat "$T/.err"; fail "boot-check's reason is not shown"; }
expect_status 0 inst --vhd '\vhd\blank.vhd' --disk /dev/sdz --part 3 --dry-run --force
expect_error 'no such file' inst --vhd '\vhd\missing.vhd' --disk /dev/sdz --part 3 --dry-run
# A plain folder is no mount point: findmnt cannot name its disk.
expect_error 'give --disk and --part' inst --vhd '\vhd\disk.vhd' --dry-run
expect_status 2 inst --vhd '\vhd\disk.vhd' --disk /dev/sdz --dry-run
expect_status 2 inst --vhd 'vhd\disk.vhd' --disk /dev/sdz --part 1 --dry-run
expect_status 2 inst --disk /dev/sdz --part 1 --dry-run
expect_status 2 inst --vhd 'PARTUUID=xyz:\d.vhd' --disk /dev/sdz --part 1 --dry-run
[ "$(snapshot)" = "$before" ] || fail "a refused run changed the ESP folder"
[ ! -e "$T/efibootmgr.args" ] || fail "a refused run ran efibootmgr"
# On another partition that is not mounted: no boot-check, still a plan.
expect_status 0 inst --vhd 'PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4:\disks\d.vhd' \
	--disk /dev/sdz --part 1 --dry-run
grep -qF 'boot-check skipped' "$T/.out" || { cat "$T/.out"; fail "PARTUUID: no note about boot-check"; }
grep -qxF '    vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4:\disks\d.vhd' "$T/.out" ||
	{ cat "$T/.out"; fail "PARTUUID: wrong vhd= line"; }

# ---- a real run: --no-entry, then with the entry ----
expect_status 0 inst --vhd '\vhd\disk.vhd' --cmdline 'console=ttyS0' --no-entry
cmp -s "$T/loader.efi" "$T/esp/EFI/vhdboot/vhdboot.efi" || fail "the loader was not copied"
printf '%s\n' '# Written by vhdboot-install; see vhdboot.conf(5).' 'vhd=\vhd\disk.vhd' 'cmdline=console=ttyS0' >"$T/want.conf"
cmp "$T/want.conf" "$T/esp/EFI/vhdboot/vhdboot.conf" || fail "vhdboot.conf differs"
[ ! -e "$T/efibootmgr.args" ] || fail "--no-entry ran efibootmgr"
grep -qF "the command is: efibootmgr -c -d /dev/DISK -p N" "$T/.out" || { cat "$T/.out"; fail "--no-entry: no command shown"; }

expect_status 0 inst --vhd '\vhd\disk.vhd' --disk /dev/sdz --part 3 --label 'My VHD'
[ -f "$T/esp/EFI/vhdboot/vhdboot.conf.old" ] || fail "the changed vhdboot.conf was not kept as .old"
cmp -s "$T/want.conf" "$T/esp/EFI/vhdboot/vhdboot.conf.old" || fail "vhdboot.conf.old is not the previous file"
printf '%s\n' -c -d /dev/sdz -p 3 -L 'My VHD' -l '\EFI\vhdboot\vhdboot.efi' >"$T/want.args"
cmp "$T/want.args" "$T/efibootmgr.args" || { cat "$T/efibootmgr.args"; fail "efibootmgr got other arguments"; }
echo "vhdboot-install: all cases passed"
