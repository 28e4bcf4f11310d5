/* SPDX-License-Identifier: MIT */
/*
 * A connection's byte transport: the socket, and once NBD_OPT_STARTTLS has
 * succeeded, TLS over it.  Every read and write of a connection goes
 * through here, with the same stall limits either way.
 */
#ifndef VHD_NBD_TRANSPORT_H
#define VHD_NBD_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "tls.h"

/* A client that stalls inside a request, a reply or the handshake for this
 * long is dropped, so it cannot hold memory or a slot for ever. */
#define STALL_MS 30000

struct transport {
	int fd;
	struct tls_session *tls;   /* NULL: plaintext */
	/* Readers only (one at a time): when the message being read must be
	 * complete (ms since boot); 0 = STALL_MS after each wait. */
	int64_t deadline;
	/* Writers only (one at a time, under the caller's write lock):
	 * gathers small pieces into whole TLS records. */
	uint8_t *staging;
};

int64_t now_ms(void);

/*
 * Wait until fd has bytes (or an end) to read: 0.  -1 when the deadline
 * (ms since boot; 0 = none) passes, or when the server is stopping and
 * nothing is waiting on fd: requests already sent are still served.
 */
int wait_readable(int fd, int64_t deadline);

/* Read exactly len bytes.  The first may wait for ever (an idle client)
 * when first_wait is set; once a message has begun it must arrive in time
 * (by deadline when not 0).  0, or -1. */
int transport_read(struct transport *t, void *buf, size_t len, bool first_wait, int64_t deadline);
/* Write every byte of iov (which is consumed): 0, or -1. */
int transport_writev(struct transport *t, struct iovec *iov, int cnt);
/* Upgrade to TLS (the handshake must end by deadline): 0, or -1. */
int transport_starttls(struct transport *t, struct tls_creds *creds, int64_t deadline);
/* End TLS if it is on; the socket stays open. */
void transport_end(struct transport *t);

#endif
