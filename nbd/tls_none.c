/* SPDX-License-Identifier: MIT */
/*
 * tls.h without GnuTLS, for the static build (vhd-nbd-static): Debian has
 * no static p11-kit or libunistring, which GnuTLS needs.  --tls=off is the
 * only mode; a local server in an initramfs has no use for more.
 */
#include <stdio.h>

#include "tls.h"

int tls_creds_load(const char *cert_dir, const char *psk_file, bool verify_peer,
		   struct tls_creds **out)
{
	(void)cert_dir;
	(void)psk_file;
	(void)verify_peer;
	*out = NULL;
	fprintf(stderr, "vhd-nbd: this build has no TLS (use the dynamically linked vhd-nbd)\n");
	return -1;
}

void tls_creds_free(struct tls_creds *creds)
{
	(void)creds;
}

int tls_session_start(struct tls_creds *creds, struct transport *t, struct tls_session **out)
{
	(void)creds;
	(void)t;
	*out = NULL;
	return -1;
}

ssize_t tls_recv(struct tls_session *s, void *buf, size_t len)
{
	(void)s;
	(void)buf;
	(void)len;
	return -1;
}

int tls_send_all(struct tls_session *s, const void *buf, size_t len)
{
	(void)s;
	(void)buf;
	(void)len;
	return -1;
}

bool tls_pending(struct tls_session *s)
{
	(void)s;
	return false;
}

void tls_session_end(struct tls_session *s)
{
	(void)s;
}
