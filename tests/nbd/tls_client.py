#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Raw NBD clients for vhd-nbd's TLS rules, against a unix socket.
  tls_client.py SOCK CADIR rules   FORCEDTLS: options before STARTTLS get
                                   NBD_REP_ERR_TLS_REQD (ABORT excepted),
                                   STARTTLS with data is INVALID, then
                                   STARTTLS works, a second is INVALID, and
                                   option state from before is gone
  tls_client.py SOCK CADIR stall   after the TLS handshake, send half a TLS
                                   record and stop: the server must hang up
                                   within the stall limit (30 s) + slack
  tls_client.py SOCK CADIR handshake-stall
                                   after STARTTLS, send half a ClientHello
                                   record and stop: the server must hang up
                                   by the handshake's 30 s limit (not by
                                   GnuTLS's own 40 s handshake timeout)
  tls_client.py SOCK CADIR reset   --tls=on: plaintext options work; after
                                   STARTTLS, structured replies negotiated
                                   before it are forgotten
  tls_client.py SOCK CADIR export-name
                                   NBD_OPT_EXPORT_NAME without TLS: the
                                   server must close the connection
Prints one line per check; exits non-zero on the first failure."""
import socket
import ssl
import struct
import sys
import time

SOCK, CADIR, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x3E889045565A9
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_GO = 1, 2, 3, 5, 7
OPT_STRUCTURED_REPLY, OPT_SET_META_CONTEXT = 8, 10
REP_ACK, REP_ERR_INVALID, REP_ERR_TLS_REQD = 1, 0x80000003, 0x80000005


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def recv(s, n):
    b = b""
    while len(b) < n:
        part = s.recv(n - len(b))
        if not part:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += part
    return b


def option(s, code, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, code, len(data)) + data)


def reply(s, code):
    magic, opt, typ, length = struct.unpack(">QIII", recv(s, 20))
    if magic != REP_MAGIC or opt != code:
        fail("bad reply header %x %d for option %d" % (magic, opt, code))
    return typ, recv(s, length)


def expect(s, code, want, data=b"", what=""):
    option(s, code, data)
    typ, payload = reply(s, code)
    if typ != want:
        fail("%s: option %d got reply %#x, expected %#x (%r)" % (what, code, typ, want, payload))
    print("ok: %s" % what)
    return payload


def connect():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(SOCK)
    recv(s, 18)
    s.sendall(struct.pack(">I", 3))
    return s


def starttls(s):
    ctx = ssl.create_default_context(cafile=CADIR + "/ca-cert.pem")
    return ctx.wrap_socket(s, server_hostname="localhost")


if MODE == "rules":
    s = connect()
    expect(s, OPT_LIST, REP_ERR_TLS_REQD, what="LIST before TLS is TLS_REQD")
    expect(s, OPT_STRUCTURED_REPLY, REP_ERR_TLS_REQD, what="STRUCTURED_REPLY before TLS is TLS_REQD")
    expect(s, OPT_GO, REP_ERR_TLS_REQD, struct.pack(">IH", 0, 0), what="GO before TLS is TLS_REQD")
    expect(s, 99, REP_ERR_TLS_REQD, what="an unknown option before TLS is TLS_REQD")
    expect(s, OPT_STARTTLS, REP_ERR_INVALID, b"x", what="STARTTLS with data is INVALID")
    expect(s, OPT_STARTTLS, REP_ACK, what="STARTTLS is acknowledged")
    t = starttls(s)
    print("ok: TLS handshake (%s)" % t.version())
    expect(t, OPT_STARTTLS, REP_ERR_INVALID, what="a second STARTTLS is INVALID")
    # SET_META_CONTEXT needs structured replies, negotiated only inside TLS.
    q = b"base:allocation"
    meta = struct.pack(">I", 0) + struct.pack(">I", 1) + struct.pack(">I", len(q)) + q
    expect(t, OPT_SET_META_CONTEXT, REP_ERR_INVALID, meta,
           what="inside TLS, no structured replies yet: SET_META_CONTEXT is INVALID")
    expect(t, OPT_STRUCTURED_REPLY, REP_ACK, what="STRUCTURED_REPLY inside TLS")
    expect(t, OPT_LIST, 2, what="LIST inside TLS lists the export")
    option(t, OPT_ABORT)
    t.close()
    # ABORT before TLS is answered, not refused.
    s = connect()
    expect(s, OPT_ABORT, REP_ACK, what="ABORT before TLS is acknowledged")
    s.close()
elif MODE == "reset":
    s = connect()
    expect(s, OPT_LIST, 2, what="LIST in plaintext (--tls=on)")
    reply(s, OPT_LIST)
    expect(s, OPT_STRUCTURED_REPLY, REP_ACK, what="STRUCTURED_REPLY in plaintext")
    expect(s, OPT_STARTTLS, REP_ACK, what="STARTTLS")
    t = starttls(s)
    q = b"base:allocation"
    meta = struct.pack(">I", 0) + struct.pack(">I", 1) + struct.pack(">I", len(q)) + q
    expect(t, OPT_SET_META_CONTEXT, REP_ERR_INVALID, meta,
           what="structured replies from before STARTTLS are forgotten")
    option(t, OPT_ABORT)
    t.close()
elif MODE == "export-name":
    s = connect()
    option(s, OPT_EXPORT_NAME)
    try:
        b = s.recv(1)
    except (ConnectionResetError, socket.timeout) as e:
        fail("no clean close: %r" % e)
    if b:
        fail("EXPORT_NAME without TLS was answered")
    print("ok: EXPORT_NAME without TLS closes the connection")
elif MODE == "stall":
    s = connect()
    expect(s, OPT_STARTTLS, REP_ACK, what="STARTTLS")
    raw = socket.socket(fileno=socket.dup(s.fileno()))
    t = starttls(s)
    # An application-data record header announcing 64 bytes, and 10 of them.
    raw.sendall(b"\x17\x03\x03\x00\x40" + b"\x00" * 10)
    start = time.monotonic()
    raw.settimeout(60)
    try:
        while raw.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        fail("the server kept a client stalled inside a TLS record for 60 s")
    took = time.monotonic() - start
    if took < 25:
        fail("the server hung up after %.1f s, before the stall limit" % took)
    print("ok: a client stalled inside a TLS record was dropped after %.0f s" % took)
elif MODE == "handshake-stall":
    start = time.monotonic()    # the handshake's limit runs from the connection
    s = connect()
    expect(s, OPT_STARTTLS, REP_ACK, what="STARTTLS")
    # A handshake record header announcing 512 bytes, and 10 of them.
    s.sendall(b"\x16\x03\x01\x02\x00" + b"\x01" + b"\x00" * 9)
    s.settimeout(60)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        fail("the server kept a client stalled inside the TLS handshake for 60 s")
    took = time.monotonic() - start
    if took < 25 or took > 34:
        fail("the server hung up after %.1f s, not at the 30 s handshake limit" % took)
    print("ok: a client stalled inside the TLS handshake was dropped after %.0f s" % took)
