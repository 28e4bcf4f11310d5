/* SPDX-License-Identifier: MIT */
/* vhdtool convert: raw or any VHD to raw, fixed or dynamic (or a -B child). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdtool.h"

#define CHUNK (2u << 20)        /* bytes read at a time */
#define GRANULE 4096u           /* zero runs shorter than this are written */

enum out_format { OUT_RAW, OUT_FIXED, OUT_DYNAMIC };

struct source {
	struct vhd_io *raw;     /* raw input, or NULL */
	struct vhd_image *img;  /* VHD input, or NULL */
	uint64_t size;
};

struct dest {
	struct vhd_io *raw;
	struct vhd_image *img;
	struct vhd_image *parent;   /* -B: what the child reads through to */
	const char *path;
};

static bool looks_like_vhd(struct vhd_io *io)
{
	uint64_t size;
	char cookie[8];
	if (io->ops->size(io, &size) < 0 || size < 511)
		return false;
	uint64_t where[3] = { size >= 512 ? size - 512 : 0, size - 511, 0 };
	for (int i = 0; i < 3; i++)
		if (io->ops->pread(io, cookie, 8, where[i]) == 0 && memcmp(cookie, "conectix", 8) == 0)
			return true;
	return false;
}

static int open_source(const char *path, const char *fmt, struct source *src)
{
	struct vhd_error err;
	struct vhd_io *io;

	memset(src, 0, sizeof(*src));
	if (vhd_io_posix_open(path, VHD_IO_ANY_FILE, &io, &err) < 0) {
		vt_error("%s", err.message);
		return -1;
	}
	bool vhd = fmt ? strcmp(fmt, "vhd") == 0 || strcmp(fmt, "vpc") == 0 : looks_like_vhd(io);
	if (!vhd) {
		src->raw = io;
		if (io->ops->size(io, &src->size) < 0) {
			vt_error("%s: cannot get the size", path);
			return -1;
		}
		return 0;
	}
	if (vhd_open_io(io, 0, &src->img, &err) < 0) {
		vt_error("%s", err.message);
		return -1;
	}
	vt_print_warnings(src->img);
	src->size = vhd_virtual_size(src->img);
	return 0;
}

static void close_source(struct source *src)
{
	if (src->raw)
		vhd_io_close(src->raw);
	if (src->img)
		vhd_close(src->img);
}

/* Is [off, off + *len) known to read as zeros?  Shrinks *len to the extent. */
static bool source_zero_extent(struct source *src, uint64_t off, uint64_t *len)
{
	if (src->img) {
		struct vhd_extent e;
		if (vhd_block_status(src->img, off, *len, &e) < 0)
			return false;
		*len = e.length;
		return e.flags & VHD_EXTENT_ZERO;
	}
	if (!src->raw->ops->data_extent)
		return false;
	uint64_t n;
	bool is_data;
	if (src->raw->ops->data_extent(src->raw, off, &n, &is_data) < 0 || n == 0)
		return false;
	*len = n < *len ? n : *len;
	return !is_data;
}

static int source_read(struct source *src, void *buf, size_t len, uint64_t off)
{
	if (src->img) {
		if (vhd_pread(src->img, buf, len, off) < 0) {
			vt_error("%s", vhd_errmsg(src->img));
			return -1;
		}
		return 0;
	}
	int r = src->raw->ops->pread(src->raw, buf, len, off);
	if (r < 0) {
		vt_error("%s: read at offset %" PRIu64 " failed: %s", src->raw->name, off, strerror(-r));
		return -1;
	}
	return 0;
}

static int dest_write(struct dest *d, const void *buf, size_t len, uint64_t off)
{
	if (d->img) {
		if (vhd_pwrite(d->img, buf, len, off) < 0) {
			vt_error("%s", vhd_errmsg(d->img));
			return -1;
		}
		return 0;
	}
	int r = d->raw->ops->pwrite(d->raw, buf, len, off);
	if (r < 0) {
		vt_error("%s: write at offset %" PRIu64 " failed: %s", d->path, off, strerror(-r));
		return -1;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Write the parts of buf that are not zero (zeros are already there). */
static int write_nonzero(struct dest *d, const uint8_t *buf, size_t len, uint64_t off)
{
	size_t i = 0;
	while (i < len) {
		size_t n = len - i < GRANULE ? len - i : GRANULE;
		if (all_zero(buf + i, n)) {
			i += n;
			continue;
		}
		size_t start = i;
		while (i < len) {
			n = len - i < GRANULE ? len - i : GRANULE;
			if (all_zero(buf + i, n))
				break;
			i += n;
		}
		if (dest_write(d, buf + start, i - start, off + start) < 0)
			return -1;
	}
	return 0;
}

/* -B: write the sectors where buf differs from what the parent holds. */
static int write_changed(struct dest *d, const uint8_t *buf, uint8_t *pbuf, size_t len,
			 uint64_t off)
{
	uint64_t psize = vhd_virtual_size(d->parent);
	size_t in_parent = off >= psize ? 0 : (size_t)(psize - off < len ? psize - off : len);
	memset(pbuf + in_parent, 0, len - in_parent);
	if (in_parent && vhd_pread(d->parent, pbuf, in_parent, off) < 0) {
		vt_error("%s", vhd_errmsg(d->parent));
		return -1;
	}
	size_t i = 0;
	while (i < len) {
		size_t n = len - i < 512 ? len - i : 512;
		if (memcmp(buf + i, pbuf + i, n) == 0) {
			i += n;
			continue;
		}
		size_t start = i;
		while (i < len) {
			n = len - i < 512 ? len - i : 512;
			if (memcmp(buf + i, pbuf + i, n) == 0)
				break;
			i += n;
		}
		if (dest_write(d, buf + start, i - start, off + start) < 0)
			return -1;
	}
	return 0;
}

/*
 * Copy with a few workers, each taking the next chunk: reads (and zero
 * detection) overlap with writes.  A dynamic or differencing output is
 * written in order, so its blocks lie in the file in disk order; a raw or
 * fixed output takes writes in any order.
 */
struct copy_job {
	struct source *src;
	struct dest *d;
	uint64_t chunks;
	uint64_t next_chunk;    /* atomic: the next chunk to take */
	bool ordered;
	pthread_mutex_t lock;
	pthread_cond_t turn_changed;
	uint64_t turn;          /* under lock: the chunk whose write is due */
	uint64_t done_bytes;    /* under lock */
	bool failed;            /* under lock */
	struct progress prog;
};

struct copy_worker {
	struct copy_job *job;
	uint8_t *buf, *pbuf;
};

/* Read chunk [off, off + len) into buf; zero extents are not read. */
static int read_chunk(struct source *src, uint8_t *buf, uint64_t off, size_t len)
{
	size_t done = 0;
	while (done < len) {
		uint64_t n = len - done;
		if (source_zero_extent(src, off + done, &n))
			memset(buf + done, 0, (size_t)n);
		else if (source_read(src, buf + done, (size_t)n, off + done) < 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void *copy_worker(void *arg)
{
	struct copy_worker *w = arg;
	struct copy_job *job = w->job;
	for (;;) {
		uint64_t i = __atomic_fetch_add(&job->next_chunk, 1, __ATOMIC_RELAXED);
		if (i >= job->chunks)
			break;
		uint64_t off = i * CHUNK;
		size_t len = (size_t)(job->src->size - off < CHUNK ? job->src->size - off : CHUNK);
		int r = read_chunk(job->src, w->buf, off, len);

		pthread_mutex_lock(&job->lock);
		while (job->ordered && job->turn != i && !job->failed)
			pthread_cond_wait(&job->turn_changed, &job->lock);
		bool stop = job->failed;
		pthread_mutex_unlock(&job->lock);
		if (!stop && r == 0)
			r = job->d->parent ? write_changed(job->d, w->buf, w->pbuf, len, off)
					   : write_nonzero(job->d, w->buf, len, off);

		pthread_mutex_lock(&job->lock);
		if (r < 0 || stop)
			job->failed = true;
		job->turn = i + 1;
		job->done_bytes += len;
		progress_update(&job->prog, job->done_bytes);
		pthread_cond_broadcast(&job->turn_changed);
		pthread_mutex_unlock(&job->lock);
		if (job->failed)
			break;
	}
	return NULL;
}

#define WORKERS 4

static int copy_data(struct source *src, struct dest *d, bool progress_on)
{
	struct copy_job job = {
		.src = src,
		.d = d,
		.chunks = (src->size + CHUNK - 1) / CHUNK,
		.ordered = d->img && vhd_get_type(d->img) != VHD_TYPE_FIXED,
	};
	struct copy_worker w[WORKERS];
	pthread_t th[WORKERS];
	int started = 0;

	pthread_mutex_init(&job.lock, NULL);
	pthread_cond_init(&job.turn_changed, NULL);
	progress_init(&job.prog, progress_on, src->size);
	for (int i = 0; i < WORKERS; i++) {
		w[i].job = &job;
		w[i].buf = malloc(CHUNK);
		w[i].pbuf = d->parent ? malloc(CHUNK) : NULL;
		if (!w[i].buf || (d->parent && !w[i].pbuf)) {
			vt_error("out of memory");
			job.failed = true;
			free(w[i].buf);
			free(w[i].pbuf);
			break;
		}
		if (pthread_create(&th[i], NULL, copy_worker, &w[i]) != 0) {
			free(w[i].buf);
			free(w[i].pbuf);
			break;
		}
		started++;
	}
	if (!started) {
		vt_error("cannot start a worker thread");
		job.failed = true;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		free(w[i].buf);
		free(w[i].pbuf);
	}
	if (!job.failed)
		progress_done(&job.prog);
	pthread_cond_destroy(&job.turn_changed);
	pthread_mutex_destroy(&job.lock);
	return job.failed ? -1 : 0;
}

int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "block-size", required_argument, NULL, 'S' },
		{ "azure", no_argument, NULL, 'A' },
		{ "progress", no_argument, NULL, 'p' },
		{ "overwrite", no_argument, NULL, 'W' },
		{ "sync", no_argument, NULL, 'Y' },
		{ NULL, 0, NULL, 0 },
	};
	const char *src_fmt = NULL, *out_fmt = "dynamic", *backing = NULL;
	uint32_t block_size = 0;
	bool azure = false, progress_on = false, overwrite = false, out_given = false, sync = false;
	int c;

	while ((c = getopt_long(argc, argv, "f:O:B:p", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			src_fmt = optarg;
			if (strcmp(src_fmt, "raw") && strcmp(src_fmt, "vhd") && strcmp(src_fmt, "vpc")) {
				vt_error("unknown source format '%s' (raw or vhd)", src_fmt);
				return EXIT_FAIL;
			}
			break;
		case 'O':
			out_fmt = optarg;
			out_given = true;
			break;
		case 'B':
			backing = optarg;
			break;
		case 'S':
			if (vt_parse_block_size(optarg, &block_size) < 0)
				return EXIT_FAIL;
			break;
		case 'A':
			azure = true;
			break;
		case 'p':
			progress_on = true;
			break;
		case 'W':
			overwrite = true;
			break;
		case 'Y':
			sync = true;
			break;
		default:
			return vt_usage("convert");
		}
	}
	if (argc - optind != 2)
		return vt_usage("convert");
	const char *src_path = argv[optind], *dst_path = argv[optind + 1];

	enum out_format fmt;
	if (strcmp(out_fmt, "raw") == 0)
		fmt = OUT_RAW;
	else if (strcmp(out_fmt, "fixed") == 0)
		fmt = OUT_FIXED;
	else if (strcmp(out_fmt, "dynamic") == 0 || strcmp(out_fmt, "vpc") == 0 || strcmp(out_fmt, "vhd") == 0)
		fmt = OUT_DYNAMIC;
	else {
		vt_error("unknown output format '%s' (raw, fixed or dynamic)", out_fmt);
		return EXIT_FAIL;
	}
	if (azure) {
		if (out_given && fmt != OUT_FIXED) {
			vt_error("--azure writes a fixed image; it cannot be combined with -O %s", out_fmt);
			return EXIT_FAIL;
		}
		fmt = OUT_FIXED;
	}
	if (backing && (fmt != OUT_DYNAMIC || azure)) {
		vt_error("-B writes a differencing image; it cannot be combined with %s",
			 azure ? "--azure" : out_fmt);
		return EXIT_FAIL;
	}

	struct source src;
	struct dest d = { .path = dst_path };
	int status = EXIT_FAIL;
	bool created = false;
	if (open_source(src_path, src_fmt, &src) < 0) {
		close_source(&src);
		return EXIT_FAIL;
	}
	struct stat st_src, st_dst;
	if (stat(src_path, &st_src) == 0 && stat(dst_path, &st_dst) == 0) {
		if (st_src.st_dev == st_dst.st_dev && st_src.st_ino == st_dst.st_ino) {
			vt_error("%s: source and destination are the same file", dst_path);
			goto out;
		}
		if (!overwrite) {
			vt_error("%s: file already exists (use --overwrite to replace it)", dst_path);
			goto out;
		}
		if (!S_ISREG(st_dst.st_mode)) {
			vt_error("%s: not a regular file; refusing to replace it", dst_path);
			goto out;
		}
		if (unlink(dst_path) < 0) {
			vt_error("%s: cannot replace: %s", dst_path, strerror(errno));
			goto out;
		}
	}

	struct vhd_error err;
	uint64_t size = src.size;
	if (fmt == OUT_RAW) {
		if (vhd_io_posix_open(dst_path, VHD_IO_RDWR | VHD_IO_CREATE, &d.raw, &err) < 0) {
			vt_error("%s", err.message);
			goto out;
		}
		created = true;
		int r = d.raw->ops->truncate(d.raw, size);
		if (r < 0) {
			vt_error("%s: cannot size the file to %" PRIu64 " bytes: %s", dst_path, size,
				 strerror(-r));
			goto out;
		}
	} else {
		struct vhd_create_params p = {
			.type = backing ? VHD_TYPE_DIFFERENCING : fmt == OUT_FIXED ? VHD_TYPE_FIXED
										: VHD_TYPE_DYNAMIC,
			.size = azure ? vt_azure_round(size) : size,
			.block_size = block_size,
			.flags = (azure ? VHD_CREATE_AZURE : 0) | (sync ? 0 : VHD_CREATE_NO_SYNC),
			.parent = backing,
		};
		if (p.type != VHD_TYPE_DIFFERENCING && size % 512) {
			vt_error("%s: size %" PRIu64 " is not a multiple of 512 bytes; a VHD cannot hold it exactly (pad the source, or use --azure to round up to whole MiB)",
				 src_path, size);
			goto out;
		}
		if (p.type == VHD_TYPE_FIXED && p.size > VHD_MAX_DYNAMIC_SIZE)
			vt_warn("fixed images over 2040 GiB are valid, but qemu-img refuses to open them");
		if (vhd_create(dst_path, &p, &d.img, &err) < 0) {
			vt_error("%s", err.message);
			goto out;
		}
		created = true;
		if (backing) {
			d.parent = vhd_parent(d.img);
			if (vhd_virtual_size(d.img) != size) {
				vt_error("%s is %" PRIu64 " bytes but the parent %s is %" PRIu64 " bytes; -B needs equal sizes",
					 src_path, size, backing, vhd_virtual_size(d.img));
				goto out;
			}
		}
	}
	if (copy_data(&src, &d, progress_on) < 0)
		goto out;
	if (d.img) {
		int r = vhd_flush(d.img);
		if (r < 0) {
			vt_error("%s", vhd_errmsg(d.img));
			goto out;
		}
		r = vhd_close(d.img);
		d.img = NULL;
		if (r < 0) {
			vt_error("%s: cannot finish the image: %s", dst_path, strerror(-r));
			goto out;
		}
	} else if (sync && d.raw->ops->flush(d.raw) < 0) {
		vt_error("%s: flush failed", dst_path);
		goto out;
	}
	status = EXIT_OK;
out:
	if (d.img)
		vhd_close(d.img);
	if (d.raw)
		vhd_io_close(d.raw);
	if (status != EXIT_OK && created)
		unlink(dst_path);
	close_source(&src);
	return status;
}
