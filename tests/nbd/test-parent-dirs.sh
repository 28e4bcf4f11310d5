#!/bin/bash
# SPDX-License-Identifier: MIT
# Where vhd-nbd may open the parents of a differencing export: only inside
# the export's own folder tree and --allow-parent-dir folders.  A parent
# outside, a link escaping the folder, a FIFO, a device and /proc are all
# refused with a message that names the parent and the rule, and a FIFO
# never hangs the server.  vhdtool keeps opening parents anywhere.
. "$(dirname "$0")/../functions.sh"
requires nbdcopy
requires openssl

RULE='not in a folder allowed for parent images'
mkdir -p "$T/exp/sub" "$T/other"
truncate -s 4M "$T/base.raw"
put_data "$T/base.raw" pd1 0 1048576
put_data "$T/base.raw" pd2 3145728 65536

# A parent in a sibling folder.
vhdtool convert "$T/base.raw" "$T/other/base.vhd"
vhdtool create -b "$T/other/base.vhd" "$T/exp/child.vhd" >/dev/null
# vhd-nbd must refuse to start (within the timeout: nothing may block).
nbd_refuses() {
	expect_error "$1" timeout 20 "$VHDNBD" --socket "$T/refused.sock" "${@:2}"
	[ ! -e "$T/refused.sock" ] || fail "vhd-nbd listened although the export failed"
}
nbd_refuses "other/base.vhd \($RULE\)" "$T/exp/child.vhd"
grep -qF "parents of $T/exp/child.vhd may only come from: $T/exp (add folders with --allow-parent-dir)" \
	"$T/.err" || { cat "$T/.err" >&2; fail "the message does not name the allowed folders"; }
# vhdtool is not confined.
vhdtool convert -O raw "$T/exp/child.vhd" "$T/tool.raw"
cmp "$T/base.raw" "$T/tool.raw" || fail "vhdtool reads the outside parent wrongly"

# Allowed with --allow-parent-dir: the data comes through.
start_nbd --allow-parent-dir "$T/other" "$T/exp/child.vhd"
nbdcopy "$URI" "$T/read.raw"
cmp "$T/base.raw" "$T/read.raw" || fail "reads with --allow-parent-dir"
stop_nbd || fail "server did not stop cleanly"
# ... also with --snapshot (the temporary child lives in $TMPDIR).
start_nbd --snapshot --allow-parent-dir "$T/other" "$T/exp/child.vhd"
nbdcopy "$URI" "$T/read.raw"
cmp "$T/base.raw" "$T/read.raw" || fail "reads with --snapshot and --allow-parent-dir"
stop_nbd || fail "server did not stop cleanly"
TMPDIR=$T/other nbd_refuses "$RULE" --snapshot "$T/exp/child.vhd"

# A parent in a subfolder is inside the tree: allowed by default.
vhdtool convert "$T/base.raw" "$T/exp/sub/base.vhd"
vhdtool create -b "$T/exp/sub/base.vhd" "$T/exp/subchild.vhd" >/dev/null
start_nbd -r "$T/exp/subchild.vhd"
nbdcopy "$URI" "$T/read.raw"
cmp "$T/base.raw" "$T/read.raw" || fail "a parent in a subfolder"
stop_nbd || fail "server did not stop cleanly"

# A link in the export's folder that escapes it is refused: the parent is
# judged by where it resolves to.
vhdtool convert "$T/base.raw" "$T/exp/lbase.vhd"
vhdtool create -b "$T/exp/lbase.vhd" "$T/exp/lchild.vhd" >/dev/null
mv "$T/exp/lbase.vhd" "$T/other/lbase.vhd"
ln -s ../other/lbase.vhd "$T/exp/lbase.vhd"
nbd_refuses "lbase.vhd \($RULE\)" -r "$T/exp/lchild.vhd"
# A link that stays inside is fine.
mv "$T/other/lbase.vhd" "$T/exp/sub/lbase.vhd"
ln -sfn sub/lbase.vhd "$T/exp/lbase.vhd"
start_nbd -r "$T/exp/lchild.vhd"
nbdcopy "$URI" "$T/read.raw"
cmp "$T/base.raw" "$T/read.raw" || fail "a link that stays inside the folder"
stop_nbd || fail "server did not stop cleanly"

# A FIFO in the parent's place: refused at once, also when its folder is
# allowed (no writer ever comes; an open that blocked would time out).
vhdtool convert "$T/base.raw" "$T/exp/fbase.vhd"
vhdtool create -b "$T/exp/fbase.vhd" "$T/exp/fchild.vhd" >/dev/null
rm "$T/exp/fbase.vhd"
mkfifo "$T/exp/fbase.vhd"
start=$(date +%s)
nbd_refuses "fbase.vhd \(not a regular file\)" -r "$T/exp/fchild.vhd"
[ $(( $(date +%s) - start )) -lt 10 ] || fail "the FIFO made vhd-nbd wait"
# A device in the parent's place (allowed folder: /dev).
ln -sfn /dev/zero "$T/exp/fbase.vhd"
nbd_refuses "fbase.vhd \(($RULE|not a regular file)\)" --allow-parent-dir /dev -r "$T/exp/fchild.vhd"

# /proc: refused by the folder rule, and still refused when / is allowed
# (its files are regular but are kernel state, not images).
ln -sfn /proc/self/environ "$T/exp/fbase.vhd"
nbd_refuses "fbase.vhd \($RULE\)" -r "$T/exp/fchild.vhd"
nbd_refuses "fbase.vhd \($RULE\)" --allow-parent-dir / -r "$T/exp/fchild.vhd"
ln -sfn /sys/kernel/mm/transparent_hugepage/enabled "$T/exp/fbase.vhd"
if [ -f /sys/kernel/mm/transparent_hugepage/enabled ]; then
	nbd_refuses "fbase.vhd \($RULE\)" --allow-parent-dir / -r "$T/exp/fchild.vhd"
fi

# --allow-parent-dir must name a folder.
expect_error "not a folder" "$VHDNBD" --socket "$T/x.sock" --allow-parent-dir "$T/nothing" \
	"$T/exp/child.vhd"
echo ok
