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

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	rbuf = malloc(MAX_READ);
	rbuf2 = malloc(MAX_READ);
	if (!rbuf || !rbuf2)
		abort();
	fz_init_parents();
	return 0;
}

static uint32_t hash(const uint8_t *d, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ d[i]) * 16777619u;
	return h;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
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
				FZ_CHECK(vhd_range_ok(ext.file_offset, n, file_len));
				FZ_CHECK(memcmp(rbuf, file + ext.file_offset, n) == 0);
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
}

/* A write, read back, close, check, reopen, read back. */
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
	vhd_get_info(img, &info);
	uint64_t vsize = vhd_virtual_size(img);
	/* New blocks make the file grow by four blocks at a time: keep memory
	 * bounded by writing only where blocks are small. */
	bool can_write = !info.read_only && vsize &&
			 (info.type == VHD_TYPE_FIXED || info.block_size <= (2u << 20));
	size_t mlen;
	const uint8_t *file = vhd_io_mem_data(mem, &mlen);
	exercise(img, file, mlen, data, size);

	uint64_t off = 0;
	size_t len = 0;
	uint8_t pat[4096 + 512];
	int w = -1;
	if (can_write) {
		uint32_t h = hash(data + size / 2, size - size / 2 < 64 ? size - size / 2 : 64);
		off = (uint64_t)h * 40503u % vsize;
		len = (size_t)vhd_min_u64(vsize - off, 1 + h % sizeof(pat));
		for (size_t i = 0; i < len; i++)
			pat[i] = (uint8_t)(i * 13 + 7) | 1;
		w = vhd_pwrite(img, pat, len, off);
		FZ_CHECK(w <= 0);
		if (w == 0) {
			FZ_CHECK(vhd_flush(img) == 0);
			FZ_CHECK(vhd_pread(img, rbuf, len, off) == 0);
			FZ_CHECK(memcmp(rbuf, pat, len) == 0);
			file = vhd_io_mem_data(mem, &mlen);
			walk_extents(img, file, mlen);
		}
	} else if (info.read_only) {
		FZ_CHECK(vhd_pwrite(img, pat, 1, 0) == -EROFS);
	}
	r = vhd_close(img);
	if (w == 0)
		FZ_CHECK(r == 0);

	/* The bytes the close left behind. */
	const uint8_t *out = vhd_io_mem_data(mem, &mlen);
	struct vhd_check_report rep;
	if (vhd_check_io(mem, false, &rep) == 0) {
		if (sound && w == 0)
			FZ_CHECK(rep.corruptions == 0);
		vhd_check_report_free(&rep);
	}
	if (w == 0) {
		struct vhd_io *view = fz_view_open(out, mlen, FZ_SIB_BUILTIN, data, size);
		r = vhd_open_io(view, VHD_OPEN_IGNORE_PARENT_ID | VHD_OPEN_PARENT_OPTIONAL, &img, &err);
		FZ_CHECK(r == 0);
		FZ_CHECK(vhd_virtual_size(img) == vsize);
		FZ_CHECK(vhd_pread(img, rbuf, len, off) == 0);
		FZ_CHECK(memcmp(rbuf, pat, len) == 0);
		vhd_close(img);
	}
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
