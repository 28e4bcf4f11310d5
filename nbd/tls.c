/* SPDX-License-Identifier: MIT */
/*
 * GnuTLS behind tls.h.  The session reads and writes the socket through
 * our own pull and push functions, so a client that stalls inside a TLS
 * record is dropped after the same limits as in plaintext: pull waits at
 * most until the transport's deadline, and push turns the socket's send
 * timeout into an error instead of an endless retry.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "tls.h"
#include "transport.h"

/* TLS 1.2 and later only (the NBD protocol's rule for defaults). */
#define PRIORITY_X509 "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define PRIORITY_PSK PRIORITY_X509 ":+ECDHE-PSK:+DHE-PSK:+PSK"

struct tls_creds {
	gnutls_certificate_credentials_t x509;  /* or NULL */
	gnutls_psk_server_credentials_t psk;    /* or NULL */
	gnutls_priority_t priority;
	bool verify_peer;
};

struct tls_session {
	gnutls_session_t s;
};

static bool readable_file(const char *path)
{
	return access(path, R_OK) == 0;
}

/* Every line "username:hexkey" (what psktool writes), at least one. */
static int check_psk_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "vhd-nbd: --tls-psk %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[1024];
	int keys = 0, bad = 0, lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		char *colon = strchr(line, ':');
		size_t hex = colon ? strspn(colon + 1, "0123456789abcdefABCDEF") : 0;
		if (!colon || colon == line || hex == 0 || hex % 2 || colon[1 + hex] != '\0') {
			if (!bad)
				fprintf(stderr, "vhd-nbd: --tls-psk %s:%d: not \"username:hexkey\"\n", path,
					lineno);
			bad++;
			continue;
		}
		keys++;
	}
	fclose(f);
	if (!keys && !bad)
		fprintf(stderr, "vhd-nbd: --tls-psk %s: no keys\n", path);
	return keys && !bad ? 0 : -1;
}

static int load_x509(struct tls_creds *c, const char *dir)
{
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX], crl[PATH_MAX];
	snprintf(cert, sizeof(cert), "%s/server-cert.pem", dir);
	snprintf(key, sizeof(key), "%s/server-key.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir);
	snprintf(crl, sizeof(crl), "%s/ca-crl.pem", dir);
	int r = gnutls_certificate_allocate_credentials(&c->x509);
	if (r < 0)
		goto fail;
	r = gnutls_certificate_set_x509_key_file(c->x509, cert, key, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		fprintf(stderr, "vhd-nbd: --tls-certificates %s: cannot load %s with %s: %s\n", dir,
			cert, key, gnutls_strerror(r));
		return -1;
	}
	if (readable_file(ca)) {
		r = gnutls_certificate_set_x509_trust_file(c->x509, ca, GNUTLS_X509_FMT_PEM);
		if (r < 0) {
			fprintf(stderr, "vhd-nbd: %s: %s\n", ca, gnutls_strerror(r));
			return -1;
		}
	} else if (c->verify_peer) {
		fprintf(stderr, "vhd-nbd: --tls-verify-peer needs %s to check clients against\n", ca);
		return -1;
	}
	if (readable_file(crl)) {
		r = gnutls_certificate_set_x509_crl_file(c->x509, crl, GNUTLS_X509_FMT_PEM);
		if (r < 0) {
			fprintf(stderr, "vhd-nbd: %s: %s\n", crl, gnutls_strerror(r));
			return -1;
		}
	}
	r = gnutls_certificate_set_known_dh_params(c->x509, GNUTLS_SEC_PARAM_MEDIUM);
	if (r >= 0)
		return 0;
fail:
	fprintf(stderr, "vhd-nbd: TLS credentials: %s\n", gnutls_strerror(r));
	return -1;
}

static int load_psk(struct tls_creds *c, const char *file)
{
	if (check_psk_file(file) < 0)
		return -1;
	int r = gnutls_psk_allocate_server_credentials(&c->psk);
	if (r >= 0)
		r = gnutls_psk_set_server_credentials_file(c->psk, file);
	if (r >= 0)
		r = gnutls_psk_set_server_known_dh_params(c->psk, GNUTLS_SEC_PARAM_MEDIUM);
	if (r < 0) {
		fprintf(stderr, "vhd-nbd: --tls-psk %s: %s\n", file, gnutls_strerror(r));
		return -1;
	}
	return 0;
}

int tls_creds_load(const char *cert_dir, const char *psk_file, bool verify_peer,
		   struct tls_creds **out)
{
	struct tls_creds *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c)
		return -1;
	c->verify_peer = verify_peer;
	int r = psk_file ? load_psk(c, psk_file) : load_x509(c, cert_dir);
	if (r == 0) {
		const char *where;
		int pr = gnutls_priority_init(&c->priority, psk_file ? PRIORITY_PSK : PRIORITY_X509,
					      &where);
		if (pr < 0) {
			fprintf(stderr, "vhd-nbd: TLS priorities: %s\n", gnutls_strerror(pr));
			r = -1;
		}
	}
	if (r < 0) {
		tls_creds_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void tls_creds_free(struct tls_creds *c)
{
	if (!c)
		return;
	if (c->priority)
		gnutls_priority_deinit(c->priority);
	if (c->x509)
		gnutls_certificate_free_credentials(c->x509);
	if (c->psk)
		gnutls_psk_free_server_credentials(c->psk);
	free(c);
}

/* ---- the socket under a session -------------------------------------------- */

static ssize_t pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct transport *t = ptr;
	for (;;) {
		if (wait_readable(t->fd, t->deadline ? t->deadline : now_ms() + STALL_MS) < 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t n = recv(t->fd, buf, len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		return n;
	}
}

static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct transport *t = ptr;
	struct pollfd p = { .fd = t->fd, .events = POLLIN };
	int timeout = ms == GNUTLS_INDEFINITE_TIMEOUT || ms > INT_MAX ? -1 : (int)ms;
	int n;
	do
		n = poll(&p, 1, timeout);
	while (n < 0 && errno == EINTR);
	return n;
}

static ssize_t push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
	struct transport *t = ptr;
	for (;;) {
		ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		/* SO_SNDTIMEO ran out: the client stopped reading.  GnuTLS
		 * would retry EAGAIN for ever; make it final. */
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			errno = ETIMEDOUT;
		return n;
	}
}

int tls_session_start(struct tls_creds *c, struct transport *t, struct tls_session **out)
{
	struct tls_session *ts = calloc(1, sizeof(*ts));
	*out = NULL;
	if (!ts)
		return -1;
	int r = gnutls_init(&ts->s, GNUTLS_SERVER);
	if (r < 0) {
		free(ts);
		return -1;
	}
	r = gnutls_priority_set(ts->s, c->priority);
	if (r >= 0 && c->x509)
		r = gnutls_credentials_set(ts->s, GNUTLS_CRD_CERTIFICATE, c->x509);
	if (r >= 0 && c->psk)
		r = gnutls_credentials_set(ts->s, GNUTLS_CRD_PSK, c->psk);
	if (r >= 0 && c->x509 && c->verify_peer) {
		gnutls_certificate_server_set_request(ts->s, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_cert(ts->s, NULL, 0);
	}
	gnutls_transport_set_ptr(ts->s, t);
	gnutls_transport_set_pull_function(ts->s, pull);
	gnutls_transport_set_pull_timeout_function(ts->s, pull_timeout);
	gnutls_transport_set_push_function(ts->s, push);
	/* Our pull and push never say "try again"; a warning alert may. */
	for (int tries = 0; r >= 0 && tries < 8; tries++) {
		r = gnutls_handshake(ts->s);
		if (r >= 0 || gnutls_error_is_fatal(r))
			break;
	}
	if (r < 0) {
		fprintf(stderr, "vhd-nbd: TLS handshake failed: %s\n", gnutls_strerror(r));
		gnutls_deinit(ts->s);
		free(ts);
		return -1;
	}
	*out = ts;
	return 0;
}

ssize_t tls_recv(struct tls_session *ts, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = gnutls_record_recv(ts->s, buf, len);
		if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
			continue;
		return n > 0 ? n : -1;
	}
}

int tls_send_all(struct tls_session *ts, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = gnutls_record_send(ts->s, p, len);
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

bool tls_pending(struct tls_session *ts)
{
	return gnutls_record_check_pending(ts->s) > 0;
}

void tls_session_end(struct tls_session *ts)
{
	gnutls_bye(ts->s, GNUTLS_SHUT_WR);
	gnutls_deinit(ts->s);
	free(ts);
}
