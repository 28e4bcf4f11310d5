/* SPDX-License-Identifier: MIT */
/*
 * The whole open and read path over the input as a VHD file: footer choice,
 * header, BAT, sector bitmaps, block status, reads, locators and parents;
 * then a read-write open of a copy: up to five of pwrite, vhd_zero,
 * vhd_discard, vhd_resize and vhd_compact, flush, close, the checker over
 * the result and a reopen.
 *
 * Oracles besides the sanitizers:
 *   - block status answers cover the disk in order, each at least a byte;
 *   - a range that block status calls zero reads as zeros;
 *   - a range this layer holds (depth 0) reads as the file's bytes there;
 *   - after each operation a modelled window of the disk holds what it
 *     should, before and after a close and reopen; an image the checker
 *     found sound stays sound; a compact dry run foretells the real run.
 *
 * The work per input is bounded: the virtual size may be huge, so only a
 * few ranges of at most 1 MiB are read, and at most 4096 extents walked.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_READ (1u << 20)
#define MAX_EXTENTS 4096
/* Bytes compared against block status per image. */
#define ORACLE_BUDGET (4u << 20)

static uint8_t *rbuf, *rbuf2;
/*
 * FUZZ_KNOWN_BUGS (environment; fuzz.mk sets it): tags of reported, unfixed
 * libvhd bugs whose oracle is relaxed, so that fuzzing gets past them.
 * Without it (make fuzz-pending) every oracle is strict.
 *   extent-merge: block status merges back-to-back blocks into one extent
 *                 whose file_offset mapping ignores the bitmaps between.
 *   locator-past-eof: a writer puts new blocks over a parent locator whose
 *                 data lay past the end of the file; the image then no
 *                 longer opens ("inside a parent locator").
 *   fixed-footer-copy: the checker judges a fixed image's first sector (guest
 *                 data) as a footer copy when it starts with "conectix".
 *   compact-stale-size: vhd_compact reports as file_size_before the size
 *                 the file had when it was opened, not its size now.
 *   resize-exposes-parent: growing a child smaller than its parent shows the
 *                 parent's data in the new area instead of zeros.
 *   compact-dry-run-size: a dry run of vhd_compact foretells a file size
 *                 (the first block slot after the metadata) that the real
 *                 run does not produce when the file is already smaller.
 *   resize-fixed-stale-footer: resizing a fixed image whose footer lies past
 *                 its virtual size (slack bytes, or a CHS-sized disk) leaves
 *                 the old footer and the slack inside the grown disk, and
 *                 when the old footer stays the file's last 512 bytes, the
 *                 image has its old size again once reopened.
 *   resize-bat-over-footer, resize-bat-padding: a resize that enlarges the
 *                 BAT writes it over the end footer when nothing had to
 *                 move; and a grow frees the entries it brings into use
 *                 only in memory, leaving on disk what was there (the unused
 *                 tail of the last BAT sector, declared but unused entries):
 *                 zeros map blocks at offset 0, other values foreign data.
 */
static bool known_extent_merge, known_locator_past_eof, known_fixed_footer_copy;
static bool known_compact_stale_size, known_resize_exposes_parent, known_resize_bat;
static bool known_compact_dry_run_size, known_resize_fixed_stale;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	rbuf = malloc(MAX_READ);
	rbuf2 = malloc(MAX_READ);
	if (!rbuf || !rbuf2)
		abort();
	fz_init_parents();
	const char *known = getenv("FUZZ_KNOWN_BUGS");
	known_extent_merge = known && strstr(known, "extent-merge");
	known_locator_past_eof = known && strstr(known, "locator-past-eof");
	known_fixed_footer_copy = known && strstr(known, "fixed-footer-copy");
	known_compact_stale_size = known && strstr(known, "compact-stale-size");
	known_compact_dry_run_size = known && strstr(known, "compact-dry-run-size");
	known_resize_fixed_stale = known && strstr(known, "resize-fixed-stale-footer");
	known_resize_exposes_parent = known && strstr(known, "resize-exposes-parent");
	known_resize_bat = known && (strstr(known, "resize-bat-over-footer") ||
				     strstr(known, "resize-bat-padding"));
	return 0;
}

/* murmur3's finalizer: every output bit depends on every input bit. */
static uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return x;
}

FZ_NO_COVERAGE static uint32_t hash(const uint8_t *d, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ d[i]) * 16777619u;
	return h;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return fz_all_zero(p, n);
}

/* Read [off, off + len) (len <= MAX_READ); the result is checked against
 * the disk size. */
static int read_range(struct vhd_image *img, uint64_t off, size_t len)
{
	uint64_t vsize = vhd_virtual_size(img);
	int r = vhd_pread(img, rbuf, len, off);
	if (!vhd_range_ok(off, len, vsize))
		FZ_CHECK(r == -EINVAL);
	FZ_CHECK(r <= 0);
	return r;
}

/* Walk the disk with block status; check what the extents promise. */
static void walk_extents(struct vhd_image *img, const uint8_t *file, size_t file_len)
{
	uint64_t vsize = vhd_virtual_size(img), off = 0;
	uint64_t budget = ORACLE_BUDGET;
	struct vhd_extent ext;
	struct vhd_info info;
	vhd_get_info(img, &info);

	for (int i = 0; i < MAX_EXTENTS && off < vsize; i++) {
		memset(&ext, 0xA5, sizeof(ext));
		int r = vhd_block_status(img, off, vsize - off, &ext);
		if (r < 0) {
			FZ_CHECK(fz_terminated(vhd_errmsg(img), 512));
			break;
		}
		FZ_CHECK(r == 0);
		FZ_CHECK(ext.length >= 1 && ext.length <= vsize - off);
		FZ_CHECK(ext.flags & (VHD_EXTENT_DATA | VHD_EXTENT_ZERO));
		FZ_CHECK(ext.depth >= 0 && ext.depth <= VHD_MAX_CHAIN_DEPTH);
		if (!(ext.flags & VHD_EXTENT_DATA))
			FZ_CHECK(ext.file_offset == UINT64_MAX);

		size_t n = (size_t)vhd_min_u64(ext.length, vhd_min_u64(budget, 64u << 10));
		if (n && ((ext.flags & VHD_EXTENT_ZERO) ||
			  (ext.depth == 0 && ext.file_offset != UINT64_MAX && file))) {
			budget -= n;
			int rr = vhd_pread(img, rbuf, n, off);
			if (rr == 0 && (ext.flags & VHD_EXTENT_ZERO))
				FZ_CHECK(all_zero(rbuf, n));
			if (rr == 0 && ext.depth == 0 && ext.file_offset != UINT64_MAX && file) {
				size_t m = n;
				if (known_extent_merge && info.block_size)
					m = (size_t)vhd_min_u64(n, info.block_size - off % info.block_size);
				FZ_CHECK(vhd_range_ok(ext.file_offset, m, file_len));
				FZ_CHECK(memcmp(rbuf, file + ext.file_offset, m) == 0);
			}
		}
		/* A short query inside the extent agrees with it. */
		if (ext.length > 1) {
			struct vhd_extent e2;
			uint64_t mid = off + ext.length / 2;
			if (vhd_block_status(img, mid, 1, &e2) == 0) {
				FZ_CHECK(e2.length == 1);
				FZ_CHECK((e2.flags & VHD_EXTENT_ZERO) == (ext.flags & VHD_EXTENT_ZERO));
			}
		}
		off += ext.length;
	}
	/* Outside the disk: refused. */
	FZ_CHECK(vhd_block_status(img, vsize, 1, &ext) < 0);
	if (vsize)
		FZ_CHECK(vhd_block_status(img, 0, 0, &ext) < 0);
}

static void exercise(struct vhd_image *img, const uint8_t *file, size_t file_len,
		     const uint8_t *data, size_t size)
{
	struct vhd_info info;
	FZ_CHECK(vhd_get_info(img, &info) == 0);
	uint64_t vsize = vhd_virtual_size(img);
	FZ_CHECK(info.virtual_size == vsize);
	FZ_CHECK(info.type == vhd_get_type(img));
	FZ_CHECK(info.type == VHD_TYPE_FIXED || info.type == VHD_TYPE_DYNAMIC ||
		 info.type == VHD_TYPE_DIFFERENCING);
	FZ_CHECK(info.footer_size == 512 || info.footer_size == 511);
	FZ_CHECK(fz_terminated(info.creator_app, sizeof(info.creator_app)));
	FZ_CHECK(fz_terminated(info.parent_name, sizeof(info.parent_name)));
	FZ_CHECK(info.allocated_blocks <= info.max_table_entries || info.type == VHD_TYPE_FIXED);
	if (info.type == VHD_TYPE_FIXED)
		FZ_CHECK(vsize <= info.file_size);
	FZ_CHECK(fz_terminated(vhd_warnings(img), 1024));
	FZ_CHECK(fz_terminated(vhd_errmsg(img), 512));
	(void)vhd_filename(img);
	char copy[40];
	vhd_errmsg_copy(img, copy, sizeof(copy));
	FZ_CHECK(fz_terminated(copy, sizeof(copy)));
	char uuid[37];
	vhd_uuid_text(info.uuid, uuid);
	FZ_CHECK(strlen(uuid) == 36);
	(void)vhd_timestamp_to_unix(info.timestamp);

	/* Locators. */
	int nloc = vhd_locator_count(img);
	FZ_CHECK(nloc >= 0 && nloc <= 8);
	for (int i = 0; i < nloc; i++) {
		struct vhd_locator loc;
		FZ_CHECK(vhd_get_locator(img, i, &loc) == 0);
		FZ_CHECK(fz_terminated(loc.code, sizeof(loc.code)) && strlen(loc.code) == 4);
		FZ_CHECK(fz_terminated(loc.path, sizeof(loc.path)));
		FZ_CHECK(loc.valid == (loc.path[0] != '\0'));
	}
	struct vhd_locator loc;
	FZ_CHECK(vhd_get_locator(img, nloc, &loc) < 0);
	FZ_CHECK(vhd_get_locator(img, -1, &loc) < 0);
	if (vhd_parent(img)) {
		FZ_CHECK(vhd_parent_path(img) != NULL);
		FZ_CHECK(vhd_get_type(img) == VHD_TYPE_DIFFERENCING);
	}

	walk_extents(img, file, file_len);

	/* Reads: the first and last 64 KiB, a range the input picks, edges. */
	size_t head = (size_t)vhd_min_u64(vsize, 64u << 10);
	if (read_range(img, 0, head) == 0 && head) {
		/* Reading in two pieces gives the same bytes. */
		memcpy(rbuf2, rbuf, head);
		size_t cut = head / 3 + 1;
		if (vhd_pread(img, rbuf, cut, 0) == 0 &&
		    vhd_pread(img, rbuf + cut, head - cut, cut) == 0)
			FZ_CHECK(memcmp(rbuf, rbuf2, head) == 0);
	}
	read_range(img, vsize - head, head);
	uint32_t h = hash(data, size < 256 ? size : 256);
	if (vsize) {
		uint64_t off = ((uint64_t)h * 2654435761u) % vsize;
		size_t len = (size_t)vhd_min_u64(vsize - off, (h % MAX_READ) + 1);
		read_range(img, off, len);
		uint64_t odd = off | 511;
		if (odd < vsize)
			read_range(img, odd, (size_t)vhd_min_u64(3, vsize - odd));
	}
	FZ_CHECK(vhd_pread(img, rbuf, 1, vsize) < 0);
	FZ_CHECK(vhd_pread(img, rbuf, 2, UINT64_MAX) < 0);
	FZ_CHECK(vhd_pread(img, rbuf, 0, vsize) == 0);

	/* Again, now that reads have learnt which blocks are full. */
	walk_extents(img, file, file_len);
}

static void progress(void *opaque, uint64_t done, uint64_t total)
{
	(void)opaque;
	FZ_CHECK(done <= total);
}

/* The window of the disk the write path works in, and what it must hold. */
struct window {
	uint64_t lo;
	size_t len;
	uint8_t *model;
};

static void window_check(struct vhd_image *img, const struct window *w)
{
	FZ_CHECK(vhd_pread(img, rbuf2, w->len, w->lo) == 0);
	FZ_CHECK(memcmp(rbuf2, w->model, w->len) == 0);
}

/* State of the write path on one read-write image. */
struct writer {
	struct vhd_image *img;
	struct vhd_io *mem;
	struct vhd_info info;
	uint64_t vsize;
	struct window w;
	bool changed;           /* some operation succeeded */
	bool bat_grown;         /* a resize made the BAT larger */
	bool fixed_resized;     /* a fixed image changed size */
};

/* 1. pwrite: anywhere in the window, up to 4.5 KiB. */
static bool op_pwrite(struct writer *wr, uint32_t h)
{
	struct window *w = &wr->w;
	uint8_t pat[4096 + 512];
	size_t off = h % w->len;
	size_t len = (size_t)vhd_min_u64(w->len - off, 1 + (h >> 8) % sizeof(pat));
	for (size_t i = 0; i < len; i++)
		pat[i] = (uint8_t)((i * 13 + 7 + (h >> 24)) | 1);
	int r = vhd_pwrite(wr->img, pat, len, w->lo + off);
	FZ_CHECK(r <= 0);
	if (r < 0)
		return false;
	memcpy(w->model + off, pat, len);
	window_check(wr->img, w);
	return true;
}

/* After an operation that may drop [off, off + len) of the window: the
 * rest is unchanged, that range holds its old bytes or zeros. */
static void take_dropped(struct writer *wr, size_t off, size_t len)
{
	struct window *w = &wr->w;
	FZ_CHECK(vhd_pread(wr->img, rbuf2, w->len, w->lo) == 0);
	for (size_t i = 0; i < w->len; i++)
		FZ_CHECK(rbuf2[i] == w->model[i] || (rbuf2[i] == 0 && i >= off && i < off + len));
	memcpy(w->model, rbuf2, w->len);
}

/* 2. vhd_zero: a range or the whole window. */
static bool op_zero(struct writer *wr, uint32_t h)
{
	struct window *w = &wr->w;
	unsigned flags = (h >> 1) & (VHD_ZERO_MAY_UNMAP | VHD_ZERO_FAST);
	size_t off = (h & 2) ? 0 : (h >> 8) % w->len;
	size_t len = (h & 2) ? w->len : (size_t)vhd_min_u64(w->len - off, 1 + (h >> 4) % 9000);
	int r = vhd_zero(wr->img, w->lo + off, len, flags);
	FZ_CHECK(r <= 0);
	if (r == 0) {
		memset(w->model + off, 0, len);
		window_check(wr->img, w);
		return true;
	}
	if (r == -ENOTSUP && (flags & VHD_ZERO_FAST)) {
		/* Parts may be zeroed already. */
		take_dropped(wr, off, len);
		return true;
	}
	return false;
}

/* 3. vhd_discard: contents may go (read as zeros), nothing else may. */
static bool op_discard(struct writer *wr, uint32_t h)
{
	struct window *w = &wr->w;
	size_t off = (h >> 12) % w->len;
	size_t len = (h & 32) ? w->len - off : (size_t)vhd_min_u64(w->len - off, 1 + (h >> 5) % 20000);
	int r = vhd_discard(wr->img, w->lo + off, len);
	FZ_CHECK(r <= 0);
	if (r < 0)
		return false;
	take_dropped(wr, off, len);
	return true;
}

/* 4. vhd_resize: grow by up to 1 MiB, or shrink to just past the window;
 * what was there stays, what is new reads as zeros. */
static bool op_resize(struct writer *wr, uint32_t h)
{
	struct window *w = &wr->w;
	uint64_t new_size;
	unsigned flags = 0;
	if (h & 2) {
		new_size = (w->lo + w->len + 511) / 512 * 512;
		flags = VHD_RESIZE_SHRINK | ((h & 4) ? VHD_RESIZE_FORCE : 0);
	} else {
		new_size = wr->vsize + 512 * (1 + (uint64_t)(h >> 9) % 2048);
	}
	struct vhd_info before;
	FZ_CHECK(vhd_get_info(wr->img, &before) == 0);
	int r = vhd_resize(wr->img, new_size, flags);
	FZ_CHECK(r <= 0);
	if (r < 0) {
		/* Refused: the size did not change. */
		FZ_CHECK(vhd_virtual_size(wr->img) == wr->vsize);
		return false;
	}
	FZ_CHECK(vhd_virtual_size(wr->img) == new_size);
	wr->fixed_resized = wr->info.type == VHD_TYPE_FIXED;
	struct vhd_info after;
	FZ_CHECK(vhd_get_info(wr->img, &after) == 0);
	if (after.max_table_entries > before.max_table_entries ||
	    (after.block_size &&
	     vhd_bat_entries_needed(new_size, after.block_size) >
		     vhd_bat_entries_needed(wr->vsize, after.block_size)))
		wr->bat_grown = true;
	if (new_size > wr->vsize &&
	    !(known_resize_exposes_parent && wr->info.type == VHD_TYPE_DIFFERENCING) &&
	    !(known_resize_fixed_stale && wr->info.type == VHD_TYPE_FIXED)) {
		size_t n = (size_t)vhd_min_u64(new_size - wr->vsize, 64u << 10);
		FZ_CHECK(vhd_pread(wr->img, rbuf2, n, wr->vsize) == 0);
		FZ_CHECK(all_zero(rbuf2, n));
	}
	wr->vsize = new_size;
	window_check(wr->img, w);
	return true;
}

/* 5. vhd_compact: space comes back, contents stay. */
static bool op_compact(struct writer *wr, uint32_t h)
{
	struct vhd_compact_result res;
	unsigned flags = (h & 2) ? VHD_COMPACT_DRY_RUN : 0;
	size_t before, after;
	vhd_io_mem_data(wr->mem, &before);
	int r = vhd_compact(wr->img, flags, progress, NULL, &res);
	FZ_CHECK(r <= 0);
	if (r < 0)
		return false;
	FZ_CHECK(vhd_virtual_size(wr->img) == wr->vsize);
	window_check(wr->img, &wr->w);
	vhd_io_mem_data(wr->mem, &after);
	if (!known_compact_stale_size && !(wr->fixed_resized && known_resize_fixed_stale))
		FZ_CHECK(res.file_size_before == before);
	if (flags & VHD_COMPACT_DRY_RUN) {
		/* Nothing changed; then the real run does what was foretold. */
		FZ_CHECK(after == before);
		struct vhd_compact_result real;
		r = vhd_compact(wr->img, 0, progress, NULL, &real);
		FZ_CHECK(r <= 0);
		if (r < 0)
			return false;
		window_check(wr->img, &wr->w);
		FZ_CHECK(real.blocks_freed == res.blocks_freed);
		FZ_CHECK(real.sectors_released == res.sectors_released);
		FZ_CHECK(real.blocks_moved == res.blocks_moved);
		if (!known_compact_dry_run_size)
			FZ_CHECK(real.file_size_after == res.file_size_after);
		res = real;
	}
	vhd_io_mem_data(wr->mem, &after);
	if (!(wr->fixed_resized && known_resize_fixed_stale))
		FZ_CHECK(res.file_size_after == after && after <= before);
	return true;
}

/*
 * Writes through the public API on a read-write copy: up to five
 * operations that the input's hash picks (pwrite, vhd_zero, vhd_discard,
 * vhd_resize: grow or shrink to just past the window, vhd_compact) inside
 * a small window whose contents are modelled; then flush, close, the
 * checker, a reopen and the window once more.
 */
static void write_path(const uint8_t *data, size_t size, bool sound)
{
	struct vhd_error err;
	struct writer wr;

	memset(&wr, 0, sizeof(wr));
	if (vhd_io_mem_open(data, size, &wr.mem) < 0)
		abort();
	struct vhd_io *io = fz_borrow_open(wr.mem, data, size);
	int r = vhd_open_io(io, VHD_OPEN_RDWR | VHD_OPEN_IGNORE_PARENT_ID | VHD_OPEN_PARENT_OPTIONAL,
			    &wr.img, &err);
	if (r < 0) {
		FZ_CHECK(fz_terminated(err.message, sizeof(err.message)) && err.code == r);
		vhd_io_close(wr.mem);
		return;
	}
	struct vhd_image *img = wr.img;
	FZ_CHECK(vhd_get_info(img, &wr.info) == 0);
	wr.vsize = vhd_virtual_size(img);
	/* New blocks make the file grow by four blocks at a time: keep memory
	 * bounded by writing only where blocks are small. */
	bool ok = !wr.info.read_only && wr.vsize &&
		  (wr.info.type == VHD_TYPE_FIXED || wr.info.block_size <= (2u << 20));
	size_t mlen;
	const uint8_t *file = vhd_io_mem_data(wr.mem, &mlen);
	exercise(img, file, mlen, data, size);
	if (wr.info.read_only)
		FZ_CHECK(vhd_pwrite(img, rbuf, 1, 0) == -EROFS);

	uint32_t h = hash(data + size / 2, size - size / 2 < 64 ? size - size / 2 : 64);
	struct window *w = &wr.w;
	if (ok) {
		uint64_t bs = wr.info.block_size ? wr.info.block_size : 16u << 10;
		uint64_t want = bs * 2 > (16u << 10) ? bs * 2 : 16u << 10;
		w->lo = (uint64_t)h * 40503u % wr.vsize / bs * bs;
		w->len = (size_t)vhd_min_u64(vhd_min_u64(wr.vsize - w->lo, want), MAX_READ);
		w->model = malloc(w->len);
		if (!w->model)
			abort();
		if (vhd_pread(img, w->model, w->len, w->lo) < 0)
			ok = false;     /* a differencing image without its parent */
	}
	/* Operations: three bits each; 0..4 pick one, 5..7 none. */
	uint32_t ops = mix32(h ^ 0xa5a5a5a5u);
	for (int k = 0; ok && k < 5; k++, ops >>= 3) {
		uint32_t hk = mix32(h + 0x9e3779b9u * (uint32_t)(k + 1));
		bool done;
		switch (ops & 7) {
		case 0: done = op_pwrite(&wr, hk); break;
		case 1: done = op_zero(&wr, hk); break;
		case 2: done = op_discard(&wr, hk); break;
		case 3: done = op_resize(&wr, hk); break;
		case 4: done = op_compact(&wr, hk); break;
		default: continue;
		}
		ok = done;
		wr.changed = wr.changed || done;
	}
	if (wr.changed) {
		r = vhd_flush(img);
		FZ_CHECK(r == 0 || !ok);
		if (ok)
			window_check(img, w);
		file = vhd_io_mem_data(wr.mem, &mlen);
		walk_extents(img, file, mlen);
	}
	r = vhd_close(img);
	if (ok)
		FZ_CHECK(r == 0);
	/* A known resize bug leaves the file damaged: skip what follows. */
	bool damaged = (wr.bat_grown && known_resize_bat) ||
		       (wr.fixed_resized && known_resize_fixed_stale);

	/* The bytes the close left behind. */
	const uint8_t *out = vhd_io_mem_data(wr.mem, &mlen);
	struct vhd_check_report rep;
	if (vhd_check_io(wr.mem, false, &rep) == 0) {
		unsigned corruptions = rep.corruptions;
		for (size_t i = 0; i < rep.count; i++)
			if (known_fixed_footer_copy && rep.type == VHD_TYPE_FIXED &&
			    rep.findings[i].kind == VHD_FINDING_CORRUPTION &&
			    strcmp(rep.findings[i].structure, "footer-copy") == 0)
				corruptions--;
		if (sound && ok && !damaged)
			FZ_CHECK(corruptions == 0);
		vhd_check_report_free(&rep);
	}
	if (ok && wr.changed && !damaged) {
		struct vhd_io *view = fz_view_open(out, mlen, FZ_SIB_BUILTIN, data, size);
		r = vhd_open_io(view, VHD_OPEN_IGNORE_PARENT_ID | VHD_OPEN_PARENT_OPTIONAL, &img, &err);
		if (r < 0 && known_locator_past_eof && strstr(err.message, "inside a parent locator"))
			goto out;
		if (r < 0)
			fprintf(stderr, "reopen after the writes failed: %s\n", err.message);
		FZ_CHECK(r == 0);
		FZ_CHECK(vhd_virtual_size(img) == wr.vsize);
		window_check(img, w);
		vhd_close(img);
	}
out:
	free(w->model);
	vhd_io_close(wr.mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhd_io *io;
	struct vhd_image *img;
	struct vhd_error err;

	/* 1. The memory backend, default flags. */
	if (vhd_io_mem_open(data, size, &io) < 0)
		abort();
	int r = vhd_open_io(io, 0, &img, &err);
	bool diff = false;
	if (r == 0) {
		size_t mlen;
		const uint8_t *file = vhd_io_mem_data(io, &mlen);
		FZ_CHECK(mlen == size);
		FZ_CHECK(fz_terminated(err.message, sizeof(err.message)));
		exercise(img, file, mlen, data, size);
		FZ_CHECK(vhd_pwrite(img, rbuf, 1, 0) == -EROFS);
		FZ_CHECK(vhd_flush(img) == 0);
		diff = vhd_get_type(img) == VHD_TYPE_DIFFERENCING;
		vhd_close(img);
	} else {
		FZ_CHECK(err.code == r && err.message[0] != '\0');
		FZ_CHECK(fz_terminated(err.message, sizeof(err.message)));
		/* A differencing image whose parent this backend cannot open. */
		diff = r == -ENOTSUP;
	}

	/* 2. Differencing: a view that finds (built-in) parents. */
	if (diff) {
		io = fz_view_open(data, size, FZ_SIB_BUILTIN, data, size);
		r = vhd_open_io(io, VHD_OPEN_IGNORE_PARENT_ID, &img, &err);
		if (r < 0) {
			FZ_CHECK(fz_terminated(err.message, sizeof(err.message)));
			io = fz_view_open(data, size, FZ_SIB_BUILTIN, data, size);
			r = vhd_open_io(io, VHD_OPEN_PARENT_OPTIONAL, &img, &err);
		}
		if (r == 0) {
			exercise(img, data, size, data, size);
			vhd_close(img);
		}
	}

	/* 3. Read-write on a copy.  "sound": the checker found no corruption. */
	struct vhd_check_report rep;
	bool sound = false;
	if (vhd_io_mem_open(data, size, &io) < 0)
		abort();
	if (vhd_check_io(io, false, &rep) == 0) {
		sound = rep.corruptions == 0 && rep.complete;
		vhd_check_report_free(&rep);
	}
	vhd_io_close(io);
	write_path(data, size, sound);
	return 0;
}
