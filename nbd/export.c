/* SPDX-License-Identifier: MIT */
/* Exports: opening images (and --snapshot overlays), names, flags. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbd.h"
#include "protocol.h"
#include "server.h"

const struct nbd_export *nbd_find_export(const struct nbd_exports *ex, const char *name)
{
	for (size_t i = 0; i < ex->n; i++)
		if (strcmp(ex->v[i].name, name) == 0)
			return &ex->v[i];
	return NULL;
}

uint16_t nbd_transmission_flags(const struct nbd_export *e, bool structured)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;
	if (structured)
		f |= NBD_FLAG_SEND_DF;
	if (e->read_only)
		f |= NBD_FLAG_READ_ONLY;
	else
		f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
	return f;
}

/*
 * --snapshot: writes go to a new differencing child in $TMPDIR whose name
 * is unlinked at once; the open handle keeps it alive until exit, and the
 * base image is only ever opened read-only.
 */
static int open_snapshot(struct nbd_export *e, struct vhd_error *err)
{
	const char *tmp = getenv("TMPDIR");
	char *abs = realpath(e->path, NULL);
	char path[PATH_MAX];
	if (!abs) {
		snprintf(err->message, sizeof(err->message), "%s: %s", e->path, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/vhd-nbd-snapshot.%ld.%p.vhd", tmp && *tmp ? tmp : "/tmp",
		 (long)getpid(), (void *)e);
	struct vhd_create_params p = {
		.type = VHD_TYPE_DIFFERENCING,
		.parent = abs,
		.flags = VHD_CREATE_NO_SYNC,
	};
	int r = vhd_create(path, &p, &e->img, err);
	free(abs);
	if (r == 0)
		unlink(path);
	return r;
}

int nbd_export_open(struct nbd_export *e, bool read_only, bool snapshot, struct vhd_error *err)
{
	int r;
	e->read_only = read_only;
	if (snapshot && !read_only)
		r = open_snapshot(e, err);
	else
		r = vhd_open(e->path, read_only ? 0 : VHD_OPEN_RDWR, &e->img, err);
	if (r < 0)
		return r;
	e->size = vhd_virtual_size(e->img);
	return 0;
}

int nbd_export_close(struct nbd_export *e)
{
	int r = 0;
	if (e->img)
		r = vhd_close(e->img);
	e->img = NULL;
	return r;
}
