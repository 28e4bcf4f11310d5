#!/bin/bash
# SPDX-License-Identifier: MIT
# vhdboot.efi boots the test payload from inside a fixed, a dynamic and a
# two-level differencing VHD lying as files on the machine's FAT32 ESP.
# The payload proves it runs at TPL_APPLICATION with working timers, and
# that the entry's command line reached it.
. "$(dirname "$0")/lib.sh"

# The inner disks: GPT + FAT16 ESP with the payload.
esp_disk "$T/inner.raw"
vhdtool convert -O fixed "$T/inner.raw" "$T/fixed.vhd"
vhdtool convert "$T/inner.raw" "$T/dynamic.vhd"
# A chain where the payload only exists thanks to the children: the base
# has an empty ESP, the middle layer adds the payload, the top a note.
gpt_disk "$T/l0.raw" 64
add_part "$T/l0.raw" 1 1 40 ef00
fat_format "$T/l0.raw" 1 40 16
cp --sparse=always "$T/l0.raw" "$T/l1.raw"
fat_put "$T/l1.raw" 1 "$PAYLOAD" /EFI/BOOT/BOOTX64.EFI
cp --sparse=always "$T/l1.raw" "$T/l2.raw"
fat_text "$T/l2.raw" 1 /note.txt "top layer"
(cd "$T" && vhdtool convert l0.raw base.vhd && vhdtool convert -B base.vhd l1.raw mid.vhd &&
	vhdtool convert -B mid.vhd l2.raw top.vhd) || fail "cannot build the chain"
vhdtool info --json "$T/top.vhd" >"$T/top.json"
[ "$(json_get "$T/top.json" 'j["vhd-type"]')" = differencing ] || fail "top.vhd is not differencing"

# The machine's disk: a FAT32 ESP with vhdboot.efi as the removable-media
# loader, its vhdboot.conf, and the VHD files under \vhd.
loader_disk "$T/host.raw" 290 /EFI/BOOT/BOOTX64.EFI
for f in fixed dynamic base mid top; do fat_put "$T/host.raw" 1 "$T/$f.vhd" "/vhd/$f.vhd"; done

boot_case() { # NAME CONF: boot with that vhdboot.conf, expect the payload's line
	fat_text "$T/host.raw" 1 /EFI/BOOT/vhdboot.conf "$2"
	run_qemu "$T/$1.log" 'VHDBOOT-PAYLOAD|vhdboot: error' 90 "$T/host.raw"
	expect_serial "$T/$1.log" "VHDBOOT-PAYLOAD tpl=4 timer=ok"
	expect_serial "$T/$1.log" "VHDBOOT-PAYLOAD-OK"
	echo "$1: booted"
}

boot_case fixed $'# fixed image, CRLF lines\r\nvhd=\\vhd\\fixed.vhd\r\ncmdline=console=ttyS0 marker=fixed\r\n'
expect_serial "$T/fixed.log" "options=[console=ttyS0 marker=fixed]"
expect_serial "$T/fixed.log" "fixed VHD, 64 MiB"

boot_case dynamic $'vhd=/vhd/dynamic.vhd\ncmdline=marker=dynamic\n'
expect_serial "$T/dynamic.log" "options=[marker=dynamic]"
expect_serial "$T/dynamic.log" "dynamic VHD, 64 MiB"

# A menu of two entries whose default is the chain, taken at the timeout.
boot_case chain $'timeout=1\ndefault=chain\n[entry fixed]\nvhd=\\vhd\\fixed.vhd\n[entry chain]\nvhd=\\vhd\\top.vhd\ncmdline=marker=chain\n'
expect_serial "$T/chain.log" "options=[marker=chain]"
expect_serial "$T/chain.log" "differencing VHD, 64 MiB"

# Nothing was written: the VHDs on the host disk are byte for byte the ones
# put there, and still pass check.
for f in fixed dynamic base mid top; do
	mcopy -n -i "$T/host.raw@@1048576" "::/vhd/$f.vhd" "$T/back.vhd"
	cmp -s "$T/back.vhd" "$T/$f.vhd" || fail "$f.vhd changed on the host disk"
	expect_status 0 vhdtool check "$T/back.vhd"
done
echo ok
