#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Clients that misbehave on purpose, against a server on a unix socket.
  stall_clients.py SOCK budget   two clients queue big reads and never read
                                 the replies; a third is still served at once
  stall_clients.py SOCK pipeline send 32 writes, then wait for SIGTERM to be
                                 sent by the caller (it writes 'ready'), then
                                 every reply must arrive"""
import socket
import struct
import sys
import time

SOCK, MODE = sys.argv[1], sys.argv[2]
IHAVEOPT = 0x49484156454F5054


def recv(s, n):
    b = b""
    while len(b) < n:
        part = s.recv(n - len(b))
        if not part:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += part
    return b


def connect():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(SOCK)
    recv(s, 18)
    s.sendall(struct.pack(">I", 3))
    s.sendall(struct.pack(">QII", IHAVEOPT, 7, 6) + struct.pack(">IH", 0, 0))
    while True:
        _, _, typ, length = struct.unpack(">QIII", recv(s, 20))
        recv(s, length)
        if typ == 1:
            return s


def request(s, typ, off, length, cookie, payload=b""):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, typ, cookie, off, length) + payload)


if MODE == "budget":
    hogs = []
    for _ in range(2):
        h = connect()
        h.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for i in range(8):
            request(h, 0, 0, 32 << 20, i)
        hogs.append(h)
    time.sleep(1)
    s = connect()
    t0 = time.time()
    request(s, 0, 0, 4096, 1)
    assert struct.unpack(">IIQ", recv(s, 16))[1] == 0
    recv(s, 4096)
    request(s, 3, 0, 0, 2)
    assert struct.unpack(">IIQ", recv(s, 16))[1] == 0
    assert time.time() - t0 < 5, "a third client waited %.1f s" % (time.time() - t0)
    print("served a third client in %.2f s" % (time.time() - t0), flush=True)
    time.sleep(60)                      # keep the hogs until the caller is done
elif MODE == "pipeline":
    s = connect()
    for i in range(32):
        request(s, 1, i * 65536, 65536, 100 + i, bytes([i + 1]) * 65536)
    print("ready", flush=True)
    time.sleep(0.5)                     # the caller sends SIGTERM now
    got = set()
    for _ in range(32):
        magic, err, cookie = struct.unpack(">IIQ", recv(s, 16))
        assert err == 0, err
        got.add(cookie)
    assert got == set(range(100, 132)), got
    print("all 32 writes answered")
