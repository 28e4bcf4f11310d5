/* SPDX-License-Identifier: MIT */
/* TLS for vhd-nbd (GnuTLS): server credentials, and one session per
 * connection that upgrades with NBD_OPT_STARTTLS.  Only tls.c sees GnuTLS. */
#ifndef VHD_NBD_TLS_H
#define VHD_NBD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum tls_mode {
	TLS_OFF = 0,            /* STARTTLS is refused (NBD_REP_ERR_UNSUP) */
	TLS_ON = 1,             /* clients may upgrade; plaintext is served too */
	TLS_REQUIRE = 2,        /* nothing but STARTTLS and ABORT before TLS */
};

struct tls_creds;
struct tls_session;
struct transport;

/*
 * Load the server's credentials once, at start: X.509 from cert_dir
 * (server-cert.pem, server-key.pem; ca-cert.pem and ca-crl.pem when
 * present, ca-cert.pem required with verify_peer) or a PSK file as psktool
 * writes it ("username:hexkey" lines).  0, or -1 with a message on stderr.
 */
int tls_creds_load(const char *cert_dir, const char *psk_file, bool verify_peer,
		   struct tls_creds **out);
void tls_creds_free(struct tls_creds *creds);

/*
 * Run the TLS handshake on t's socket; t->deadline bounds it.  0 with
 * *out set, or -1 (the session is over: the caller hangs up).
 */
int tls_session_start(struct tls_creds *creds, struct transport *t, struct tls_session **out);
/* Bytes read (> 0), or -1 at the end of the stream or on an error. */
ssize_t tls_recv(struct tls_session *s, void *buf, size_t len);
/* Send all len bytes: 0, or -1. */
int tls_send_all(struct tls_session *s, const void *buf, size_t len);
/* Decrypted bytes already waiting, which poll() on the socket cannot see. */
bool tls_pending(struct tls_session *s);
/* Say goodbye (bounded by the socket's send timeout) and free. */
void tls_session_end(struct tls_session *s);

/* The largest payload of one TLS record: writes are gathered up to it. */
#define TLS_RECORD_MAX 16384

#endif
