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

/* The folder holding path, resolved; NULL (errno set) when it cannot be. */
static char *real_folder_of(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return NULL;
	char *slash = strrchr(copy, '/');
	const char *dir = ".";
	if (slash == copy)
		dir = "/";
	else if (slash) {
		*slash = '\0';
		dir = copy;
	}
	char *real = realpath(dir, NULL);
	free(copy);
	return real;
}

/*
 * The folders the export's parents may come from: its own folder tree
 * (the folder named on the command line and, when the file is a link, the
 * folder it resolves to) and every --allow-parent-dir.  NULL-terminated;
 * free with free_dirs.
 */
static char **export_parent_dirs(const struct nbd_export *e, const char *const *extra)
{
	size_t n = 0;
	while (extra && extra[n])
		n++;
	char **dirs = calloc(n + 3, sizeof(*dirs));
	if (!dirs)
		return NULL;
	size_t k = 0;
	if ((dirs[k] = real_folder_of(e->path)))
		k++;
	char *real = realpath(e->path, NULL);
	if (real && (dirs[k] = real_folder_of(real))) {
		if (k && strcmp(dirs[k], dirs[0]) == 0)
			free(dirs[k]);
		else
			k++;
		dirs[k] = NULL;
	}
	free(real);
	for (size_t i = 0; i < n; i++)
		if ((dirs[k] = strdup(extra[i])))
			k++;
	return dirs;
}

static void free_dirs(char **dirs)
{
	for (size_t i = 0; dirs && dirs[i]; i++)
		free(dirs[i]);
	free(dirs);
}

/*
 * --snapshot: writes go to a new differencing child in $TMPDIR whose name
 * is unlinked at once; the open handle keeps it alive until exit, and the
 * base image is only ever opened read-only.
 */
static int open_snapshot(struct nbd_export *e, const char *const *dirs, struct vhd_error *err)
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
	int r = vhd_create_confined(path, &p, dirs, &e->img, err);
	free(abs);
	if (r == 0)
		unlink(path);
	return r;
}

int nbd_export_open(struct nbd_export *e, bool read_only, bool snapshot,
		    const char *const *allow_parent_dirs, struct vhd_error *err)
{
	char **dirs = export_parent_dirs(e, allow_parent_dirs);
	if (!dirs || !dirs[0]) {
		int r = dirs ? -errno : -ENOMEM;
		snprintf(err->message, sizeof(err->message), "%s: %s", e->path, strerror(-r));
		free_dirs(dirs);
		return r;
	}
	const char *const *cdirs = (const char *const *)dirs;
	int r;
	e->read_only = read_only;
	if (snapshot && !read_only)
		r = open_snapshot(e, cdirs, err);
	else
		r = vhd_open_confined(e->path, read_only ? 0 : VHD_OPEN_RDWR, cdirs, &e->img, err);
	if (r < 0 && strstr(err->message, "not in a folder allowed for parent images")) {
		/* Name the rule: which folders, and how to allow more. */
		size_t len = strlen(err->message);
		len += (size_t)snprintf(err->message + len, sizeof(err->message) - len,
					"\nparents of %s may only come from:", e->path);
		for (size_t i = 0; dirs[i] && len < sizeof(err->message); i++)
			len += (size_t)snprintf(err->message + len, sizeof(err->message) - len, " %s",
						dirs[i]);
		if (len < sizeof(err->message))
			snprintf(err->message + len, sizeof(err->message) - len,
				 " (add folders with --allow-parent-dir)");
	}
	free_dirs(dirs);
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
