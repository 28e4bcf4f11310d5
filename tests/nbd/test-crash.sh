#!/bin/bash
# SPDX-License-Identifier: MIT
# SIGKILL the server in the middle of a stream of flushed writes, restart
# it: every write acknowledged before the last completed FLUSH is intact,
# the rest read their old or new content, and vhdtool check is clean.
. "$(dirname "$0")/../functions.sh"
requires nbdinfo
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd missing"; exit 77; }
D=$(cd "$(dirname "$0")" && pwd)
seed=${CRASH_SEED:-$(date +%s)}
echo "crash test seed: $seed (CRASH_SEED=$seed reproduces)"

for round in 1 2 3; do
	for type in dynamic diff; do
		rm -f "$T"/*.vhd "$T/log"
		if [ $type = diff ]; then
			vhdtool create "$T/base.vhd" 128M >/dev/null
			vhdtool create -b "$T/base.vhd" "$T/img.vhd" >/dev/null
		else
			vhdtool create --block-size 512K "$T/img.vhd" 128M >/dev/null
		fi
		start_nbd "$T/img.vhd"
		/usr/bin/python3 "$D/crash_writer.py" "$URI" "$T/log" $((seed + round)) &
		writer=$!
		# Kill somewhere between 0.1 and 0.8 s into the stream.
		sleep "$(/usr/bin/python3 -c "import random; print(random.Random($seed * 7 + $round).uniform(0.1, 0.8))")"
		kill -KILL "$NBD_PID"
		wait "$NBD_PID" 2>/dev/null || true
		NBD_PID=
		wait $writer || true
		flushed=$(tail -1 "$T/log" 2>/dev/null || echo 0)

		echo "round $round ($type), seed $seed"
		start_nbd "$T/img.vhd"   # a writer open takes back what the crash left unused
		/usr/bin/python3 - "$URI" "$flushed" $((seed + round)) <<'PY' || fail "round $round ($type): data check"
import random, sys
import nbd
uri, flushed, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rec = 16 * 1024
h = nbd.NBD(); h.connect_uri(uri)
slots = h.get_size() // rec
order = list(range(slots)); random.Random(seed).shuffle(order)
where = {slot: n for n, slot in enumerate(order)}
lost = 0
for slot in range(slots):
    data = h.pread(rec, slot * rec)
    n = where[slot]
    new = bytes([n % 251 + 1]) * 8 + n.to_bytes(8, "big") + bytes([n % 251 + 1]) * (rec - 16)
    if n < flushed:
        assert data == new, "record %d (flushed) lost" % n
    else:
        # A write in flight at the kill may be cut between pages: each
        # sector holds its old or its new bytes, never others.
        for s in range(0, rec, 512):
            assert data[s:s + 512] in (new[s:s + 512], bytes(512)), \
                "record %d, sector %d holds foreign bytes" % (n, s // 512)
        lost += data != new
later = sum(1 for s in range(slots) if where[s] >= flushed)
print("%d flushed records intact; of %d later ones, %d read new and %d old content" % (flushed, later, later - lost, lost))
PY
		stop_nbd || fail "restarted server did not stop cleanly"
		expect_status 0 vhdtool check "$T/img.vhd"
		[ "$flushed" -gt 0 ] || echo "round $round ($type): the kill came before the first flush"
	done
done
echo ok
