/* SPDX-License-Identifier: MIT */
/* Sequential data for convert: pipes and gzip in, pipes and gzip out. */
#ifndef VHDTOOL_STREAM_H
#define VHDTOOL_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>

#define STREAM_CHUNK (2u << 20)  /* bytes read, compressed and written at a time */
#define GZIP_LEVEL 6

/* ---- Input: a pipe, or gzip data from anywhere ------------------------- */

struct instream {
	int fd;
	gzFile gz;              /* NULL: the bytes are taken as they are */
	const char *name;       /* for messages */
	uint64_t done;          /* bytes delivered */
};

/* Take over fd (closed by instream_close unless it is standard input). */
int instream_open(struct instream *in, int fd, const char *name, bool gzip);
/* Read len bytes; fewer only at the end of the data.  -1: error, printed. */
ssize_t instream_read(struct instream *in, void *buf, size_t len);
void instream_close(struct instream *in);

bool name_ends_gz(const char *path);

/* ---- Output: written once, in order ---------------------------------- */

/*
 * gzip output is one deflate stream cut into pieces that are compressed
 * independently (each ends in a sync flush), so several threads can
 * compress at once and the pieces are then written in order.
 */
struct gz_piece {
	z_stream z;
	bool live;
	bool zero;              /* a whole STREAM_CHUNK of zeros: the cached piece */
	uint8_t *out;
	size_t cap, len;        /* compressed bytes in out */
	size_t in_len;
	uint32_t crc;
};

struct outstream {
	int fd;
	const char *name;
	bool gzip;
	bool header_done;
	uint64_t done;          /* bytes written, before compression */
	uint64_t written;       /* bytes that went out, for messages */
	uint32_t crc;
	struct gz_piece own;    /* for outstream_write */
	struct gz_piece zeros;  /* STREAM_CHUNK zeros, compressed once */
};

int outstream_open(struct outstream *o, int fd, const char *name, bool gzip);
/* Write (and compress) the next len bytes. */
int outstream_write(struct outstream *o, const void *buf, size_t len);
/* Compress the next bytes into p; any thread, any order (len <= STREAM_CHUNK). */
int outstream_prepare(struct outstream *o, struct gz_piece *p, const void *buf, size_t len);
/* Write a prepared piece: in the order of the data. */
int outstream_put(struct outstream *o, struct gz_piece *p);
/* End the gzip data; with sync, make a regular file durable. */
int outstream_finish(struct outstream *o, bool sync);
/* Close fd (not standard output) and free. */
void outstream_close(struct outstream *o);
void gz_piece_free(struct gz_piece *p);

/* ---- The rest ---------------------------------------------------------- */

/* The footer of a fixed VHD of size bytes, built by the library. */
int fixed_footer(uint64_t size, bool azure, uint8_t footer[512]);

/* Progress when the total is not known: bytes copied so far. */
struct byte_progress {
	bool enabled, tty;
	uint64_t next;          /* print again at this many bytes */
	uint64_t shown;         /* the count last printed */
};
void byte_progress_init(struct byte_progress *p, bool enabled);
void byte_progress_update(struct byte_progress *p, uint64_t done);
void byte_progress_done(struct byte_progress *p, uint64_t done);

#endif
