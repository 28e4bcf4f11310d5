#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Bytes a library client never sends, over a plain socket: unknown options
and commands, bad magic, huge lengths, garbage.  The server must answer per
the spec, keep the stream in step, and keep serving other clients."""
import socket
import struct
import sys

SOCK = sys.argv[1]
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x3E889045565A9


def connect():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(SOCK)
    hello = recv(s, 18)
    assert hello[:8] == b"NBDMAGIC" and struct.unpack(">Q", hello[8:16])[0] == IHAVEOPT
    s.sendall(struct.pack(">I", 3))     # fixed newstyle, no zeroes
    return s


def recv(s, n):
    b = b""
    while len(b) < n:
        part = s.recv(n - len(b))
        if not part:
            raise EOFError("server closed")
        b += part
    return b


def option(s, code, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, code, len(data)) + data)


def reply(s):
    magic, opt, typ, length = struct.unpack(">QIII", recv(s, 20))
    assert magic == REP_MAGIC, hex(magic)
    return opt, typ, recv(s, length)


def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True


def go(s, name=b""):
    option(s, 8)                        # structured replies
    assert reply(s)[1] == 1
    option(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    while True:
        _, typ, data = reply(s)
        if typ == 1:
            return
        assert typ == 3, typ


def request(s, typ, off, length, flags=0, cookie=7, payload=b""):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, off, length) + payload)


def simple_reply(s):
    magic, err, cookie = struct.unpack(">IIQ", recv(s, 16))
    assert magic == 0x67446698, hex(magic)
    return err, cookie


# Unknown option: ERR_UNSUP, then the stream goes on.
s = connect()
option(s, 0x1234, b"ignored data")
assert reply(s)[1] == 0x80000001
option(s, 5)                            # STARTTLS: not yet
assert reply(s)[1] == 0x80000001
option(s, 7, struct.pack(">I", 7) + b"missing" + struct.pack(">H", 0))
assert reply(s)[1] == 0x80000006        # unknown export
option(s, 7, b"\xff\xff\xff\xff")       # string length past the data
assert reply(s)[1] == 0x80000003
option(s, 10, struct.pack(">I", 0) + struct.pack(">I", 0))  # SET_META before STRUCTURED
assert reply(s)[1] == 0x80000003
option(s, 9, struct.pack(">II", 0, 2) + struct.pack(">I", 5) + b"base:" + struct.pack(">I", 9) + b"qemu:none")
opt, typ, data = reply(s)
assert typ == 4 and data[4:] == b"base:allocation", (typ, data)
assert reply(s)[1] == 1
option(s, 2)                            # ABORT
assert reply(s)[1] == 1
assert closed(s)

# Without structured replies, DF is not advertised (EXPORT_NAME, NO_ZEROES).
s = connect()
option(s, 1, b"")
size, flags = struct.unpack(">QH", recv(s, 10))
assert not flags & (1 << 7), hex(flags)
s.close()
# SET_META_CONTEXT with the namespace "base:" selects nothing (only LIST expands it).
s = connect()
option(s, 8)
assert reply(s)[1] == 1
option(s, 10, struct.pack(">II", 0, 1) + struct.pack(">I", 5) + b"base:")
assert reply(s)[1] == 1, "base: selected a context in SET"
s.close()

# An option whose length is absurd: hang up without reading it.
s = connect()
s.sendall(struct.pack(">QII", IHAVEOPT, 7, 0xFFFFFFF0))
assert closed(s)
# Unknown client flags: hang up.
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(SOCK); recv(s, 18)
s.sendall(struct.pack(">I", 0x80000003))
assert closed(s)
# Garbage instead of IHAVEOPT.
s = connect()
s.sendall(b"\x00" * 64)
assert closed(s)

# Transmission: unknown command -> EINVAL; a rejected write's payload is
# consumed; bad magic ends only that connection.
s = connect()
go(s)
request(s, 42, 0, 512, cookie=1)
assert simple_reply(s) == (22, 1)
request(s, 1, 1 << 62, 512, cookie=2, payload=b"\xab" * 512)   # write past the end
assert simple_reply(s) == (28, 2)
request(s, 3, 0, 0, cookie=3)           # flush: in step after the payload
assert simple_reply(s) == (0, 3)
request(s, 3, 0, 0, flags=0x40, cookie=4)   # unknown flag
assert simple_reply(s) == (22, 4)
s.sendall(b"\xde\xad\xbe\xef" + b"\x00" * 24)
assert closed(s)

# Many requests in flight, answered each with its own cookie.
s = connect()
go(s)
for i in range(64):
    request(s, 0, (i * 4096) % (1 << 20), 4096, cookie=1000 + i)
cookies = set()
for i in range(64):
    magic, flags, typ, cookie, length = struct.unpack(">IHHQI", recv(s, 20))
    assert magic == 0x668E33EF, hex(magic)
    recv(s, length)
    while not flags & 1:                # more chunks of the same reply
        magic, flags, typ, cookie2, length = struct.unpack(">IHHQI", recv(s, 20))
        assert cookie2 == cookie
        recv(s, length)
    cookies.add(cookie)
assert cookies == set(range(1000, 1064)), cookies
request(s, 2, 0, 0)                     # DISC: no reply, then closed
assert closed(s)
print("raw protocol checks passed")
