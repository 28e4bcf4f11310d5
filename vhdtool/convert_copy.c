/* SPDX-License-Identifier: MIT */
/* convert's copy loops: threaded for seekable sources, one pass for streams. */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

#define CHUNK STREAM_CHUNK      /* bytes read at a time */
#define GRANULE 4096u           /* zero runs shorter than this are written */

/* Is [off, off + len) known to read as zeros?  Shrinks *len to the extent. */
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

/* The next len bytes of the disk, at off, go out; a stream takes zeros too. */
static int write_piece(struct dest *d, const uint8_t *buf, uint8_t *pbuf, size_t len, uint64_t off,
		       struct gz_piece *z)
{
	if (d->stream)
		return z && d->out.gzip ? outstream_put(&d->out, z) : outstream_write(&d->out, buf, len);
	return d->parent ? write_changed(d, buf, pbuf, len, off) : write_nonzero(d, buf, len, off);
}

/*
 * Copy with a few workers, each taking the next chunk: reads (and zero
 * detection, and gzip compression) overlap with writes.  A dynamic or
 * differencing output or a stream is written in order, so a dynamic
 * image's blocks lie in the file in disk order; a raw or fixed output
 * takes writes in any order.
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

#define MAX_RUNS 64

/* The parts of a chunk that hold data (the rest is known to read zeros). */
struct data_runs {
	size_t n;
	struct { size_t at, len; } run[MAX_RUNS];
};

struct copy_worker {
	struct copy_job *job;
	uint8_t *buf, *pbuf;
	struct gz_piece z;
	struct data_runs runs;
};

/*
 * Read chunk [off, off + len) into buf; zero extents are not read.  With
 * runs, they are not filled in either, and runs lists where data is; a full
 * list turns the rest of the chunk into one run.
 */
static int read_chunk(struct source *src, uint8_t *buf, uint64_t off, size_t len,
		      struct data_runs *runs)
{
	size_t done = 0;
	if (runs)
		runs->n = 0;
	while (done < len) {
		uint64_t n = len - done;
		if (source_zero_extent(src, off + done, &n)) {
			if (!runs)
				memset(buf + done, 0, (size_t)n);
		} else {
			if (runs && runs->n == MAX_RUNS - 1)
				n = len - done;
			if (source_read(src, buf + done, (size_t)n, off + done) < 0)
				return -1;
			if (runs) {
				runs->run[runs->n].at = done;
				runs->run[runs->n].len = (size_t)n;
				runs->n++;
			}
		}
		done += (size_t)n;
	}
	return 0;
}

static void *copy_worker(void *arg)
{
	struct copy_worker *w = arg;
	struct copy_job *job = w->job;
	struct dest *d = job->d;
	for (;;) {
		uint64_t i = __atomic_fetch_add(&job->next_chunk, 1, __ATOMIC_RELAXED);
		if (i >= job->chunks)
			break;
		uint64_t off = i * CHUNK;
		size_t len = (size_t)(job->src->size - off < CHUNK ? job->src->size - off : CHUNK);
		/* Into a seekable file, known zeros are neither filled nor scanned:
		 * the output reads zeros there already. */
		bool sparse = !d->stream && !d->parent;
		int r = read_chunk(job->src, w->buf, off, len, sparse ? &w->runs : NULL);
		if (r == 0 && d->stream)
			r = outstream_prepare(&d->out, &w->z, w->buf, len);

		pthread_mutex_lock(&job->lock);
		while (job->ordered && job->turn != i && !job->failed)
			pthread_cond_wait(&job->turn_changed, &job->lock);
		bool stop = job->failed;
		pthread_mutex_unlock(&job->lock);
		if (!stop && r == 0 && sparse) {
			for (size_t k = 0; r == 0 && k < w->runs.n; k++)
				r = write_nonzero(d, w->buf + w->runs.run[k].at, w->runs.run[k].len,
						  off + w->runs.run[k].at);
		} else if (!stop && r == 0) {
			r = write_piece(d, w->buf, w->pbuf, len, off, &w->z);
		}

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

int copy_data(struct source *src, struct dest *d, bool progress_on)
{
	struct copy_job job = {
		.src = src,
		.d = d,
		.chunks = (src->size + CHUNK - 1) / CHUNK,
		.ordered = d->stream || (d->img && vhd_get_type(d->img) != VHD_TYPE_FIXED),
	};
	struct copy_worker w[WORKERS];
	pthread_t th[WORKERS];
	int started = 0;

	memset(w, 0, sizeof(w));
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
		gz_piece_free(&w[i].z);
	}
	if (!job.failed)
		progress_done(&job.prog);
	pthread_cond_destroy(&job.turn_changed);
	pthread_mutex_destroy(&job.lock);
	return job.failed ? -1 : 0;
}

/* Keep the last 512 bytes seen, to recognize a fixed VHD's footer. */
static void keep_tail(uint8_t tail[512], const uint8_t *buf, size_t n)
{
	if (n >= 512) {
		memcpy(tail, buf + n - 512, 512);
	} else {
		memmove(tail, tail + n, 512 - n);
		memcpy(tail + 512 - n, buf, n);
	}
}

/*
 * A stream is read once, in order, in whole chunks: zero runs are skipped
 * as from a file (a stream output writes them).  Reading and writing take
 * turns; a pipe is rarely faster than one thread anyway.
 */
int copy_stream(struct source *src, struct dest *d, uint64_t limit, const char *limit_why,
		bool progress_on, uint64_t *total)
{
	uint8_t *buf = malloc(CHUNK), *pbuf = d->parent ? malloc(CHUNK) : NULL;
	uint8_t tail[512] = { 0 };
	struct byte_progress prog;
	uint64_t off = 0;
	int r = -1;

	if (!buf || (d->parent && !pbuf)) {
		vt_error("out of memory");
		goto out;
	}
	byte_progress_init(&prog, progress_on);
	for (;;) {
		ssize_t n = instream_read(&src->in, buf, CHUNK);
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if ((uint64_t)n > limit - off) {
			vt_error("%s: the stream is longer than the %" PRIu64 " bytes %s", src->name, limit,
				 limit_why);
			goto out;
		}
		if (write_piece(d, buf, pbuf, (size_t)n, off, NULL) < 0)
			goto out;
		keep_tail(tail, buf, (size_t)n);
		off += (uint64_t)n;
		byte_progress_update(&prog, off);
		if ((size_t)n < CHUNK)
			break;
	}
	byte_progress_done(&prog, off);
	if (off >= 512 && memcmp(tail, "conectix", 8) == 0)
		vt_warn("%s ends in what looks like a VHD footer; a stream is read as raw data, so it was copied as data (convert the VHD file itself instead)",
			src->name);
	*total = off;
	r = 0;
out:
	free(buf);
	free(pbuf);
	return r;
}
