#!/bin/bash
# SPDX-License-Identifier: MIT
# The main job on generated data: make a disk, convert it to every VHD type
# and back, build a differencing child, and show what qemu-img makes of it.
set -euo pipefail
V=${VHDTOOL:-$(cd "$(dirname "$0")/.." && pwd)/build/vhdtool}
D=$(mktemp -d /tmp/vhd-demo.XXXXXX)
trap 'rm -rf "$D"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a 1 GiB raw disk with 64 MiB of data in four places"
truncate -s 1G "$D/disk.raw"
for i in 0 1 2 3; do
	head -c 16M /dev/urandom | dd of="$D/disk.raw" bs=1M seek=$((i * 300)) conv=notrunc status=none
done
ls -lsh "$D/disk.raw"

step "vhdtool convert -p disk.raw disk.vhd (dynamic)"
"$V" convert -p "$D/disk.raw" "$D/disk.vhd"
"$V" info "$D/disk.vhd"

step "vhdtool check disk.vhd"
"$V" check "$D/disk.vhd"

step "a differencing child holding only what changed (convert -B)"
cp --sparse=always "$D/disk.raw" "$D/changed.raw"
echo "hello from the child" | dd of="$D/changed.raw" bs=1 seek=$((512 * 1024 * 1024)) conv=notrunc status=none
"$V" convert -B "$D/disk.vhd" "$D/changed.raw" "$D/child.vhd"
ls -lsh "$D/child.vhd"
"$V" map "$D/child.vhd" | head -12

step "fixed and Azure-ready images"
"$V" convert -O fixed "$D/child.vhd" "$D/fixed.vhd"
"$V" convert --azure "$D/disk.vhd" "$D/azure.vhd"
ls -lsh "$D/fixed.vhd" "$D/azure.vhd"

step "qemu-img reads every one of them with the same size and bytes"
for f in disk.vhd fixed.vhd azure.vhd; do
	printf '%-10s ' "$f"
	qemu-img info -f vpc --output=json "$D/$f" | grep '"virtual-size"'
done
qemu-img compare -f raw -F vpc "$D/disk.raw" "$D/disk.vhd"
qemu-img compare -f raw -F vpc "$D/changed.raw" "$D/fixed.vhd"

step "serve the child over NBD (vhd-nbd) and read it as a client would"
N=${VHDNBD:-$(dirname "$V")/vhd-nbd}
S=$(mktemp -d /tmp/vhd-demo-nbd.XXXXXX)
"$N" --socket "$S/s" "$D/child.vhd" &
npid=$!
for _ in $(seq 100); do [ -S "$S/s" ] && break; sleep 0.05; done
nbdinfo --map "nbd+unix:///?socket=$S/s" | head -6
qemu-img compare -f raw -F raw "$D/changed.raw" "nbd+unix:///?socket=$S/s"
kill -TERM $npid
wait $npid && echo "vhd-nbd stopped cleanly on SIGTERM"
rm -rf "$S"

step "and back to raw"
"$V" convert -O raw "$D/child.vhd" "$D/back.raw"
cmp "$D/changed.raw" "$D/back.raw" && echo "child.vhd -> back.raw: identical to changed.raw"
echo
echo "demo finished: every step above ran on $D (now removed)."
