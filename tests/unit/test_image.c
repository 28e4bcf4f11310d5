/* SPDX-License-Identifier: MIT */
/* create.c, open.c, rw.c, info.c through the memory backend. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

static int try_create(enum vhd_type type, uint64_t size, uint32_t bs, struct vhd_error *err)
{
	struct vhd_io *io;
	struct vhd_image *img = NULL;
	struct vhd_create_params p = { .type = type, .size = size, .block_size = bs };
	cr_assert_eq(vhd_io_mem_open(NULL, 0, &io), 0);
	memset(err, 0, sizeof(*err));
	int r = vhd_create_io(io, &p, NULL, &img, err);
	if (r == 0) {
		cr_assert_not_null(img);
		cr_assert_eq(vhd_close(img), 0);
	} else {
		cr_assert_null(img);
	}
	return r;
}

/* No corruption; with no_leaks (a file vhd_close left) no leaks either. */
static void expect_check(const uint8_t *b, size_t len, bool no_leaks)
{
	struct vhd_check_report rep;
	cr_assert_eq(t_check_bytes(b, len, &rep), 0);
	cr_assert_eq(rep.corruptions, 0u, "%s", t_report_text(&rep));
	cr_assert(rep.complete, "%s", t_report_text(&rep));
	if (no_leaks)
		cr_assert_eq(rep.leaks, 0u, "%s", t_report_text(&rep));
	vhd_check_report_free(&rep);
}

static void expect_clean(const uint8_t *b, size_t len)
{
	expect_check(b, len, true);
}

Test(image, create_and_reopen_many_sizes)
{
	const uint64_t sizes[] = { 512, 1024, 1536, 4096 + 512, 512 * 1023, T_MIB - 512, T_MIB,
				   2 * T_MIB - 512, 2 * T_MIB, 2 * T_MIB + 512, 5 * T_MIB + 1536,
				   20 * T_MIB + 3 * 512, 33 * T_MIB - 512 * 7 };
	const enum vhd_type types[] = { VHD_TYPE_FIXED, VHD_TYPE_DYNAMIC };
	for (size_t t = 0; t < 2; t++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t len;
			uint8_t *b = t_create_bytes(types[t], sizes[i], 0, &len);
			if (types[t] == VHD_TYPE_FIXED)
				cr_assert_eq(len, sizes[i] + 512);
			struct vhd_image *img;
			struct vhd_error err;
			struct vhd_io *keep;
			cr_assert_eq(t_open_bytes_keep(b, len, VHD_OPEN_RDWR, &img, &err, &keep), 0, "%s",
				     err.message);
			cr_assert_eq(vhd_get_type(img), types[t]);
			cr_assert_eq(vhd_virtual_size(img), sizes[i]);
			cr_assert_str_eq(vhd_warnings(img), "");
			struct vhd_info info;
			cr_assert_eq(vhd_get_info(img, &info), 0);
			cr_assert_eq(info.virtual_size, sizes[i]);
			cr_assert_eq(info.current_size, sizes[i]);
			cr_assert_eq(info.file_size, len);
			cr_assert(info.footer_checksum_ok);
			cr_assert(info.header_checksum_ok);
			cr_assert_eq(info.footer_size, 512u);
			cr_assert(!info.footer_from_copy);
			cr_assert(!info.read_only);
			if (types[t] == VHD_TYPE_DYNAMIC) {
				cr_assert_eq(info.block_size, VHD_DEFAULT_BLOCK_SIZE);
				cr_assert_eq(info.allocated_blocks, 0u);
				cr_assert_eq(info.max_table_entries,
					     vhd_bat_entries_needed(sizes[i], VHD_DEFAULT_BLOCK_SIZE));
			}
			/* The last sector is readable and writable, the next is not. */
			uint8_t sec[512], back[512];
			t_fill(sec, sizeof(sec), i);
			cr_assert_eq(vhd_pwrite(img, sec, 512, sizes[i] - 512), 0, "%s", vhd_errmsg(img));
			cr_assert_eq(vhd_pread(img, back, 512, sizes[i] - 512), 0);
			cr_assert_eq(memcmp(sec, back, 512), 0);
			cr_assert_eq(vhd_pread(img, back, 512, sizes[i]), -EINVAL);
			free(b);
			b = t_close_bytes(img, keep, &len);
			expect_clean(b, len);
			free(b);
		}
	}
}

Test(image, create_large_dynamic_sizes)
{
	const uint64_t sizes[] = { 127 * T_GIB, 1024 * T_GIB, VHD_MAX_DYNAMIC_SIZE,
				   VHD_MAX_DYNAMIC_SIZE - 512 };
	for (size_t i = 0; i < 4; i++) {
		size_t len;
		uint8_t *b = t_create_bytes(VHD_TYPE_DYNAMIC, sizes[i], 0, &len);
		struct vhd_image *img;
		struct vhd_error err;
		cr_assert_eq(t_open_bytes(b, len, 0, &img, &err), 0, "%s", err.message);
		cr_assert_eq(vhd_virtual_size(img), sizes[i]);
		uint8_t buf[4096];
		cr_assert_eq(vhd_pread(img, buf, sizeof(buf), sizes[i] - sizeof(buf)), 0);
		cr_assert(t_all_zero(buf, sizeof(buf)));
		vhd_close(img);
		expect_clean(b, len);
		free(b);
	}
}

Test(image, size_not_multiple_of_512_rejected)
{
	struct vhd_error err;
	const uint64_t bad[] = { 1, 511, 513, T_MIB + 1, 10 * T_MIB - 100 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int t = VHD_TYPE_FIXED; t <= VHD_TYPE_DYNAMIC; t++) {
			int r = try_create((enum vhd_type)t, bad[i], 0, &err);
			cr_assert_eq(r, -EINVAL, "size %llu", (unsigned long long)bad[i]);
			cr_assert_eq(err.code, -EINVAL);
			cr_assert_not_null(strstr(err.message, "512"), "message: %s", err.message);
		}
	}
	cr_assert_eq(try_create(VHD_TYPE_FIXED, 0, 0, &err), -EINVAL);
	cr_assert_neq(err.message[0], '\0');
	cr_assert_eq(try_create(VHD_TYPE_DYNAMIC, 0, 0, &err), -EINVAL);
	cr_assert_eq(try_create((enum vhd_type)7, T_MIB, 0, &err), -EINVAL);
	cr_assert_neq(err.message[0], '\0');
	/* A differencing image needs a parent. */
	cr_assert_eq(try_create(VHD_TYPE_DIFFERENCING, T_MIB, 0, &err), -EINVAL);
	cr_assert_neq(err.message[0], '\0');
}

Test(image, dynamic_over_2040_gib_rejected)
{
	struct vhd_error err;
	int r = try_create(VHD_TYPE_DYNAMIC, VHD_MAX_DYNAMIC_SIZE + 512, 0, &err);
	cr_assert_lt(r, 0);
	cr_assert_eq(r, -EFBIG);
	cr_assert_not_null(strstr(err.message, "2040"), "%s", err.message);
	cr_assert_eq(try_create(VHD_TYPE_DYNAMIC, 4096 * T_GIB, 0, &err), -EFBIG);
	/* create_check_params agrees without creating anything. */
	struct vhd_create_params p = { .type = VHD_TYPE_DYNAMIC, .size = VHD_MAX_DYNAMIC_SIZE };
	cr_assert_eq(vhd_create_check_params(&p, &err), 0);
	p.size += 512;
	cr_assert_eq(vhd_create_check_params(&p, &err), -EFBIG);
	/* A fixed image may be larger (Azure takes 32 TiB). */
	p.type = VHD_TYPE_FIXED;
	cr_assert_eq(vhd_create_check_params(&p, &err), 0);
	p.size = UINT64_MAX & ~511ull;
	cr_assert_lt(vhd_create_check_params(&p, &err), 0);
}

Test(image, block_sizes)
{
	struct vhd_error err;
	for (uint32_t bs = 512u << 10; bs <= (256u << 20); bs <<= 1) {
		cr_assert_eq(try_create(VHD_TYPE_DYNAMIC, 3 * T_GIB, bs, &err), 0, "block %u: %s", bs,
			     err.message);
		size_t len;
		uint8_t *b = t_create_bytes(VHD_TYPE_DYNAMIC, 600 * T_MIB + 512, bs, &len);
		struct vhd_image *img;
		cr_assert_eq(t_open_bytes(b, len, 0, &img, &err), 0);
		struct vhd_info info;
		vhd_get_info(img, &info);
		cr_assert_eq(info.block_size, bs);
		vhd_close(img);
		expect_clean(b, len);
		free(b);
	}
	const uint32_t bad[] = { 256u << 10, 3u << 20, 512u << 20, 4096, 512, (2u << 20) + 512,
				 0x80000000u };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = try_create(VHD_TYPE_DYNAMIC, T_GIB, bad[i], &err);
		cr_assert_eq(r, -EINVAL, "block size %u accepted", bad[i]);
		cr_assert_not_null(strstr(err.message, "block size"), "%s", err.message);
	}
}

/* Random unaligned writes checked against a flat model of the disk. */
static void random_round_trip(enum vhd_type type, uint64_t size, uint32_t bs, uint64_t seed)
{
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(type, size, bs, &keep);
	uint8_t *model = calloc(1, size);
	uint8_t *buf = malloc(size);
	cr_assert(model && buf);
	uint64_t st = seed;
	uint32_t blk = bs ? bs : VHD_DEFAULT_BLOCK_SIZE;

	for (int op = 0; op < 400; op++) {
		uint64_t off, len;
		switch (op % 4) {
		case 0: /* straddle a block boundary */
			off = (t_rand(&st) % (size / blk + 1)) * blk;
			off = off > 700 ? off - 1 - t_rand(&st) % 700 : 0;
			len = 1 + t_rand(&st) % 3000;
			break;
		case 1: /* tiny, inside one sector */
			off = t_rand(&st) % size;
			len = 1 + t_rand(&st) % 16;
			break;
		case 2: /* larger than a block */
			off = t_rand(&st) % size;
			len = 1 + t_rand(&st) % (blk + blk / 2);
			break;
		default: /* sector-aligned */
			off = (t_rand(&st) % (size / 512)) * 512;
			len = 512 * (1 + t_rand(&st) % 8);
			break;
		}
		if (off >= size)
			off = size - 1;
		if (len > size - off)
			len = size - off;
		t_fill(buf, len, st + (uint64_t)op);
		int r = vhd_pwrite(img, buf, len, off);
		cr_assert_eq(r, 0, "op %d write %llu@%llu: %s", op, (unsigned long long)len,
			     (unsigned long long)off, vhd_errmsg(img));
		memcpy(model + off, buf, len);
		if (op % 5 == 0) {
			uint64_t roff = t_rand(&st) % size;
			uint64_t rlen = 1 + t_rand(&st) % (2 * blk);
			if (rlen > size - roff)
				rlen = size - roff;
			cr_assert_eq(vhd_pread(img, buf, rlen, roff), 0);
			cr_assert_eq(memcmp(buf, model + roff, rlen), 0, "op %d read %llu@%llu", op,
				     (unsigned long long)rlen, (unsigned long long)roff);
		}
		if (op == 200)
			cr_assert_eq(vhd_flush(img), 0);
	}
	cr_assert_eq(vhd_pread(img, buf, size, 0), 0);
	cr_assert_eq(memcmp(buf, model, size), 0);

	/* As a crash after a flush would leave it: no corruption. */
	size_t len;
	uint8_t *file = t_image_bytes(img, &len);
	expect_check(file, len, false);
	free(file);
	/* Persisted: reopen what vhd_close left, read-only. */
	file = t_close_bytes(img, keep, &len);
	struct vhd_error err;
	cr_assert_eq(t_open_bytes(file, len, 0, &img, &err), 0, "%s", err.message);
	memset(buf, 0xEE, size);
	/* Read in odd pieces. */
	for (uint64_t o = 0; o < size;) {
		uint64_t n = 1 + t_rand(&st) % 70000;
		if (n > size - o)
			n = size - o;
		cr_assert_eq(vhd_pread(img, buf + o, n, o), 0);
		o += n;
	}
	cr_assert_eq(memcmp(buf, model, size), 0);
	vhd_close(img);
	expect_clean(file, len);
	free(file);
	free(model);
	free(buf);
}

Test(image, round_trip_dynamic_unaligned_512k_blocks)
{
	random_round_trip(VHD_TYPE_DYNAMIC, 9 * T_MIB + 3 * 512, 512u << 10, 1);
}

Test(image, round_trip_dynamic_unaligned_2m_blocks)
{
	random_round_trip(VHD_TYPE_DYNAMIC, 13 * T_MIB + 512, 0, 2);
}

Test(image, round_trip_fixed_unaligned)
{
	random_round_trip(VHD_TYPE_FIXED, 3 * T_MIB + 512, 0, 3);
}

Test(image, unwritten_areas_read_zero)
{
	struct vhd_image *img = t_create_mem(VHD_TYPE_DYNAMIC, 4 * T_MIB, 512u << 10);
	uint8_t *buf = malloc(4 * T_MIB);
	cr_assert_not_null(buf);
	memset(buf, 0xAA, 4 * T_MIB);
	cr_assert_eq(vhd_pread(img, buf, 4 * T_MIB, 0), 0);
	cr_assert(t_all_zero(buf, 4 * T_MIB));
	/* A write in the middle of block 1 leaves the rest of the block zero. */
	uint8_t data[100];
	t_fill(data, sizeof(data), 9);
	uint64_t at = (512u << 10) + 7777;
	cr_assert_eq(vhd_pwrite(img, data, sizeof(data), at), 0);
	memset(buf, 0xAA, 4 * T_MIB);
	cr_assert_eq(vhd_pread(img, buf, 4 * T_MIB, 0), 0);
	cr_assert(t_all_zero(buf, at));
	cr_assert_eq(memcmp(buf + at, data, sizeof(data)), 0);
	cr_assert(t_all_zero(buf + at + sizeof(data), 4 * T_MIB - at - sizeof(data)));
	struct vhd_info info;
	vhd_get_info(img, &info);
	cr_assert_eq(info.allocated_blocks, 1u);
	vhd_close(img);

	/* Fixed: the data area starts as zeros too. */
	img = t_create_mem(VHD_TYPE_FIXED, 2 * T_MIB, 0);
	memset(buf, 0xAA, 2 * T_MIB);
	cr_assert_eq(vhd_pread(img, buf, 2 * T_MIB, 0), 0);
	cr_assert(t_all_zero(buf, 2 * T_MIB));
	vhd_close(img);
	free(buf);
}

Test(image, access_beyond_the_end_rejected)
{
	const enum vhd_type types[] = { VHD_TYPE_FIXED, VHD_TYPE_DYNAMIC };
	for (int t = 0; t < 2; t++) {
		uint64_t size = 3 * T_MIB + 512;
		struct vhd_image *img = t_create_mem(types[t], size, 0);
		uint8_t buf[2048] = { 1 };
		cr_assert_eq(vhd_pread(img, buf, 1, size), -EINVAL);
		cr_assert_neq(vhd_errmsg(img)[0], '\0');
		cr_assert_eq(vhd_pread(img, buf, 2, size - 1), -EINVAL);
		cr_assert_eq(vhd_pread(img, buf, 1024, size - 512), -EINVAL);
		cr_assert_eq(vhd_pread(img, buf, 1, UINT64_MAX), -EINVAL);
		cr_assert_eq(vhd_pread(img, buf, 2, UINT64_MAX - 1), -EINVAL, "no wrap-around");
		cr_assert_eq(vhd_pread(img, buf, SIZE_MAX, 1), -EINVAL);
		cr_assert_eq(vhd_pwrite(img, buf, 1, size), -ENOSPC);
		cr_assert_not_null(strstr(vhd_errmsg(img), "beyond the end"), "%s", vhd_errmsg(img));
		cr_assert_eq(vhd_pwrite(img, buf, 2, size - 1), -ENOSPC);
		cr_assert_eq(vhd_pwrite(img, buf, 2, UINT64_MAX - 1), -ENOSPC);
		cr_assert_eq(vhd_pwrite(img, buf, SIZE_MAX, 512), -ENOSPC);
		/* Zero bytes at the very end are fine; nothing past it changed. */
		cr_assert_eq(vhd_pread(img, buf, 0, size), 0);
		cr_assert_eq(vhd_pwrite(img, buf, 0, size), 0);
		cr_assert_eq(vhd_pread(img, buf, 0, size + 1), -EINVAL);
		cr_assert_eq(vhd_pread(img, buf, 512, size - 512), 0);
		cr_assert(t_all_zero(buf, 512));
		struct vhd_info info;
		vhd_get_info(img, &info);
		cr_assert_eq(info.allocated_blocks, 0u, "a refused write allocates nothing");
		size_t len;
		uint8_t *b = t_image_bytes(img, &len);
		vhd_close(img);
		expect_check(b, len, false);
		free(b);
	}
}

Test(image, read_only_rejects_writes)
{
	const enum vhd_type types[] = { VHD_TYPE_FIXED, VHD_TYPE_DYNAMIC };
	for (int t = 0; t < 2; t++) {
		size_t len;
		uint8_t *b = t_create_bytes(types[t], 2 * T_MIB, 0, &len);
		struct vhd_image *img;
		struct vhd_error err;
		cr_assert_eq(t_open_bytes(b, len, 0, &img, &err), 0);
		struct vhd_info info;
		vhd_get_info(img, &info);
		cr_assert(info.read_only);
		uint8_t buf[512] = { 7 };
		cr_assert_eq(vhd_pwrite(img, buf, 512, 0), -EROFS);
		cr_assert_neq(vhd_errmsg(img)[0], '\0');
		cr_assert_eq(vhd_pwrite(img, buf, 0, 0), -EROFS);
		cr_assert_eq(vhd_flush(img), 0);
		cr_assert_eq(vhd_pread(img, buf, 512, 0), 0);
		cr_assert(t_all_zero(buf, 512));
		/* The backend was not touched. */
		size_t n;
		const uint8_t *d = vhd_io_mem_data(img->io, &n);
		cr_assert_eq(n, len);
		cr_assert_eq(memcmp(d, b, len), 0);
		cr_assert_eq(vhd_close(img), 0);
		free(b);
	}
}

/* Walk the whole disk with vhd_block_status and check every extent. */
static void walk_extents(struct vhd_image *img, const uint8_t *model, int *ndata, int *nzero)
{
	uint64_t size = vhd_virtual_size(img);
	size_t flen;
	const uint8_t *file = t_mem_data(img, &flen);
	uint8_t *buf = malloc(size);
	cr_assert_not_null(buf);
	*ndata = *nzero = 0;
	for (uint64_t off = 0; off < size;) {
		struct vhd_extent e;
		cr_assert_eq(vhd_block_status(img, off, size - off, &e), 0, "%s", vhd_errmsg(img));
		cr_assert(e.length >= 1 && e.length <= size - off, "length %llu at %llu",
			  (unsigned long long)e.length, (unsigned long long)off);
		cr_assert_eq(e.depth, 0);
		if (e.flags & VHD_EXTENT_DATA) {
			cr_assert_neq(e.file_offset, UINT64_MAX);
			cr_assert(e.file_offset + e.length <= flen);
			cr_assert_eq(memcmp(file + e.file_offset, model + off, e.length), 0,
				     "data extent at %llu", (unsigned long long)off);
			(*ndata)++;
		} else {
			cr_assert(e.flags & VHD_EXTENT_ZERO);
			cr_assert_eq(e.file_offset, UINT64_MAX);
			cr_assert(t_all_zero(model + off, e.length), "zero extent at %llu",
				  (unsigned long long)off);
			(*nzero)++;
		}
		cr_assert_eq(vhd_pread(img, buf, e.length, off), 0);
		cr_assert_eq(memcmp(buf, model + off, e.length), 0);
		off += e.length;
	}
	free(buf);
}

Test(image, block_status_extents_dynamic)
{
	const uint32_t bs = 512u << 10;
	const uint64_t size = 4 * T_MIB;
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(VHD_TYPE_DYNAMIC, size, bs, &keep);
	uint8_t *model = calloc(1, size);
	cr_assert_not_null(model);
	struct vhd_extent e;

	/* Empty: one zero extent for the whole disk. */
	cr_assert_eq(vhd_block_status(img, 0, size, &e), 0);
	cr_assert_eq(e.length, size);
	cr_assert_eq(e.flags, VHD_EXTENT_ZERO);
	cr_assert_eq(e.depth, 0);
	cr_assert_eq(e.file_offset, UINT64_MAX);
	/* len limits the answer; so does the disk's end. */
	cr_assert_eq(vhd_block_status(img, 100, 1000, &e), 0);
	cr_assert_eq(e.length, 1000u);
	cr_assert_eq(vhd_block_status(img, size - 10, 1000, &e), 0);
	cr_assert_eq(e.length, 10u);
	cr_assert_eq(vhd_block_status(img, size, 1, &e), -EINVAL);
	cr_assert_eq(vhd_block_status(img, 0, 0, &e), -EINVAL);

	/* Write into blocks 2, 3 and 6. */
	uint8_t data[3000];
	t_fill(data, sizeof(data), 5);
	uint64_t at[] = { 2 * bs + 4096, 3 * bs - 1000, 6 * bs + 1 };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(vhd_pwrite(img, data, sizeof(data), at[i]), 0);
		memcpy(model + at[i], data, sizeof(data));
	}
	cr_assert_eq(vhd_block_status(img, 0, size, &e), 0);
	cr_assert_eq(e.length, 2 * bs, "blocks 0 and 1 merge into one hole");
	cr_assert_eq(e.flags, VHD_EXTENT_ZERO);
	cr_assert_eq(vhd_block_status(img, 2 * bs + 10, size, &e), 0);
	cr_assert_eq(e.flags, VHD_EXTENT_DATA);
	cr_assert(e.length >= bs - 10 && e.length <= 2 * bs - 10);
	cr_assert_eq(vhd_block_status(img, 4 * bs, size, &e), 0);
	cr_assert_eq(e.flags, VHD_EXTENT_ZERO);
	cr_assert_eq(e.length, 2 * bs, "blocks 4 and 5");
	cr_assert_eq(vhd_block_status(img, 7 * bs, size, &e), 0);
	cr_assert_eq(e.flags, VHD_EXTENT_ZERO);
	cr_assert_eq(e.length, bs);

	int nd, nz;
	walk_extents(img, model, &nd, &nz);
	cr_assert(nd >= 3 && nz == 3, "data %d zero %d", nd, nz);

	/* The same after a reopen (block state unknown until read). */
	size_t len;
	uint8_t *b = t_close_bytes(img, keep, &len);
	struct vhd_error err;
	cr_assert_eq(t_open_bytes(b, len, 0, &img, &err), 0);
	walk_extents(img, model, &nd, &nz);
	cr_assert(nd >= 3 && nz == 3, "data %d zero %d", nd, nz);
	vhd_close(img);
	free(b);
	free(model);
}

Test(image, block_status_fixed)
{
	struct vhd_image *img = t_create_mem(VHD_TYPE_FIXED, 2 * T_MIB, 0);
	struct vhd_extent e;
	cr_assert_eq(vhd_block_status(img, 4096, 2 * T_MIB, &e), 0);
	cr_assert(e.flags & VHD_EXTENT_DATA);
	cr_assert_eq(e.file_offset, 4096u);
	cr_assert_eq(e.length, 2 * T_MIB - 4096);
	cr_assert_eq(e.depth, 0);
	vhd_close(img);
}

Test(image, check_reports_clean_after_many_blocks)
{
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(VHD_TYPE_DYNAMIC, 64 * T_MIB, 512u << 10, &keep);
	uint8_t buf[4096];
	/* Allocate blocks out of order. */
	for (int i = 0; i < 128; i++) {
		uint32_t blk = (uint32_t)((i * 37) % 128);
		t_fill(buf, sizeof(buf), (uint64_t)blk);
		cr_assert_eq(vhd_pwrite(img, buf, sizeof(buf), (uint64_t)blk * (512u << 10) + 512), 0);
		if (i % 50 == 0)
			cr_assert_eq(vhd_flush(img), 0);
	}
	struct vhd_info info;
	vhd_get_info(img, &info);
	cr_assert_eq(info.allocated_blocks, 128u);
	size_t len;
	uint8_t *b = t_image_bytes(img, &len);
	expect_check(b, len, false); /* while open: no corruption */
	free(b);
	b = t_close_bytes(img, keep, &len);
	struct vhd_check_report rep;
	cr_assert_eq(t_check_bytes(b, len, &rep), 0);
	cr_assert_eq(rep.corruptions, 0u, "%s", t_report_text(&rep));
	/* The snapshot was taken while open: the room reserved for more
	 * blocks beyond the last one shows as leaked space until close. */
	cr_assert_leq(rep.leaks, 1u, "%s", t_report_text(&rep));
	cr_assert_eq(rep.type, VHD_TYPE_DYNAMIC);
	vhd_check_report_free(&rep);
	/* Every block holds what was written, after a reopen. */
	struct vhd_error err;
	cr_assert_eq(t_open_bytes(b, len, 0, &img, &err), 0);
	for (uint32_t blk = 0; blk < 128; blk++) {
		uint8_t want[4096];
		t_fill(want, sizeof(want), blk);
		cr_assert_eq(vhd_pread(img, buf, sizeof(buf), (uint64_t)blk * (512u << 10) + 512), 0);
		cr_assert_eq(memcmp(buf, want, sizeof(buf)), 0, "block %u", blk);
	}
	vhd_close(img);
	free(b);
}

/* ---- differencing, through real files for the parent ----------------- */

Test(image, differencing_reads_parent_and_completes_partial_sectors)
{
	char *dir = t_mkdtemp();
	char parent[4200], child[4200];
	snprintf(parent, sizeof(parent), "%s/base.vhd", dir);
	snprintf(child, sizeof(child), "%s/child.vhd", dir);
	const uint64_t size = 3 * T_MIB + 512;
	const uint32_t bs = 512u << 10;
	struct vhd_error err;
	struct vhd_image *img;
	uint8_t *model = malloc(size), *buf = malloc(size);
	cr_assert(model && buf);

	/* A parent full of data, except an unwritten last block. */
	struct vhd_create_params pp = { .type = VHD_TYPE_DYNAMIC, .size = size, .block_size = bs };
	cr_assert_eq(vhd_create(parent, &pp, &img, &err), 0, "%s", err.message);
	t_fill(model, size, 77);
	memset(model + 3 * T_MIB, 0, 512);
	cr_assert_eq(vhd_pwrite(img, model, 3 * T_MIB, 0), 0);
	cr_assert_eq(vhd_close(img), 0);

	struct vhd_create_params cp = { .type = VHD_TYPE_DIFFERENCING, .parent = parent,
					.block_size = bs };
	cr_assert_eq(vhd_create(child, &cp, &img, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_pread(img, buf, size, 0), 0);
	cr_assert_eq(memcmp(buf, model, size), 0, "a new child reads as its parent");

	/* Unaligned writes: the rest of each touched sector comes from the parent. */
	uint64_t st = 5;
	for (int op = 0; op < 150; op++) {
		uint64_t off = t_rand(&st) % size;
		uint64_t len = 1 + t_rand(&st) % (op % 3 ? 900 : 2 * bs);
		if (len > size - off)
			len = size - off;
		uint8_t *data = malloc(len);
		t_fill(data, len, 1000 + (uint64_t)op);
		cr_assert_eq(vhd_pwrite(img, data, len, off), 0, "%s", vhd_errmsg(img));
		memcpy(model + off, data, len);
		free(data);
		if (op == 75)
			cr_assert_eq(vhd_flush(img), 0);
	}
	cr_assert_eq(vhd_pread(img, buf, size, 0), 0);
	cr_assert_eq(memcmp(buf, model, size), 0);

	/* block status: depth 1 where only the parent holds data. */
	struct vhd_extent e;
	uint64_t data_here = 0, data_parent = 0;
	for (uint64_t off = 0; off < size; off += e.length) {
		cr_assert_eq(vhd_block_status(img, off, size - off, &e), 0);
		cr_assert(e.depth >= 0 && e.depth <= 1);
		if (e.depth == 0)
			data_here += e.length;
		else if (e.flags & VHD_EXTENT_DATA)
			data_parent += e.length;
	}
	cr_assert(data_here > 0 && data_parent > 0);
	cr_assert_eq(vhd_close(img), 0);

	cr_assert_eq(vhd_open(child, 0, &img, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_pread(img, buf, size, 0), 0);
	cr_assert_eq(memcmp(buf, model, size), 0, "after reopen");
	cr_assert_str_eq(vhd_warnings(img), "");
	vhd_close(img);

	struct vhd_check_report rep;
	cr_assert_eq(vhd_check(child, &rep, &err), 0);
	cr_assert_eq(rep.corruptions, 0u, "%s", t_report_text(&rep));
	vhd_check_report_free(&rep);

	/* Without the parent: NO_PARENT opens; reads that reach it fail. */
	cr_assert_eq(vhd_open(child, VHD_OPEN_NO_PARENT, &img, &err), 0, "%s", err.message);
	cr_assert_null(vhd_parent(img));
	vhd_close(img);
	cr_assert_eq(unlink(parent), 0);
	cr_assert_lt(vhd_open(child, 0, &img, &err), 0);
	cr_assert_not_null(strstr(err.message, "parent"), "%s", err.message);
	cr_assert_eq(vhd_open(child, VHD_OPEN_PARENT_OPTIONAL, &img, &err), 0, "%s", err.message);
	cr_assert_not_null(vhd_parent_error(img));
	int r = vhd_pread(img, buf, size, 0);
	cr_assert_lt(r, 0, "a read that reaches the missing parent fails");
	vhd_close(img);

	free(model);
	free(buf);
	t_rmtree(dir);
	free(dir);
}

/* ---- threads ------------------------------------------------------------ */

struct thread_arg {
	struct vhd_image *img;
	uint64_t base, span;
	int id;
	int result;
};

static void *writer(void *p)
{
	struct thread_arg *a = p;
	uint8_t buf[5000];
	uint64_t st = (uint64_t)a->id;
	a->result = 0;
	for (int i = 0; i < 200 && a->result == 0; i++) {
		uint64_t len = 1 + t_rand(&st) % sizeof(buf);
		uint64_t off = a->base + t_rand(&st) % (a->span - len);
		t_fill(buf, len, (uint64_t)a->id * 1000 + (uint64_t)i);
		a->result = vhd_pwrite(a->img, buf, len, off);
		if (i % 40 == 0 && a->result == 0)
			a->result = vhd_flush(a->img);
	}
	return NULL;
}

Test(image, concurrent_writers_in_disjoint_ranges)
{
	/* Four threads in disjoint ranges whose edges fall inside blocks, so
	 * neighbours allocate the same blocks: allocation is serialized inside
	 * the library and data must end up where it belongs. */
	const uint64_t size = 8 * T_MIB;
	const uint32_t bs = 512u << 10;
	struct vhd_image *img = t_create_mem(VHD_TYPE_DYNAMIC, size, bs);
	struct thread_arg args[4];
	pthread_t th[4];
	const uint64_t span = (size - bs) / 4;
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ img, bs / 2 + (uint64_t)i * span, span, i + 1, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, writer, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(args[i].result, 0, "thread %d", i);
	}
	/* Replay each thread's writes on a model. */
	uint8_t *model = calloc(1, size), *buf = malloc(size);
	cr_assert(model && buf);
	for (int i = 0; i < 4; i++) {
		uint64_t st = (uint64_t)(i + 1);
		uint8_t w[5000];
		for (int k = 0; k < 200; k++) {
			uint64_t len = 1 + t_rand(&st) % sizeof(w);
			uint64_t off = args[i].base + t_rand(&st) % (span - len);
			t_fill(w, len, (uint64_t)(i + 1) * 1000 + (uint64_t)k);
			memcpy(model + off, w, len);
		}
	}
	cr_assert_eq(vhd_pread(img, buf, size, 0), 0);
	cr_assert_eq(memcmp(buf, model, size), 0);
	size_t len;
	uint8_t *b = t_image_bytes(img, &len);
	vhd_close(img);
	expect_check(b, len, false);
	free(b);
	free(model);
	free(buf);
}

/* ---- images made by other tools ------------------------------------------ */

Test(image, writes_into_a_partially_held_dynamic_block)
{
	/* Another tool left block 3 with only sectors 0-2 and 5 held: a write
	 * to the other sectors must complete them with zeros, set their bits,
	 * and leave no stale bytes under a clear bit. */
	size_t len;
	uint8_t *orig = t_tiny_image(VHD_TYPE_DYNAMIC, &len);
	struct vhd_image *img;
	struct vhd_error err;
	struct vhd_io *keep;
	cr_assert_eq(t_open_bytes_keep(orig, len, VHD_OPEN_RDWR, &img, &err, &keep), 0, "%s",
		     err.message);
	uint8_t *model = malloc(TINY_VSIZE), *buf = malloc(TINY_VSIZE);
	cr_assert(model && buf);
	cr_assert_eq(vhd_pread(img, model, TINY_VSIZE, 0), 0);

	uint8_t data[700];
	t_fill(data, sizeof(data), 42);
	const uint64_t at[] = { 3 * TINY_BS + 3 * 512 + 100,  /* unheld sectors 3 and 4 */
				3 * TINY_BS + 7 * 512 + 500,  /* unheld 7, then block 4 (new) */
				3 * TINY_BS + 2 * 512 + 300 }; /* held 2 into 3 */
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(vhd_pwrite(img, data, sizeof(data), at[i]), 0, "%s", vhd_errmsg(img));
		memcpy(model + at[i], data, sizeof(data));
	}
	cr_assert_eq(vhd_pread(img, buf, TINY_VSIZE, 0), 0);
	cr_assert_eq(memcmp(buf, model, TINY_VSIZE), 0);
	size_t flen;
	uint8_t *file = t_close_bytes(img, keep, &flen);
	expect_clean(file, flen);

	cr_assert_eq(t_open_bytes(file, flen, 0, &img, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_pread(img, buf, TINY_VSIZE, 0), 0);
	cr_assert_eq(memcmp(buf, model, TINY_VSIZE), 0, "after reopen");
	/* Sectors 0-5 and 7 of block 3 are held now; 6 still not, and what
	 * lies under its clear bit is zero. */
	uint64_t boff = (uint64_t)img->bat[3] * 512;
	const uint8_t *bm = file + boff;
	const bool held[8] = { 1, 1, 1, 1, 1, 1, 0, 1 };
	for (uint32_t sct = 0; sct < 8; sct++) {
		cr_assert_eq(vhd_bitmap_test(bm, sct), held[sct], "sector %u", sct);
		if (!held[sct])
			cr_assert(t_all_zero(file + boff + 512 + sct * 512, 512), "sector %u", sct);
	}
	vhd_close(img);
	free(file);
	free(orig);
	free(model);
	free(buf);
}

Test(image, footer_reserved_bytes_survive_writes)
{
	/* blktap keeps a "hidden" flag in the footer's reserved bytes. */
	size_t len;
	uint8_t *b = t_create_bytes(VHD_TYPE_DYNAMIC, 4 * T_MIB, 512u << 10, &len);
	b[len - 512 + 85] = 0x01;
	b[len - 512 + 500] = 0x5A;
	t_fix_footer(b + len - 512);
	memcpy(b, b + len - 512, 512);
	struct vhd_image *img;
	struct vhd_error err;
	struct vhd_io *keep;
	cr_assert_eq(t_open_bytes_keep(b, len, VHD_OPEN_RDWR, &img, &err, &keep), 0, "%s",
		     err.message);
	uint8_t data[4096];
	t_fill(data, sizeof(data), 8);
	for (int blk = 0; blk < 8; blk++) /* several blocks: the footer moves */
		cr_assert_eq(vhd_pwrite(img, data, sizeof(data), (uint64_t)blk * (512u << 10)), 0);
	size_t flen;
	uint8_t *file = t_close_bytes(img, keep, &flen);
	const uint8_t *end = file + flen - 512;
	cr_assert_eq(memcmp(end, "conectix", 8), 0);
	cr_assert_eq(end[85], 0x01);
	cr_assert_eq(end[500], 0x5A);
	cr_assert(vhd_footer_checksum_ok(end, 512));
	cr_assert_eq(memcmp(end, file, 512), 0, "the copy at 0 matches");
	expect_clean(file, flen);
	free(file);
	free(b);
}

Test(image, bat_entries_past_the_disk_are_kept)
{
	/* A header that declares more entries than the disk needs: the tail
	 * of the last BAT sector belongs to no block and must survive our
	 * rewrite of that sector. */
	size_t len;
	uint8_t *b = t_create_bytes(VHD_TYPE_DYNAMIC, 4 * T_MIB, 512u << 10, &len);
	vhd_put_be32(b + 512 + T_H_MAX_ENTRIES, 128);
	t_fix_header(b + 512);
	for (uint32_t i = 8; i < 128; i++)
		vhd_put_be32(b + 1536 + 4 * i, 0x0BAD0000u + i);
	struct vhd_image *img;
	struct vhd_error err;
	struct vhd_io *keep;
	cr_assert_eq(t_open_bytes_keep(b, len, VHD_OPEN_RDWR, &img, &err, &keep), 0, "%s",
		     err.message);
	uint8_t data[512];
	t_fill(data, sizeof(data), 9);
	cr_assert_eq(vhd_pwrite(img, data, sizeof(data), 3 * (512u << 10)), 0);
	size_t flen;
	uint8_t *file = t_close_bytes(img, keep, &flen);
	cr_assert_neq(vhd_be32(file + 1536 + 12), VHD_BAT_FREE, "entry 3 written");
	for (uint32_t i = 8; i < 128; i++)
		cr_assert_eq(vhd_be32(file + 1536 + 4 * i), 0x0BAD0000u + i, "entry %u", i);
	free(file);
	free(b);
}

Test(image, azure_parameters)
{
	struct vhd_error err;
	struct vhd_create_params p = { .type = VHD_TYPE_FIXED, .flags = VHD_CREATE_AZURE };
	p.size = 20 * T_MIB;
	cr_assert_eq(vhd_create_check_params(&p, &err), 0);
	p.size = 32ull << 40;
	cr_assert_eq(vhd_create_check_params(&p, &err), 0);
	const uint64_t bad[] = { 19 * T_MIB, 20 * T_MIB + 512, (32ull << 40) + T_MIB, 0 };
	for (int i = 0; i < 4; i++) {
		p.size = bad[i];
		cr_assert_eq(vhd_create_check_params(&p, &err), -EINVAL, "size %llu",
			     (unsigned long long)bad[i]);
		cr_assert_not_null(strstr(err.message, "Azure"), "%s", err.message);
	}
	p.type = VHD_TYPE_DYNAMIC;
	p.size = 20 * T_MIB;
	cr_assert_eq(vhd_create_check_params(&p, &err), -EINVAL);
	cr_assert_not_null(strstr(err.message, "fixed"), "%s", err.message);
	/* An Azure image: whole MiB, file = size + 512. */
	struct vhd_io *keep;
	cr_assert_eq(vhd_io_mem_open(NULL, 0, &keep), 0);
	struct vhd_image *img;
	p = (struct vhd_create_params){ .type = VHD_TYPE_FIXED, .size = 20 * T_MIB,
					.flags = VHD_CREATE_AZURE };
	cr_assert_eq(vhd_create_io(t_wrap_io(keep, NULL, false), &p, NULL, &img, &err), 0, "%s",
		     err.message);
	size_t len;
	uint8_t *file = t_close_bytes(img, keep, &len);
	cr_assert_eq(len, 20 * T_MIB + 512);
	free(file);
}

Test(image, block_status_with_huge_length)
{
	struct vhd_image *img = t_create_mem(VHD_TYPE_DYNAMIC, 3 * T_MIB, 512u << 10);
	struct vhd_extent e;
	cr_assert_eq(vhd_block_status(img, 512, UINT64_MAX, &e), 0);
	cr_assert_eq(e.length, 3 * T_MIB - 512);
	cr_assert_eq(vhd_block_status(img, UINT64_MAX, 1, &e), -EINVAL);
	vhd_close(img);
}

Test(image, created_metadata)
{
	int64_t now = (int64_t)time(NULL) - 946684800;
	struct vhd_image *a = t_create_mem(VHD_TYPE_DYNAMIC, 8 * T_MIB, 0);
	struct vhd_image *b = t_create_mem(VHD_TYPE_FIXED, 8 * T_MIB, 0);
	struct vhd_info ia, ib;
	vhd_get_info(a, &ia);
	vhd_get_info(b, &ib);
	cr_assert((int64_t)ia.timestamp >= now - 5 && (int64_t)ia.timestamp <= now + 5,
		  "timestamp %u, now %lld", ia.timestamp, (long long)now);
	cr_assert_neq(memcmp(ia.uuid, ib.uuid, 16), 0, "fresh UUIDs differ");
	char text[37];
	vhd_uuid_text(ia.uuid, text);
	cr_assert_eq(text[14], '4', "version 4 UUID: %s", text);
	cr_assert(strchr("89ab", text[19]) != NULL, "RFC 4122 variant: %s", text);
	cr_assert_str_eq(ia.creator_app, "qem2");
	cr_assert_eq(ia.creator_host_os, 0x5769326Bu, "Wi2k");
	cr_assert_eq(ia.creator_version >> 16, (uint32_t)LIBVHD_VERSION_MAJOR);
	cr_assert_eq(ia.features & VHD_FEATURES_RESERVED, VHD_FEATURES_RESERVED);
	cr_assert_eq(ib.block_size, 0u);
	cr_assert_eq(ib.allocated_bytes, 8 * T_MIB);
	cr_assert_eq(ia.allocated_bytes, 0u);
	cr_assert_eq(vhd_locator_count(a), 0);
	struct vhd_locator loc;
	cr_assert_lt(vhd_get_locator(a, 0, &loc), 0);
	/* vhd_errmsg_copy truncates safely. */
	char small[6];
	vhd_errmsg_copy(a, small, sizeof(small));
	cr_assert_eq(small[5], '\0');
	cr_assert_eq(strlen(small), strlen(vhd_errmsg(a)) < 5 ? strlen(vhd_errmsg(a)) : 5u);
	vhd_close(a);
	vhd_close(b);
}

Test(image, fixed_block_status_never_calls_data_zero)
{
	/* Through the POSIX backend, where a fixed image's holes are known:
	 * an extent flagged ZERO must read as zeros. */
	char *dir = t_mkdtemp();
	char path[4200];
	snprintf(path, sizeof(path), "%s/fixed.vhd", dir);
	struct vhd_create_params p = { .type = VHD_TYPE_FIXED, .size = 4 * T_MIB };
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_create(path, &p, &img, &err), 0, "%s", err.message);
	uint8_t data[8192];
	t_fill(data, sizeof(data), 10);
	cr_assert_eq(vhd_pwrite(img, data, sizeof(data), T_MIB), 0);
	cr_assert_eq(vhd_flush(img), 0);
	uint8_t *buf = malloc(4 * T_MIB);
	cr_assert_not_null(buf);
	cr_assert_eq(vhd_pread(img, buf, 4 * T_MIB, 0), 0);
	bool saw_data = false;
	for (uint64_t off = 0; off < 4 * T_MIB;) {
		struct vhd_extent e;
		cr_assert_eq(vhd_block_status(img, off, 4 * T_MIB - off, &e), 0);
		cr_assert(e.length >= 1 && e.length <= 4 * T_MIB - off);
		cr_assert(e.flags & VHD_EXTENT_DATA);
		cr_assert_eq(e.file_offset, off);
		if (e.flags & VHD_EXTENT_ZERO)
			cr_assert(t_all_zero(buf + off, e.length), "ZERO extent at %llu holds data",
				  (unsigned long long)off);
		if (off <= T_MIB && off + e.length > T_MIB) {
			saw_data = true;
			cr_assert(!(e.flags & VHD_EXTENT_ZERO));
		}
		off += e.length;
	}
	cr_assert(saw_data);
	vhd_close(img);
	free(buf);
	t_rmtree(dir);
	free(dir);
}
