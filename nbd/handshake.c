/* SPDX-License-Identifier: MIT */
/*
 * The fixed newstyle handshake, over a byte stream (no sockets here, so the
 * fuzzer drives the same code).  Every length the client sends is bounded
 * before anything is read into memory; unknown options get
 * NBD_REP_ERR_UNSUP and the stream stays in step.
 */
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "nbd.h"
#include "protocol.h"

struct opt {
	uint32_t code;
	uint32_t len;
	uint8_t *data;
};

static int send_reply(struct nbd_stream *st, uint32_t opt, uint32_t type, const void *data,
		      uint32_t len)
{
	uint8_t h[20];
	vhd_put_be64(h, NBD_REP_MAGIC);
	vhd_put_be32(h + 8, opt);
	vhd_put_be32(h + 12, type);
	vhd_put_be32(h + 16, len);
	if (st->write(st->ctx, h, sizeof(h)) < 0)
		return -1;
	return len ? st->write(st->ctx, data, len) : 0;
}

static int send_error(struct nbd_stream *st, uint32_t opt, uint32_t type, const char *msg)
{
	return send_reply(st, opt, type, msg, (uint32_t)strlen(msg));
}

/* A string in option data: 32-bit length, then bytes.  Advances *pos. */
static int take_string(const struct opt *o, uint32_t *pos, char *out, size_t out_len)
{
	if (o->len - *pos < 4)
		return -1;
	uint32_t n = vhd_be32(o->data + *pos);
	*pos += 4;
	if (n > o->len - *pos || n >= out_len || n > NBD_MAX_STRING)
		return -1;
	memcpy(out, o->data + *pos, n);
	out[n] = '\0';
	if (memchr(out, '\0', n))
		return -1;      /* no NULs inside names */
	*pos += n;
	return 0;
}

static int send_export_info(struct nbd_stream *st, uint32_t opt, const struct nbd_export *e,
			    const struct nbd_session *s)
{
	uint8_t b[12];
	vhd_put_be16(b, NBD_INFO_EXPORT);
	vhd_put_be64(b + 2, e->size);
	vhd_put_be16(b + 10, nbd_transmission_flags(e, s->structured));
	return send_reply(st, opt, NBD_REP_INFO, b, sizeof(b));
}

static int send_text_info(struct nbd_stream *st, uint32_t opt, uint16_t type, const char *text)
{
	size_t n = strlen(text);
	if (n > NBD_MAX_STRING)
		n = NBD_MAX_STRING;
	uint8_t *b = malloc(2 + n);
	if (!b)
		return -1;
	vhd_put_be16(b, type);
	memcpy(b + 2, text, n);
	int r = send_reply(st, opt, NBD_REP_INFO, b, (uint32_t)(2 + n));
	free(b);
	return r;
}

static int send_block_size(struct nbd_stream *st, uint32_t opt)
{
	uint8_t b[14];
	vhd_put_be16(b, NBD_INFO_BLOCK_SIZE);
	vhd_put_be32(b + 2, 1);
	vhd_put_be32(b + 6, NBD_PREFERRED_BLOCK);
	vhd_put_be32(b + 10, NBD_MAX_PAYLOAD);
	return send_reply(st, opt, NBD_REP_INFO, b, sizeof(b));
}

/* NBD_OPT_INFO and NBD_OPT_GO: 1 when GO succeeded, 0 to go on, -1 to hang up. */
static int info_or_go(struct nbd_stream *st, const struct opt *o, const struct nbd_exports *ex,
		      struct nbd_session *s)
{
	char name[NBD_MAX_STRING + 1];
	uint32_t pos = 0;
	if (take_string(o, &pos, name, sizeof(name)) < 0 || o->len - pos < 2)
		return send_error(st, o->code, NBD_REP_ERR_INVALID, "malformed request");
	uint16_t nreq = vhd_be16(o->data + pos);
	pos += 2;
	if ((uint32_t)nreq * 2 != o->len - pos)
		return send_error(st, o->code, NBD_REP_ERR_INVALID, "malformed information requests");
	const struct nbd_export *e = nbd_find_export(ex, name);
	if (!e)
		return send_error(st, o->code, NBD_REP_ERR_UNKNOWN, "no such export");

	bool want_name = false, want_desc = false, want_bs = false;
	for (uint16_t i = 0; i < nreq; i++) {
		uint16_t t = vhd_be16(o->data + pos + 2u * i);
		want_name |= t == NBD_INFO_NAME;
		want_desc |= t == NBD_INFO_DESCRIPTION;
		want_bs |= t == NBD_INFO_BLOCK_SIZE;
	}
	if (send_export_info(st, o->code, e, s) < 0 ||
	    (want_name && send_text_info(st, o->code, NBD_INFO_NAME, e->name) < 0) ||
	    (want_desc && e->description &&
	     send_text_info(st, o->code, NBD_INFO_DESCRIPTION, e->description) < 0) ||
	    (want_bs && send_block_size(st, o->code) < 0) ||
	    send_reply(st, o->code, NBD_REP_ACK, NULL, 0) < 0)
		return -1;
	if (o->code == NBD_OPT_GO) {
		/* A context chosen for another export does not carry over. */
		if (s->exp && s->exp != e)
			s->base_allocation = false;
		s->exp = e;
		return 1;
	}
	return 0;
}

static int list_exports(struct nbd_stream *st, const struct opt *o, const struct nbd_exports *ex)
{
	if (o->len)
		return send_error(st, o->code, NBD_REP_ERR_INVALID, "LIST takes no data");
	for (size_t i = 0; i < ex->n; i++) {
		const struct nbd_export *e = &ex->v[i];
		size_t nl = strlen(e->name), dl = e->description ? strlen(e->description) : 0;
		uint8_t *b = malloc(4 + nl + dl);
		if (!b)
			return -1;
		vhd_put_be32(b, (uint32_t)nl);
		memcpy(b + 4, e->name, nl);
		if (dl)
			memcpy(b + 4 + nl, e->description, dl);
		int r = send_reply(st, o->code, NBD_REP_SERVER, b, (uint32_t)(4 + nl + dl));
		free(b);
		if (r < 0)
			return -1;
	}
	return send_reply(st, o->code, NBD_REP_ACK, NULL, 0);
}

/* Does a query select base:allocation?  "base:" names the namespace, which
 * only LIST may use as a wildcard. */
static bool query_selects_base_allocation(const char *q, bool listing)
{
	return strcmp(q, "base:allocation") == 0 || (listing && strcmp(q, "base:") == 0);
}

static int meta_context(struct nbd_stream *st, const struct opt *o, const struct nbd_exports *ex,
			struct nbd_session *s)
{
	bool set = o->code == NBD_OPT_SET_META_CONTEXT;
	char name[NBD_MAX_STRING + 1], query[NBD_MAX_STRING + 1];
	uint32_t pos = 0;

	if (set)
		s->base_allocation = false;     /* a failed SET leaves nothing selected */
	if (set && !s->structured)
		return send_error(st, o->code, NBD_REP_ERR_INVALID,
				  "structured replies must be negotiated first");
	if (take_string(o, &pos, name, sizeof(name)) < 0 || o->len - pos < 4)
		return send_error(st, o->code, NBD_REP_ERR_INVALID, "malformed request");
	uint32_t nq = vhd_be32(o->data + pos);
	pos += 4;
	bool selected = false;
	for (uint32_t i = 0; i < nq; i++) {
		if (take_string(o, &pos, query, sizeof(query)) < 0)
			return send_error(st, o->code, NBD_REP_ERR_INVALID, "malformed query");
		selected |= query_selects_base_allocation(query, !set);
	}
	if (pos != o->len)
		return send_error(st, o->code, NBD_REP_ERR_INVALID, "trailing bytes");
	const struct nbd_export *e = nbd_find_export(ex, name);
	if (!e)
		return send_error(st, o->code, NBD_REP_ERR_UNKNOWN, "no such export");
	if (!set && nq == 0)
		selected = true;        /* LIST with no queries: everything */
	if (selected) {
		static const char ctx[] = "base:allocation";
		uint8_t b[4 + sizeof(ctx) - 1];
		vhd_put_be32(b, set ? NBD_BASE_ALLOCATION_ID : 0);   /* LIST ids are 0 */
		memcpy(b + 4, ctx, sizeof(ctx) - 1);
		if (send_reply(st, o->code, NBD_REP_META_CONTEXT, b, sizeof(b)) < 0)
			return -1;
	}
	if (set) {
		s->base_allocation = selected;
		s->exp = e;     /* remembered for a later GO of the same export */
	}
	return send_reply(st, o->code, NBD_REP_ACK, NULL, 0);
}

/* NBD_OPT_EXPORT_NAME: answer, or hang up (it has no error reply). */
static int export_name(struct nbd_stream *st, const struct opt *o, const struct nbd_exports *ex,
		       struct nbd_session *s, bool no_zeroes)
{
	char name[NBD_MAX_STRING + 1];
	if (o->len > NBD_MAX_STRING)
		return -1;
	if (o->len)
		memcpy(name, o->data, o->len);
	name[o->len] = '\0';
	const struct nbd_export *e = nbd_find_export(ex, name);
	if (!e || memchr(name, '\0', o->len))
		return -1;
	uint8_t b[10 + 124];
	vhd_put_be64(b, e->size);
	vhd_put_be16(b + 8, nbd_transmission_flags(e, s->structured));
	memset(b + 10, 0, 124);
	if (st->write(st->ctx, b, no_zeroes ? 10 : sizeof(b)) < 0)
		return -1;
	if (s->exp && s->exp != e)
		s->base_allocation = false;
	s->exp = e;
	return 1;
}

/* NBD_OPT_STARTTLS: upgrade, and forget everything negotiated before it
 * (the spec: no state from plaintext options survives). */
static int starttls(struct nbd_stream *st, const struct opt *o, struct nbd_session *s)
{
	if (!st->starttls)
		return send_error(st, o->code, NBD_REP_ERR_UNSUP, "this server has no TLS");
	if (s->tls)
		return send_error(st, o->code, NBD_REP_ERR_INVALID, "TLS is already on");
	if (o->len)
		return send_error(st, o->code, NBD_REP_ERR_INVALID, "STARTTLS takes no data");
	if (send_reply(st, o->code, NBD_REP_ACK, NULL, 0) < 0 || st->starttls(st->ctx) < 0)
		return -1;
	memset(s, 0, sizeof(*s));
	s->tls = true;
	return 0;
}

int nbd_handshake(struct nbd_stream *st, const struct nbd_exports *ex, struct nbd_session *s)
{
	uint8_t b[18];
	memset(s, 0, sizeof(*s));

	vhd_put_be64(b, NBD_MAGIC);
	vhd_put_be64(b + 8, NBD_IHAVEOPT);
	vhd_put_be16(b + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (st->write(st->ctx, b, 18) < 0 || st->read(st->ctx, b, 4) < 0)
		return -1;
	uint32_t cflags = vhd_be32(b);
	if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return -1;      /* unknown client flags: the spec says hang up */
	bool no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

	for (int count = 0; count < NBD_MAX_OPTIONS; count++) {
		struct opt o = { 0, 0, NULL };
		if (st->read(st->ctx, b, 16) < 0 || vhd_be64(b) != NBD_IHAVEOPT)
			return -1;
		o.code = vhd_be32(b + 8);
		o.len = vhd_be32(b + 12);
		if (o.len > NBD_MAX_OPTION_LEN)
			return -1;      /* not worth reading: hang up */
		if (o.len) {
			o.data = malloc(o.len);
			if (!o.data || st->read(st->ctx, o.data, o.len) < 0) {
				free(o.data);
				return -1;
			}
		}
		int r;
		if (st->tls_required && !s->tls && o.code != NBD_OPT_STARTTLS &&
		    o.code != NBD_OPT_ABORT) {
			/* EXPORT_NAME has no error reply: the spec says hang up. */
			r = o.code == NBD_OPT_EXPORT_NAME
				    ? -1
				    : send_error(st, o.code, NBD_REP_ERR_TLS_REQD,
						 "this server requires TLS: send NBD_OPT_STARTTLS first");
			free(o.data);
			if (r < 0)
				return -1;
			continue;
		}
		switch (o.code) {
		case NBD_OPT_EXPORT_NAME:
			r = export_name(st, &o, ex, s, no_zeroes);
			break;
		case NBD_OPT_ABORT:
			send_reply(st, o.code, NBD_REP_ACK, NULL, 0);
			r = -1;
			break;
		case NBD_OPT_LIST:
			r = list_exports(st, &o, ex);
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			r = info_or_go(st, &o, ex, s);
			break;
		case NBD_OPT_STRUCTURED_REPLY:
			if (o.len) {
				r = send_error(st, o.code, NBD_REP_ERR_INVALID, "takes no data");
			} else {
				s->structured = true;
				r = send_reply(st, o.code, NBD_REP_ACK, NULL, 0);
			}
			break;
		case NBD_OPT_LIST_META_CONTEXT:
		case NBD_OPT_SET_META_CONTEXT:
			r = meta_context(st, &o, ex, s);
			break;
		case NBD_OPT_STARTTLS:
			r = starttls(st, &o, s);
			break;
		default:
			r = send_error(st, o.code, NBD_REP_ERR_UNSUP, "unsupported option");
			break;
		}
		free(o.data);
		if (r < 0)
			return -1;
		if (r == 1)
			return 0;
	}
	return -1;
}
