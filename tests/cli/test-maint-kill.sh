#!/bin/bash
# SPDX-License-Identifier: MIT
# SIGKILL at random moments (seeded; the seed is printed) during compact,
# resize and merge: the image always opens, check exits 0 or 3 (or
# --repair brings it there), and the contents are unchanged (merge: every
# sector of the parent reads its old or its merged content, and running the
# merge again finishes it).
. "$(dirname "$0")/../functions.sh"
requires qemu-img
requires qemu-io
requires openssl
seed=${KILL_SEED:-$(date +%s)}
echo "kill test seed: $seed (KILL_SEED=$seed reproduces)"
delay() { /usr/bin/python3 -c "import random; print(random.Random($seed * 31 + $1).uniform(0, $2))"; }
# How long a command takes here (s), so the kills land inside it.
duration() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s%N)
	/usr/bin/python3 -c "print(max(($t1 - $t0) / 1e9, 0.01))"
}

# Accept the state a kill left: check 0 or 3, or repairable to that.
settle() {
	set +e
	"$VHDTOOL" check "$1" >"$T/chk" 2>&1
	local rc=$?
	if [ $rc != 0 ] && [ $rc != 3 ]; then
		"$VHDTOOL" check --repair "$1" >"$T/chk" 2>&1
		rc=$?
	fi
	set -e
	[ $rc = 0 ] || [ $rc = 3 ] || { cat "$T/chk"; fail "$2: check exits $rc after a kill"; }
}

size=$((256 * 1024 * 1024))
truncate -s $size "$T/src.raw"
zeros=""
for i in $(seq 0 127); do
	if [ $((i % 2)) = 0 ]; then
		put_data "$T/src.raw" "k$i" $((i * 2097152)) 2097152
	else
		printf '\001' | dd of="$T/src.raw" bs=1 seek=$((i * 2097152 + 4096)) conv=notrunc status=none
		zeros="$zeros -c 'write -P 0 $((i * 2097152 + 4096)) 512'"
	fi
done
vhdtool convert "$T/src.raw" "$T/orig.vhd"
eval qemu-io -f vpc "$zeros" "$T/orig.vhd" >/dev/null
/usr/bin/python3 - "$T/src.raw" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    for i in range(1, 128, 2):
        f.seek(i * 2097152 + 4096); f.write(b"\0")
PY
qemu-img compare -q -f raw -F vpc "$T/src.raw" "$T/orig.vhd" || fail "setup"

cp --sparse=always "$T/orig.vhd" "$T/t.vhd"
t_compact=$(duration vhdtool compact "$T/t.vhd")
cp --sparse=always "$T/orig.vhd" "$T/t.vhd"
t_resize=$(duration vhdtool resize "$T/t.vhd" 1T)
echo "compact takes ${t_compact}s, resize ${t_resize}s here"
for round in 1 2 3 4 5 6; do
	# compact
	cp --sparse=always "$T/orig.vhd" "$T/c.vhd"
	d=$(delay $round "$t_compact")
	"$VHDTOOL" compact "$T/c.vhd" >/dev/null 2>&1 &
	pid=$!
	sleep "$d"
	kill -KILL $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	settle "$T/c.vhd" "compact round $round"
	qemu-img compare -q -f raw -F vpc "$T/src.raw" "$T/c.vhd" || fail "compact round $round: contents changed"
	vhdtool compact "$T/c.vhd" >/dev/null     # and it can be finished
	qemu-img compare -q -f raw -F vpc "$T/src.raw" "$T/c.vhd" || fail "compact round $round: rerun"
	expect_status 0 vhdtool check "$T/c.vhd"

	# resize across the BAT's room (the first blocks move)
	cp --sparse=always "$T/orig.vhd" "$T/r.vhd"
	d=$(delay $((round + 10)) "$t_resize")
	"$VHDTOOL" resize "$T/r.vhd" 1T >/dev/null 2>&1 &
	pid=$!
	sleep "$d"
	kill -KILL $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	settle "$T/r.vhd" "resize round $round"
	vhdtool convert -O raw "$T/r.vhd" - 2>/dev/null | head -c $size | cmp - "$T/src.raw" \
		|| fail "resize round $round: the old range changed"
done

# merge: a child with 64 MiB of changes over the parent.
cp "$T/src.raw" "$T/new.raw"
for i in $(seq 0 31); do put_data "$T/new.raw" "m$i" $((i * 8 * 1048576 + 12345)) 2097152; done
cp --sparse=always "$T/orig.vhd" "$T/p.vhd"
vhdtool convert -B "$T/p.vhd" "$T/new.raw" "$T/kid.vhd"
t_merge=$(duration vhdtool merge "$T/kid.vhd")
echo "merge takes ${t_merge}s here"
rm -f "$T/kid.vhd"
for round in 1 2 3 4 5 6; do
	cp --sparse=always "$T/orig.vhd" "$T/p.vhd"
	vhdtool convert -B "$T/p.vhd" "$T/new.raw" "$T/kid.vhd"
	d=$(delay $((round + 20)) "$t_merge")
	"$VHDTOOL" merge "$T/kid.vhd" >/dev/null 2>&1 &
	pid=$!
	sleep "$d"
	kill -KILL $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	settle "$T/p.vhd" "merge round $round"
	vhdtool convert -O raw "$T/p.vhd" "$T/p.raw" --overwrite
	/usr/bin/python3 - "$T/src.raw" "$T/new.raw" "$T/p.raw" <<'PY' || fail "merge round $round: a sector holds neither"
import sys
old, new, got = (open(p, "rb") for p in sys.argv[1:])
mixed = 0
while True:
    a, b, c = old.read(1 << 20), new.read(1 << 20), got.read(1 << 20)
    if not a:
        break
    for s in range(0, len(a), 512):
        x = c[s:s + 512]
        assert x == a[s:s + 512] or x == b[s:s + 512], "foreign bytes"
        mixed += x != a[s:s + 512]
print("merged sectors so far:", mixed)
PY
	vhdtool merge "$T/kid.vhd" >/dev/null       # a second run finishes the job
	qemu-img compare -q -f raw -F vpc "$T/new.raw" "$T/p.vhd" || fail "merge round $round: rerun did not finish"
	expect_status 0 vhdtool check "$T/p.vhd"
	rm -f "$T/kid.vhd"
done
echo ok
