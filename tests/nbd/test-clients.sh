#!/bin/bash
# SPDX-License-Identifier: MIT
# Real clients against vhd-nbd: nbdinfo, nbdcopy both ways, qemu-img over
# unix and TCP, qemu-io writes read back; several exports; the image is
# sound after the server stops.
. "$(dirname "$0")/../functions.sh"
requires nbdinfo
requires nbdcopy
requires qemu-img
requires qemu-io
requires openssl

truncate -s 64M "$T/a.raw"
put_data "$T/a.raw" n1 0 3000000
put_data "$T/a.raw" n2 $((40 * 1024 * 1024 + 512)) 70000
vhdtool convert "$T/a.raw" "$T/a.vhd"
vhdtool convert -O fixed "$T/a.raw" "$T/f.vhd"
cp "$T/a.vhd" "$T/rw.vhd"

start_nbd --export a="$T/a.vhd" --export fixed="$T/f.vhd" --export rw="$T/rw.vhd"
A="nbd+unix:///a?socket=$SOCK"
F="nbd+unix:///fixed?socket=$SOCK"
RW="nbd+unix:///rw?socket=$SOCK"

# nbdinfo: the list, the exact size, the flags, the map from metadata.
nbdinfo --list --json "nbd+unix:///?socket=$SOCK" >"$T/list.json"
[ "$(json_get "$T/list.json" 'sorted(e["export-name"] for e in j["exports"])')" = "['a', 'fixed', 'rw']" ] \
	|| fail "export list: $(cat "$T/list.json")"
nbdinfo --json "$A" >"$T/a.json"
[ "$(json_get "$T/a.json" 'j["exports"][0]["export-size"]')" = $((64 << 20)) ] || fail "export size"
[ "$(json_get "$T/a.json" 'j["exports"][0]["block_size_maximum"]')" = $((32 << 20)) ] || fail "block size max"
json_get "$T/a.json" 'j["exports"][0]["description"]' | grep -q 'dynamic VHD' || fail "description"
nbdinfo --can multi-conn "$A" || fail "multi-conn not advertised"
nbdinfo --can flush "$A" || fail "flush not advertised"
nbdinfo --can zero "$RW" || fail "write zeroes not advertised"
nbdinfo --map --json "$A" >"$T/map.json"
# Data where it was written (in 4 KiB pages), holes elsewhere, also inside
# allocated blocks: the map says so exactly.
[ "$(json_get "$T/map.json" '[(e["offset"], e["length"], e["type"]) for e in j]')" = \
  "[(0, 3002368, 0), (3002368, 38940672, 3), (41943040, 73728, 0), (42016768, 25092096, 3)]" ] \
	|| fail "map: $(cat "$T/map.json")"

# nbdcopy both ways, byte-exact.
nbdcopy "$A" "$T/copy.raw"
cmp "$T/a.raw" "$T/copy.raw" || fail "nbdcopy from the dynamic export"
nbdcopy "$F" "$T/copyf.raw"
cmp "$T/a.raw" "$T/copyf.raw" || fail "nbdcopy from the fixed export"
truncate -s 64M "$T/b.raw"
put_data "$T/b.raw" n3 $((10 * 1024 * 1024)) 5000000
nbdcopy "$T/b.raw" "$RW"
nbdcopy "$RW" "$T/back.raw"
cmp "$T/b.raw" "$T/back.raw" || fail "nbdcopy into the export and back"

# qemu-img against the unix URI.
qemu-img compare -q -f raw -F raw "$T/a.raw" "$A" || fail "qemu-img compare over unix"
qemu-img map --output=json -f raw "$A" >"$T/qmap.json"
[ "$(json_get "$T/qmap.json" 'sum(e["length"] for e in j if e["data"])')" = $((3002368 + 73728)) ] \
	|| fail "qemu-img map: $(cat "$T/qmap.json")"
qemu-img convert -f raw -O raw "$A" "$T/qconv.raw"
cmp "$T/a.raw" "$T/qconv.raw" || fail "qemu-img convert over NBD"

# qemu-io writes, read back through the server and through the file.
qemu-io -f raw -c 'write -P 0x5a 1M 64k' -c 'write -P 0xa5 33554431 2' -c 'flush' "$RW" >/dev/null
qemu-io -f raw -c 'read -P 0x5a 1M 64k' -c 'read -P 0xa5 33554431 2' "$RW" | grep -q 'read 2/2' \
	|| fail "qemu-io read back"
stop_nbd || fail "server did not stop cleanly"
expect_status 0 vhdtool check "$T/rw.vhd"
vhdtool convert -O raw "$T/rw.vhd" "$T/rw.raw"
[ "$(od -A n -t x1 -j $((1 << 20)) -N 4 "$T/rw.raw" | tr -d ' ')" = 5a5a5a5a ] || fail "qemu-io data not in the file"
expect_status 0 vhdtool check "$T/a.vhd"

# TCP on a free port, read-only: qemu-img reads, writes are refused.
port=$(free_port)
"$VHDNBD" -r --port "$port" "$T/a.vhd" 2>"$T/nbd.err" &
NBD_PID=$!
for _ in $(seq 1 100); do nbdinfo "nbd://127.0.0.1:$port" >/dev/null 2>&1 && break; sleep 0.05; done
qemu-img compare -q -f raw -F raw "$T/a.raw" "nbd://127.0.0.1:$port" || fail "qemu-img compare over TCP"
nbdinfo --can read-only "nbd://127.0.0.1:$port" || fail "read-only not advertised"
if qemu-io -f raw -c 'write -P 1 0 512' "nbd://127.0.0.1:$port" 2>&1 | grep -q 'wrote'; then
	fail "a write to a read-only export succeeded"
fi
stop_nbd || fail "TCP server did not stop cleanly"
echo ok
