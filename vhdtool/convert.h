/* SPDX-License-Identifier: MIT */
/* convert's source, destination and copy loops (cmd_convert.c sets them up). */
#ifndef VHDTOOL_CONVERT_H
#define VHDTOOL_CONVERT_H

#include "stream.h"
#include "vhdtool.h"

struct source {
	struct vhd_io *raw;     /* raw input, or NULL */
	struct vhd_image *img;  /* VHD input, or NULL */
	struct instream in;     /* stream: a pipe, or gzip data */
	bool stream;
	uint64_t size;          /* a stream's is known only at its end */
	const char *name;
};

struct dest {
	struct vhd_io *raw;         /* raw output, or a fixed one whose footer comes last */
	struct vhd_image *img;
	struct vhd_image *parent;   /* -B: what the child reads through to */
	struct outstream out;       /* stream: standard output or a .gz file */
	bool stream;
	const char *path;
};

/* Copy a seekable source (src->size bytes) with a few threads. */
int copy_data(struct source *src, struct dest *d, bool progress_on);
/* Copy a stream source to its end, *total bytes; more than limit fails,
 * with a message ending in limit_why ("given by --size"). */
int copy_stream(struct source *src, struct dest *d, uint64_t limit, const char *limit_why,
		bool progress_on, uint64_t *total);

#endif
