/* SPDX-License-Identifier: MIT */
/*
 * Cut at every write: run a fixed workload over a backend that lets the
 * first N writes through and refuses the rest (io_fault.h), for N = 0, 1,
 * 2, ... until the workload completes.  After each cut the file must open
 * for writing, check without corruption (leaked space is allowed), and
 * every sector must read either one of the contents the workload gave it
 * or its old content; what a successful vhd_flush covered must be new.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "io_fault.h"

#define BS (512u << 10)
#define VSIZE (4 * T_MIB)
#define NSECT (VSIZE / 512)

struct op {
	uint64_t off;
	uint32_t len;   /* 0: vhd_flush */
};

/* Allocating writes in several blocks, partial sectors, rewrites of
 * blocks allocated earlier in the run, one flush in the middle. */
static const struct op workload[] = {
	{ 2 * BS + 512, 4096 },         /* new block, whole sectors */
	{ 3 * BS + 100, 700 },          /* new block, partial first and last sector */
	{ 0 * BS + 300, 1000 },         /* block that existed before the run */
	{ 5 * BS - 2000, 5000 },        /* across blocks 4 and 5, both new */
	{ 0, 0 },                       /* vhd_flush */
	{ 6 * BS + 10, 3000 },          /* new block after the flush */
	{ 2 * BS + 1024, 512 },         /* rewrite inside a block of this run */
	{ 7 * BS + 511, 1 },            /* one byte: a new block's partial sector */
	{ 2 * BS - 100, 300 },          /* end of an old block, start of a new one */
	{ 3 * BS + 200, 100 },          /* inside a partial sector written before */
};
#define NOPS (sizeof(workload) / sizeof(workload[0]))

struct scenario {
	enum vhd_type type;
	const char *dir;        /* folder of the parent (differencing) */
	uint8_t *orig;          /* the file before the workload */
	size_t orig_len;
	uint8_t *snap[NOPS + 1];/* what the disk reads after 0..NOPS operations */
	size_t flush_index;     /* operations before the flush */
};

static struct vhd_io *wrap(struct vhd_io *inner, const struct scenario *sc, bool own)
{
	return t_wrap_io(inner, sc->dir, own);
}

static void op_data(size_t i, uint8_t *buf, size_t len)
{
	t_fill(buf, len, 0xAB00 + i);
}

/* Fill sc->snap from what the original file reads as. */
static void build_snapshots(struct scenario *sc)
{
	struct vhd_image *img;
	struct vhd_error err;
	struct vhd_io *mem;
	cr_assert_eq(vhd_io_mem_open(sc->orig, sc->orig_len, &mem), 0);
	cr_assert_eq(vhd_open_io(wrap(mem, sc, true), 0, &img, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_virtual_size(img), VSIZE);
	sc->snap[0] = malloc(VSIZE);
	cr_assert_not_null(sc->snap[0]);
	cr_assert_eq(vhd_pread(img, sc->snap[0], VSIZE, 0), 0, "%s", vhd_errmsg(img));
	vhd_close(img);
	for (size_t i = 0; i < NOPS; i++) {
		sc->snap[i + 1] = malloc(VSIZE);
		cr_assert_not_null(sc->snap[i + 1]);
		memcpy(sc->snap[i + 1], sc->snap[i], VSIZE);
		if (workload[i].len)
			op_data(i, sc->snap[i + 1] + workload[i].off, workload[i].len);
		else
			sc->flush_index = i;
	}
}

struct run {
	bool tripped;
	bool flush_ok;          /* the flush returned 0 after every earlier op did */
	int failed_ops;
	uint8_t *bytes;
	size_t len;
};

static void run_workload(const struct scenario *sc, uint64_t limit, struct run *out)
{
	struct vhd_io *mem, *fault;
	struct vhd_image *img;
	struct vhd_error err;
	uint8_t buf[8192];

	memset(out, 0, sizeof(*out));
	cr_assert_eq(vhd_io_mem_open(sc->orig, sc->orig_len, &mem), 0);
	cr_assert_eq(vhd_io_fault_open(mem, limit, &fault), 0);
	/* The image owns the outer wrapper only: the fault backend survives
	 * vhd_close so we can ask whether it tripped. */
	int r = vhd_open_io(wrap(fault, sc, false), VHD_OPEN_RDWR, &img, &err);
	cr_assert_eq(r, 0, "limit %llu: open: %s", (unsigned long long)limit, err.message);

	bool all_ok = true;
	for (size_t i = 0; i < NOPS; i++) {
		const struct op *o = &workload[i];
		if (!o->len) {
			r = vhd_flush(img);
			out->flush_ok = all_ok && r == 0;
		} else {
			cr_assert(o->len <= sizeof(buf));
			op_data(i, buf, o->len);
			r = vhd_pwrite(img, buf, o->len, o->off);
		}
		if (r < 0) {
			all_ok = false;
			out->failed_ops++;
			cr_assert_neq(vhd_errmsg(img)[0], '\0');
		}
	}
	vhd_close(img); /* errors ignored: the power may be gone */
	out->tripped = vhd_io_fault_tripped(fault);
	if (!out->tripped)
		cr_assert_eq(out->failed_ops, 0, "limit %llu: an op failed without a cut",
			     (unsigned long long)limit);
	out->bytes = t_mem_copy(mem, &out->len);
	vhd_io_close(fault);
	vhd_io_close(mem);
}

/* After a cut: the file opens for writing, checks clean, reads sane. */
static void verify(const struct scenario *sc, uint64_t limit, const struct run *run)
{
	struct vhd_io *mem;
	struct vhd_check_report rep;
	struct vhd_image *img;
	struct vhd_error err;

	cr_assert_eq(vhd_io_mem_open(run->bytes, run->len, &mem), 0);
	struct vhd_io *io = wrap(mem, sc, true);
	cr_assert_eq(vhd_check_io(io, sc->dir != NULL, &rep), 0);
	cr_assert_eq(rep.corruptions, 0u, "cut after %llu writes: %s", (unsigned long long)limit,
		     t_report_text(&rep));
	vhd_check_report_free(&rep);
	vhd_io_close(io);

	cr_assert_eq(vhd_io_mem_open(run->bytes, run->len, &mem), 0);
	int r = vhd_open_io(wrap(mem, sc, true), VHD_OPEN_RDWR, &img, &err);
	cr_assert_eq(r, 0, "cut after %llu writes: reopen for writing: %s", (unsigned long long)limit,
		     err.message);
	cr_assert_eq(vhd_virtual_size(img), VSIZE);
	uint8_t *disk = malloc(VSIZE);
	cr_assert_not_null(disk);
	cr_assert_eq(vhd_pread(img, disk, VSIZE, 0), 0, "%s", vhd_errmsg(img));

	size_t min_k = run->flush_ok ? sc->flush_index : 0;
	if (!run->tripped)
		min_k = NOPS;
	for (size_t s = 0; s < NSECT; s++) {
		const uint8_t *got = disk + s * 512;
		bool ok = false;
		for (size_t k = min_k; k <= NOPS && !ok; k++)
			ok = memcmp(got, sc->snap[k] + s * 512, 512) == 0;
		if (!ok) {
			bool old = memcmp(got, sc->snap[0] + s * 512, 512) == 0;
			cr_assert(ok, "cut after %llu writes (flush %s): sector %zu (block %zu) reads %s",
				  (unsigned long long)limit, run->flush_ok ? "done" : "not done", s,
				  s * 512 / BS,
				  old ? "its old content, but a completed flush covered it"
				      : "bytes no write gave it");
		}
	}

	/* The recovered image takes new blocks and stays consistent. */
	uint8_t buf[1536];
	t_fill(buf, sizeof(buf), limit);
	uint64_t at = 1 * BS + 777;
	cr_assert_eq(vhd_pwrite(img, buf, sizeof(buf), at), 0, "%s", vhd_errmsg(img));
	uint64_t at2 = VSIZE - 900;
	cr_assert_eq(vhd_pwrite(img, buf, 900, at2), 0, "%s", vhd_errmsg(img));
	cr_assert_eq(vhd_flush(img), 0);
	uint8_t back[1536];
	cr_assert_eq(vhd_pread(img, back, sizeof(back), at), 0);
	cr_assert_eq(memcmp(back, buf, sizeof(buf)), 0);
	cr_assert_eq(vhd_pread(img, back, 900, at2), 0);
	cr_assert_eq(memcmp(back, buf, 900), 0);
	size_t len;
	uint8_t *after = t_image_bytes(img, &len);
	vhd_close(img);
	cr_assert_eq(vhd_io_mem_open(after, len, &mem), 0);
	io = wrap(mem, sc, true);
	cr_assert_eq(vhd_check_io(io, false, &rep), 0);
	cr_assert_eq(rep.corruptions, 0u, "cut after %llu writes, then more writes: %s",
		     (unsigned long long)limit, t_report_text(&rep));
	vhd_check_report_free(&rep);
	vhd_io_close(io);
	free(after);
	free(disk);
}

static unsigned cut_everywhere(struct scenario *sc, const char *what)
{
	build_snapshots(sc);
	unsigned cuts = 0;
	for (uint64_t limit = 0;; limit++) {
		cr_assert(limit < 5000, "the workload never completes");
		struct run run;
		run_workload(sc, limit, &run);
		verify(sc, limit, &run);
		free(run.bytes);
		if (!run.tripped)
			break;
		cuts++;
	}
	cr_assert_gt(cuts, NOPS, "every write op must give at least one cut point");
	cr_log_info("crash %s: %u cut points tested", what, cuts);
	for (size_t k = 0; k <= NOPS; k++)
		free(sc->snap[k]);
	return cuts;
}

Test(crash, dynamic_cut_at_every_write)
{
	struct scenario sc = { .type = VHD_TYPE_DYNAMIC };
	/* Blocks 0 and 1 hold data before the run. */
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(VHD_TYPE_DYNAMIC, VSIZE, BS, &keep);
	uint8_t *data = malloc(2 * BS);
	cr_assert_not_null(data);
	t_fill(data, 2 * BS, 1);
	cr_assert_eq(vhd_pwrite(img, data, 2 * BS, 0), 0);
	free(data);
	sc.orig = t_close_bytes(img, keep, &sc.orig_len);
	cut_everywhere(&sc, "dynamic");
	free(sc.orig);
}

Test(crash, dynamic_cut_while_opened_with_reserved_space)
{
	/* The same workload on a file that was not closed cleanly after its
	 * last writes (as a crash after a flush leaves it). */
	struct scenario sc = { .type = VHD_TYPE_DYNAMIC };
	struct vhd_image *img = t_create_mem(VHD_TYPE_DYNAMIC, VSIZE, BS);
	uint8_t data[4096];
	t_fill(data, sizeof(data), 2);
	cr_assert_eq(vhd_pwrite(img, data, sizeof(data), 0), 0);
	cr_assert_eq(vhd_pwrite(img, data, sizeof(data), BS + 4096), 0);
	sc.orig = t_image_bytes(img, &sc.orig_len);
	vhd_close(img);
	cut_everywhere(&sc, "dynamic, unclean start");
	free(sc.orig);
}

Test(crash, differencing_cut_at_every_write)
{
	char *dir = t_mkdtemp();
	char child[4200];

	/* A parent full of data, so completed partial sectors are visible. */
	t_diff_pair(dir, VSIZE, BS, child, sizeof(child));

	struct scenario sc = { .type = VHD_TYPE_DIFFERENCING, .dir = dir };
	sc.orig = t_read_file(child, &sc.orig_len);
	cut_everywhere(&sc, "differencing");
	free(sc.orig);
	t_rmtree(dir);
	free(dir);
}
