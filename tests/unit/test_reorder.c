/* SPDX-License-Identifier: MIT */
/*
 * Power cuts with a volatile write cache: random workloads of writes
 * (aligned, unaligned, across blocks), zeroing, discards and flushes run
 * over the fault backend in reorder mode (io_fault.h), cut after N writes
 * for every N, with a random part of the unflushed sector writes kept.
 * After each cut the file must check without corruption (vhdtool check
 * exit 0 or 3), open for writing, and every sector must read its content
 * at the last completed flush or one it was given since; never anything
 * else.  The seed is printed; REORDER_SEED=n reproduces a run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "io_fault.h"

#define BS (512u << 10)
#define NBLK 4u
#define VSIZE ((uint64_t)NBLK * BS)
#define NSECT (VSIZE / 512)
#define NOPS 24         /* the last one is a flush */
#define WORKLOADS 45    /* per image type */

enum op_kind { OP_WRITE, OP_ZERO, OP_DISCARD, OP_FLUSH };

struct op {
	enum op_kind kind;
	uint64_t off;
	uint32_t len;
	unsigned flags;         /* vhd_zero */
};

/* Every value a sector took during the workload: after op `op`, `hash`. */
struct change {
	uint32_t op;
	uint64_t hash;
};

struct history {
	struct change *v;
	size_t n, cap;
};

struct scenario {
	enum vhd_type type;
	const char *dir;        /* the parent's folder (differencing) */
	uint8_t *orig;          /* the file before the workload */
	size_t orig_len;
	uint8_t *base;          /* what the disk read before the workload */
	uint8_t *got;           /* what it reads after a cut (VSIZE, reused) */
};

struct workload {
	uint64_t seed;
	struct op ops[NOPS];
	uint64_t base_hash[NSECT];
	struct history hist[NSECT];
};

struct tally {
	unsigned cuts, torn, after_close;
};

static uint64_t sector_hash(const uint8_t *p)
{
	uint64_t h = 0xCBF29CE484222325ull;
	for (size_t i = 0; i < 512; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001B3ull;
		h ^= h >> 29;
	}
	return h;
}

static uint64_t env_seed(void)
{
	const char *s = getenv("REORDER_SEED");
	return s && *s ? strtoull(s, NULL, 0) : 12345;
}

static struct vhd_io *wrap(struct vhd_io *inner, const struct scenario *sc, bool own)
{
	return t_wrap_io(inner, sc->dir, own);
}

static void op_data(const struct workload *wl, size_t i, uint8_t *buf, size_t len)
{
	t_fill(buf, len, wl->seed * 131 + i + 1);
}

static uint64_t pick(uint64_t *st, uint64_t n)
{
	return t_rand(st) % n;
}

/* A random workload: most writes land in few blocks, so existing partial
 * blocks get rewritten; sizes go from one byte to 20 sectors. */
static void make_ops(struct workload *wl, enum vhd_type type)
{
	uint64_t st = wl->seed;
	uint64_t prev = 0;
	for (size_t i = 0; i + 1 < NOPS; i++) {
		struct op *o = &wl->ops[i];
		uint64_t r = pick(&st, 100);
		uint64_t blk = pick(&st, NBLK);
		memset(o, 0, sizeof(*o));
		if (r < 12) {
			o->kind = OP_FLUSH;
			continue;
		}
		if (r < 19) {
			o->kind = OP_ZERO;
			o->flags = pick(&st, 2) ? VHD_ZERO_MAY_UNMAP : 0;
			if (pick(&st, 2)) {
				o->off = blk * BS;
				o->len = BS;
			} else {
				o->off = blk * BS + pick(&st, BS);
				o->len = (uint32_t)(1 + pick(&st, 4000));
			}
		} else if (r < 24) {
			o->kind = OP_DISCARD;
			o->off = blk * BS - (blk ? pick(&st, 3000) : 0);
			o->len = BS + (uint32_t)pick(&st, 3000);
		} else {
			o->kind = OP_WRITE;
			switch (pick(&st, 4)) {
			case 0:
				o->off = blk * BS + pick(&st, BS / 512) * 512;
				o->len = (uint32_t)(1 + pick(&st, 20)) * 512;
				break;
			case 1:
				o->off = blk * BS + pick(&st, BS);
				o->len = (uint32_t)(1 + pick(&st, 3000));
				break;
			case 2:
				o->off = (blk + 1) * BS - 1 - pick(&st, 2000);
				o->len = (uint32_t)(1 + pick(&st, 5000));
				break;
			default:
				o->off = prev + pick(&st, 2048);
				o->off = o->off > 1024 ? o->off - 1024 : 0;
				o->len = (uint32_t)(1 + pick(&st, 1024));
				break;
			}
		}
		if (o->off >= VSIZE)
			o->off = VSIZE - 1;
		if (o->len > VSIZE - o->off)
			o->len = (uint32_t)(VSIZE - o->off);
		prev = o->off;
	}
	wl->ops[NOPS - 1].kind = OP_FLUSH;
	(void)type;
}

/* What op o does to the disk's contents. */
static void model_apply(const struct workload *wl, enum vhd_type type, size_t i, uint8_t *disk)
{
	const struct op *o = &wl->ops[i];
	switch (o->kind) {
	case OP_WRITE:
		op_data(wl, i, disk + o->off, o->len);
		break;
	case OP_ZERO:
		memset(disk + o->off, 0, o->len);
		break;
	case OP_DISCARD:
		/* Whole blocks of a dynamic image are unmapped; nothing else. */
		if (type == VHD_TYPE_DYNAMIC) {
			uint64_t first = (o->off + BS - 1) / BS, end = (o->off + o->len) / BS;
			for (uint64_t b = first; b < end; b++)
				memset(disk + b * BS, 0, BS);
		}
		break;
	case OP_FLUSH:
		break;
	}
}

static void hist_add(struct history *h, uint32_t op, uint64_t hash)
{
	if (h->n && h->v[h->n - 1].hash == hash)
		return;
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 4;
		h->v = realloc(h->v, h->cap * sizeof(*h->v));
		cr_assert_not_null(h->v);
	}
	h->v[h->n++] = (struct change){ op, hash };
}

/* Build the workload and every value each sector takes, op by op. */
static struct workload *new_workload(const struct scenario *sc, uint64_t seed)
{
	struct workload *wl = calloc(1, sizeof(*wl));
	cr_assert_not_null(wl);
	wl->seed = seed;
	make_ops(wl, sc->type);
	uint8_t *disk = malloc(VSIZE);
	cr_assert_not_null(disk);
	memcpy(disk, sc->base, VSIZE);
	for (size_t s = 0; s < NSECT; s++)
		wl->base_hash[s] = sector_hash(disk + s * 512);
	for (size_t i = 0; i < NOPS; i++) {
		const struct op *o = &wl->ops[i];
		model_apply(wl, sc->type, i, disk);
		if (o->kind == OP_FLUSH)
			continue;
		uint64_t first = o->off / 512, last = (o->off + o->len - 1) / 512;
		if (o->kind == OP_DISCARD)
			first = 0, last = NSECT - 1;
		for (uint64_t s = first; s <= last; s++)
			hist_add(&wl->hist[s], (uint32_t)i, sector_hash(disk + s * 512));
	}
	free(disk);
	return wl;
}

static void free_workload(struct workload *wl)
{
	for (size_t s = 0; s < NSECT; s++)
		free(wl->hist[s].v);
	free(wl);
}

/* May sector s read as hash h after a cut during op `failed`, with the
 * last completed flush at op `flushed` (its time: ops before it done)? */
static bool allowed(const struct workload *wl, size_t s, uint64_t h, size_t flushed, size_t failed)
{
	const struct history *hi = &wl->hist[s];
	uint64_t at_flush = wl->base_hash[s];
	for (size_t i = 0; i < hi->n; i++) {
		const struct change *c = &hi->v[i];
		if (c->op < flushed)
			at_flush = c->hash;
		else if (c->op <= failed && c->hash == h)
			return true;
	}
	return h == at_flush;
}

static int run_op(struct vhd_image *img, const struct workload *wl, size_t i)
{
	const struct op *o = &wl->ops[i];
	uint8_t buf[16384];
	switch (o->kind) {
	case OP_WRITE:
		cr_assert(o->len <= sizeof(buf));
		op_data(wl, i, buf, o->len);
		return vhd_pwrite(img, buf, o->len, o->off);
	case OP_ZERO:
		return vhd_zero(img, o->off, o->len, o->flags);
	case OP_DISCARD:
		return vhd_discard(img, o->off, o->len);
	case OP_FLUSH:
		return vhd_flush(img);
	}
	return -EINVAL;
}

struct run {
	size_t failed;          /* first op that failed, NOPS when none did */
	size_t flushed;         /* the last flush op that completed (0: none) */
	uint64_t writes;        /* backend writes of the ops (no limit) */
	bool tripped;
	uint64_t kept, lost;
	struct vhd_io *disk;    /* the memory backend: what the disk holds after the cut */
};

/* Run the workload, then close the image, on a backend that cuts after
 * `limit` writes keeping a part of the unflushed ones chosen by cut_seed. */
static void run_workload(const struct scenario *sc, const struct workload *wl, uint64_t limit,
			 uint64_t cut_seed, struct run *out)
{
	struct vhd_io *mem, *fault;
	struct vhd_image *img;
	struct vhd_error err;

	memset(out, 0, sizeof(*out));
	out->failed = NOPS;
	cr_assert_eq(vhd_io_mem_open(sc->orig, sc->orig_len, &mem), 0);
	cr_assert_eq(vhd_io_fault_open_reorder(mem, limit, cut_seed, &fault), 0);
	int r = vhd_open_io(wrap(fault, sc, false), VHD_OPEN_RDWR, &img, &err);
	cr_assert_eq(r, 0, "seed %llu limit %llu: open: %s", (unsigned long long)wl->seed,
		     (unsigned long long)limit, err.message);
	for (size_t i = 0; i < NOPS; i++) {
		r = run_op(img, wl, i);
		if (r < 0) {
			cr_assert(vhd_io_fault_tripped(fault), "seed %llu limit %llu: op %zu failed "
				  "without a cut: %s", (unsigned long long)wl->seed,
				  (unsigned long long)limit, i, vhd_errmsg(img));
			out->failed = i;
			break;
		}
		if (wl->ops[i].kind == OP_FLUSH)
			out->flushed = i;
	}
	out->writes = vhd_io_fault_writes(fault);
	r = vhd_close(img);     /* may fail: the power may be gone */
	out->tripped = vhd_io_fault_tripped(fault);
	if (!out->tripped) {
		cr_assert_eq(r, 0, "seed %llu: close: %d", (unsigned long long)wl->seed, r);
		/* The power goes right after a clean close: all that may be
		 * unflushed is the cut that gave back the reserved room. */
		vhd_io_fault_cut(fault);
	}
	vhd_io_fault_cut_counts(fault, &out->kept, &out->lost);
	if (!out->tripped)
		cr_assert_leq(out->kept + out->lost, 1, "writes pending after a clean close");
	out->disk = mem;
	vhd_io_close(fault);
}

/* On a failure: the workload, so that it can be read without a debugger. */
static void dump_ops(const struct workload *wl)
{
	static const char *const names[] = { "write", "zero", "discard", "flush" };
	for (size_t i = 0; i < NOPS; i++)
		fprintf(stderr, "  op %2zu: %-7s off %llu len %u flags %u\n", i,
			names[wl->ops[i].kind], (unsigned long long)wl->ops[i].off, wl->ops[i].len,
			wl->ops[i].flags);
}

/* Judge the disk a cut left (the image takes run->disk over). */
static void verify(const struct scenario *sc, const struct workload *wl, uint64_t limit,
		   const struct run *run, bool write_after)
{
	struct vhd_io *mem;
	struct vhd_check_report rep;
	struct vhd_image *img;
	struct vhd_error err;
	unsigned long long seed = (unsigned long long)wl->seed, lim = (unsigned long long)limit;

	/* check never writes: it reads the disk the reopen then takes over. */
	struct vhd_io *io = wrap(run->disk, sc, false);
	cr_assert_eq(vhd_check_io(io, sc->dir != NULL, &rep), 0);
	cr_assert(rep.complete && rep.corruptions == 0,
		  "workload %llu, cut after %llu writes: check %s: %s", seed, lim,
		  rep.complete ? "finds corruption" : "incomplete", t_report_text(&rep));
	vhd_check_report_free(&rep);
	vhd_io_close(io);

	int r = vhd_open_io(wrap(run->disk, sc, true), VHD_OPEN_RDWR, &img, &err);
	cr_assert_eq(r, 0, "workload %llu, cut after %llu writes: reopen: %s", seed, lim,
		     err.message);
	uint8_t *disk = sc->got;
	cr_assert_eq(vhd_pread(img, disk, VSIZE, 0), 0, "%s", vhd_errmsg(img));
	for (size_t s = 0; s < NSECT; s++) {
		uint64_t h = sector_hash(disk + s * 512);
		if (allowed(wl, s, h, run->flushed, run->failed))
			continue;
		const char *what = h == wl->base_hash[s] ? "its old content, older than the last flush"
				 : t_all_zero(disk + s * 512, 512) ? "zeros no op gave it"
				 : memcmp(disk + s * 512, sc->base + s * 512, 512) == 0
					 ? "its content before the workload"
					 : "bytes no op gave it";
		dump_ops(wl);
		cr_assert_fail("workload %llu, cut after %llu writes (op %zu failed, last flush op "
			       "%zu, kept %llu lost %llu): sector %zu (block %zu) reads %s",
			       seed, lim, run->failed, run->flushed, (unsigned long long)run->kept,
			       (unsigned long long)run->lost, s, s * 512 / BS, what);
	}

	if (write_after) {
		/* The recovered image takes new writes and stays consistent. */
		uint8_t buf[1536], back[1536];
		t_fill(buf, sizeof(buf), limit + 7);
		uint64_t at = (limit % NBLK) * BS + 777;
		cr_assert_eq(vhd_pwrite(img, buf, sizeof(buf), at), 0, "%s", vhd_errmsg(img));
		cr_assert_eq(vhd_flush(img), 0, "%s", vhd_errmsg(img));
		cr_assert_eq(vhd_pread(img, back, sizeof(back), at), 0);
		cr_assert_eq(memcmp(back, buf, sizeof(buf)), 0);
		size_t len;
		uint8_t *after = t_image_bytes(img, &len);
		cr_assert_eq(vhd_io_mem_open(after, len, &mem), 0);
		io = wrap(mem, sc, true);
		cr_assert_eq(vhd_check_io(io, false, &rep), 0);
		cr_assert_eq(rep.corruptions, 0u, "workload %llu, cut after %llu writes, then a "
			     "write: %s", seed, lim, t_report_text(&rep));
		vhd_check_report_free(&rep);
		vhd_io_close(io);
		free(after);
	}
	vhd_close(img);
}

/* Every cut point of one workload, each with its own choice of survivors. */
static void cut_everywhere(const struct scenario *sc, uint64_t seed, struct tally *t)
{
	struct workload *wl = new_workload(sc, seed);
	struct run run;
	run_workload(sc, wl, UINT64_MAX, seed, &run);
	cr_assert_eq(run.failed, (size_t)NOPS);
	vhd_io_close(run.disk);
	uint64_t total = run.writes;
	for (uint64_t limit = 0;; limit++) {
		cr_assert(limit < total + 100, "workload %llu never completes",
			  (unsigned long long)seed);
		uint64_t cut_seed = seed * 1000003 + limit;
		run_workload(sc, wl, limit, cut_seed, &run);
		verify(sc, wl, limit, &run, limit % 16 == 0);
		if (!run.tripped)
			break;          /* the workload and close completed */
		t->cuts++;
		t->torn += run.kept && run.lost;
		t->after_close += run.failed == NOPS;
	}
	free_workload(wl);
}

static void run_scenario(struct scenario *sc, const char *what)
{
	uint64_t seed = env_seed();
	struct vhd_image *img;
	struct vhd_error err;
	struct vhd_io *mem;

	cr_assert_eq(vhd_io_mem_open(sc->orig, sc->orig_len, &mem), 0);
	cr_assert_eq(vhd_open_io(wrap(mem, sc, true), 0, &img, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_virtual_size(img), VSIZE);
	sc->base = malloc(VSIZE);
	sc->got = malloc(VSIZE);
	cr_assert(sc->base && sc->got);
	cr_assert_eq(vhd_pread(img, sc->base, VSIZE, 0), 0, "%s", vhd_errmsg(img));
	vhd_close(img);

	struct tally t = { 0 };
	for (uint64_t w = 0; w < WORKLOADS; w++)
		cut_everywhere(sc, seed * 7919 + w + (sc->type == VHD_TYPE_DIFFERENCING ? 500 : 0),
			       &t);
	fprintf(stderr, "reorder %s: %u cut points (%u with torn or reordered writes, %u in "
		"close), seed %llu (REORDER_SEED)\n",
		what, t.cuts, t.torn, t.after_close, (unsigned long long)seed);
	cr_log_info("reorder %s: %u cut points, seed %llu", what, t.cuts,
		    (unsigned long long)seed);
	/* The runs must really have cut between flushes and split writes. */
	cr_assert_gt(t.cuts, 1000u);
	cr_assert_gt(t.torn, t.cuts / 10);
	free(sc->base);
	free(sc->got);
}

Test(reorder, dynamic, .timeout = 300)
{
	/* Blocks 0 and 1 hold data before the run; 2 and 3 are new. */
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(VHD_TYPE_DYNAMIC, VSIZE, BS, &keep);
	uint8_t *data = malloc(2 * BS);
	cr_assert_not_null(data);
	t_fill(data, 2 * BS, 1);
	cr_assert_eq(vhd_pwrite(img, data, 2 * BS, 0), 0);
	free(data);
	struct scenario sc = { .type = VHD_TYPE_DYNAMIC };
	sc.orig = t_close_bytes(img, keep, &sc.orig_len);
	run_scenario(&sc, "dynamic");
	free(sc.orig);
}

Test(reorder, differencing, .timeout = 300)
{
	char *dir = t_mkdtemp();
	char child[4200];

	/* A parent full of known data: a sector that wrongly stops showing
	 * it reads zeros or stale bytes, which the check sees. */
	t_diff_pair(dir, VSIZE, BS, child, sizeof(child));

	struct scenario sc = { .type = VHD_TYPE_DIFFERENCING, .dir = dir };
	sc.orig = t_read_file(child, &sc.orig_len);
	run_scenario(&sc, "differencing");
	free(sc.orig);
	t_rmtree(dir);
	free(dir);
}
