/* SPDX-License-Identifier: MIT */
/*
 * Crash safety of the maintenance operations: compact, resize, merge (and
 * set_parent) run over a backend that lets the first N writes through and
 * refuses the rest (io_fault.h), for N = 0, 1, 2, ... until the operation
 * (and the close after it) completes without a refused write.  After each
 * cut the file must open, check without corruption (leaked space is
 * allowed), read what it read before (every sector of the old range
 * unchanged for compact and resize, its old or its fully merged content
 * for merge, whose second run must then finish the job) and take writes.
 *
 * One corruption is tolerated: a cut between the end footer and its copy
 * at offset 0 leaves copies that disagree (libvhd.h: `vhdtool check
 * --repair` settles it); were that to keep the file from opening for
 * writing, it must open read-only.  Such cuts are counted and logged
 * (cr_log_info, shown with --verbose), as is the number of cut points.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "io_fault.h"

#define BS (512u << 10)
#define VSIZE (4 * T_MIB)
#define MAX_CUTS 20000

/* ---- helpers (this file only) ------------------------------------------ */

static uint8_t *xmalloc(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	cr_assert_not_null(p);
	return p;
}

static uint8_t *read_disk(struct vhd_image *img)
{
	uint64_t n = vhd_virtual_size(img);
	uint8_t *b = xmalloc((size_t)n);
	cr_assert_eq(vhd_pread(img, b, (size_t)n, 0), 0, "%s", vhd_errmsg(img));
	return b;
}

static void write_fill(struct vhd_image *img, uint64_t off, size_t len, uint64_t seed)
{
	uint8_t *b = xmalloc(len);
	t_fill(b, len, seed);
	cr_assert_eq(vhd_pwrite(img, b, len, off), 0, "%s", vhd_errmsg(img));
	free(b);
}

static void write_bytes(struct vhd_image *img, uint64_t off, const uint8_t *b, size_t len)
{
	cr_assert_eq(vhd_pwrite(img, b, len, off), 0, "%s", vhd_errmsg(img));
}

static struct vhd_image *open_path(const char *path, unsigned flags)
{
	struct vhd_image *img;
	struct vhd_error err;
	int r = vhd_open(path, flags, &img, &err);
	cr_assert_eq(r, 0, "%s: %d %s", path, r, err.message);
	return img;
}

/* Open a copy of data (parents from dir); NULL with *r set on failure. */
static struct vhd_image *open_copy(const uint8_t *data, size_t len, const char *dir, unsigned flags,
				   int *r, struct vhd_error *err)
{
	struct vhd_io *mem;
	struct vhd_image *img = NULL;
	cr_assert_eq(vhd_io_mem_open(data, len, &mem), 0);
	*r = vhd_open_io(t_wrap_io(mem, dir, true), flags, &img, err);
	return *r == 0 ? img : NULL;
}

/* Normalize an image file: open for writing and close (the writer's open
 * takes back unused tail space, so the runs start from a settled file). */
static uint8_t *settle(const uint8_t *data, size_t len, const char *dir, size_t *out_len)
{
	struct vhd_io *mem;
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_io_mem_open(data, len, &mem), 0);
	cr_assert_eq(vhd_open_io(t_wrap_io(mem, dir, false), VHD_OPEN_RDWR, &img, &err), 0, "%s",
		     err.message);
	cr_assert_eq(vhd_close(img), 0);
	uint8_t *b = t_mem_copy(mem, out_len);
	vhd_io_close(mem);
	return b;
}

struct check_summary {
	unsigned bad;           /* corruptions other than the footer copy's */
	unsigned footer_copy;   /* footer-copy findings */
	unsigned leaks;
	char text[4096];
};

static void check_bytes(const uint8_t *data, size_t len, const char *dir, struct check_summary *s)
{
	struct vhd_io *mem;
	struct vhd_check_report rep;
	cr_assert_eq(vhd_io_mem_open(data, len, &mem), 0);
	struct vhd_io *io = t_wrap_io(mem, dir, true);
	cr_assert_eq(vhd_check_io(io, dir != NULL, &rep), 0);
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < rep.count; i++)
		if (rep.findings[i].kind == VHD_FINDING_CORRUPTION &&
		    strcmp(rep.findings[i].structure, "footer-copy") == 0)
			s->footer_copy++;
	s->bad = rep.corruptions - s->footer_copy;
	s->leaks = rep.leaks;
	snprintf(s->text, sizeof(s->text), "%s%s", rep.complete ? "" : "(incomplete) ",
		 t_report_text(&rep));
	vhd_check_report_free(&rep);
	vhd_io_close(io);
}

/* ---- the cut-at-every-write runner ---------------------------------------- */

struct cut_case {
	const char *what;
	const uint8_t *orig;            /* the file the operation starts from */
	size_t orig_len;
	const char *dir;                /* its parents' folder, or NULL */
	/* The operation, on the image opened for writing over the fault
	 * backend; returns 0 or a negative errno. */
	int (*op)(struct cut_case *cc, struct vhd_image *img);
	/* Judge what the file reads after a cut (done: the run that
	 * completed).  img is writable unless the open had to fall back. */
	void (*verify)(struct cut_case *cc, uint64_t limit, struct vhd_image *img, bool done);
	void *ctx;
	/* Where a recovered image takes a test write (inside every size). */
	uint64_t probe_off;

	unsigned footer_copy_cuts;      /* cuts that left the footer copies differing */
	unsigned read_only_cuts;        /* cuts after which the file opened read-only only */
	unsigned ok_despite_cut;        /* runs whose operation returned 0 though cut */
};

static void verify_cut(struct cut_case *cc, uint64_t limit, const uint8_t *bytes, size_t len,
		       bool done)
{
	struct check_summary s;
	check_bytes(bytes, len, cc->dir, &s);
	cr_assert_eq(s.bad, 0u, "%s: cut after %llu writes: %s", cc->what, (unsigned long long)limit,
		     s.text);
	if (s.footer_copy) {
		cc->footer_copy_cuts++;
		cr_log_info("%s: cut after %llu writes: the footer copy at 0 differs from the end footer "
			    "(check --repair settles it)",
			    cc->what, (unsigned long long)limit);
	}
	if (done)
		cr_assert_eq(s.footer_copy, 0u, "%s: completed run: %s", cc->what, s.text);

	int r;
	struct vhd_error err;
	struct vhd_image *img = open_copy(bytes, len, cc->dir, VHD_OPEN_RDWR, &r, &err);
	bool writable = img != NULL;
	if (!img) {
		cr_assert(!done, "%s: completed run: reopen for writing: %d %s", cc->what, r, err.message);
		/* Only a damaged footer copy may keep it from opening for writing. */
		cr_assert(s.footer_copy > 0, "%s: cut after %llu writes: reopen for writing: %d %s",
			  cc->what, (unsigned long long)limit, r, err.message);
		img = open_copy(bytes, len, cc->dir, 0, &r, &err);
		cr_assert_not_null(img, "%s: cut after %llu writes: reopen read-only: %d %s", cc->what,
				   (unsigned long long)limit, r, err.message);
		cc->read_only_cuts++;
		cr_log_info("%s: cut after %llu writes opens read-only only (footer copy mismatch)",
			    cc->what, (unsigned long long)limit);
	}
	cc->verify(cc, limit, img, done);

	if (!writable) {
		vhd_close(img);
		return;
	}
	/* The recovered image takes writes and stays consistent. */
	uint8_t buf[1536], back[1536];
	t_fill(buf, sizeof(buf), limit + 1);
	cr_assert_eq(vhd_pwrite(img, buf, sizeof(buf), cc->probe_off), 0, "%s: cut after %llu: %s",
		     cc->what, (unsigned long long)limit, vhd_errmsg(img));
	cr_assert_eq(vhd_flush(img), 0);
	cr_assert_eq(vhd_pread(img, back, sizeof(back), cc->probe_off), 0);
	cr_assert(memcmp(back, buf, sizeof(buf)) == 0);
	size_t alen;
	uint8_t *after = t_image_bytes(img, &alen);
	cr_assert_eq(vhd_close(img), 0);
	check_bytes(after, alen, cc->dir, &s);
	cr_assert_eq(s.bad, 0u, "%s: cut after %llu writes, then a write: %s", cc->what,
		     (unsigned long long)limit, s.text);
	free(after);
}

static unsigned cut_everywhere(struct cut_case *cc)
{
	unsigned cuts = 0;
	for (uint64_t limit = 0;; limit++) {
		cr_assert(limit < MAX_CUTS, "%s: the operation never completes", cc->what);
		struct vhd_io *mem, *fault;
		struct vhd_image *img;
		struct vhd_error err;
		cr_assert_eq(vhd_io_mem_open(cc->orig, cc->orig_len, &mem), 0);
		cr_assert_eq(vhd_io_fault_open(mem, limit, &fault), 0);
		/* The image owns the outer wrapper only: the fault backend
		 * survives vhd_close so we can ask whether it tripped. */
		int r = vhd_open_io(t_wrap_io(fault, cc->dir, false), VHD_OPEN_RDWR, &img, &err);
		cr_assert_eq(r, 0, "%s: limit %llu: open: %s", cc->what, (unsigned long long)limit,
			     err.message);
		r = cc->op(cc, img);
		if (r < 0)
			cr_assert_neq(vhd_errmsg(img)[0], '\0', "%s: a failure without a message",
				      cc->what);
		int rc = vhd_close(img);        /* the power may be gone: errors expected */
		bool tripped = vhd_io_fault_tripped(fault);
		if (!tripped) {
			cr_assert_eq(r, 0, "%s: failed without a cut", cc->what);
			cr_assert_eq(rc, 0, "%s: close failed without a cut", cc->what);
		} else if (r == 0) {
			cc->ok_despite_cut++;
		}
		size_t len;
		uint8_t *bytes = t_mem_copy(mem, &len);
		vhd_io_close(fault);
		vhd_io_close(mem);
		verify_cut(cc, limit, bytes, len, !tripped);
		free(bytes);
		if (!tripped)
			break;
		cuts++;
	}
	cr_log_info("maint crash %s: %u cut points tested (%u left differing footer copies, "
		    "%u opened read-only only, %u reported success though cut)",
		    cc->what, cuts, cc->footer_copy_cuts, cc->read_only_cuts, cc->ok_despite_cut);
	return cuts;
}

/* Sector by sector: got equals one of the candidates (NULL: zeros). */
static void expect_sectors(const char *what, uint64_t limit, const uint8_t *got, uint64_t base,
			   uint64_t len, const uint8_t *a, const uint8_t *b, const char *a_name,
			   const char *b_name)
{
	static const uint8_t zero[512];
	for (uint64_t s = 0; s < len; s += 512) {
		size_t k = (size_t)(len - s < 512 ? len - s : 512);
		const uint8_t *ea = a ? a + s : zero;
		const uint8_t *eb = b ? b + s : zero;
		bool ok = memcmp(got + s, ea, k) == 0 || (b_name && memcmp(got + s, eb, k) == 0);
		cr_assert(ok, "%s: cut after %llu writes: the sector at disk offset %llu reads neither %s%s%s",
			  what, (unsigned long long)limit, (unsigned long long)(base + s), a_name,
			  b_name ? " nor " : "", b_name ? b_name : "");
	}
}

/* ---- compact ----------------------------------------------------------- */

struct compact_ctx {
	/* Writes made in the same session before compact (NULL: none). */
	int (*prep)(struct vhd_image *img);
	uint8_t *old;           /* what the disk reads before */
	uint8_t *final;         /* what it reads after prep (and compact) */
	uint64_t final_size;    /* the file when compact completes */
	uint64_t freed, moved;
};

static int op_compact(struct cut_case *cc, struct vhd_image *img)
{
	struct compact_ctx *x = cc->ctx;
	struct vhd_compact_result res;
	int r = x->prep ? x->prep(img) : 0;
	if (r < 0)
		return r;
	r = vhd_compact(img, 0, NULL, NULL, &res);
	if (r == 0) {
		x->freed = res.blocks_freed;
		x->moved = res.blocks_moved;
	}
	return r;
}

static void verify_compact(struct cut_case *cc, uint64_t limit, struct vhd_image *img, bool done)
{
	struct compact_ctx *x = cc->ctx;
	cr_assert_eq(vhd_virtual_size(img), VSIZE);
	uint8_t *got = read_disk(img);
	if (done || !x->prep)
		expect_sectors(cc->what, limit, got, 0, VSIZE, x->final, NULL,
			       done ? "its final content" : "its content", NULL);
	else
		expect_sectors(cc->what, limit, got, 0, VSIZE, x->old, x->final, "its old content",
			       "its new content");
	free(got);
	if (done) {
		struct vhd_info info;
		cr_assert_eq(vhd_get_info(img, &info), 0);
		cr_assert_eq(info.file_size, x->final_size, "%s: compacted file is %llu bytes",
			     cc->what, (unsigned long long)info.file_size);
	}
}

static void run_compact(const char *what, uint8_t *orig, size_t len, const char *dir,
			int (*prep)(struct vhd_image *), unsigned min_freed, unsigned min_moved)
{
	struct compact_ctx x = { .prep = prep };
	int r;
	struct vhd_error err;
	struct vhd_image *img = open_copy(orig, len, dir, VHD_OPEN_RDWR, &r, &err);
	cr_assert_not_null(img, "%s", err.message);
	x.old = read_disk(img);
	if (prep)
		cr_assert_eq(prep(img), 0, "%s", vhd_errmsg(img));
	x.final = read_disk(img);
	/* The dry run says what compact does and where the file will end. */
	struct vhd_compact_result dry;
	cr_assert_eq(vhd_compact(img, VHD_COMPACT_DRY_RUN, NULL, NULL, &dry), 0, "%s",
		     vhd_errmsg(img));
	x.final_size = dry.file_size_after;
	vhd_close(img);
	cr_assert_lt(x.final_size, len, "%s: nothing to compact", what);
	cr_assert_geq(dry.blocks_freed, min_freed);
	cr_assert_geq(dry.blocks_moved, min_moved);

	struct cut_case cc = { .what = what, .orig = orig, .orig_len = len, .dir = dir,
			       .op = op_compact, .verify = verify_compact, .ctx = &x,
			       .probe_off = 1 * BS + 777 };
	unsigned cuts = cut_everywhere(&cc);
	cr_assert_eq(x.freed, dry.blocks_freed);
	cr_assert_eq(x.moved, dry.blocks_moved);
	cr_assert_gt(cuts, 3u);
	free(x.old);
	free(x.final);
}

/* Blocks allocated 0..7: data, zeros written, data, freed (vhd_zero),
 * twice over: compact frees 1 and 5, moves 6 and 4, cuts the file. */
static uint8_t *compact_pattern(size_t *len)
{
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(VHD_TYPE_DYNAMIC, VSIZE, BS, &keep);
	uint8_t *zero = calloc(1, BS);
	cr_assert_not_null(zero);
	write_fill(img, 0 * BS, BS, 100);
	write_bytes(img, 1 * BS, zero, BS);
	write_fill(img, 2 * BS + 5000, 3000, 102);
	write_fill(img, 3 * BS, BS, 103);
	write_fill(img, 4 * BS + 100000, 4096, 104);
	write_bytes(img, 5 * BS, zero, BS);
	write_fill(img, 6 * BS, BS, 106);
	write_fill(img, 7 * BS, BS, 107);
	cr_assert_eq(vhd_zero(img, 3 * BS, BS, VHD_ZERO_MAY_UNMAP), 0);
	cr_assert_eq(vhd_zero(img, 7 * BS, BS, VHD_ZERO_MAY_UNMAP), 0);
	free(zero);
	size_t len0;
	uint8_t *raw = t_close_bytes(img, keep, &len0);
	uint8_t *orig = settle(raw, len0, NULL, len);
	free(raw);
	return orig;
}

Test(maint_crash, compact_dynamic)
{
	size_t len;
	uint8_t *orig = compact_pattern(&len);
	run_compact("compact dynamic", orig, len, NULL, NULL, 2, 2);
	free(orig);
}

/* In the same session before compact: new blocks 3 and 7 (pending BAT
 * entries, the footer pushed out by reserved room), block 0 unmapped,
 * block 2 overwritten with zeros. */
static int dirty_prep(struct vhd_image *img)
{
	uint8_t buf[8192];
	static const uint8_t zeros[8192];
	int r = 0;
	t_fill(buf, sizeof(buf), 120);
	r = r ? r : vhd_pwrite(img, buf, sizeof(buf), 3 * BS + 4096);
	r = r ? r : vhd_zero(img, 0, BS, VHD_ZERO_MAY_UNMAP);
	t_fill(buf, sizeof(buf), 121);
	r = r ? r : vhd_pwrite(img, buf, 1000, 7 * BS + 10);
	r = r ? r : vhd_pwrite(img, zeros, sizeof(zeros), 2 * BS + 4096);
	return r;
}

Test(maint_crash, compact_dynamic_after_writes_in_the_same_session)
{
	size_t len;
	uint8_t *orig = compact_pattern(&len);
	run_compact("compact dynamic after writes", orig, len, NULL, dirty_prep, 3, 1);
	free(orig);
}

Test(maint_crash, compact_differencing)
{
	char *dir = t_mkdtemp();
	char parent[4200], child[4200];
	snprintf(parent, sizeof(parent), "%s/parent.vhd", dir);
	snprintf(child, sizeof(child), "%s/child.vhd", dir);
	struct vhd_create_params pp = { .type = VHD_TYPE_DYNAMIC, .size = VSIZE, .block_size = BS };
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_create(parent, &pp, &img, &err), 0, "%s", err.message);
	write_fill(img, 0, VSIZE, 7);
	uint8_t *pdata = read_disk(img);
	cr_assert_eq(vhd_close(img), 0);

	/* Blocks allocated 0..5: the parent's bytes (freed); other data; other
	 * data with sectors 10..29 put back (bits cleared); the parent's bytes
	 * in 8 sectors (freed); other data (kept, the last: moves into slot 0);
	 * 700 of the parent's bytes (freed). */
	struct vhd_create_params cp = { .type = VHD_TYPE_DIFFERENCING, .parent = parent,
					.block_size = BS };
	cr_assert_eq(vhd_create(child, &cp, &img, &err), 0, "%s", err.message);
	write_bytes(img, 0, pdata, BS);
	write_fill(img, 1 * BS, BS, 201);
	write_fill(img, 2 * BS, BS, 202);
	write_bytes(img, 2 * BS + 10 * 512, pdata + 2 * BS + 10 * 512, 20 * 512);
	write_bytes(img, 3 * BS + 100 * 512, pdata + 3 * BS + 100 * 512, 8 * 512);
	write_fill(img, 4 * BS + 512, 8192, 204);
	write_bytes(img, 5 * BS + 300, pdata + 5 * BS + 300, 700);
	cr_assert_eq(vhd_close(img), 0);
	free(pdata);

	size_t len;
	uint8_t *orig = t_read_file(child, &len);
	run_compact("compact differencing", orig, len, dir, NULL, 3, 1);
	free(orig);
	t_rmtree(dir);
	free(dir);
}

/* ---- resize -------------------------------------------------------------- */

struct resize_ctx {
	uint64_t old_size, new_size;
	unsigned flags;
	/* Writes made in the same session before the resize (NULL: none;
	 * growing only). */
	int (*prep)(struct vhd_image *img);
	uint8_t *content;       /* the disk before, old_size bytes */
	uint8_t *final;         /* the same after prep */
};

static int op_resize(struct cut_case *cc, struct vhd_image *img)
{
	struct resize_ctx *x = cc->ctx;
	int r = x->prep ? x->prep(img) : 0;
	return r < 0 ? r : vhd_resize(img, x->new_size, x->flags);
}

/* The data extents in [off, off + len) read zeros (a sample of the rest). */
static void expect_zero_tail(const char *what, uint64_t limit, struct vhd_image *img, uint64_t off,
			     uint64_t len, uint64_t allow_footer_at)
{
	uint8_t *buf = xmalloc(BS);
	uint64_t end = off + len;
	while (off < end) {
		struct vhd_extent ext;
		cr_assert_eq(vhd_block_status(img, off, end - off, &ext), 0, "%s", vhd_errmsg(img));
		uint64_t n = ext.length;
		/* Data extents are read whole; holes are sampled at their start. */
		uint64_t rd = (ext.flags & VHD_EXTENT_DATA) ? n : (n < 4096 ? n : 4096);
		for (uint64_t d = 0; d < rd;) {
			size_t k = (size_t)(rd - d < BS ? rd - d : BS);
			cr_assert_eq(vhd_pread(img, buf, k, off + d), 0, "%s", vhd_errmsg(img));
			for (size_t i = 0; i < k; i += 512) {
				uint64_t at = off + d + i;
				if (at == allow_footer_at && memcmp(buf + i, "conectix", 8) == 0) {
					cr_log_info("%s: cut after %llu writes: the old footer still reads at disk offset %llu of the new range",
						    what, (unsigned long long)limit, (unsigned long long)at);
					continue;
				}
				cr_assert(t_all_zero(buf + i, k - i < 512 ? k - i : 512),
					  "%s: cut after %llu writes: the new range reads data at disk offset %llu",
					  what, (unsigned long long)limit, (unsigned long long)at);
			}
			d += k;
		}
		off += n;
	}
	/* The very end, whatever the extents said. */
	cr_assert_eq(vhd_pread(img, buf, 4096, end - 4096), 0);
	cr_assert(t_all_zero(buf, 4096), "%s: cut after %llu writes: the last page of the new range",
		  what, (unsigned long long)limit);
	free(buf);
}

static void verify_resize(struct cut_case *cc, uint64_t limit, struct vhd_image *img, bool done)
{
	struct resize_ctx *x = cc->ctx;
	uint64_t size = vhd_virtual_size(img);
	cr_assert(size == x->old_size || size == x->new_size,
		  "%s: cut after %llu writes: size %llu is neither the old nor the new", cc->what,
		  (unsigned long long)limit, (unsigned long long)size);
	if (done)
		cr_assert_eq(size, x->new_size, "%s: completed run", cc->what);
	uint64_t keep = x->old_size < x->new_size ? x->old_size : x->new_size;
	uint8_t *got = xmalloc((size_t)x->old_size);
	cr_assert_eq(vhd_pread(img, got, (size_t)keep, 0), 0, "%s", vhd_errmsg(img));
	if (!x->prep)
		expect_sectors(cc->what, limit, got, 0, keep, x->content, NULL, "its content", NULL);
	else if (done)
		expect_sectors(cc->what, limit, got, 0, keep, x->final, NULL, "its new content", NULL);
	else
		expect_sectors(cc->what, limit, got, 0, keep, x->content, x->final,
			       "its old content", "its new content");
	if (x->new_size > x->old_size) {
		if (size == x->new_size) {
			bool fixed = vhd_get_type(img) == VHD_TYPE_FIXED;
			expect_zero_tail(cc->what, limit, img, x->old_size, x->new_size - x->old_size,
					 fixed && !done ? x->old_size : UINT64_MAX);
		}
	} else if (size == x->old_size) {
		/* Not shrunk yet: the part being dropped reads its content or
		 * zeros.  A fixed image writes its new footer there before the
		 * file is cut (its only footer must stay valid): that sector may
		 * read the new footer meanwhile, accepted and logged. */
		uint64_t tail = x->old_size - keep;
		cr_assert_eq(vhd_pread(img, got + keep, (size_t)tail, keep), 0);
		uint64_t from = keep;
		if (vhd_get_type(img) == VHD_TYPE_FIXED && memcmp(got + keep, "conectix", 8) == 0) {
			cr_log_info("%s: cut after %llu writes: the new footer reads at disk offset %llu of the old size",
				    cc->what, (unsigned long long)limit, (unsigned long long)keep);
			from += 512;
		}
		expect_sectors(cc->what, limit, got + from, from, x->old_size - from,
			       x->content + from, NULL, "its content", "zeros");
	}
	free(got);
}

static void run_resize_after(const char *what, uint8_t *orig, size_t len, const char *dir,
			     int (*prep)(struct vhd_image *), uint64_t new_size, unsigned flags)
{
	int r;
	struct vhd_error err;
	struct vhd_image *img = open_copy(orig, len, dir, VHD_OPEN_RDWR, &r, &err);
	cr_assert_not_null(img, "%s", err.message);
	struct resize_ctx x = { .old_size = vhd_virtual_size(img), .new_size = new_size,
				.flags = flags, .prep = prep };
	cr_assert(!prep || new_size > x.old_size);
	x.content = read_disk(img);
	if (prep)
		cr_assert_eq(prep(img), 0, "%s", vhd_errmsg(img));
	x.final = read_disk(img);
	vhd_close(img);
	struct cut_case cc = { .what = what, .orig = orig, .orig_len = len, .dir = dir,
			       .op = op_resize, .verify = verify_resize, .ctx = &x,
			       .probe_off = 1 * BS + 777 };
	unsigned cuts = cut_everywhere(&cc);
	cr_assert_geq(cuts, 2u);
	free(x.content);
	free(x.final);
}

static void run_resize(const char *what, uint8_t *orig, size_t len, const char *dir,
		       uint64_t new_size, unsigned flags)
{
	run_resize_after(what, orig, len, dir, NULL, new_size, flags);
}

/* 4 MiB, data in blocks 0 (the first slot), 3 and 7. */
static uint8_t *resize_image(enum vhd_type type, size_t *len)
{
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(type, VSIZE, BS, &keep);
	write_fill(img, 0, BS, 300);
	write_fill(img, 3 * BS + 1000, 5000, 303);
	write_fill(img, VSIZE - 3000, 3000, 307);
	size_t len0;
	uint8_t *raw = t_close_bytes(img, keep, &len0);
	if (type == VHD_TYPE_FIXED) {
		*len = len0;
		return raw;
	}
	uint8_t *b = settle(raw, len0, NULL, len);
	free(raw);
	return b;
}

Test(maint_crash, resize_grow_dynamic_across_the_bat)
{
	/* 1024 entries: a 4 KiB BAT from 0x600 that overlaps block 0's slot. */
	size_t len;
	uint8_t *orig = resize_image(VHD_TYPE_DYNAMIC, &len);
	run_resize("grow dynamic 4 MiB -> 512 MiB", orig, len, NULL, 512 * T_MIB, 0);
	free(orig);
}

/* In the same session before growing: new blocks 1 and 2 (pending BAT
 * entries), a rewrite of block 0 (which the grow moves). */
static int grow_prep(struct vhd_image *img)
{
	uint8_t buf[6000];
	t_fill(buf, sizeof(buf), 320);
	int r = vhd_pwrite(img, buf, sizeof(buf), 2 * BS - 1000);
	t_fill(buf, sizeof(buf), 321);
	return r ? r : vhd_pwrite(img, buf, 4096, 8192);
}

Test(maint_crash, resize_grow_dynamic_after_writes_in_the_same_session)
{
	size_t len;
	uint8_t *orig = resize_image(VHD_TYPE_DYNAMIC, &len);
	run_resize_after("grow dynamic 4 MiB -> 512 MiB after writes", orig, len, NULL, grow_prep,
			 512 * T_MIB, 0);
	free(orig);
}

/* The BAT grows over the parent locators and block 0: all move.  With
 * subfolder, the parent lies in p/, so only the locators find it (the
 * header's parent name names a file next to the child). */
static void grow_differencing(bool subfolder)
{
	char *dir = t_mkdtemp();
	char pdir[4200], parent[4200], child[4200];
	snprintf(pdir, sizeof(pdir), "%s/p", dir);
	snprintf(parent, sizeof(parent), "%s/%sparent.vhd", dir, subfolder ? "p/" : "");
	snprintf(child, sizeof(child), "%s/child.vhd", dir);
	cr_assert_eq(mkdir(pdir, 0700), 0);
	struct vhd_create_params pp = { .type = VHD_TYPE_DYNAMIC, .size = VSIZE, .block_size = BS };
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_create(parent, &pp, &img, &err), 0, "%s", err.message);
	write_fill(img, 0, VSIZE, 50);
	cr_assert_eq(vhd_close(img), 0);
	struct vhd_create_params cp = { .type = VHD_TYPE_DIFFERENCING, .parent = parent,
					.block_size = BS };
	cr_assert_eq(vhd_create(child, &cp, &img, &err), 0, "%s", err.message);
	write_fill(img, 0, BS, 51);
	write_fill(img, 2 * BS + 700, 3000, 52);
	cr_assert_eq(vhd_close(img), 0);
	size_t len;
	uint8_t *orig = t_read_file(child, &len);
	run_resize(subfolder ? "grow differencing 4 MiB -> 1 GiB, parent in a subfolder"
			     : "grow differencing 4 MiB -> 1 GiB",
		   orig, len, dir, T_GIB, 0);
	free(orig);
	t_rmtree(dir);
	free(dir);
}

Test(maint_crash, resize_grow_differencing_across_the_bat)
{
	grow_differencing(false);
}

/* The same with the parent in a subfolder: moved locators must be linked
 * before their old space is overwritten by the larger BAT (the header's
 * bare parent name would not find the parent). */
Test(maint_crash, resize_grow_differencing_parent_in_a_subfolder)
{
	grow_differencing(true);
}

/* A child shrunk (forced) to 2 MiB over a 4 MiB parent full of data, then
 * grown back to 4 MiB: the new range must read zeros, never the parent,
 * also after a cut (the zeroing must be durable before the footers
 * announce the new size). */
Test(maint_crash, resize_grow_differencing_over_its_parent_data)
{
	char *dir = t_mkdtemp();
	char parent[4200], child[4200];
	snprintf(parent, sizeof(parent), "%s/parent.vhd", dir);
	snprintf(child, sizeof(child), "%s/child.vhd", dir);
	struct vhd_create_params pp = { .type = VHD_TYPE_DYNAMIC, .size = VSIZE, .block_size = BS };
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_create(parent, &pp, &img, &err), 0, "%s", err.message);
	write_fill(img, 0, VSIZE, 56);
	cr_assert_eq(vhd_close(img), 0);
	struct vhd_create_params cp = { .type = VHD_TYPE_DIFFERENCING, .parent = parent,
					.block_size = BS };
	cr_assert_eq(vhd_create(child, &cp, &img, &err), 0, "%s", err.message);
	write_fill(img, BS + 700, 3000, 57);
	write_fill(img, 5 * BS, 8192, 58);
	cr_assert_eq(vhd_resize(img, 2 * T_MIB, VHD_RESIZE_SHRINK | VHD_RESIZE_FORCE), 0, "%s",
		     vhd_errmsg(img));
	cr_assert_eq(vhd_close(img), 0);
	size_t len;
	uint8_t *orig = t_read_file(child, &len);
	run_resize("grow a shrunk child 2 MiB -> 4 MiB over its parent's data", orig, len, dir, VSIZE,
		   0);
	free(orig);
	t_rmtree(dir);
	free(dir);
}

Test(maint_crash, resize_shrink_dynamic_forced)
{
	/* Every block holds data; the new end lies inside block 4. */
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(VHD_TYPE_DYNAMIC, VSIZE, BS, &keep);
	write_fill(img, 0, VSIZE, 310);
	size_t len0, len;
	uint8_t *raw = t_close_bytes(img, keep, &len0);
	uint8_t *orig = settle(raw, len0, NULL, &len);
	free(raw);
	run_resize("shrink dynamic 4 MiB -> 2.25 MiB + 1.5 KiB, forced", orig, len, NULL,
		   2 * T_MIB + BS / 2 + 3 * 512, VHD_RESIZE_SHRINK | VHD_RESIZE_FORCE);
	free(orig);
}

Test(maint_crash, resize_grow_fixed)
{
	/* A cut between the new footer and zeroing the old one leaves the old
	 * footer's bytes as the first sector of the new range: inherent to a
	 * fixed image (its only footer must stay valid), accepted and logged. */
	size_t len;
	uint8_t *orig = resize_image(VHD_TYPE_FIXED, &len);
	run_resize("grow fixed 4 MiB -> 6 MiB", orig, len, NULL, 6 * T_MIB, 0);
	free(orig);
}

Test(maint_crash, resize_shrink_fixed_forced)
{
	size_t len;
	uint8_t *orig = resize_image(VHD_TYPE_FIXED, &len);
	run_resize("shrink fixed 4 MiB -> 3 MiB, forced", orig, len, NULL, 3 * T_MIB,
		   VHD_RESIZE_SHRINK | VHD_RESIZE_FORCE);
	free(orig);
}

/* ---- merge --------------------------------------------------------------- */

struct merge_ctx {
	struct vhd_image *top;          /* the image merged (real files) */
	uint8_t *old;                   /* what the target read before */
	uint8_t *merged;                /* what it reads when merged: the top's disk */
};

static int op_merge(struct cut_case *cc, struct vhd_image *target)
{
	struct merge_ctx *x = cc->ctx;
	int r = vhd_merge(x->top, target, NULL, NULL, NULL);
	/* vhd_merge reports on the top image: the runner looks at target's. */
	if (r < 0 && !vhd_errmsg(target)[0])
		cr_assert_fail("%s: merge failed (%d) and the target has no message: %s", cc->what, r,
			       vhd_errmsg(x->top));
	return r;
}

static void verify_merge(struct cut_case *cc, uint64_t limit, struct vhd_image *img, bool done)
{
	struct merge_ctx *x = cc->ctx;
	cr_assert_eq(vhd_virtual_size(img), VSIZE);
	uint8_t *got = read_disk(img);
	if (done)
		expect_sectors(cc->what, limit, got, 0, VSIZE, x->merged, NULL, "its merged content",
			       NULL);
	else
		expect_sectors(cc->what, limit, got, 0, VSIZE, x->old, x->merged, "its old content",
			       "its merged content");
	free(got);
	struct vhd_info info;
	cr_assert_eq(vhd_get_info(img, &info), 0);
	if (info.read_only || done)
		return;
	/* Running the merge again finishes the job. */
	uint64_t n;
	cr_assert_eq(vhd_merge(x->top, img, NULL, NULL, &n), 0, "%s: cut after %llu writes: merge again: %s",
		     cc->what, (unsigned long long)limit, vhd_errmsg(x->top));
	got = read_disk(img);
	expect_sectors(cc->what, limit, got, 0, VSIZE, x->merged, NULL, "its merged content (merged again)",
		       NULL);
	free(got);
}

/*
 * base: blocks 0, 2 and 5 with data.  child: sectors 10..20 of block 0,
 * 3000 bytes at BS + 700 (partial sectors of a block the base lacks), block
 * 5 zeroed, 4 KiB in block 7.  grandchild: sectors 15..30 of block 0 and
 * 4 KiB at the start of block 3.
 */
static void make_chain(const char *dir)
{
	char base[4200], child[4200], gc[4200];
	snprintf(base, sizeof(base), "%s/base.vhd", dir);
	snprintf(child, sizeof(child), "%s/child.vhd", dir);
	snprintf(gc, sizeof(gc), "%s/grandchild.vhd", dir);
	struct vhd_create_params pp = { .type = VHD_TYPE_DYNAMIC, .size = VSIZE, .block_size = BS };
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_create(base, &pp, &img, &err), 0, "%s", err.message);
	write_fill(img, 0, BS, 80);
	write_fill(img, 2 * BS, BS, 82);
	write_fill(img, 5 * BS, BS, 85);
	cr_assert_eq(vhd_close(img), 0);

	struct vhd_create_params cp = { .type = VHD_TYPE_DIFFERENCING, .parent = base,
					.block_size = BS };
	cr_assert_eq(vhd_create(child, &cp, &img, &err), 0, "%s", err.message);
	write_fill(img, 10 * 512, 11 * 512, 81);
	write_fill(img, BS + 700, 3000, 82);
	cr_assert_eq(vhd_zero(img, 5 * BS, BS, VHD_ZERO_MAY_UNMAP), 0, "%s", vhd_errmsg(img));
	write_fill(img, 7 * BS + 4096, 4096, 83);
	cr_assert_eq(vhd_close(img), 0);

	cp.parent = child;
	cr_assert_eq(vhd_create(gc, &cp, &img, &err), 0, "%s", err.message);
	write_fill(img, 15 * 512, 16 * 512, 84);
	write_fill(img, 3 * BS, 4096, 85);
	cr_assert_eq(vhd_close(img), 0);
}

static void run_merge(const char *what, const char *top_name, const char *target_name)
{
	char *dir = t_mkdtemp();
	make_chain(dir);
	char top[4200], target[4200];
	snprintf(top, sizeof(top), "%s/%s", dir, top_name);
	snprintf(target, sizeof(target), "%s/%s", dir, target_name);

	struct merge_ctx x;
	x.top = open_path(top, 0);
	x.merged = read_disk(x.top);
	struct vhd_image *t = open_path(target, 0);
	x.old = read_disk(t);
	vhd_close(t);
	cr_assert(memcmp(x.old, x.merged, VSIZE) != 0);

	size_t len;
	uint8_t *orig = t_read_file(target, &len);
	/* The target is a copy in memory; its own parent (if any) and the
	 * top's chain are the files on disk, which nothing writes. */
	struct cut_case cc = { .what = what, .orig = orig, .orig_len = len, .dir = dir,
			       .op = op_merge, .verify = verify_merge, .ctx = &x,
			       .probe_off = 6 * BS + 777 };
	unsigned cuts = cut_everywhere(&cc);
	cr_assert_gt(cuts, 3u);
	vhd_close(x.top);
	free(x.merged);
	free(x.old);
	free(orig);
	t_rmtree(dir);
	free(dir);
}

Test(maint_crash, merge_child_into_parent)
{
	run_merge("merge child into base", "child.vhd", "base.vhd");
}

Test(maint_crash, merge_grandchild_into_differencing_parent)
{
	run_merge("merge grandchild into child", "grandchild.vhd", "child.vhd");
}

Test(maint_crash, merge_grandchild_into_grandparent)
{
	run_merge("merge grandchild into base", "grandchild.vhd", "base.vhd");
}

/* ---- set_parent ------------------------------------------------------------ */

/*
 * Not asked of the runner above but promised by setparent.c: a cut leaves
 * the old links or the new ones, whole.  The new parent is a hard link to
 * the old one (same file, same UUID) in a subfolder, so both links work and
 * the locators say which one the header holds.
 */
struct relink_ctx {
	char old_w2ru[VHD_LOCATOR_MAX_PATH], new_w2ru[VHD_LOCATOR_MAX_PATH];
	char old_macx[VHD_LOCATOR_MAX_PATH], new_macx[VHD_LOCATOR_MAX_PATH];
	uint8_t *content;
	struct vhd_image *parent;
	const char *rel, *abs;
	bool saw_new;
};

static int op_relink(struct cut_case *cc, struct vhd_image *img)
{
	struct relink_ctx *x = cc->ctx;
	struct vhd_parent_ref ref = { .image = x->parent, .relative_path = x->rel,
				      .absolute_path = x->abs };
	return vhd_set_parent(img, &ref, 0);
}

static void verify_relink(struct cut_case *cc, uint64_t limit, struct vhd_image *img, bool done)
{
	struct relink_ctx *x = cc->ctx;
	cr_assert_eq(vhd_locator_count(img), 2);
	struct vhd_locator w, m;
	cr_assert_eq(vhd_get_locator(img, 0, &w), 0);
	cr_assert_eq(vhd_get_locator(img, 1, &m), 0);
	cr_assert(w.valid && m.valid, "%s: cut after %llu writes: a locator does not decode", cc->what,
		  (unsigned long long)limit);
	bool is_old = strcmp(w.path, x->old_w2ru) == 0 && strcmp(m.path, x->old_macx) == 0;
	bool is_new = strcmp(w.path, x->new_w2ru) == 0 && strcmp(m.path, x->new_macx) == 0;
	cr_assert(is_old || is_new, "%s: cut after %llu writes: locators '%s' and '%s' are neither the old nor the new pair",
		  cc->what, (unsigned long long)limit, w.path, m.path);
	if (done)
		cr_assert(is_new, "%s: completed run kept the old links", cc->what);
	x->saw_new = x->saw_new || is_new;
	uint8_t *got = read_disk(img);
	expect_sectors(cc->what, limit, got, 0, VSIZE, x->content, NULL, "its content", NULL);
	free(got);
}

Test(maint_crash, set_parent)
{
	char *dir = t_mkdtemp();
	char base[4200], child[4200], pdir[4200], link2[4200];
	snprintf(base, sizeof(base), "%s/base.vhd", dir);
	snprintf(child, sizeof(child), "%s/child.vhd", dir);
	snprintf(pdir, sizeof(pdir), "%s/p", dir);
	snprintf(link2, sizeof(link2), "%s/p/base2.vhd", dir);
	struct vhd_create_params pp = { .type = VHD_TYPE_DYNAMIC, .size = VSIZE, .block_size = BS };
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_create(base, &pp, &img, &err), 0, "%s", err.message);
	write_fill(img, 0, VSIZE, 60);
	cr_assert_eq(vhd_close(img), 0);
	struct vhd_create_params cp = { .type = VHD_TYPE_DIFFERENCING, .parent = base,
					.block_size = BS };
	cr_assert_eq(vhd_create(child, &cp, &img, &err), 0, "%s", err.message);
	write_fill(img, BS + 512, 8192, 61);
	cr_assert_eq(vhd_close(img), 0);
	cr_assert_eq(mkdir(pdir, 0700), 0);
	cr_assert_eq(link(base, link2), 0);

	struct relink_ctx x = { .rel = "p/base2.vhd", .abs = link2 };
	img = open_path(child, 0);
	x.content = read_disk(img);
	struct vhd_locator w, m;
	cr_assert_eq(vhd_get_locator(img, 0, &w), 0);
	cr_assert_eq(vhd_get_locator(img, 1, &m), 0);
	memcpy(x.old_w2ru, w.path, sizeof(w.path));
	memcpy(x.old_macx, m.path, sizeof(m.path));
	vhd_close(img);
	snprintf(x.new_w2ru, sizeof(x.new_w2ru), ".\\p\\base2.vhd");
	cr_assert(strlen(link2) + 8 < sizeof(x.new_macx));
	cr_assert(strchr(link2, '%') == NULL && strchr(link2, ' ') == NULL);
	memcpy(x.new_macx, "file://", 7);
	memcpy(x.new_macx + 7, link2, strlen(link2) + 1);
	x.parent = open_path(link2, 0);

	size_t len;
	uint8_t *orig = t_read_file(child, &len);
	struct cut_case cc = { .what = "set_parent", .orig = orig, .orig_len = len, .dir = dir,
			       .op = op_relink, .verify = verify_relink, .ctx = &x,
			       .probe_off = 3 * BS + 777 };
	unsigned cuts = cut_everywhere(&cc);
	cr_assert_geq(cuts, 3u);
	cr_assert(x.saw_new);
	vhd_close(x.parent);
	free(x.content);
	free(orig);
	t_rmtree(dir);
	free(dir);
}
