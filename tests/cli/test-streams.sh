#!/bin/bash
# SPDX-License-Identifier: MIT
# convert with streams: '-' in and out, gzip in and out, sizes learned at
# the end of a pipe or stated by --size, and every way a stream can fail.
. "$(dirname "$0")/../functions.sh"
requires qemu-img
requires openssl
requires gzip

# 40 MiB with data at the start, in the middle, at the very end, and a
# zero run written as data.
truncate -s 40M "$T/src.raw"
put_data "$T/src.raw" s1 0 3000000
put_data "$T/src.raw" s2 $((20 * 1024 * 1024 + 4096)) 8192
put_data "$T/src.raw" s3 $((40 * 1024 * 1024 - 4096)) 4096
vhdtool convert "$T/src.raw" "$T/img.vhd"

same() { qemu-img compare -q -f raw -F vpc "$T/src.raw" "$1" || fail "qemu-img: $1 differs from the source"; }
clean() { expect_status 0 vhdtool check "$1"; }
vsize() { vhdtool info --json "$1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }

# A pipe into every VHD type: the size is learned at the end of the data.
cat "$T/src.raw" | vhdtool convert - "$T/pd.vhd"
cat "$T/src.raw" | vhdtool convert -O fixed - "$T/pf.vhd"
for f in pd pf; do same "$T/$f.vhd"; clean "$T/$f.vhd"; done
[ "$(vsize "$T/pd.vhd")" = $((40 << 20)) ] || fail "dynamic from a pipe: size $(vsize "$T/pd.vhd")"
# Shrunk from 2040 GiB: its table keeps the spare entries; libvhdi must agree on the size.
if command -v vhdiinfo >/dev/null; then
	[ "$(vhdi_size "$T/pd.vhd")" = $((40 << 20)) ] || fail "libvhdi: dynamic from a pipe: $(vhdi_size "$T/pd.vhd")"
fi
[ "$(stat -c %s "$T/pf.vhd")" = $((40 * 1024 * 1024 + 512)) ] || fail "fixed from a pipe: file size"
# Zeros from a pipe stay holes / unallocated, as from a file.
[ "$(du -k "$T/pf.vhd" | cut -f1)" -lt 4096 ] || fail "fixed output from a pipe not sparse"
cat "$T/src.raw" | vhdtool convert -O raw - "$T/p.raw"
cmp "$T/src.raw" "$T/p.raw" || fail "pipe to raw changed the data"
[ "$(du -k "$T/p.raw" | cut -f1)" -lt 4096 ] || fail "raw output from a pipe not sparse"
# A differencing child from a pipe holds only what differs.
cp "$T/src.raw" "$T/mod.raw"
printf 'changed' | dd of="$T/mod.raw" bs=1 seek=5000000 conv=notrunc status=none
cat "$T/mod.raw" | vhdtool convert -B "$T/img.vhd" - "$T/child.vhd"
# (qemu-img does not read a child through its parent: read it back ourselves.)
vhdtool convert "$T/child.vhd" - | cmp - "$T/mod.raw" || fail "child from a pipe differs"
clean "$T/child.vhd"
blocks=$(vhdtool info --json "$T/child.vhd" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated-blocks"])')
[ "$blocks" = 1 ] || fail "child from a pipe allocated $blocks blocks, expected 1"

# Out to a pipe: raw by default, or a fixed VHD (its footer comes last).
vhdtool convert "$T/img.vhd" - | cmp - "$T/src.raw" || fail "VHD to standard output differs"
vhdtool convert -O fixed "$T/img.vhd" - >"$T/sf.vhd"
same "$T/sf.vhd"
clean "$T/sf.vhd"
cat "$T/src.raw" | vhdtool convert - - | cmp - "$T/src.raw" || fail "pipe to pipe differs"
# --azure to a pipe: padded to whole MiB, then the footer.
head -c $((21 * 1024 * 1024 + 1000)) "$T/src.raw" | vhdtool convert --azure - - >"$T/az.vhd"
[ "$(stat -c %s "$T/az.vhd")" = $((22 * 1024 * 1024 + 512)) ] || fail "azure stream: file size"
clean "$T/az.vhd"

# gzip in: by name, by magic, and several members one after another.
gzip -c "$T/src.raw" >"$T/x.raw.gz"
vhdtool convert "$T/x.raw.gz" "$T/gz.vhd"
same "$T/gz.vhd"
clean "$T/gz.vhd"
cp "$T/x.raw.gz" "$T/noext"
vhdtool convert -O fixed "$T/noext" "$T/gzf.vhd"
same "$T/gzf.vhd"
clean "$T/gzf.vhd"
cat "$T/x.raw.gz" | vhdtool convert -O raw - "$T/gzpipe.raw"
cmp "$T/gzpipe.raw" "$T/src.raw" || fail "gzip from a pipe differs"
{ head -c 1000000 "$T/src.raw" | gzip -c; tail -c +1000001 "$T/src.raw" | gzip -1 -c; } >"$T/multi.gz"
vhdtool convert "$T/multi.gz" "$T/multi.vhd"
same "$T/multi.vhd"
clean "$T/multi.vhd"
# -f raw takes a gzip-looking file as it is, unless its name ends in .gz.
vhdtool convert -f raw -O raw "$T/noext" "$T/asis.raw"
cmp "$T/noext" "$T/asis.raw" || fail "-f raw did not copy the bytes as they are"

# gzip out: raw, or a compressed fixed VHD; gzip and zlib must read it.
vhdtool convert "$T/img.vhd" "$T/out.raw.gz"
gzip -t "$T/out.raw.gz" || fail "gzip -t refuses our output"
gunzip -c "$T/out.raw.gz" | cmp - "$T/src.raw" || fail "gzip output differs"
cat "$T/src.raw" | vhdtool convert - "$T/pipe.raw.gz"
gunzip -c "$T/pipe.raw.gz" | cmp - "$T/src.raw" || fail "gzip output from a pipe differs"
vhdtool convert -O fixed "$T/img.vhd" "$T/fixed.vhd.gz"
gunzip -c "$T/fixed.vhd.gz" >"$T/fixed-gz.vhd"
same "$T/fixed-gz.vhd"
clean "$T/fixed-gz.vhd"
/usr/bin/python3 -c 'import gzip,sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())' \
	"$T/out.raw.gz" | cmp - "$T/src.raw" || fail "python's gzip reads our output differently"

# --size: a stream of the stated size; longer or shorter is refused.
cat "$T/src.raw" | vhdtool convert --size 40M - "$T/sized.vhd"
same "$T/sized.vhd"
clean "$T/sized.vhd"
blocks=$(vhdtool info --json "$T/sized.vhd" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated-blocks"])')
[ "$blocks" = 4 ] || fail "sized dynamic output allocated $blocks blocks, expected 4"
cat "$T/src.raw" | expect_error "longer than the 40894464 bytes given by --size" \
	vhdtool convert --size 39M - "$T/long.vhd"
[ ! -e "$T/long.vhd" ] || fail "a stream longer than --size left output behind"
cat "$T/src.raw" | expect_error "the stream is 41943040 bytes, not the 42991616" \
	vhdtool convert -O raw --size 41M - "$T/short.raw"
[ ! -e "$T/short.raw" ] || fail "a stream shorter than --size left output behind"
expect_error "not the 42991616 given by --size" vhdtool convert --size 41M "$T/src.raw" "$T/x.vhd"

# A VHD cannot hold a stream whose size is not whole sectors.
head -c 1000 "$T/src.raw" | expect_error "stream is 1000 bytes, not a multiple of 512" \
	vhdtool convert - "$T/odd.vhd"
[ ! -e "$T/odd.vhd" ] || fail "odd-sized stream left a dynamic output behind"
head -c 1000 "$T/src.raw" | expect_error "stream is 1000 bytes, not a multiple of 512" \
	vhdtool convert -O fixed - "$T/odd.vhd"
[ ! -e "$T/odd.vhd" ] || fail "odd-sized stream left a fixed output behind"
head -c 1000 "$T/src.raw" | gzip -c >"$T/odd.gz"
expect_error "not a multiple of 512" vhdtool convert "$T/odd.gz" "$T/odd.vhd"
[ ! -e "$T/odd.vhd" ] || fail "odd-sized gzip left output behind"
expect_error "empty" vhdtool convert - "$T/empty.vhd" </dev/null
[ ! -e "$T/empty.vhd" ] || fail "empty stream left output behind"

# Broken gzip: the zlib error is named and no output is left.
head -c 1000000 "$T/x.raw.gz" >"$T/trunc.gz"
expect_error "truncated.*Z_BUF_ERROR" vhdtool convert "$T/trunc.gz" "$T/t.vhd"
[ ! -e "$T/t.vhd" ] || fail "truncated gzip left output behind"
cat "$T/trunc.gz" | expect_error "truncated.*Z_BUF_ERROR" vhdtool convert -O raw - "$T/t.raw"
[ ! -e "$T/t.raw" ] || fail "truncated gzip from a pipe left output behind"
/usr/bin/python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[20] ^= 0xff; d[30] ^= 0x55; open(sys.argv[2], "wb").write(d)' \
	"$T/x.raw.gz" "$T/bad.gz"
expect_error "corrupt.*Z_DATA_ERROR" vhdtool convert "$T/bad.gz" "$T/bad.vhd"
[ ! -e "$T/bad.vhd" ] || fail "corrupt gzip left output behind"
echo "not gzip" >"$T/plain.gz"
expect_error "not gzip data" vhdtool convert "$T/plain.gz" "$T/x.vhd"

# Outputs that cannot be streamed, and sources that cannot be.
expect_error "dynamic VHD cannot be written to a pipe" vhdtool convert -O dynamic "$T/img.vhd" -
expect_error "differencing VHD cannot be written" vhdtool convert -B "$T/img.vhd" "$T/src.raw" "$T/d.gz"
[ ! -e "$T/d.gz" ] || fail "refused .gz output was created"
expect_error "must be a file" vhdtool convert -f vhd - "$T/x.vhd" <"$T/img.vhd"
expect_error "No such file" vhdtool convert "$T/missing.gz" "$T/x.vhd"
# An existing .gz is kept unless --overwrite.
echo precious >"$T/keep.raw.gz"
expect_error "already exists" vhdtool convert "$T/img.vhd" "$T/keep.raw.gz"
[ "$(cat "$T/keep.raw.gz")" = precious ] || fail "convert replaced a .gz without --overwrite"
# Standard output that is the source itself.
expect_error "same file" sh -c '"$0" convert -O raw "$1" - >>"$1"' "$VHDTOOL" "$T/p.raw"

# A reader that goes away: a message and a non-zero exit, not SIGPIPE.
truncate -s 64M "$T/big.raw"
put_data "$T/big.raw" b1 0 $((16 << 20))
put_data "$T/big.raw" b2 $((40 << 20)) $((8 << 20))
vhdtool convert "$T/big.raw" "$T/big.vhd"
set +e
vhdtool convert "$T/big.vhd" - 2>"$T/epipe.err" | head -c 1000 >/dev/null
rc=${PIPESTATUS[0]}
cat "$T/big.raw" | vhdtool convert - "$T/epipe.raw.gz" 2>/dev/null | head -c 1 >/dev/null
vhdtool convert "$T/big.raw" - 2>"$T/epipe2.err" | head -c 1000 >/dev/null
rc2=${PIPESTATUS[0]}
set -e
[ "$rc" = 1 ] || { cat "$T/epipe.err" >&2; fail "closed pipe: exit $rc, expected 1"; }
[ "$rc2" = 1 ] || { cat "$T/epipe2.err" >&2; fail "closed pipe (raw source): exit $rc2, expected 1"; }
grep -q "reader closed the pipe" "$T/epipe.err" || fail "closed pipe: $(cat "$T/epipe.err")"
grep -qE 'AddressSanitizer|runtime error' "$T/epipe.err" "$T/epipe2.err" && fail "sanitizer report on a closed pipe"

# Progress: bytes for a stream, a percentage for a file into a stream.
cat "$T/src.raw" | vhdtool convert -p - "$T/prog.vhd" 2>"$T/progress"
grep -q "40 MiB copied" "$T/progress" || fail "stream progress: $(cat "$T/progress")"
vhdtool convert -p "$T/img.vhd" - 2>"$T/progress2" >/dev/null
grep -q '100/100%' "$T/progress2" || fail "progress to a stream: $(cat "$T/progress2")"

# A full disk: the partial .gz and the partial VHD are removed.
if [ "$(id -u)" = 0 ] && mkdir "$T/full" && mount -t tmpfs -o size=2m tmpfs "$T/full" 2>/dev/null; then
	unmount_full() { umount "$T/full"; }
	on_exit unmount_full
	expect_error "No space left on device" vhdtool convert "$T/big.vhd" "$T/full/out.raw.gz"
	[ ! -e "$T/full/out.raw.gz" ] || fail "partial .gz left on a full file system"
	cat "$T/big.raw" | expect_error "no space left on device|No space left on device" \
		vhdtool convert - "$T/full/out.vhd"
	[ ! -e "$T/full/out.vhd" ] || fail "partial VHD left on a full file system"
fi
echo ok
