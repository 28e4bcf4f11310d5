#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write an initramfs (cpio "newc") from a folder, without root.

usage: newc.py OUT DIR [NODE...]
NODE adds a device node: PATH:c|b:MAJOR:MINOR (e.g. dev/console:c:5:1).
Owners are root; modes, symlinks and file contents come from DIR.
"""
import os
import stat
import sys


def entry(out, ino, name, mode, data=b"", rdev=(0, 0), nlink=1):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join("%08x" % v for v in (
        ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
    out.write(hdr.encode() + name_b)
    out.write(b"\0" * (-(110 + len(name_b)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_path, root = sys.argv[1], sys.argv[2]
    ino = 1
    with open(out_path, "wb") as out:
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for name in [None] + sorted(files) + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
                path = dirpath if name is None else os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                if rel == ".":
                    continue
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    data = os.readlink(path).encode()
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as f:
                        data = f.read()
                else:
                    data = b""
                entry(out, ino, rel, st.st_mode, data, nlink=2 if stat.S_ISDIR(st.st_mode) else 1)
                ino += 1
        for node in sys.argv[3:]:
            path, kind, major, minor = node.split(":")
            mode = (stat.S_IFCHR if kind == "c" else stat.S_IFBLK) | 0o600
            entry(out, ino, path, mode, rdev=(int(major), int(minor)))
            ino += 1
        entry(out, 0, "TRAILER!!!", 0)


main()
