/* SPDX-License-Identifier: MIT */
/*
 * The whole open and read path over the input as a VHD file: footer choice,
 * header, BAT, sector bitmaps, block status, reads, locators and parents;
 * then a read-write open of a copy: a small write, flush, close, and the
 * checker over the result.
 *
 * Oracles besides the sanitizers:
 *   - block status answers cover the disk in order, each at least a byte;
 *   - a range that block status calls zero reads as zeros;
 *   - a range this layer holds (depth 0) reads as the file's bytes there;
 *   - after a write, the range reads back as written, before and after a
 *     close and reopen; an image the checker found sound stays sound.
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
 */
static bool known_extent_merge, known_locator_past_eof, known_fixed_footer_copy;

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
	return 0;
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

/*
 * Writes through the public API on a read-write copy: a pwrite, then
 * (as the input's hash picks) a vhd_zero and a vhd_discard, all inside a
 * small window whose contents are modelled; then flush, close, the checker,
 * a reopen and the window once more.
 */
static void write_path(const uint8_t *data, size_t size, bool sound)
{
	struct vhd_io *mem;
	struct vhd_image *img;
	struct vhd_error err;

	if (vhd_io_mem_open(data, size, &mem) < 0)
		abort();
	struct vhd_io *io = fz_borrow_open(mem, data, size);
	int r = vhd_open_io(io, VHD_OPEN_RDWR | VHD_OPEN_IGNORE_PARENT_ID | VHD_OPEN_PARENT_OPTIONAL,
			    &img, &err);
	if (r < 0) {
		FZ_CHECK(fz_terminated(err.message, sizeof(err.message)) && err.code == r);
		vhd_io_close(mem);
		return;
	}
	struct vhd_info info;
	FZ_CHECK(vhd_get_info(img, &info) == 0);
	uint64_t vsize = vhd_virtual_size(img);
	/* New blocks make the file grow by four blocks at a time: keep memory
	 * bounded by writing only where blocks are small. */
	bool can_write = !info.read_only && vsize &&
			 (info.type == VHD_TYPE_FIXED || info.block_size <= (2u << 20));
	size_t mlen;
	const uint8_t *file = vhd_io_mem_data(mem, &mlen);
	exercise(img, file, mlen, data, size);
	if (info.read_only)
		FZ_CHECK(vhd_pwrite(img, rbuf, 1, 0) == -EROFS);

	uint32_t h = hash(data + size / 2, size - size / 2 < 64 ? size - size / 2 : 64);
	uint32_t h2 = h * 2654435761u ^ (uint32_t)size;
	struct window w = { 0, 0, NULL };
	bool wrote = false, ok = can_write;
	if (can_write) {
		uint64_t bs = info.block_size ? info.block_size : 16u << 10;
		uint64_t want = bs * 2 > (16u << 10) ? bs * 2 : 16u << 10;
		w.lo = (uint64_t)h * 40503u % vsize / bs * bs;
		w.len = (size_t)vhd_min_u64(vhd_min_u64(vsize - w.lo, want), MAX_READ);
		w.model = malloc(w.len);
		if (!w.model)
			abort();
		if (vhd_pread(img, w.model, w.len, w.lo) < 0)
			ok = false;     /* a differencing image without its parent */
	}
	if (ok) {
		/* 1. pwrite: anywhere in the window, up to 4.5 KiB. */
		uint8_t pat[4096 + 512];
		size_t off = h % w.len;
		size_t len = (size_t)vhd_min_u64(w.len - off, 1 + (h >> 8) % sizeof(pat));
		for (size_t i = 0; i < len; i++)
			pat[i] = (uint8_t)((i * 13 + 7) | 1);
		r = vhd_pwrite(img, pat, len, w.lo + off);
		FZ_CHECK(r <= 0);
		if (r == 0) {
			wrote = true;
			memcpy(w.model + off, pat, len);
			window_check(img, &w);
		} else {
			ok = false;
		}
	}
	if (ok && (h2 & 1)) {
		/* 2. vhd_zero: a range or the whole window. */
		unsigned flags = (h2 >> 1) & (VHD_ZERO_MAY_UNMAP | VHD_ZERO_FAST);
		size_t off = (h2 & 2) ? 0 : (h2 >> 8) % w.len;
		size_t len = (h2 & 2) ? w.len : (size_t)vhd_min_u64(w.len - off, 1 + (h2 >> 4) % 9000);
		r = vhd_zero(img, w.lo + off, len, flags);
		FZ_CHECK(r <= 0);
		if (r == 0) {
			memset(w.model + off, 0, len);
			window_check(img, &w);
		} else if (r == -ENOTSUP && (flags & VHD_ZERO_FAST)) {
			/* Parts may be zeroed already: take what is there, then
			 * check it is old data or zeros. */
			FZ_CHECK(vhd_pread(img, rbuf2, w.len, w.lo) == 0);
			for (size_t i = 0; i < w.len; i++)
				FZ_CHECK(rbuf2[i] == w.model[i] || (rbuf2[i] == 0 && i >= off && i < off + len));
			memcpy(w.model, rbuf2, w.len);
		} else {
			ok = false;
		}
	}
	if (ok && (h2 & 16)) {
		/* 3. vhd_discard: contents may go (read as zeros), nothing else may. */
		size_t off = (h2 >> 12) % w.len;
		size_t len = (h2 & 32) ? w.len - off : (size_t)vhd_min_u64(w.len - off, 1 + (h2 >> 5) % 20000);
		r = vhd_discard(img, w.lo + off, len);
		FZ_CHECK(r <= 0);
		if (r == 0) {
			FZ_CHECK(vhd_pread(img, rbuf2, w.len, w.lo) == 0);
			for (size_t i = 0; i < w.len; i++)
				FZ_CHECK(rbuf2[i] == w.model[i] || (rbuf2[i] == 0 && i >= off && i < off + len));
			memcpy(w.model, rbuf2, w.len);
		} else {
			ok = false;
		}
	}
	if (wrote) {
		r = vhd_flush(img);
		FZ_CHECK(r == 0 || !ok);
		if (ok)
			window_check(img, &w);
		file = vhd_io_mem_data(mem, &mlen);
		walk_extents(img, file, mlen);
	}
	r = vhd_close(img);
	if (ok)
		FZ_CHECK(r == 0);

	/* The bytes the close left behind. */
	const uint8_t *out = vhd_io_mem_data(mem, &mlen);
	struct vhd_check_report rep;
	if (vhd_check_io(mem, false, &rep) == 0) {
		unsigned corruptions = rep.corruptions;
		for (size_t i = 0; i < rep.count; i++)
			if (known_fixed_footer_copy && rep.type == VHD_TYPE_FIXED &&
			    rep.findings[i].kind == VHD_FINDING_CORRUPTION &&
			    strcmp(rep.findings[i].structure, "footer-copy") == 0)
				corruptions--;
		if (sound && ok)
			FZ_CHECK(corruptions == 0);
		vhd_check_report_free(&rep);
	}
	if (ok && wrote) {
		struct vhd_io *view = fz_view_open(out, mlen, FZ_SIB_BUILTIN, data, size);
		r = vhd_open_io(view, VHD_OPEN_IGNORE_PARENT_ID | VHD_OPEN_PARENT_OPTIONAL, &img, &err);
		if (r < 0 && known_locator_past_eof && strstr(err.message, "inside a parent locator"))
			goto out;
		if (r < 0)
			fprintf(stderr, "reopen after the write failed: %s\n", err.message);
		FZ_CHECK(r == 0);
		FZ_CHECK(vhd_virtual_size(img) == vsize);
		window_check(img, &w);
		vhd_close(img);
	}
out:
	free(w.model);
	vhd_io_close(mem);
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
