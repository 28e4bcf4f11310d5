/* SPDX-License-Identifier: MIT */
/*
 * One client connection.  After the handshake, a few worker threads take
 * turns reading a request (and its payload) under the read lock, carry it
 * out on the shared image, and send the reply under the write lock: replies
 * go out of order, each whole, each with its request's cookie.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "endian.h"
#include "nbd.h"
#include "protocol.h"
#include "server.h"
#include "transport.h"
/* Bytes of request buffers one connection may hold at once. */
#define CONN_BUDGET (2ull * NBD_MAX_PAYLOAD)

struct conn {
	int fd;
	struct transport xp;    /* every byte in and out goes through it */
	struct server_state *st;
	struct nbd_session sess;
	pthread_mutex_t read_lock;
	pthread_mutex_t write_lock;
	bool closing;           /* under read_lock: stop reading requests */
	int refs;               /* worker threads alive, under refs_lock */
	pthread_mutex_t refs_lock;
	uint64_t inflight;      /* request buffer bytes held, under refs_lock */
	pthread_cond_t inflight_freed;
	int64_t handshake_deadline;
};

/* One connection holds at most CONN_BUDGET of the server's budget, so a
 * client that stops reading cannot take it all. */
static void conn_budget_take(struct conn *c, uint64_t bytes)
{
	if (!bytes)
		return;
	pthread_mutex_lock(&c->refs_lock);
	while (c->inflight && c->inflight + bytes > CONN_BUDGET)
		pthread_cond_wait(&c->inflight_freed, &c->refs_lock);
	c->inflight += bytes;
	pthread_mutex_unlock(&c->refs_lock);
	budget_take(bytes);
}

static void conn_budget_give(struct conn *c, uint64_t bytes)
{
	if (!bytes)
		return;
	budget_give(bytes);
	pthread_mutex_lock(&c->refs_lock);
	c->inflight -= bytes;
	pthread_cond_broadcast(&c->inflight_freed);
	pthread_mutex_unlock(&c->refs_lock);
}

/* ---- the handshake's stream ------------------------------------------------ */

/* The handshake as a whole must be over by c->handshake_deadline. */
static int stream_read(void *ctx, void *buf, size_t len)
{
	struct conn *c = ctx;
	return transport_read(&c->xp, buf, len, false, c->handshake_deadline);
}

static int stream_write(void *ctx, const void *buf, size_t len)
{
	struct conn *c = ctx;
	struct iovec iov = { (void *)buf, len };
	return transport_writev(&c->xp, &iov, 1);
}

static int stream_starttls(void *ctx)
{
	struct conn *c = ctx;
	return transport_starttls(&c->xp, server_tls(c->st, NULL), c->handshake_deadline);
}

/* ---- replies --------------------------------------------------------------- */

static int simple_reply(struct conn *c, uint64_t cookie, uint32_t error, const void *data,
			size_t len)
{
	uint8_t h[16];
	vhd_put_be32(h, NBD_SIMPLE_REPLY_MAGIC);
	vhd_put_be32(h + 4, error);
	vhd_put_be64(h + 8, cookie);
	struct iovec iov[2] = { { h, sizeof(h) }, { (void *)data, error ? 0 : len } };
	pthread_mutex_lock(&c->write_lock);
	int r = transport_writev(&c->xp, iov, iov[1].iov_len ? 2 : 1);
	pthread_mutex_unlock(&c->write_lock);
	return r;
}

/* One structured chunk; the caller holds the write lock. */
static int chunk(struct conn *c, uint64_t cookie, uint16_t flags, uint16_t type,
		 const void *head, size_t head_len, const void *data, size_t data_len)
{
	uint8_t h[20];
	vhd_put_be32(h, NBD_STRUCTURED_REPLY_MAGIC);
	vhd_put_be16(h + 4, flags);
	vhd_put_be16(h + 6, type);
	vhd_put_be64(h + 8, cookie);
	vhd_put_be32(h + 16, (uint32_t)(head_len + data_len));
	struct iovec iov[3] = { { h, sizeof(h) }, { (void *)head, head_len }, { (void *)data, data_len } };
	return transport_writev(&c->xp, iov, 3);
}

static int error_chunk(struct conn *c, uint64_t cookie, uint32_t error, const char *msg)
{
	uint8_t b[6];
	size_t ml = strlen(msg);
	if (ml > 4096)
		ml = 4096;
	vhd_put_be32(b, error);
	vhd_put_be16(b + 4, (uint16_t)ml);
	pthread_mutex_lock(&c->write_lock);
	int r = chunk(c, cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, b, sizeof(b), msg, ml);
	pthread_mutex_unlock(&c->write_lock);
	return r;
}

/* Answer a request with an error, in the form the command calls for. */
static int reply_error(struct conn *c, const struct nbd_request *r, uint32_t error, const char *msg)
{
	if (c->sess.structured && (r->type == NBD_CMD_READ || r->type == NBD_CMD_BLOCK_STATUS))
		return error_chunk(c, r->cookie, error, msg);
	return simple_reply(c, r->cookie, error, NULL, 0);
}

static int reply_image_error(struct conn *c, const struct nbd_request *r, struct vhd_image *img,
			     int err)
{
	char msg[512];
	vhd_errmsg_copy(img, msg, sizeof(msg));
	return reply_error(c, r, nbd_errno_to_wire(err), msg);
}

/* ---- commands -------------------------------------------------------------- */

#define MAX_READ_CHUNKS 64

static int do_read(struct conn *c, const struct nbd_request *r)
{
	struct vhd_image *img = c->sess.exp->img;
	uint8_t *buf = malloc(r->length);
	if (!buf)
		return reply_error(c, r, NBD_ENOMEM, "out of memory");
	int e = vhd_pread(img, buf, r->length, r->offset);
	if (e < 0) {
		free(buf);
		return reply_image_error(c, r, img, e);
	}
	int ret;
	if (!c->sess.structured) {
		ret = simple_reply(c, r->cookie, 0, buf, r->length);
		free(buf);
		return ret;
	}
	/*
	 * Holes known from metadata go as OFFSET_HOLE chunks, the rest as
	 * OFFSET_DATA; with DF, one data chunk for everything.
	 */
	struct read_chunk {
		uint64_t off, len;
		bool hole;
	} ch[MAX_READ_CHUNKS];
	int n = 0;
	uint64_t pos = r->offset, end = r->offset + r->length;
	while (pos < end) {
		struct vhd_extent ext;
		bool hole = false;
		uint64_t len = end - pos;
		if (!(r->flags & NBD_CMD_FLAG_DF) && n < MAX_READ_CHUNKS - 1 &&
		    vhd_block_status(img, pos, end - pos, &ext) == 0) {
			hole = ext.flags & VHD_EXTENT_ZERO;
			len = ext.length;
		}
		if (n && ch[n - 1].hole == hole)
			ch[n - 1].len += len;
		else
			ch[n++] = (struct read_chunk){ pos, len, hole };
		pos += len;
	}
	pthread_mutex_lock(&c->write_lock);
	ret = 0;
	for (int i = 0; i < n && ret == 0; i++) {
		uint16_t flags = i == n - 1 ? NBD_REPLY_FLAG_DONE : 0;
		uint8_t h[12];
		vhd_put_be64(h, ch[i].off);
		if (ch[i].hole) {
			vhd_put_be32(h + 8, (uint32_t)ch[i].len);
			ret = chunk(c, r->cookie, flags, NBD_REPLY_TYPE_OFFSET_HOLE, h, 12, NULL, 0);
		} else {
			ret = chunk(c, r->cookie, flags, NBD_REPLY_TYPE_OFFSET_DATA, h, 8,
				    buf + (ch[i].off - r->offset), (size_t)ch[i].len);
		}
	}
	pthread_mutex_unlock(&c->write_lock);
	free(buf);
	return ret;
}

#define MAX_DESCRIPTORS 1024

static int do_block_status(struct conn *c, const struct nbd_request *r)
{
	struct vhd_image *img = c->sess.exp->img;
	uint8_t *b = malloc(4 + 8 * MAX_DESCRIPTORS);
	if (!b)
		return reply_error(c, r, NBD_ENOMEM, "out of memory");
	vhd_put_be32(b, NBD_BASE_ALLOCATION_ID);
	size_t n = 0;
	uint32_t last = 0;
	uint64_t pos = r->offset, end = r->offset + r->length;
	while (pos < end && n < MAX_DESCRIPTORS) {
		struct vhd_extent ext;
		int e = vhd_block_status(img, pos, end - pos, &ext);
		if (e < 0) {
			free(b);
			return reply_image_error(c, r, img, e);
		}
		/* From metadata alone: a range no layer holds, or a hole in a
		 * fixed image's file, reads as zeros and needs no storage. */
		uint32_t state = (ext.flags & VHD_EXTENT_ZERO) ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
		/* Lengths fit in 32 bits: the request's length does. */
		uint32_t len = (uint32_t)ext.length;
		if (n && state == last) {
			vhd_put_be32(b + 4 + 8 * (n - 1), vhd_be32(b + 4 + 8 * (n - 1)) + len);
		} else {
			if (n && (r->flags & NBD_CMD_FLAG_REQ_ONE))
				break;
			vhd_put_be32(b + 4 + 8 * n, len);
			vhd_put_be32(b + 8 + 8 * n, state);
			last = state;
			n++;
		}
		pos += len;
	}
	pthread_mutex_lock(&c->write_lock);
	int ret = chunk(c, r->cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, b, 4 + 8 * n,
			NULL, 0);
	pthread_mutex_unlock(&c->write_lock);
	free(b);
	return ret;
}

static int finish_write(struct conn *c, const struct nbd_request *r, int e)
{
	struct vhd_image *img = c->sess.exp->img;
	if (e == 0 && (r->flags & NBD_CMD_FLAG_FUA))
		e = vhd_flush(img);
	if (e < 0)
		return reply_image_error(c, r, img, e);
	return simple_reply(c, r->cookie, 0, NULL, 0);
}

static int handle(struct conn *c, const struct nbd_request *r, const uint8_t *payload)
{
	struct vhd_image *img = c->sess.exp->img;
	switch (r->type) {
	case NBD_CMD_READ:
		return do_read(c, r);
	case NBD_CMD_WRITE:
		return finish_write(c, r, vhd_pwrite(img, payload, r->length, r->offset));
	case NBD_CMD_FLUSH:
		return finish_write(c, r, vhd_flush(img));
	case NBD_CMD_TRIM:
		return finish_write(c, r, vhd_discard(img, r->offset, r->length));
	case NBD_CMD_WRITE_ZEROES: {
		unsigned f = (r->flags & NBD_CMD_FLAG_NO_HOLE) ? 0 : VHD_ZERO_MAY_UNMAP;
		if (r->flags & NBD_CMD_FLAG_FAST_ZERO)
			f |= VHD_ZERO_FAST;
		int e = vhd_zero(img, r->offset, r->length, f);
		if (e == -ENOTSUP)
			return simple_reply(c, r->cookie, NBD_ENOTSUP, NULL, 0);
		return finish_write(c, r, e);
	}
	case NBD_CMD_CACHE:
		return simple_reply(c, r->cookie, 0, NULL, 0);
	case NBD_CMD_BLOCK_STATUS:
		return do_block_status(c, r);
	}
	return reply_error(c, r, NBD_EINVAL, "unknown command");
}

/* ---- workers ------------------------------------------------------------- */

static void conn_unref(struct conn *c)
{
	pthread_mutex_lock(&c->refs_lock);
	int left = --c->refs;
	pthread_mutex_unlock(&c->refs_lock);
	if (left)
		return;
	transport_end(&c->xp);
	server_conn_done(c->st, c->fd);
	pthread_mutex_destroy(&c->read_lock);
	pthread_mutex_destroy(&c->write_lock);
	pthread_mutex_destroy(&c->refs_lock);
	pthread_cond_destroy(&c->inflight_freed);
	free(c);
}

/* Stop reading; the workers finish what they hold and leave. */
static void hang_up(struct conn *c)
{
	c->closing = true;
	shutdown(c->fd, SHUT_RD);
}

static void *worker(void *arg)
{
	struct conn *c = arg;
	for (;;) {
		uint8_t hdr[NBD_REQUEST_SIZE];
		struct nbd_request r;
		uint8_t *payload = NULL;
		uint64_t budget = 0;
		uint32_t error = 0;

		pthread_mutex_lock(&c->read_lock);
		if (c->closing || transport_read(&c->xp, hdr, sizeof(hdr), true, 0) < 0) {
			c->closing = true;
			pthread_mutex_unlock(&c->read_lock);
			break;
		}
		nbd_request_decode(hdr, &r);
		enum nbd_verdict v = r.magic == NBD_REQUEST_MAGIC && r.type == NBD_CMD_DISC
					     ? NBD_HANG_UP
					     : nbd_request_validate(&r, &c->sess, &error);
		if (v == NBD_HANG_UP) {
			hang_up(c);
			pthread_mutex_unlock(&c->read_lock);
			break;
		}
		uint32_t plen = nbd_request_payload(&r);
		budget = plen ? plen : (v == NBD_OK && r.type == NBD_CMD_READ ? r.length : 0);
		conn_budget_take(c, budget);
		if (plen) {
			/* Read the payload even of a rejected write: the stream stays in step. */
			payload = malloc(plen);
			if (!payload || transport_read(&c->xp, payload, plen, false, 0) < 0) {
				hang_up(c);
				pthread_mutex_unlock(&c->read_lock);
				free(payload);
				conn_budget_give(c, budget);
				break;
			}
		}
		pthread_mutex_unlock(&c->read_lock);

		int ret = v == NBD_REJECT ? reply_error(c, &r, error, "invalid request")
					  : handle(c, &r, payload);
		free(payload);
		conn_budget_give(c, budget);
		if (ret < 0) {
			pthread_mutex_lock(&c->read_lock);
			hang_up(c);
			pthread_mutex_unlock(&c->read_lock);
			break;
		}
	}
	conn_unref(c);
	return NULL;
}


void conn_serve(struct server_state *st, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		server_conn_done(st, fd);
		return;
	}
	c->fd = fd;
	c->xp.fd = fd;
	c->st = st;
	pthread_mutex_init(&c->read_lock, NULL);
	pthread_mutex_init(&c->write_lock, NULL);
	pthread_mutex_init(&c->refs_lock, NULL);
	pthread_cond_init(&c->inflight_freed, NULL);

	/* Replies a client does not take within the limit end its connection;
	 * the handshake as a whole has the same limit. */
	struct timeval limit = { .tv_sec = STALL_MS / 1000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
	c->handshake_deadline = now_ms() + STALL_MS;
	bool tls_required;
	struct nbd_stream s = { stream_read, stream_write, c, NULL, false };
	if (server_tls(st, &tls_required)) {
		s.starttls = stream_starttls;
		s.tls_required = tls_required;
	}
	if (nbd_handshake(&s, server_exports(st), &c->sess) < 0) {
		c->refs = 1;
		conn_unref(c);
		return;
	}
	server_conn_transmitting(st);
	/* This thread is the first worker; start the others. */
	int n = server_threads(st);
	c->refs = n;
	for (int i = 1; i < n; i++) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&a, 256 * 1024);
		if (pthread_create(&t, &a, worker, c) != 0)
			conn_unref(c);
		pthread_attr_destroy(&a);
	}
	worker(c);
}
