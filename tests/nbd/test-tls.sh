#!/bin/bash
# SPDX-License-Identifier: MIT
# TLS (NBD_OPT_STARTTLS): X.509 and PSK credentials made here with certtool
# and psktool; --tls=require serves nbdinfo, nbdcopy and qemu-img over TLS
# (reads and writes, byte for byte) and refuses plaintext clients; a wrong
# PSK, a wrong CA and a missing client certificate fail the handshake and
# the server goes on serving; --tls=on serves both; the option rules of
# the spec and the stall limit inside a TLS record hold (tls_client.py).
. "$(dirname "$0")/../functions.sh"
requires certtool
requires psktool
requires nbdinfo
requires nbdcopy
requires qemu-img
requires openssl
D=$(cd "$(dirname "$0")" && pwd)

# ---- credentials -------------------------------------------------------------
make_ca() { # DIR: a CA (ca-key.pem, ca-cert.pem)
	mkdir -p "$1"
	certtool --generate-privkey --outfile "$1/ca-key.pem" 2>/dev/null
	printf 'cn = vhd-nbd test CA\nca\ncert_signing_key\nexpiration_days = 2\n' >"$T/ca.info"
	certtool --generate-self-signed --load-privkey "$1/ca-key.pem" --template "$T/ca.info" \
		--outfile "$1/ca-cert.pem" 2>/dev/null
}
make_cert() { # DIR NAME USAGE: NAME-key.pem and NAME-cert.pem signed by DIR's CA
	certtool --generate-privkey --outfile "$1/$2-key.pem" 2>/dev/null
	printf 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\n%s\nencryption_key\nsigning_key\nexpiration_days = 2\n' \
		"$3" >"$T/$2.info"
	certtool --generate-certificate --load-ca-certificate "$1/ca-cert.pem" \
		--load-ca-privkey "$1/ca-key.pem" --load-privkey "$1/$2-key.pem" \
		--template "$T/$2.info" --outfile "$1/$2-cert.pem" 2>/dev/null
}
make_ca "$T/pki"
make_cert "$T/pki" server tls_www_server
# What a client holds: the CA's certificate (and for --tls-verify-peer its own).
mkdir -p "$T/client" "$T/client-cert" "$T/wrongca"
cp "$T/pki/ca-cert.pem" "$T/client/"
cp "$T/pki/ca-cert.pem" "$T/client-cert/"
make_cert "$T/pki" client tls_www_client
mv "$T/pki/client-key.pem" "$T/pki/client-cert.pem" "$T/client-cert/"
make_ca "$T/wrongca"
psktool -u alice -p "$T/keys.psk" >/dev/null 2>&1
psktool -u alice -p "$T/wrong.psk" >/dev/null 2>&1
cmp -s "$T/keys.psk" "$T/wrong.psk" && fail "psktool made the same key twice"
grep -qE '^alice:[0-9a-f]{64}$' "$T/keys.psk" || fail "psktool wrote $(cat "$T/keys.psk")"

# ---- the image -------------------------------------------------------------
truncate -s 24M "$T/disk.raw"
put_data "$T/disk.raw" tls1 0 5000000
put_data "$T/disk.raw" tls2 $((17 * 1024 * 1024)) 3000000
vhdtool convert "$T/disk.raw" "$T/disk.vhd"

TLSURI() { echo "nbds+unix:///?socket=$SOCK&tls-certificates=$1"; }

# ---- --tls=require with X.509 ------------------------------------------------
start_nbd --tls=require --tls-certificates "$T/pki" "$T/disk.vhd"
size=$(nbdinfo --size "$(TLSURI "$T/client")")
[ "$size" = $((24 * 1024 * 1024)) ] || fail "nbdinfo over TLS: size $size"
nbdinfo --json "$(TLSURI "$T/client")" >"$T/info.json"
[ "$(json_get "$T/info.json" 'j["TLS"]')" = True ] || fail "nbdinfo: TLS was not negotiated"
nbdcopy "$(TLSURI "$T/client")" "$T/read.raw"
cmp "$T/disk.raw" "$T/read.raw" || fail "nbdcopy over TLS read other bytes"
# Writes over TLS (many requests in flight on several connections).
truncate -s 24M "$T/new.raw"
put_data "$T/new.raw" tls3 1000 9000000
nbdcopy "$T/new.raw" "$(TLSURI "$T/client")"
nbdcopy "$(TLSURI "$T/client")" "$T/back.raw"
cmp "$T/new.raw" "$T/back.raw" || fail "writes over TLS did not read back"
# Plaintext clients are refused, with the reason.
expect_error "TLS|tls" nbdinfo --size "$URI"
LIBNBD_DEBUG=1 nbdinfo --size "$URI" >"$T/plain.log" 2>&1 && fail "plaintext nbdinfo succeeded"
grep -q "server error message: this server requires TLS" "$T/plain.log" ||
	{ tail -5 "$T/plain.log" >&2; fail "plaintext nbdinfo was not told TLS is required"; }
expect_error "TLS negotiation required" qemu-img info --image-opts \
	"driver=nbd,server.type=unix,server.path=$SOCK"
# qemu-img over TLS (a unix socket has no host name: qemu needs tls-hostname).
QOBJ="tls-creds-x509,id=tls0,dir=$T/client,endpoint=client"
QOPTS="driver=nbd,server.type=unix,server.path=$SOCK,tls-creds=tls0,tls-hostname=localhost"
qemu-img info --object "$QOBJ" --image-opts "$QOPTS" >"$T/qinfo.txt"
grep -q "virtual size: 24 MiB" "$T/qinfo.txt" || { cat "$T/qinfo.txt" >&2; fail "qemu-img info over TLS"; }
qemu-img convert -O raw --object "$QOBJ" --image-opts "$QOPTS" "$T/q.raw"
cmp "$T/new.raw" "$T/q.raw" || fail "qemu-img convert over TLS read other bytes"
# A client that does not trust the server's CA is refused (libnbd checks
# the server only when it has a host name: over TCP, below) ...
expect_error "certificate|verif|handshake|TLS" qemu-img info \
	--object "tls-creds-x509,id=tls0,dir=$T/wrongca,endpoint=client" --image-opts "$QOPTS"
# ... and the raw rules of FORCEDTLS, and the stall limit inside a record
# (that one takes the 30 s limit: it runs meanwhile).
/usr/bin/python3 "$D/tls_client.py" "$SOCK" "$T/client" stall >"$T/stall.out" 2>&1 &
stall_pid=$!
/usr/bin/python3 "$D/tls_client.py" "$SOCK" "$T/client" handshake-stall >"$T/hstall.out" 2>&1 &
hstall_pid=$!
/usr/bin/python3 "$D/tls_client.py" "$SOCK" "$T/client" rules >"$T/rules.out" 2>&1 ||
	{ cat "$T/rules.out" >&2; fail "FORCEDTLS option rules"; }
[ "$(grep -c '^ok:' "$T/rules.out")" = 12 ] || { cat "$T/rules.out" >&2; fail "rules: not every check ran"; }
/usr/bin/python3 "$D/tls_client.py" "$SOCK" "$T/client" export-name >"$T/en.out" 2>&1 ||
	{ cat "$T/en.out" >&2; fail "EXPORT_NAME without TLS"; }
# The server still serves after all of that.
nbdcopy "$(TLSURI "$T/client")" "$T/read.raw"
cmp "$T/new.raw" "$T/read.raw" || fail "reads after refused clients"
wait $stall_pid || { cat "$T/stall.out" >&2; fail "stall inside a TLS record"; }
grep '^ok:' "$T/stall.out"
wait $hstall_pid || { cat "$T/hstall.out" >&2; fail "stall inside the TLS handshake"; }
grep '^ok:' "$T/hstall.out"
stop_nbd || fail "server did not stop cleanly"

# ---- TCP: nbds:// with a host name the certificate names ----------------------
port=$(free_port)
"$VHDNBD" --bind 127.0.0.1 --port "$port" --tls-certificates "$T/pki" -r "$T/disk.vhd" 2>"$T/nbd.err" &
NBD_PID=$!
on_exit stop_nbd
for _ in $(seq 1 100); do nbdinfo --size "nbds://localhost:$port/?tls-certificates=$T/client" \
	>"$T/tcp.out" 2>/dev/null && break; sleep 0.1; done
[ "$(cat "$T/tcp.out")" = $((24 * 1024 * 1024)) ] || fail "nbds:// over TCP"
expect_error "certificate|verif|handshake" nbdinfo --size "nbds://localhost:$port/?tls-certificates=$T/wrongca"
# (credentials alone mean --tls=require)
expect_error "TLS|tls" nbdinfo --size "nbd://localhost:$port/"
stop_nbd || fail "server did not stop cleanly"

# ---- PSK -------------------------------------------------------------------
start_nbd --tls=require --tls-psk "$T/keys.psk" "$T/disk.vhd"
PSKURI="nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$T/keys.psk"
nbdcopy "$PSKURI" "$T/read.raw"
cmp "$T/new.raw" "$T/read.raw" || fail "nbdcopy over TLS-PSK read other bytes"
# A wrong key and an unknown user are refused; the next client is served.
expect_error "handshake|TLS|tls" nbdinfo --size "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$T/wrong.psk"
sed 's/^alice:/bob:/' "$T/keys.psk" >"$T/bob.psk"
expect_error "handshake|TLS|tls" nbdinfo --size "nbds+unix://bob@/?socket=$SOCK&tls-psk-file=$T/bob.psk"
expect_error "TLS|tls" nbdinfo --size "$URI"
[ "$(nbdinfo --size "$PSKURI")" = $((24 * 1024 * 1024)) ] || fail "PSK client after refused ones"
kill -0 "$NBD_PID" || fail "the server died"
stop_nbd || fail "server did not stop cleanly"
[ "$(grep -c "TLS handshake failed" "$T/nbd.err")" -ge 2 ] || { cat "$T/nbd.err" >&2; fail "refused PSK handshakes not logged"; }
# PSK through qemu-img (keys.psk in dir, as qemu names it).
mkdir -p "$T/qpsk" && cp "$T/keys.psk" "$T/qpsk/keys.psk"
start_nbd --tls-psk "$T/keys.psk" -r "$T/disk.vhd"
qemu-img convert -O raw --object "tls-creds-psk,id=tls0,dir=$T/qpsk,username=alice,endpoint=client" \
	--image-opts "driver=nbd,server.type=unix,server.path=$SOCK,tls-creds=tls0" "$T/q.raw"
cmp "$T/new.raw" "$T/q.raw" || fail "qemu-img over TLS-PSK read other bytes"
stop_nbd || fail "server did not stop cleanly"

# ---- --tls=on: both -----------------------------------------------------------
start_nbd --tls=on --tls-certificates "$T/pki" -r "$T/disk.vhd"
nbdcopy "$URI" "$T/plain.raw"
nbdinfo --json "$URI" >"$T/info.json"
[ "$(json_get "$T/info.json" 'j["TLS"]')" = False ] || fail "plaintext client reported TLS"
nbdcopy "$(TLSURI "$T/client")" "$T/tls.raw"
cmp "$T/new.raw" "$T/plain.raw" && cmp "$T/new.raw" "$T/tls.raw" || fail "--tls=on reads"
/usr/bin/python3 "$D/tls_client.py" "$SOCK" "$T/client" reset >"$T/reset.out" 2>&1 ||
	{ cat "$T/reset.out" >&2; fail "option state across STARTTLS"; }
stop_nbd || fail "server did not stop cleanly"

# ---- --tls-verify-peer: clients need a certificate from the CA -----------------
cp "$T/pki/ca-cert.pem" "$T/pki/ca-cert.pem.bak"
start_nbd --tls-certificates "$T/pki" --tls-verify-peer -r "$T/disk.vhd"
expect_error "handshake|TLS|tls|certificate" nbdinfo --size "$(TLSURI "$T/client")"
[ "$(nbdinfo --size "$(TLSURI "$T/client-cert")")" = $((24 * 1024 * 1024)) ] ||
	fail "a client with a certificate was refused"
stop_nbd || fail "server did not stop cleanly"

# ---- bad configurations fail at start ------------------------------------------
expect_error "needs --tls-certificates" "$VHDNBD" --socket "$T/x" --tls=require "$T/disk.vhd"
expect_error "not both" "$VHDNBD" --socket "$T/x" --tls-certificates "$T/pki" --tls-psk "$T/keys.psk" "$T/disk.vhd"
expect_error "server-cert.pem" "$VHDNBD" --socket "$T/x" --tls-certificates "$T/client" "$T/disk.vhd"
echo 'alice:nothex' >"$T/bad.psk"
expect_error "username:hexkey" "$VHDNBD" --socket "$T/x" --tls-psk "$T/bad.psk" "$T/disk.vhd"
expect_error "off, on or require" "$VHDNBD" --socket "$T/x" --tls=maybe "$T/disk.vhd"
echo ok
