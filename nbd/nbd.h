/* SPDX-License-Identifier: MIT */
/* Internal interfaces of vhd-nbd. */
#ifndef VHD_NBD_H
#define VHD_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvhd.h"

/* ---- a byte stream: a socket, or memory for tests and fuzzing ---------- */

struct nbd_stream {
	/* Read exactly len bytes: 0, or -1 on end of stream or error. */
	int (*read)(void *ctx, void *buf, size_t len);
	/* Write all len bytes: 0, or -1. */
	int (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
	/* NBD_OPT_STARTTLS, after the ACK went out: run the TLS handshake,
	 * then read and write through TLS.  0, or -1 (hang up).  NULL: this
	 * server has no TLS. */
	int (*starttls)(void *ctx);
	/* Refuse every option but STARTTLS and ABORT until TLS is on. */
	bool tls_required;
};

/* ---- exports ------------------------------------------------------------ */

struct nbd_export {
	char *name;
	char *path;
	char *description;
	struct vhd_image *img;     /* NULL in handshake-only tests */
	char *snapshot_path;       /* --snapshot: the temporary child, or NULL */
	bool read_only;
	uint64_t size;
};

struct nbd_exports {
	struct nbd_export *v;
	size_t n;
};

const struct nbd_export *nbd_find_export(const struct nbd_exports *ex, const char *name);
/* The flags for an export; DF only once structured replies are agreed. */
uint16_t nbd_transmission_flags(const struct nbd_export *e, bool structured);

/* ---- handshake.c -------------------------------------------------------- */

struct nbd_session {
	const struct nbd_export *exp;
	bool structured;            /* structured replies negotiated */
	bool base_allocation;       /* base:allocation selected */
	bool tls;                   /* the session runs over TLS */
};

#define NBD_BASE_ALLOCATION_ID 1u

/*
 * Run the fixed newstyle handshake.  Returns 0 with *s filled when the
 * client entered the transmission phase, -1 when the connection must end
 * (the client aborted, broke the protocol, or went away).
 */
int nbd_handshake(struct nbd_stream *st, const struct nbd_exports *ex, struct nbd_session *s);

/* ---- request.c ---------------------------------------------------------- */

#define NBD_REQUEST_SIZE 28

struct nbd_request {
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t length;
};

void nbd_request_decode(const uint8_t buf[NBD_REQUEST_SIZE], struct nbd_request *r);

/* Bytes of payload that follow the request on the wire. */
uint32_t nbd_request_payload(const struct nbd_request *r);

enum nbd_verdict {
	NBD_OK = 0,             /* carry it out */
	NBD_REJECT = 1,         /* answer with *error, keep serving */
	NBD_HANG_UP = 2,        /* end the connection (bad magic, oversized payload) */
};

/*
 * Judge a request before the image is touched: magic, command, flags for
 * that command, bounds (overflow-safe), read-only export.
 */
enum nbd_verdict nbd_request_validate(const struct nbd_request *r, const struct nbd_session *s,
				      uint32_t *error);

/* libvhd's negative errno to an NBD error. */
uint32_t nbd_errno_to_wire(int err);

#endif
