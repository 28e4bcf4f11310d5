/* SPDX-License-Identifier: MIT */
/* The serving side of vhd-nbd: listeners, connections, shutdown. */
#ifndef VHD_NBD_SERVER_H
#define VHD_NBD_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "nbd.h"
#include "tls.h"

struct server_config {
	struct nbd_exports exports;
	const char *socket_path;   /* unix socket, or NULL for TCP */
	const char *bind_addr;     /* TCP address (default 127.0.0.1) */
	const char *port;          /* TCP port (default 10809) */
	int max_connections;
	int threads;               /* workers per connection */
	uint64_t memory_budget;    /* bytes of request buffers in flight, all connections */
	struct tls_creds *tls;     /* NULL: no TLS (--tls=off) */
	bool tls_required;         /* --tls=require */
	/* --initramfs: stop once the last client that got as far as the
	 * transmission phase is gone (the kernel's nbd-client -d). */
	bool stop_when_idle;
};

/* Open the export's image; its parents only from its own folder tree and
 * allow_parent_dirs (NULL-terminated, may be NULL). */
int nbd_export_open(struct nbd_export *e, bool read_only, bool snapshot,
		    const char *const *allow_parent_dirs, struct vhd_error *err);
int nbd_export_close(struct nbd_export *e);

/* Listen: fills the listening sockets; messages on stderr. */
int server_listen(struct server_config *cfg);
/* Serve until server_stop; then finish in-flight requests and return. */
int server_run(struct server_config *cfg);
/* Async-signal-safe: ask server_run to stop. */
void server_stop(void);

/* conn.c: serve one accepted connection (runs on its own threads). */
struct server_state;
void conn_serve(struct server_state *st, int fd);
/* server.c, for conn.c */
void server_conn_done(struct server_state *st, int fd);
/* A connection finished its handshake: it now counts for stop_when_idle. */
void server_conn_transmitting(struct server_state *st);
const struct nbd_exports *server_exports(struct server_state *st);
int server_threads(struct server_state *st);
/* The TLS credentials (NULL: no TLS); *required (may be NULL): --tls=require. */
struct tls_creds *server_tls(struct server_state *st, bool *required);
/* Readable once the server is stopping. */
int server_stop_fd(void);

/* A limit on request buffers in flight across all connections. */
void budget_init(uint64_t bytes);
void budget_take(uint64_t bytes);
void budget_give(uint64_t bytes);

#endif
