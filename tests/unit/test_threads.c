/* SPDX-License-Identifier: MIT */
/* One image used from several threads: concurrent allocating writes and
 * reads give the same bytes as a serial run, and the image checks clean. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvhd.h"

#define THREADS 4
#define SIZE (64u << 20)
#define CHUNK 12288u    /* 24 sectors: crosses blocks now and then */

struct worker {
	struct vhd_image *img;
	int id;
	int failures;
};

/* Thread t owns every chunk i with i % THREADS == t. */
static void pattern(uint8_t *buf, unsigned chunk)
{
	for (unsigned i = 0; i < CHUNK; i++)
		buf[i] = (uint8_t)(chunk * 31 + i * 7 + 1);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint8_t buf[CHUNK], back[CHUNK];
	for (unsigned c = (unsigned)w->id; c < SIZE / CHUNK; c += THREADS) {
		pattern(buf, c);
		if (vhd_pwrite(w->img, buf, CHUNK, (uint64_t)c * CHUNK) < 0)
			w->failures++;
		/* Read a neighbour's chunk while others write. */
		unsigned n = (c + 1) % (SIZE / CHUNK);
		if (vhd_pread(w->img, back, CHUNK, (uint64_t)n * CHUNK) < 0)
			w->failures++;
		if (c % 64 == 0 && vhd_flush(w->img) < 0)
			w->failures++;
	}
	return NULL;
}

static void run(const char *parent_path, const char *path)
{
	struct vhd_error err;
	struct vhd_image *img;
	if (parent_path) {
		struct vhd_create_params pp = { .type = VHD_TYPE_DYNAMIC, .size = SIZE };
		struct vhd_image *parent;
		cr_assert_eq(vhd_create(parent_path, &pp, &parent, &err), 0, "%s", err.message);
		uint8_t junk[4096];
		memset(junk, 0xEE, sizeof(junk));
		for (uint64_t off = 0; off < SIZE; off += 1u << 20)
			cr_assert_eq(vhd_pwrite(parent, junk, sizeof(junk), off + 100), 0);
		cr_assert_eq(vhd_close(parent), 0);
		struct vhd_create_params p = { .type = VHD_TYPE_DIFFERENCING, .parent = parent_path };
		cr_assert_eq(vhd_create(path, &p, &img, &err), 0, "%s", err.message);
	} else {
		struct vhd_create_params p = { .type = VHD_TYPE_DYNAMIC, .size = SIZE, .block_size = 512u << 10 };
		cr_assert_eq(vhd_create(path, &p, &img, &err), 0, "%s", err.message);
	}
	pthread_t th[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ img, i, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(w[i].failures, 0, "thread %d: %s", i, vhd_errmsg(img));
	}
	cr_assert_eq(vhd_close(img), 0);

	cr_assert_eq(vhd_open(path, 0, &img, &err), 0, "%s", err.message);
	uint8_t buf[CHUNK], want[CHUNK];
	for (unsigned c = 0; c < SIZE / CHUNK; c++) {
		pattern(want, c);
		cr_assert_eq(vhd_pread(img, buf, CHUNK, (uint64_t)c * CHUNK), 0);
		cr_assert(memcmp(buf, want, CHUNK) == 0, "chunk %u differs", c);
	}
	vhd_close(img);
	struct vhd_check_report rep;
	cr_assert_eq(vhd_check(path, &rep, &err), 0);
	cr_assert_eq(rep.corruptions + rep.leaks, 0, "check: %s", rep.count ? rep.findings[0].message : "");
	vhd_check_report_free(&rep);
}

Test(threads, dynamic_concurrent_writers_and_readers)
{
	char dir[] = "/tmp/vhdthr.XXXXXX", path[64];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d.vhd", dir);
	run(NULL, path);
	unlink(path);
	rmdir(dir);
}

Test(threads, differencing_concurrent_writers_and_readers)
{
	char dir[] = "/tmp/vhdthr.XXXXXX", path[64], parent[64];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.vhd", dir);
	snprintf(parent, sizeof(parent), "%s/p.vhd", dir);
	run(parent, path);
	unlink(path);
	unlink(parent);
	rmdir(dir);
}
