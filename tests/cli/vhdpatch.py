#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Patch one field of a VHD's footer (both copies) or dynamic header and
fix the checksum, so a test can build an image with one chosen property.

  vhdpatch.py FILE footer-uuid UUID
  vhdpatch.py FILE header-parent-uuid UUID
  vhdpatch.py FILE read-uuid
"""
import struct
import sys
import uuid


def checksum(buf, off):
    b = bytearray(buf)
    b[off:off + 4] = b"\0\0\0\0"
    return (~sum(b)) & 0xFFFFFFFF


def patch_footer(f, size, at, data):
    offsets = [size - 512]
    f.seek(0)
    if f.read(8) == b"conectix":
        offsets.append(0)
    for off in offsets:
        f.seek(off)
        foot = bytearray(f.read(512))
        foot[at:at + len(data)] = data
        foot[64:68] = struct.pack(">I", checksum(foot, 64))
        f.seek(off)
        f.write(foot)


def patch_header(f, size, at, data):
    f.seek(size - 512 + 16)
    hoff = struct.unpack(">Q", f.read(8))[0]
    f.seek(hoff)
    hdr = bytearray(f.read(1024))
    hdr[at:at + len(data)] = data
    hdr[36:40] = struct.pack(">I", checksum(hdr, 36))
    f.seek(hoff)
    f.write(hdr)


def main():
    path, what = sys.argv[1], sys.argv[2]
    with open(path, "r+b") as f:
        f.seek(0, 2)
        size = f.tell()
        if what == "footer-uuid":
            patch_footer(f, size, 68, uuid.UUID(sys.argv[3]).bytes)
        elif what == "header-parent-uuid":
            patch_header(f, size, 40, uuid.UUID(sys.argv[3]).bytes)
        elif what == "read-uuid":
            f.seek(size - 512 + 68)
            print(uuid.UUID(bytes=f.read(16)))
        else:
            sys.exit("unknown patch " + what)


main()
