#!/bin/sh
# SPDX-License-Identifier: MIT
# Write the seed inputs (seed-*) of tests/fuzz/corpus/<target>/: tiny VHD
# images made by vhdtool and by hand (block sizes down to 512 bytes, so a
# few KiB hold several blocks, partial bitmaps and parent locators), the
# footers and headers of fixtures/dfvfs, and UTF-16/UTF-8 samples.
# Inputs that `make fuzz` merged in (hash names) are left alone.
#   tests/fuzz/make-seeds.sh        (run from the top of the tree, after `make`)
set -eu
VHDTOOL=${VHDTOOL:-build/vhdtool}
C=tests/fuzz/corpus
[ -x "$VHDTOOL" ] || { echo "$0: $VHDTOOL missing: run make first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "$0: needs python3" >&2; exit 1; }
for t in fuzz_footer fuzz_header fuzz_utf fuzz_nbd fuzz_check fuzz_image; do
	mkdir -p "$C/$t"
	rm -f "$C/$t"/seed-*
done

# A fixed folder, so the absolute (MacX) locators vhdtool writes are the
# same on every machine.
W=/tmp/vhd-fuzz-seeds
rm -rf "$W"
mkdir -p "$W"
q() { "$VHDTOOL" "$@" >/dev/null; }
q create -t dynamic --block-size 512K "$W/dyn.vhd" 1M
q create -t fixed "$W/fixed.vhd" 16K
q create -t differencing -b "$W/dyn.vhd" "$W/child.vhd"
# One allocated 512 KiB block: a few bytes written through convert.
python3 - "$W/raw" <<'EOF'
import sys
b = bytearray(1 << 20)
b[700 * 512:700 * 512 + 5] = b"hello"
b[1000 * 512 + 100] = 0x5a
open(sys.argv[1], "wb").write(b)
EOF
q convert -f raw -O dynamic --block-size 512K "$W/raw" "$W/one-block.vhd"
# A child holding two sectors of the first block (a partial bitmap).
q create -t dynamic --block-size 512K "$W/base.vhd" 1M
python3 - "$W/raw2" <<'EOF'
import sys
b = bytearray(1 << 20)
b[3 * 512:3 * 512 + 3] = b"abc"
b[9 * 512 + 511] = 1
open(sys.argv[1], "wb").write(b)
EOF
q convert -f raw -B "$W/base.vhd" --block-size 512K "$W/raw2" "$W/diff-block.vhd"

# Fixed UUIDs and timestamps, so the seeds are the same on every run.
python3 - "$W" <<'EOF'
import struct, sys
W = sys.argv[1]
def checksum(b, off):
    return ~(sum(b[:off]) + sum(b[off + 4:])) & 0xFFFFFFFF
uuids = {}
def pin(name, n, parent=None):
    path = "%s/%s.vhd" % (W, name)
    b = bytearray(open(path, "rb").read())
    f = bytearray(b[-512:])
    f[68:84] = bytes([n] * 16)
    struct.pack_into(">I", f, 24, 0x2a000000 + n)
    struct.pack_into(">I", f, 64, checksum(f, 64))
    b[-512:] = f
    dtype = struct.unpack_from(">I", f, 60)[0]
    if dtype != 2:
        b[0:512] = f
        if parent:
            h = 512
            b[h + 40:h + 56] = uuids[parent]
            struct.pack_into(">I", b, h + 56, 0x2a000000 + uuids[parent][0])
            struct.pack_into(">I", b, h + 36, checksum(b[h:h + 1024], 36))
    uuids[name] = bytes(f[68:84])
    open(path, "wb").write(b)
pin("dyn", 1); pin("fixed", 2); pin("child", 3, "dyn")
pin("one-block", 4); pin("base", 5); pin("diff-block", 6, "base")
EOF

for f in dyn fixed child; do
	cp "$W/$f.vhd" "$C/fuzz_check/seed-vhdtool-$f.vhd"
	cp "$W/$f.vhd" "$C/fuzz_image/seed-vhdtool-$f.vhd"
done
cp "$W/one-block.vhd" "$C/fuzz_image/seed-vhdtool-one-block.vhd"
cp "$W/diff-block.vhd" "$C/fuzz_image/seed-vhdtool-diff-block.vhd"

python3 - "$C" "$W" <<'EOF'
import os, struct, sys

C, W = sys.argv[1], sys.argv[2]

def put(target, name, data):
    with open(os.path.join(C, target, "seed-" + name), "wb") as f:
        f.write(data)

def checksum(b, off):
    s = sum(b[:off]) + sum(b[off + 4:])
    return (~s) & 0xFFFFFFFF

def geometry(size):
    total = min(size // 512, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt

def footer(dtype, size, data_offset, creator=b"qem2", uuid=None, geom=None, legacy=False):
    b = bytearray(512)
    c, h, s = geom or geometry(size)
    b[0:8] = b"conectix"
    struct.pack_into(">IIQI4sII", b, 8, 2, 0x10000, data_offset, 0x2a000000, creator,
                     0x10000, 0x5769326B)
    struct.pack_into(">QQHBBI", b, 40, size, size, c, h, s, dtype)
    b[68:84] = uuid or bytes(range(0x10, 0x20))
    struct.pack_into(">I", b, 64, checksum(b[:511] if legacy else b, 64))
    return bytes(b[:511]) if legacy else bytes(b)

def utf16(s, be):
    return s.encode("utf-16-be" if be else "utf-16-le")

def dynamic(vsize, bs, blocks, dtype=3, creator=b"qem2", geom=None, locators=(),
            parent_name="", parent_uuid=b"\x5f" * 16, max_entries=None, break_end=False):
    """blocks: {index: (bitmap bytes or None for all set, fill byte)}"""
    entries = (vsize + bs - 1) // bs
    max_entries = entries if max_entries is None else max_entries
    bat_len = (max_entries * 4 + 511) // 512 * 512
    bitmap_len = ((bs // 512 + 7) // 8 + 511) // 512 * 512
    off = 1536 + bat_len
    loc_entries, loc_data = [], b""
    for code, data in locators:
        space = (len(data) + 511) // 512 * 512
        loc_entries.append((code, space, len(data), off + len(loc_data)))
        loc_data += data + bytes(space - len(data))
    off += len(loc_data)
    bat = [0xFFFFFFFF] * max_entries
    body = b""
    for i in sorted(blocks):
        bits, fill = blocks[i]
        if bits is None:
            bits = b"\xff" * ((bs // 512 + 7) // 8)
        bits = bits + bytes(bitmap_len - len(bits))
        bat[i] = (off + len(body)) // 512
        data = bytes((fill + k) & 0xFF for k in range(bs))
        body += bits + data
    f = footer(dtype, vsize, 512, creator, geom=geom)
    h = bytearray(1024)
    h[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", h, 8, 0xFFFFFFFFFFFFFFFF, 1536, 0x10000, max_entries, bs)
    if dtype == 4:
        h[40:56] = parent_uuid
        struct.pack_into(">I", h, 56, 0x29000000)
        n = utf16(parent_name, True)
        h[64:64 + len(n)] = n
        for i, (code, space, length, loff) in enumerate(loc_entries):
            struct.pack_into(">IIIIQ", h, 576 + 24 * i, code, space, length, 0, loff)
    struct.pack_into(">I", h, 36, checksum(h, 36))
    batb = b"".join(struct.pack(">I", e) for e in bat)
    batb += bytes(bat_len - len(batb))
    end = f
    if break_end:
        end = bytearray(f)
        end[64] ^= 0xFF
        end = bytes(end)
    img = f + bytes(h) + batb + loc_data + body + end
    return img

def header_seed(b):
    """The header (512..1535) and then the data its locators point to."""
    h = b[512:1536]
    tail = b""
    for i in range(8):
        code, space, length, _, off = struct.unpack_from(">IIIIQ", h, 576 + 24 * i)
        if code and length and off + length <= len(b):
            tail += b[off:off + length]
    return h + tail[:1024]

W2RU, W2KU, MACX = 0x57327275, 0x57326B75, 0x4D616358
def w2(s):
    return utf16(s, False)

images = {}
# Dynamic, 4 KiB blocks: full, partial and free blocks.
images["dyn-4k"] = dynamic(32 << 10, 4096, {0: (None, 1), 2: (b"\x58\x01", 9), 5: (None, 77)})
# Sized by CHS (creator "vpc "): 1/4/17 = 34816 bytes.
images["dyn-vpc-chs"] = dynamic(40 << 10, 4096, {1: (b"\xf0", 3)}, creator=b"vpc ", geom=(1, 4, 17))
# One sector per block, and a block size of 2 GiB over a 1 TiB disk.
images["dyn-512"] = dynamic(8 << 10, 512, {0: (b"\x80", 5), 3: (b"\x00", 6), 15: (None, 7)})
images["dyn-huge"] = dynamic(1 << 40, 1 << 31, {})
# A BAT declared longer than needed; an end footer with a bad checksum.
images["dyn-spare-bat"] = dynamic(16 << 10, 4096, {1: (None, 2)}, max_entries=300)
images["dyn-bad-end-footer"] = dynamic(16 << 10, 4096, {0: (None, 2)}, break_end=True)
# Differencing children, 4 KiB blocks; the fuzz targets' parents are
# picked by the length of the path (see fuzz_common.h): 8 -> fixed,
# 9 -> dynamic, 6 -> the image itself (a cycle), 7 -> none.
images["diff-fixed-parent"] = dynamic(
    64 << 10, 4096, {0: (b"\xa1", 0x30), 3: (None, 0x40)}, dtype=4,
    locators=[(W2RU, w2(".\\fix0.vhd")), (W2KU, w2("C:\\dir\\dyn01.vhd")),
              (MACX, b"file://localhost/tmp/a%20b.vhd")],
    parent_name="fix0.vhd")
images["diff-dyn-parent"] = dynamic(
    2 << 20, 4096, {1: (b"\x0f\xf0", 0x50)}, dtype=4,
    locators=[(W2RU, w2(".\\p1.vhd")), (W2KU, w2("C:\\dir\\dyn01.vhd")),
              (MACX, b"file:///srv/vm/base%41.vhd")],
    parent_name="dyn01.vhd")
images["diff-no-locators"] = dynamic(16 << 10, 4096, {}, dtype=4, parent_name="abc.vhd")

def fixed(size, legacy=False, creator=b"qem2"):
    data = bytes((k * 31 + 7) & 0xFF for k in range(size))
    return data + footer(2, size, 0xFFFFFFFFFFFFFFFF, creator, legacy=legacy)

images["fixed-8k"] = fixed(8 << 10)
images["fixed-legacy-511"] = fixed(4 << 10, legacy=True)

for name, img in images.items():
    put("fuzz_image", name + ".vhd", img)
    put("fuzz_check", name + ".vhd", img)
    put("fuzz_footer", name + ".footer", img[-512:])
    if img[512:520] == b"cxsparse":
        put("fuzz_header", name + ".header", header_seed(img))

# The real-world fixtures: footer (last 512 bytes), header (512..1535) and
# its locators' data.
fx = "fixtures/dfvfs"
for f in sorted(os.listdir(fx)):
    if not f.endswith(".vhd"):
        continue
    b = open(os.path.join(fx, f), "rb").read()
    base = f[:-4]
    put("fuzz_footer", "dfvfs-" + base + ".footer", b[-512:])
    put("fuzz_header", "dfvfs-" + base + ".header", header_seed(b))

for f in ("dyn", "fixed", "child"):
    b = open(os.path.join(W, f + ".vhd"), "rb").read()
    put("fuzz_footer", "vhdtool-" + f + ".footer", b[-512:])
    if f != "fixed":
        put("fuzz_header", "vhdtool-" + f + ".header", header_seed(b))

# UTF: a flag byte (bit 0: big-endian; the rest: a small buffer size) and text.
texts = ["C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd", ".\\fat-parent.vhd",
         "d\u00e9j\u00e0 vu \u00fcber", "\u65e5\u672c\u8a9e.vhd", "emoji \U0001F600 x"]
for i, t in enumerate(texts):
    put("fuzz_utf", "le-%d" % i, bytes([0x10]) + utf16(t, False))
    put("fuzz_utf", "be-%d" % i, bytes([0x11]) + utf16(t, True))
    put("fuzz_utf", "u8-%d" % i, bytes([0x06]) + t.encode())
put("fuzz_utf", "lone-surrogate", bytes([0x11]) + b"\xd8\x00\x00\x41\xdc\x00")
put("fuzz_utf", "overlong", bytes([0x00]) + b"\xc0\x80\xe0\x80\xaf\xf4\x90\x80\x80")

# NBD: a mode byte (see fuzz_nbd.c), then what a client sends.
IHAVEOPT = 0x49484156454F5054
def opt(code, data=b""):
    return struct.pack(">QII", IHAVEOPT, code, len(data)) + data
def nstr(t):
    return struct.pack(">I", len(t)) + t
def req(typ, off, length, flags=0, cookie=1):
    return struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, off, length)
requests = (req(0, 0, 4096) + req(1, 4096, 16) + bytes(range(16)) + req(7, 0, 1 << 20, 8) +
            req(3, 0, 0) + req(4, 8192, 4096, 1) + req(6, 0, 512, 0x13) + req(5, 0, 512) +
            req(0, (1 << 20) - 1, 2) + req(2, 0, 0))
go = (struct.pack(">I", 3) + opt(8) + opt(10, nstr(b"disk") + struct.pack(">I", 1) + nstr(b"base:allocation")) +
      opt(9, nstr(b"disk") + struct.pack(">I", 0)) + opt(3) +
      opt(6, nstr(b"disk") + struct.pack(">H", 3) + struct.pack(">HHH", 1, 2, 3)) +
      opt(99, b"x") + opt(5) + opt(7, nstr(b"disk") + struct.pack(">H", 0)))
put("fuzz_nbd", "go", bytes([0x12]) + go + requests)
put("fuzz_nbd", "export-name", bytes([0x12]) + struct.pack(">I", 1) + opt(1, b"ro") + requests)
put("fuzz_nbd", "default-export", bytes([0x52]) + struct.pack(">I", 2) + opt(7, nstr(b"") + struct.pack(">H", 0)) + requests)
put("fuzz_nbd", "abort", bytes([0x00]) + struct.pack(">I", 3) + opt(3) + opt(2))
put("fuzz_nbd", "direct", bytes([0x8b]) + requests)
EOF
du -sh "$C"
for t in fuzz_footer fuzz_header fuzz_utf fuzz_nbd fuzz_check fuzz_image; do
	echo "$t: $(ls "$C/$t" | wc -l) inputs, $(du -sh "$C/$t" | cut -f1)"
done
rm -rf "$W"
