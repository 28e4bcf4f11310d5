/* SPDX-License-Identifier: MIT */
/* Listening, accepting, the connection limit, the memory budget, shutdown. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define MAX_LISTENERS 8

struct server_state {
	struct server_config *cfg;
	int listeners[MAX_LISTENERS];
	int nlisteners;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int *fds;               /* open connections, for shutdown */
	int nconns;
	bool transmitted;       /* some client reached the transmission phase */
};

static struct server_state state = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
};
static int stop_pipe[2] = { -1, -1 };

const struct nbd_exports *server_exports(struct server_state *st)
{
	return &st->cfg->exports;
}

int server_threads(struct server_state *st)
{
	return st->cfg->threads;
}

struct tls_creds *server_tls(struct server_state *st, bool *required)
{
	if (required)
		*required = st->cfg->tls_required;
	return st->cfg->tls;
}

/* ---- memory budget --------------------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	uint64_t left, total;
} budget = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

void budget_init(uint64_t bytes)
{
	budget.left = budget.total = bytes;
}

/* Wait until the buffers in flight leave room (a single request larger
 * than the whole budget waits for everything else to finish). */
void budget_take(uint64_t bytes)
{
	if (!bytes)
		return;
	pthread_mutex_lock(&budget.lock);
	uint64_t want = bytes > budget.total ? budget.total : bytes;
	while (budget.left < want)
		pthread_cond_wait(&budget.freed, &budget.lock);
	budget.left -= want;
	pthread_mutex_unlock(&budget.lock);
}

void budget_give(uint64_t bytes)
{
	if (!bytes)
		return;
	pthread_mutex_lock(&budget.lock);
	budget.left += bytes > budget.total ? budget.total : bytes;
	pthread_cond_broadcast(&budget.freed);
	pthread_mutex_unlock(&budget.lock);
}

/* ---- listening ----------------------------------------------------------- */

static int listen_unix(struct server_state *st, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "vhd-nbd: socket path too long (at most %zu bytes): %s\n",
			sizeof(a.sun_path) - 1, path);
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0) {
		fprintf(stderr, "vhd-nbd: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	st->listeners[st->nlisteners++] = fd;
	return 0;
}

static int listen_tcp(struct server_state *st, const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	int e = getaddrinfo(addr, port, &hints, &res);
	if (e) {
		fprintf(stderr, "vhd-nbd: %s port %s: %s\n", addr, port, gai_strerror(e));
		return -1;
	}
	for (struct addrinfo *ai = res; ai && st->nlisteners < MAX_LISTENERS; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
			fprintf(stderr, "vhd-nbd: %s port %s: %s\n", addr, port, strerror(errno));
			close(fd);
			freeaddrinfo(res);
			return -1;
		}
		st->listeners[st->nlisteners++] = fd;
	}
	freeaddrinfo(res);
	if (!st->nlisteners) {
		fprintf(stderr, "vhd-nbd: %s port %s: no address to listen on\n", addr, port);
		return -1;
	}
	return 0;
}

int server_listen(struct server_config *cfg)
{
	state.cfg = cfg;
	state.fds = calloc((size_t)cfg->max_connections, sizeof(int));
	if (!state.fds || pipe2(stop_pipe, O_CLOEXEC) < 0)
		return -1;
	budget_init(cfg->memory_budget);
	if (cfg->socket_path)
		return listen_unix(&state, cfg->socket_path);
	return listen_tcp(&state, cfg->bind_addr, cfg->port);
}

int server_stop_fd(void)
{
	return stop_pipe[0];
}

void server_stop(void)
{
	char c = 1;
	ssize_t n = write(stop_pipe[1], &c, 1);
	(void)n;
}

/* ---- connections ----------------------------------------------------------- */

void server_conn_done(struct server_state *st, int fd)
{
	pthread_mutex_lock(&st->lock);
	for (int i = 0; i < st->nconns; i++) {
		if (st->fds[i] == fd) {
			st->fds[i] = st->fds[--st->nconns];
			break;
		}
	}
	close(fd);
	/* Probes that never got past the handshake (a listing, a failed
	 * negotiation) do not end the server; its real clients leaving does. */
	if (st->cfg->stop_when_idle && st->transmitted && st->nconns == 0)
		server_stop();
	pthread_cond_broadcast(&st->changed);
	pthread_mutex_unlock(&st->lock);
}

void server_conn_transmitting(struct server_state *st)
{
	pthread_mutex_lock(&st->lock);
	st->transmitted = true;
	pthread_mutex_unlock(&st->lock);
}

static void *conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	conn_serve(&state, fd);
	return NULL;
}

static void accept_one(struct server_state *st, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		/* Out of descriptors: the listener stays readable; do not spin. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS)
			usleep(100 * 1000);
		return;
	}
	pthread_mutex_lock(&st->lock);
	if (st->nconns >= st->cfg->max_connections) {
		pthread_mutex_unlock(&st->lock);
		close(fd);      /* over the limit: refuse at once */
		return;
	}
	st->fds[st->nconns++] = fd;
	pthread_mutex_unlock(&st->lock);

	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	if (pthread_create(&t, &a, conn_thread, (void *)(intptr_t)fd) != 0)
		server_conn_done(st, fd);
	pthread_attr_destroy(&a);
}

int server_run(struct server_config *cfg)
{
	(void)cfg;
	struct pollfd p[MAX_LISTENERS + 1];
	for (;;) {
		int n = 0;
		p[n++] = (struct pollfd){ .fd = stop_pipe[0], .events = POLLIN };
		for (int i = 0; i < state.nlisteners; i++)
			p[n++] = (struct pollfd){ .fd = state.listeners[i], .events = POLLIN };
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		for (int i = 1; i < n; i++)
			if (p[i].revents & POLLIN)
				accept_one(&state, p[i].fd);
	}
	/*
	 * Stop accepting.  Connections see the stop pipe: they serve what
	 * clients have already sent, then end.  One that is still busy after
	 * the grace time (a client that does not read its replies) is cut.
	 */
	for (int i = 0; i < state.nlisteners; i++)
		close(state.listeners[i]);
	if (cfg->socket_path)
		unlink(cfg->socket_path);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&state.lock);
	while (state.nconns &&
	       pthread_cond_timedwait(&state.changed, &state.lock, &until) != ETIMEDOUT)
		;
	for (int i = 0; i < state.nconns; i++)
		shutdown(state.fds[i], SHUT_RDWR);
	while (state.nconns)
		pthread_cond_wait(&state.changed, &state.lock);
	pthread_mutex_unlock(&state.lock);
	return 0;
}
