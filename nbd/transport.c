/* SPDX-License-Identifier: MIT */
/* A connection's reads and writes: plain socket calls, or TLS records. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "server.h"
#include "transport.h"

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wait_readable(int fd, int64_t deadline)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = server_stop_fd(), .events = POLLIN } };
	for (;;) {
		int timeout = -1;
		if (deadline) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				return -1;
			timeout = (int)left;
		}
		int n = poll(p, 2, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (p[0].revents)
			return 0;
		if (p[1].revents)
			return -1;
	}
}

int transport_read(struct transport *t, void *buf, size_t len, bool first_wait, int64_t deadline)
{
	uint8_t *p = buf;
	bool started = !first_wait;
	while (len) {
		/* Bytes TLS has already decrypted do not show on the socket. */
		if (!(t->tls && tls_pending(t->tls)) &&
		    wait_readable(t->fd, started ? (deadline ? deadline : now_ms() + STALL_MS) : 0) < 0)
			return -1;
		ssize_t n;
		if (t->tls) {
			/* The rest of a record must come in time too (the pull). */
			t->deadline = deadline;
			n = tls_recv(t->tls, p, len);
		} else {
			n = recv(t->fd, p, len, 0);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0)
			return -1;
		started = true;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int plain_writev(int fd, struct iovec *iov, int cnt)
{
	while (cnt) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Headers and small payloads share records; whole records of a large
 * payload go straight from the caller's buffer. */
static int tls_writev(struct transport *t, const struct iovec *iov, int cnt)
{
	size_t fill = 0;
	for (int i = 0; i < cnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;
		while (left) {
			if (fill == 0 && left >= TLS_RECORD_MAX) {
				if (tls_send_all(t->tls, p, TLS_RECORD_MAX) < 0)
					return -1;
				p += TLS_RECORD_MAX;
				left -= TLS_RECORD_MAX;
				continue;
			}
			size_t k = TLS_RECORD_MAX - fill < left ? TLS_RECORD_MAX - fill : left;
			memcpy(t->staging + fill, p, k);
			fill += k;
			p += k;
			left -= k;
			if (fill == TLS_RECORD_MAX) {
				if (tls_send_all(t->tls, t->staging, fill) < 0)
					return -1;
				fill = 0;
			}
		}
	}
	return fill ? tls_send_all(t->tls, t->staging, fill) : 0;
}

int transport_writev(struct transport *t, struct iovec *iov, int cnt)
{
	return t->tls ? tls_writev(t, iov, cnt) : plain_writev(t->fd, iov, cnt);
}

int transport_starttls(struct transport *t, struct tls_creds *creds, int64_t deadline)
{
	t->staging = malloc(TLS_RECORD_MAX);
	if (!t->staging)
		return -1;
	t->deadline = deadline;
	return tls_session_start(creds, t, &t->tls);
}

void transport_end(struct transport *t)
{
	if (t->tls)
		tls_session_end(t->tls);
	t->tls = NULL;
	free(t->staging);
	t->staging = NULL;
}
