/* SPDX-License-Identifier: MIT */
/*
 * vhd-nbd's wire parsers: the fixed newstyle handshake (nbd_handshake over
 * a memory stream fed by the input) and then transmission requests
 * (nbd_request_decode / nbd_request_validate) until the input runs out.
 *
 * The first input byte picks the exports' sizes and flags; with bit 7 set
 * the handshake is skipped and the session comes from that byte, so the
 * request checks are reached without a handshake.  The rest is what a
 * client sends.
 *
 * Oracles: the server's output is framed (every option reply header is
 * followed by exactly the payload it announces); a finished handshake
 * names one of the exports; a request judged OK lies inside the export,
 * carries only the flags its command allows, and never writes to a
 * read-only export; a rejected one carries an error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "fuzz_check.h"
#include "nbd.h"
#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem_stream {
	const uint8_t *in;
	size_t len, pos;
	/* Output framing. */
	size_t writes;
	int64_t expect_payload;     /* -1: none pending */
	uint64_t out_bytes;
};

static int ms_read(void *ctx, void *buf, size_t len)
{
	struct mem_stream *m = ctx;
	if (len > m->len - m->pos)
		return -1;
	memcpy(buf, m->in + m->pos, len);
	m->pos += len;
	return 0;
}

/* STARTTLS: the memory stream stands in for the TLS channel (the rules
 * around it are what is fuzzed here, not GnuTLS). */
static int ms_starttls(void *ctx)
{
	struct mem_stream *m = ctx;
	FZ_CHECK(m->expect_payload == -1);     /* the ACK went out whole first */
	return 0;
}

static int ms_write(void *ctx, const void *buf, size_t len)
{
	struct mem_stream *m = ctx;
	const uint8_t *b = buf;
	/* Touch every byte: ASan sees a reply built from freed or short memory. */
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < len; i++)
		sink ^= b[i];
	(void)sink;
	FZ_CHECK(len > 0);
	if (m->writes == 0) {
		/* The greeting. */
		FZ_CHECK(len == 18 && vhd_be64(b) == NBD_MAGIC && vhd_be64(b + 8) == NBD_IHAVEOPT);
	} else if (m->expect_payload >= 0) {
		FZ_CHECK((int64_t)len == m->expect_payload);
		m->expect_payload = -1;
	} else if (len == 20 && vhd_be64(b) == NBD_REP_MAGIC) {
		uint32_t plen = vhd_be32(b + 16);
		uint32_t type = vhd_be32(b + 12);
		FZ_CHECK(plen <= NBD_MAX_STRING + 64);
		if (type & 0x80000000u)
			FZ_CHECK(plen > 0);        /* errors carry a message here */
		if (type == NBD_REP_ACK)
			FZ_CHECK(plen == 0);
		m->expect_payload = plen ? (int64_t)plen : -1;
	} else {
		/* NBD_OPT_EXPORT_NAME's answer: size, flags, maybe 124 zeros. */
		FZ_CHECK(len == 10 || len == 134);
	}
	m->writes++;
	m->out_bytes += len;
	return 0;
}

static void check_request(const struct nbd_request *r, const struct nbd_session *s)
{
	uint32_t error = 0xdeadbeef;
	enum nbd_verdict v = nbd_request_validate(r, s, &error);
	FZ_CHECK(v == NBD_OK || v == NBD_REJECT || v == NBD_HANG_UP);
	uint32_t payload = nbd_request_payload(r);
	if (v == NBD_HANG_UP) {
		FZ_CHECK(r->magic != NBD_REQUEST_MAGIC ||
		      (r->type == NBD_CMD_WRITE && r->length > NBD_MAX_PAYLOAD));
		return;
	}
	FZ_CHECK(r->magic == NBD_REQUEST_MAGIC);
	FZ_CHECK(payload <= NBD_MAX_PAYLOAD);
	if (v == NBD_REJECT) {
		FZ_CHECK(error == NBD_EINVAL || error == NBD_ENOSPC || error == NBD_EPERM);
		return;
	}
	FZ_CHECK(error == 0);
	const struct nbd_export *e = s->exp;
	bool writes = r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM ||
		      r->type == NBD_CMD_WRITE_ZEROES;
	FZ_CHECK(r->type == NBD_CMD_READ || writes || r->type == NBD_CMD_FLUSH ||
	      r->type == NBD_CMD_CACHE || r->type == NBD_CMD_BLOCK_STATUS);
	if (writes)
		FZ_CHECK(!e->read_only);
	if (r->type == NBD_CMD_BLOCK_STATUS)
		FZ_CHECK(s->base_allocation);
	if (r->type == NBD_CMD_READ)
		FZ_CHECK(r->length <= NBD_MAX_PAYLOAD);
	if (r->type != NBD_CMD_FLUSH) {
		FZ_CHECK(r->length > 0);
		FZ_CHECK(r->offset <= e->size && r->length <= e->size - r->offset);
	} else {
		FZ_CHECK(r->offset == 0 && r->length == 0);
	}
	/* Flags: only those the protocol gives the command (FUA is the
	 * server's choice on any command). */
	uint16_t allowed = NBD_CMD_FLAG_FUA;
	if (r->type == NBD_CMD_READ && s->structured)
		allowed |= NBD_CMD_FLAG_DF;
	if (r->type == NBD_CMD_WRITE_ZEROES)
		allowed |= NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
	if (r->type == NBD_CMD_BLOCK_STATUS)
		allowed |= NBD_CMD_FLAG_REQ_ONE;
	FZ_CHECK((r->flags & ~allowed) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	static const uint64_t sizes[] = { 0, 512, 1u << 20, UINT64_MAX - 511, (1ull << 63) + 4096,
					  2040ull << 30, 1, 4096 };
	char n0[] = "", n1[] = "disk", n2[] = "ro", d1[] = "the disk";
	struct nbd_export v[3] = {
		{ .name = n0, .size = sizes[mode & 7] },
		{ .name = n1, .description = d1, .size = sizes[(mode >> 3) & 7] },
		{ .name = n2, .read_only = true, .size = 1u << 20 },
	};
	v[0].read_only = mode & 0x40;
	struct nbd_exports ex = { v, 3 };
	struct mem_stream m = { data + 1, size - 1, 0, 0, -1, 0 };
	/* Both export sizes "4096" (bits 0-5 all set): --tls=require. */
	bool tls_required = (mode & 0x3f) == 0x3f;
	struct nbd_stream st = { ms_read, ms_write, &m, ms_starttls, tls_required };
	struct nbd_session s;

	if (mode & 0x80) {
		memset(&s, 0, sizeof(s));
		s.exp = &v[(mode >> 3) % 3];
		s.structured = mode & 1;
		s.base_allocation = mode & 2;
	} else {
		int r = nbd_handshake(&st, &ex, &s);
		FZ_CHECK(r == 0 || r == -1);
		FZ_CHECK(m.expect_payload == -1);      /* no reply cut short */
		FZ_CHECK(m.writes >= 1);
		if (r < 0)
			return 0;
		FZ_CHECK(s.exp == &v[0] || s.exp == &v[1] || s.exp == &v[2]);
		FZ_CHECK(s.tls || !tls_required);      /* no plaintext transmission */
		FZ_CHECK(nbd_find_export(&ex, s.exp->name) == s.exp);
		uint16_t tf = nbd_transmission_flags(s.exp, s.structured);
		FZ_CHECK(tf & NBD_FLAG_HAS_FLAGS);
		FZ_CHECK(!!(tf & NBD_FLAG_READ_ONLY) == s.exp->read_only);
	}

	/* Transmission: requests (and write payloads) until the input ends. */
	uint8_t req[NBD_REQUEST_SIZE];
	for (int i = 0; i < 4096 && ms_read(&m, req, sizeof(req)) == 0; i++) {
		struct nbd_request r;
		nbd_request_decode(req, &r);
		FZ_CHECK(r.magic == vhd_be32(req) && r.type == vhd_be16(req + 6) &&
		      r.offset == vhd_be64(req + 16) && r.length == vhd_be32(req + 24));
		if (r.type == NBD_CMD_DISC)
			break;
		uint32_t error;
		enum nbd_verdict verdict = nbd_request_validate(&r, &s, &error);
		check_request(&r, &s);
		if (verdict == NBD_HANG_UP)
			break;
		/* The server reads (and, if rejected, drops) a write's payload. */
		uint32_t payload = nbd_request_payload(&r);
		if (payload > m.len - m.pos)
			break;
		m.pos += payload;
	}
	static const int errs[] = { 0, -EROFS, -EPERM, -ENOSPC, -EFBIG, -ENOMEM, -EINVAL,
				    -ENOTSUP, -EOVERFLOW, -ESHUTDOWN, -EIO, -ENOENT, EACCES };
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		FZ_CHECK(nbd_errno_to_wire(errs[i]) != 0);
	return 0;
}
