/* SPDX-License-Identifier: MIT */
/* Pipes and gzip data for convert: read once in order, written once in order. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream.h"
#include "vhdtool.h"

/* A pipe handed over non-blocking would fail reads and writes with EAGAIN. */
static void make_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

bool name_ends_gz(const char *path)
{
	size_t n = strlen(path);
	return n > 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* ---- Input ---------------------------------------------------------------- */

int instream_open(struct instream *in, int fd, const char *name, bool gzip)
{
	in->fd = fd;
	in->gz = NULL;
	in->name = name;
	in->done = 0;
	make_blocking(fd);
	if (!gzip)
		return 0;
	/* gzdopen also reads data that is not gzip, as it is (zlib's transparent
	 * mode), so a pipe needs no look ahead to tell the two apart.  zlib
	 * closes what it is given: a copy, so standard input stays open. */
	errno = 0;
	int dup_fd = dup(fd);
	if (dup_fd < 0 || !(in->gz = gzdopen(dup_fd, "rb"))) {
		if (dup_fd >= 0)
			close(dup_fd);
		vt_error("%s: cannot start decompressing: %s", name, strerror(errno ? errno : ENOMEM));
		return -1;
	}
	gzbuffer(in->gz, 256u << 10);
	return 0;
}

static const char *zlib_code(int code)
{
	switch (code) {
	case Z_ERRNO:
		return "Z_ERRNO";
	case Z_STREAM_ERROR:
		return "Z_STREAM_ERROR";
	case Z_DATA_ERROR:
		return "Z_DATA_ERROR";
	case Z_MEM_ERROR:
		return "Z_MEM_ERROR";
	case Z_BUF_ERROR:
		return "Z_BUF_ERROR";
	}
	return "unknown zlib error";
}

static int gz_failed(struct instream *in, uint64_t at)
{
	int code;
	const char *msg = gzerror(in->gz, &code);
	if (code == Z_OK)
		return 0;
	if (code == Z_ERRNO) {
		vt_error("%s: read failed after %" PRIu64 " bytes: %s", in->name, at, strerror(errno));
		return -1;
	}
	/* zlib names the file "<fd:N>: "; ours is the better name. */
	const char *sep = strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ">: ") : NULL;
	if (sep)
		msg = sep + 3;
	vt_error("%s: gzip data is %s after %" PRIu64 " bytes: %s (zlib %s)", in->name,
		 code == Z_BUF_ERROR ? "truncated" : "corrupt", at, msg, zlib_code(code));
	return -1;
}

ssize_t instream_read(struct instream *in, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n;
		if (in->gz) {
			size_t want = len - got < INT32_MAX ? len - got : INT32_MAX;
			n = gzread(in->gz, p + got, (unsigned)want);
			/* A truncated member ends like the data does; only gzerror
			 * tells them apart. */
			if (n <= 0 && gz_failed(in, in->done + got) < 0)
				return -1;
			if (n < 0) {
				vt_error("%s: cannot decompress after %" PRIu64 " bytes", in->name,
					 in->done + got);
				return -1;
			}
		} else {
			n = read(in->fd, p + got, len - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				vt_error("%s: read failed after %" PRIu64 " bytes: %s", in->name,
					 in->done + got, strerror(errno));
				return -1;
			}
		}
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	in->done += got;
	return (ssize_t)got;
}

void instream_close(struct instream *in)
{
	if (in->gz)
		gzclose_r(in->gz);
	in->gz = NULL;
	if (in->fd > STDIN_FILENO)
		close(in->fd);
	in->fd = -1;
}

/* ---- Output --------------------------------------------------------------- */

static int write_all(struct outstream *o, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(o->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EPIPE)
				vt_error("%s: the reader closed the pipe after %" PRIu64 " bytes; the output is incomplete",
					 o->name, o->written);
			else
				vt_error("%s: write failed after %" PRIu64 " bytes: %s", o->name, o->written,
					 strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
		o->written += (uint64_t)n;
	}
	return 0;
}

void gz_piece_free(struct gz_piece *p)
{
	if (p->live)
		deflateEnd(&p->z);
	free(p->out);
	memset(p, 0, sizeof(*p));
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/*
 * Each piece is a fresh raw deflate stream ended by a sync flush: byte
 * aligned and not final, so pieces concatenate into one deflate stream.
 */
static int deflate_piece(struct gz_piece *p, const void *buf, size_t len)
{
	if (!p->live) {
		memset(&p->z, 0, sizeof(p->z));
		if (deflateInit2(&p->z, GZIP_LEVEL, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
			vt_error("out of memory");
			return -1;
		}
		p->live = true;
	} else if (deflateReset(&p->z) != Z_OK) {
		vt_error("gzip compression failed (deflateReset)");
		return -1;
	}
	/* deflateBound covers a finished stream; a sync flush's empty stored
	 * block takes at most a few bytes more. */
	size_t need = deflateBound(&p->z, (uLong)len) + 64;
	if (need > p->cap) {
		uint8_t *o = realloc(p->out, need);
		if (!o) {
			vt_error("out of memory");
			return -1;
		}
		p->out = o;
		p->cap = need;
	}
	p->z.next_in = (Bytef *)(uintptr_t)buf;
	p->z.avail_in = (uInt)len;
	p->z.next_out = p->out;
	p->z.avail_out = (uInt)p->cap;
	int r = deflate(&p->z, Z_SYNC_FLUSH);
	if (r != Z_OK || p->z.avail_in || !p->z.avail_out) {
		vt_error("gzip compression failed (zlib %s)", r == Z_OK ? "ran out of room" : zlib_code(r));
		return -1;
	}
	p->len = p->cap - p->z.avail_out;
	p->in_len = len;
	p->crc = (uint32_t)crc32(0, buf, (uInt)len);
	p->zero = false;
	return 0;
}

int outstream_open(struct outstream *o, int fd, const char *name, bool gzip)
{
	memset(o, 0, sizeof(*o));
	o->fd = fd;
	o->name = name;
	o->gzip = gzip;
	make_blocking(fd);
	if (!gzip)
		return 0;
	/* Disks are mostly zeros: compress a zero chunk once, reuse it. */
	uint8_t *z = calloc(1, STREAM_CHUNK);
	if (!z) {
		vt_error("out of memory");
		return -1;
	}
	int r = deflate_piece(&o->zeros, z, STREAM_CHUNK);
	free(z);
	return r;
}

int outstream_prepare(struct outstream *o, struct gz_piece *p, const void *buf, size_t len)
{
	if (!o->gzip) {
		p->in_len = len;
		return 0;
	}
	if (len == STREAM_CHUNK && all_zero(buf, len)) {
		p->zero = true;
		p->in_len = len;
		return 0;
	}
	return deflate_piece(p, buf, len);
}

static int put_header(struct outstream *o)
{
	/* gzip: deflate, no name, no time (the data is a disk, not a file), Unix. */
	static const uint8_t header[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
	if (o->header_done)
		return 0;
	o->header_done = true;
	return write_all(o, header, sizeof(header));
}

int outstream_put(struct outstream *o, struct gz_piece *p)
{
	const struct gz_piece *c = p->zero ? &o->zeros : p;
	if (put_header(o) < 0 || write_all(o, c->out, c->len) < 0)
		return -1;
	o->crc = (uint32_t)crc32_combine(o->crc, c->crc, (z_off_t)c->in_len);
	o->done += c->in_len;
	return 0;
}

int outstream_write(struct outstream *o, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	while (len) {
		size_t n = len < STREAM_CHUNK ? len : STREAM_CHUNK;
		if (!o->gzip) {
			if (write_all(o, b, n) < 0)
				return -1;
			o->done += n;
		} else if (outstream_prepare(o, &o->own, b, n) < 0 || outstream_put(o, &o->own) < 0) {
			return -1;
		}
		b += n;
		len -= n;
	}
	return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int outstream_finish(struct outstream *o, bool sync)
{
	if (o->gzip) {
		/* A last, empty fixed-Huffman block, then CRC-32 and size mod 2^32. */
		uint8_t tail[10] = { 0x03, 0x00 };
		put_le32(tail + 2, o->crc);
		put_le32(tail + 6, (uint32_t)o->done);
		if (put_header(o) < 0 || write_all(o, tail, sizeof(tail)) < 0)
			return -1;
	}
	struct stat st;
	if (sync && fstat(o->fd, &st) == 0 && S_ISREG(st.st_mode) && fdatasync(o->fd) < 0) {
		vt_error("%s: flush failed: %s", o->name, strerror(errno));
		return -1;
	}
	if (o->fd > STDOUT_FILENO) {
		int r = close(o->fd);
		o->fd = -1;
		if (r < 0) {
			vt_error("%s: write failed: %s", o->name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

void outstream_close(struct outstream *o)
{
	if (o->fd > STDOUT_FILENO)
		close(o->fd);
	o->fd = -1;
	gz_piece_free(&o->own);
	gz_piece_free(&o->zeros);
}

/* ---- A fixed VHD's footer -------------------------------------------------- */

/*
 * Let the library create a fixed image on a backend that keeps only the
 * footer: the footer then is exactly what vhd_create writes (identity,
 * geometry, checksum), with no disk-sized file behind it.
 */
struct footer_io {
	struct vhd_io io;
	uint64_t size;
	uint8_t *footer;
	bool got;
};

static int fio_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	(void)io, (void)buf, (void)len, (void)off;
	return -EIO;
}

static int fio_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	struct footer_io *f = (struct footer_io *)io;
	if (off != f->size || len != VHD_SECTOR_SIZE)
		return -EIO;
	memcpy(f->footer, buf, len);
	f->got = true;
	return 0;
}

static int fio_flush(struct vhd_io *io)
{
	(void)io;
	return 0;
}

static int fio_size(struct vhd_io *io, uint64_t *size)
{
	struct footer_io *f = (struct footer_io *)io;
	*size = f->size + (f->got ? VHD_SECTOR_SIZE : 0);
	return 0;
}

static int fio_truncate(struct vhd_io *io, uint64_t size)
{
	(void)io, (void)size;
	return 0;
}

static void fio_close(struct vhd_io *io)
{
	(void)io;
}

int fixed_footer(uint64_t size, bool azure, uint8_t footer[512])
{
	static const struct vhd_io_ops ops = {
		.pread = fio_pread,
		.pwrite = fio_pwrite,
		.flush = fio_flush,
		.size = fio_size,
		.truncate = fio_truncate,
		.close = fio_close,
	};
	struct footer_io f = { .io = { .ops = &ops, .name = "footer" }, .size = size, .footer = footer };
	struct vhd_create_params p = {
		.type = VHD_TYPE_FIXED,
		.size = size,
		.flags = VHD_CREATE_NO_SYNC | (azure ? VHD_CREATE_AZURE : 0),
	};
	struct vhd_error err;
	if (vhd_create_io(&f.io, &p, NULL, NULL, &err) < 0) {
		vt_error("%s", err.message);
		return -1;
	}
	if (!f.got) {
		vt_error("the library wrote no footer for a fixed image of %" PRIu64 " bytes", size);
		return -1;
	}
	return 0;
}

/* ---- Progress without a total ---------------------------------------------- */

/* A terminal line is redrawn each 64 MiB; a log gets a line each GiB. */
#define TTY_STEP (64ull << 20)
#define LOG_STEP (1ull << 30)

void byte_progress_init(struct byte_progress *p, bool enabled)
{
	p->enabled = enabled;
	p->tty = enabled && isatty(STDERR_FILENO);
	p->next = 0;
	p->shown = UINT64_MAX;
	byte_progress_update(p, 0);
}

static void show(struct byte_progress *p, uint64_t done, bool last)
{
	char size[32];
	if (done == p->shown && !(last && p->tty))
		return;
	p->shown = done;
	vt_format_size(done, size, sizeof(size));
	if (p->tty)
		fprintf(stderr, "\r    %s copied%s", size, last ? "\n" : "     ");
	else
		fprintf(stderr, "    %s copied\n", size);
	fflush(stderr);
}

void byte_progress_update(struct byte_progress *p, uint64_t done)
{
	if (!p->enabled || done < p->next)
		return;
	uint64_t step = p->tty ? TTY_STEP : LOG_STEP;
	p->next = (done / step + 1) * step;
	show(p, done, false);
}

void byte_progress_done(struct byte_progress *p, uint64_t done)
{
	if (p->enabled)
		show(p, done, true);
}
