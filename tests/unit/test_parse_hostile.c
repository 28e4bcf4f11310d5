/* SPDX-License-Identifier: MIT */
/*
 * Hostile input: every parser on truncated and corrupted buffers, and
 * vhd_open_io on images broken one defect at a time.  Nothing may crash
 * (run under ASan/UBSan too); every refusal names the problem.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"

/* ---- pure parsers ------------------------------------------------------ */

Test(hostile, footer_decode_truncated_buffers)
{
	struct vhd_footer f;
	memset(&f, 0, sizeof(f));
	f.format_version = VHD_FILE_FORMAT_VERSION;
	f.disk_type = VHD_TYPE_FIXED;
	f.data_offset = VHD_NO_OFFSET;
	f.current_size = T_MIB;
	uint8_t full[512];
	vhd_footer_encode(&f, full);
	for (size_t len = 0; len <= 512; len++) {
		/* An exact-size heap copy: ASan sees any read past len. */
		uint8_t *b = malloc(len ? len : 1);
		memcpy(b, full, len);
		struct vhd_footer g;
		bool ok = vhd_footer_decode(b, len, &g);
		cr_assert_eq(ok, len >= 511, "len %zu", len);
		if (ok)
			cr_assert_eq(vhd_footer_validate(&g, NULL, 0), 0);
		free(b);
	}
}

Test(hostile, header_decode_truncated_buffers)
{
	struct vhd_header h;
	memset(&h, 0, sizeof(h));
	h.header_version = VHD_HEADER_VERSION;
	h.block_size = 2u << 20;
	h.table_offset = 1536;
	uint8_t full[1024];
	vhd_header_encode(&h, full);
	for (size_t len = 0; len <= 1024; len++) {
		uint8_t *b = malloc(len ? len : 1);
		memcpy(b, full, len);
		struct vhd_header g;
		cr_assert_eq(vhd_header_decode(b, len, &g), len == 1024, "len %zu", len);
		free(b);
	}
}

Test(hostile, locator_and_utf_decoders_on_every_length)
{
	const char *paths[] = { ".\\dir\\p\xc3\xa9re.vhd", "file:///x/y.vhd" };
	uint8_t full[256];
	char out[VHD_LOCATOR_MAX_PATH];
	int n = vhd_utf8_to_utf16(paths[0], false, full, sizeof(full));
	cr_assert(n > 0);
	uint32_t codes[] = { VHD_PLAT_W2RU, VHD_PLAT_W2KU, VHD_PLAT_MACX, 0xDEADBEEFu };
	for (size_t len = 0; len <= (size_t)n; len++) {
		uint8_t *b = malloc(len ? len : 1);
		memcpy(b, full, len);
		for (size_t c = 0; c < 4; c++) {
			int r = vhd_locator_decode_path(codes[c], b, len, out, sizeof(out));
			cr_assert(r == 0 || r == -EINVAL);
			if (r == 0)
				cr_assert(strlen(out) < sizeof(out));
		}
		for (int be = 0; be < 2; be++) {
			int r = vhd_utf16_to_utf8(b, len, be, out, sizeof(out));
			cr_assert(r == -EINVAL || (r >= 0 && (size_t)r == strlen(out)));
			/* A tiny output buffer is never overrun. */
			char small[5];
			r = vhd_utf16_to_utf8(b, len, be, small, sizeof(small));
			cr_assert(r == -EINVAL || (r >= 0 && r < 5));
		}
		free(b);
	}
}

Test(hostile, random_bytes_through_every_parser)
{
	uint64_t st = 0xC0FFEE;
	uint8_t buf[1024];
	char out[VHD_LOCATOR_MAX_PATH];
	for (int iter = 0; iter < 20000; iter++) {
		for (size_t i = 0; i < sizeof(buf); i += 8) {
			uint64_t v = t_rand(&st);
			memcpy(buf + i, &v, 8);
		}
		/* Often keep the cookies so the fields get decoded. */
		if (iter % 3)
			memcpy(buf, "conectix", 8);
		struct vhd_footer f;
		if (vhd_footer_decode(buf, 512, &f)) {
			char why[160];
			int r = vhd_footer_validate(&f, why, sizeof(why));
			cr_assert(r == 0 || r == -EINVAL);
			if (r == 0) {
				cr_assert(f.disk_type >= 2 && f.disk_type <= 4);
				bool g;
				cr_assert_eq(vhd_footer_virtual_size(&f, &g) % 512, 0u);
			} else {
				cr_assert(strlen(why) > 0);
			}
			vhd_footer_checksum_ok(buf, 512);
			(void)vhd_geometry_for_size(f.current_size);
			(void)vhd_geometry_size(f.geometry);
		}
		if (iter % 3)
			memcpy(buf, "cxsparse", 8);
		struct vhd_header h;
		if (vhd_header_decode(buf, sizeof(buf), &h)) {
			char why[160];
			int r = vhd_header_validate(&h, why, sizeof(why));
			cr_assert(r == 0 || r == -EINVAL);
			if (r == 0)
				cr_assert(h.block_size >= 512 && (h.block_size & (h.block_size - 1)) == 0);
			for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
				(void)vhd_locator_space_bytes(&h.loc[i]);
			vhd_header_checksum_ok(buf);
		}
		size_t len = (size_t)(t_rand(&st) % sizeof(buf));
		uint32_t codes[] = { VHD_PLAT_W2RU, VHD_PLAT_W2KU, VHD_PLAT_MACX };
		vhd_locator_decode_path(codes[iter % 3], buf, len, out, sizeof(out));
		vhd_utf16_to_utf8(buf, len, iter & 1, out, 1 + (size_t)(t_rand(&st) % sizeof(out)));
		/* UTF-8 input must be NUL-terminated. */
		buf[len] = '\0';
		uint8_t u16[64];
		vhd_utf8_to_utf16((const char *)buf, iter & 1, u16, sizeof(u16));
	}
}

/* ---- one defect at a time on a created image -------------------------- */

#define BS (512u << 10)
#define VSIZE (8 * T_MIB)
#define BAT_OFF 1536u

/* An 8 MiB dynamic image with blocks 0, 2 and 4 written. */
static uint8_t *base_image(size_t *len)
{
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(VHD_TYPE_DYNAMIC, VSIZE, BS, &keep);
	uint8_t data[4096];
	for (uint32_t b = 0; b <= 4; b += 2) {
		t_fill(data, sizeof(data), b);
		cr_assert_eq(vhd_pwrite(img, data, sizeof(data), (uint64_t)b * BS + 512), 0);
	}
	return t_close_bytes(img, keep, len);
}

static uint32_t bat_entry(const uint8_t *b, uint32_t i)
{
	return vhd_be32(b + BAT_OFF + 4 * i);
}

static void set_bat_entry(uint8_t *b, uint32_t i, uint32_t v)
{
	vhd_put_be32(b + BAT_OFF + 4 * i, v);
}

/* Open must fail with a negative errno and a message holding needle. */
static void expect_refused(const uint8_t *b, size_t len, unsigned flags, int code,
			   const char *needle)
{
	struct vhd_image *img = (struct vhd_image *)1;
	struct vhd_error err;
	memset(&err, 0, sizeof(err));
	int r = t_open_bytes(b, len, flags, &img, &err);
	cr_assert_lt(r, 0, "opened; wanted a refusal naming '%s'", needle);
	if (code)
		cr_assert_eq(r, code, "errno %d, wanted %d: %s", r, code, err.message);
	cr_assert_null(img, "*out is NULL on failure");
	cr_assert_eq(err.code, r, "err.code matches the return");
	cr_assert_neq(err.message[0], '\0');
	cr_assert_not_null(strstr(err.message, needle), "message '%s' lacks '%s'", err.message,
			   needle);
}

/* Open read-only must work with a warning holding needle; RDWR must fail
 * with -EROFS and a message holding refusal. */
static void expect_read_only2(const uint8_t *b, size_t len, const char *needle,
			      const char *refusal)
{
	struct vhd_image *img;
	struct vhd_error err;
	int r = t_open_bytes(b, len, 0, &img, &err);
	cr_assert_eq(r, 0, "%s", err.message);
	cr_assert_not_null(strstr(vhd_warnings(img), needle), "warnings '%s' lack '%s'",
			   vhd_warnings(img), needle);
	struct vhd_info info;
	vhd_get_info(img, &info);
	cr_assert(info.read_only);
	/* The data is still there. */
	uint8_t data[4096], want[4096];
	t_fill(want, sizeof(want), 2);
	cr_assert_eq(vhd_pread(img, data, sizeof(data), 2ull * BS + 512), 0, "%s", vhd_errmsg(img));
	cr_assert_eq(memcmp(data, want, sizeof(data)), 0);
	cr_assert_eq(vhd_pwrite(img, data, 512, 0), -EROFS);
	vhd_close(img);
	expect_refused(b, len, VHD_OPEN_RDWR, -EROFS, refusal);
}

static void expect_read_only(const uint8_t *b, size_t len, const char *needle)
{
	expect_read_only2(b, len, needle, needle);
}

Test(hostile, base_image_is_clean)
{
	size_t len;
	uint8_t *b = base_image(&len);
	cr_assert_neq(bat_entry(b, 0), VHD_BAT_FREE);
	cr_assert_eq(bat_entry(b, 1), VHD_BAT_FREE);
	cr_assert_neq(bat_entry(b, 2), VHD_BAT_FREE);
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(t_open_bytes(b, len, VHD_OPEN_RDWR, &img, &err), 0, "%s", err.message);
	cr_assert_str_eq(vhd_warnings(img), "");
	vhd_close(img);
	struct vhd_check_report rep;
	cr_assert_eq(t_check_bytes(b, len, &rep), 0);
	cr_assert_eq(rep.corruptions + rep.warnings + rep.leaks, 0u, "%s", t_report_text(&rep));
	vhd_check_report_free(&rep);
	free(b);
}

Test(hostile, file_shorter_than_511_bytes)
{
	size_t len;
	uint8_t *b = base_image(&len);
	size_t sizes[] = { 0, 1, 8, 100, 510 };
	for (size_t i = 0; i < 5; i++)
		expect_refused(b, sizes[i], 0, -EINVAL, "too small");
	/* 511 and 512 bytes: big enough to look at, but not a VHD. */
	expect_refused(b, 511, 0, -EINVAL, "");
	expect_refused(b, 512, 0, -EINVAL, "");
	/* The file's last 512 bytes alone: a valid footer of a dynamic image
	 * whose header cannot be there. */
	expect_refused(b + len - 512, 512, 0, -EINVAL, "header");
	free(b);
}

Test(hostile, end_footer_cookie_broken_uses_copy)
{
	size_t len;
	uint8_t *b = base_image(&len);
	b[len - 512 + 3] = 'X'; /* "conXctix" */
	expect_read_only2(b, len, "offset 0", "footer");
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(t_open_bytes(b, len, 0, &img, &err), 0);
	struct vhd_info info;
	vhd_get_info(img, &info);
	cr_assert(info.footer_from_copy);
	cr_assert_eq(info.virtual_size, VSIZE);
	vhd_close(img);
	/* check names it as corruption. */
	struct vhd_check_report rep;
	cr_assert_eq(t_check_bytes(b, len, &rep), 0);
	cr_assert_gt(rep.corruptions, 0u);
	vhd_check_report_free(&rep);
	free(b);
}

Test(hostile, end_footer_invalid_uses_copy)
{
	size_t len;
	uint8_t *b = base_image(&len);
	uint8_t *end = b + len - 512;
	vhd_put_be32(end + T_F_DISK_TYPE, 7);
	t_fix_footer(end); /* only the type is wrong */
	expect_read_only2(b, len, "type 7", "type 7");
	free(b);
}

Test(hostile, footer_checksum_wrong)
{
	size_t len;
	uint8_t *b = base_image(&len);
	b[len - 512 + T_F_CHECKSUM + 3] ^= 0x01;
	expect_read_only(b, len, "checksum");

	/* Both footers with a wrong checksum: the end one is used, read-only. */
	b[T_F_CHECKSUM + 3] ^= 0x01;
	expect_read_only(b, len, "checksum");
	free(b);

	/* A fixed image has no copy: warning, read-only. */
	b = t_create_bytes(VHD_TYPE_FIXED, 2 * T_MIB, 0, &len);
	b[len - 512 + 100] = 0x55; /* a reserved byte; checksum not fixed */
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(t_open_bytes(b, len, 0, &img, &err), 0, "%s", err.message);
	cr_assert_not_null(strstr(vhd_warnings(img), "checksum"), "%s", vhd_warnings(img));
	struct vhd_info info;
	vhd_get_info(img, &info);
	cr_assert(!info.footer_checksum_ok);
	cr_assert(info.read_only);
	vhd_close(img);
	expect_refused(b, len, VHD_OPEN_RDWR, -EROFS, "checksum");
	free(b);
}

Test(hostile, both_footers_gone)
{
	size_t len;
	uint8_t *b = base_image(&len);
	b[len - 512] = 'X';
	b[0] = 'X';
	expect_refused(b, len, 0, -EINVAL, "not a VHD");
	free(b);
	b = t_create_bytes(VHD_TYPE_FIXED, T_MIB, 0, &len);
	b[len - 512] = 0;
	expect_refused(b, len, 0, -EINVAL, "conectix");
	free(b);
}

Test(hostile, end_footer_broken_and_copy_invalid)
{
	size_t len;
	uint8_t *b = base_image(&len);
	b[len - 512] = 'X';
	vhd_put_be32(b + T_F_VERSION, 0x00090000);
	t_fix_footer(b);
	expect_refused(b, len, 0, -EINVAL, "version");
	free(b);
}

Test(hostile, header_cookie_broken)
{
	size_t len;
	uint8_t *b = base_image(&len);
	memcpy(b + 512, "cxsparsX", 8);
	expect_refused(b, len, 0, -EINVAL, "cxsparse");
	expect_refused(b, len, VHD_OPEN_RDWR, -EINVAL, "cxsparse");
	free(b);
}

Test(hostile, header_checksum_wrong)
{
	size_t len;
	uint8_t *b = base_image(&len);
	b[512 + T_H_CHECKSUM] ^= 0x80;
	expect_read_only(b, len, "header checksum");
	free(b);
}

Test(hostile, header_fields_invalid)
{
	size_t len;
	uint8_t *b = base_image(&len);
	uint8_t *h = b + 512;
	vhd_put_be32(h + T_H_BLOCK_SIZE, 3u << 20);
	t_fix_header(h);
	expect_refused(b, len, 0, -EINVAL, "block size");
	vhd_put_be32(h + T_H_BLOCK_SIZE, 0);
	t_fix_header(h);
	expect_refused(b, len, 0, -EINVAL, "block size");
	vhd_put_be32(h + T_H_BLOCK_SIZE, BS);
	vhd_put_be64(h + T_H_TABLE_OFFSET, BAT_OFF + 4);
	t_fix_header(h);
	expect_refused(b, len, 0, -EINVAL, "table offset");
	free(b);
}

Test(hostile, data_offset_outside_the_file)
{
	size_t len;
	uint8_t *b = base_image(&len);
	const uint64_t bad[] = { 0, len, len - 1024, 1ull << 62, UINT64_MAX - 511 };
	for (size_t i = 0; i < 5; i++) {
		t_patch_footers_be64(b, len, T_F_DATA_OFFSET, bad[i]);
		expect_refused(b, len, 0, -EINVAL, "");
	}
	free(b);
}

Test(hostile, bat_entry_past_eof)
{
	size_t len;
	uint8_t *b = base_image(&len);
	set_bat_entry(b, 5, (uint32_t)(len / 512 + 10));
	expect_refused(b, len, 0, -EINVAL, "past the end");
	/* A block that starts inside the file but ends past its data. */
	set_bat_entry(b, 5, (uint32_t)((len - 512 - 4096) / 512));
	expect_refused(b, len, 0, -EINVAL, "BAT entry 5");
	set_bat_entry(b, 5, 0xFFFFFFFEu);
	expect_refused(b, len, 0, -EINVAL, "past the end");
	free(b);
}

Test(hostile, bat_entries_overlap)
{
	size_t len;
	uint8_t *b = base_image(&len);
	set_bat_entry(b, 1, bat_entry(b, 0));
	expect_refused(b, len, 0, -EINVAL, "overlap");
	/* Not equal, but closer than a block. */
	set_bat_entry(b, 1, bat_entry(b, 2) + 8);
	expect_refused(b, len, 0, -EINVAL, "overlap");
	free(b);
}

Test(hostile, bat_entry_into_metadata)
{
	size_t len;
	uint8_t *b = base_image(&len);
	set_bat_entry(b, 3, BAT_OFF / 512);
	expect_refused(b, len, 0, -EINVAL, "inside the BAT");
	set_bat_entry(b, 3, 1);
	expect_refused(b, len, 0, -EINVAL, "inside the dynamic header");
	set_bat_entry(b, 3, 0);
	expect_refused(b, len, 0, -EINVAL, "inside the footer copy");
	free(b);
}

Test(hostile, max_table_entries_too_small)
{
	size_t len;
	uint8_t *b = base_image(&len);
	vhd_put_be32(b + 512 + T_H_MAX_ENTRIES, VSIZE / BS - 1);
	t_fix_header(b + 512);
	expect_refused(b, len, 0, -EINVAL, "max table entries");
	vhd_put_be32(b + 512 + T_H_MAX_ENTRIES, 0);
	t_fix_header(b + 512);
	expect_refused(b, len, 0, -EINVAL, "max table entries");
	free(b);
}

Test(hostile, huge_table_with_tiny_file)
{
	/* 0x7fffffff entries of 2 MiB: a disk of ~4 PiB in a 1.6 MB file. */
	size_t len;
	uint8_t *b = base_image(&len);
	vhd_put_be32(b + 512 + T_H_MAX_ENTRIES, 0x7FFFFFFFu);
	t_fix_header(b + 512);
	t_patch_footers_be64(b, len, T_F_CURRENT_SIZE, 0x7FFFFFFFull * BS);
	expect_refused(b, len, 0, 0, "BAT");
	/* A smaller table that still cannot be in the file. */
	t_patch_footers_be64(b, len, T_F_CURRENT_SIZE, 4000000ull * BS);
	expect_refused(b, len, 0, -EINVAL, "past the end");
	free(b);
}

/*
 * BUG: open.c load_bat checks only the entries the virtual size needs, not
 * the table the header declares.  With max_table_entries = 0x7fffffff in a
 * 1.6 MB file (and a consistent 8 MiB disk) vhd_open_io succeeds, even for
 * writing, while vhd_check_io reports the declaration as corruption.  A
 * writer then places new blocks inside the declared table, where readers
 * that honour max_table_entries (qemu reads the whole table) take block
 * data for BAT entries.  Open should refuse, as for any table running past
 * the end of the file.
 */
Test(hostile, declared_table_past_eof_refused)
{
	size_t len;
	uint8_t *b = base_image(&len);
	vhd_put_be32(b + 512 + T_H_MAX_ENTRIES, 0x7FFFFFFFu);
	t_fix_header(b + 512);
	struct vhd_check_report rep;
	cr_assert_eq(t_check_bytes(b, len, &rep), 0);
	cr_expect_gt(rep.corruptions, 0u, "check calls it corruption");
	vhd_check_report_free(&rep);
	expect_refused(b, len, VHD_OPEN_RDWR, -EINVAL, "max table entries");
	free(b);
}

Test(hostile, fixed_file_shorter_than_disk)
{
	size_t len;
	uint8_t *b = t_create_bytes(VHD_TYPE_FIXED, 2 * T_MIB, 0, &len);
	t_patch_footers_be64(b, len, T_F_CURRENT_SIZE, 2 * T_MIB + 512);
	expect_refused(b, len, 0, -EINVAL, "holds only");
	free(b);
}

Test(hostile, legacy_511_byte_fixed_footer_opens)
{
	size_t len;
	uint8_t *b = t_create_bytes(VHD_TYPE_FIXED, T_MIB, 0, &len);
	t_fill(b, T_MIB, 4);
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(t_open_bytes(b, len - 1, 0, &img, &err), 0, "%s", err.message);
	struct vhd_info info;
	vhd_get_info(img, &info);
	cr_assert_eq(info.footer_size, 511u);
	cr_assert(info.footer_checksum_ok);
	cr_assert_eq(vhd_virtual_size(img), T_MIB);
	uint8_t buf[512];
	cr_assert_eq(vhd_pread(img, buf, 512, T_MIB - 512), 0);
	cr_assert_eq(memcmp(buf, b + T_MIB - 512, 512), 0);
	vhd_close(img);
	free(b);
}

/* ---- random corruption of whole images ---------------------------------- */

Test(hostile, tiny_images_are_valid)
{
	for (int t = VHD_TYPE_DYNAMIC; t <= VHD_TYPE_DIFFERENCING; t++) {
		size_t len;
		uint8_t *b = t_tiny_image((enum vhd_type)t, &len);
		struct vhd_check_report rep;
		cr_assert_eq(t_check_bytes(b, len, &rep), 0);
		cr_assert_eq(rep.corruptions, 0u, "type %d: %s", t, t_report_text(&rep));
		cr_assert_eq(rep.leaks, 0u, "type %d: %s", t, t_report_text(&rep));
		vhd_check_report_free(&rep);
		struct vhd_image *img;
		struct vhd_error err;
		cr_assert_eq(t_open_bytes(b, len, VHD_OPEN_NO_PARENT, &img, &err), 0, "%s", err.message);
		cr_assert_eq(vhd_virtual_size(img), TINY_VSIZE);
		uint8_t buf[TINY_BS], want[TINY_BS];
		/* Block 5: all held. */
		cr_assert_eq(vhd_pread(img, buf, TINY_BS, 5 * TINY_BS), 0);
		t_fill(want, TINY_BS, 502);
		cr_assert_eq(memcmp(buf, want, TINY_BS), 0);
		if (t == VHD_TYPE_DYNAMIC) {
			/* Block 3: sectors 0-2 and 5 held, the rest zero. */
			cr_assert_eq(vhd_pread(img, buf, TINY_BS, 3 * TINY_BS), 0);
			t_fill(want, 3 * 512, 301);
			cr_assert_eq(memcmp(buf, want, 3 * 512), 0);
			cr_assert(t_all_zero(buf + 3 * 512, 2 * 512));
			t_fill(want, 512, 401);
			cr_assert_eq(memcmp(buf + 5 * 512, want, 512), 0);
			cr_assert(t_all_zero(buf + 6 * 512, 2 * 512));
		} else {
			cr_assert_eq(vhd_locator_count(img), 2);
			struct vhd_locator loc;
			cr_assert_eq(vhd_get_locator(img, 0, &loc), 0);
			cr_assert_str_eq(loc.path, ".\\p.vhd");
			cr_assert_eq(vhd_get_locator(img, 1, &loc), 0);
			cr_assert_str_eq(loc.path, "file:///images/p.vhd");
			/* Unheld sectors need the parent, which is not there. */
			cr_assert_lt(vhd_pread(img, buf, TINY_BS, 3 * TINY_BS), 0);
		}
		vhd_close(img);
		free(b);
	}
}

static const uint32_t interesting[] = { 0, 1, 2, 3, 4, 7, 0x200, 0x1000, 0x7FFFFFFF, 0x80000000,
					0xFFFFFFFE, 0xFFFFFFFF, 0x10000, 0x00010000, 0x20 };

static void mutate(uint8_t *b, size_t len, uint64_t *st)
{
	int edits = 1 + (int)(t_rand(st) % 4);
	for (int e = 0; e < edits; e++) {
		/* Mostly metadata: the footers, header, BAT, locators, bitmaps. */
		size_t where;
		switch (t_rand(st) % 5) {
		case 0: where = len - 512 + t_rand(st) % 512; break;
		case 1: where = t_rand(st) % 512; break;
		case 2: where = 512 + t_rand(st) % 1024; break;
		case 3: where = 1536 + t_rand(st) % 128; break;
		default: where = t_rand(st) % len; break;
		}
		if (t_rand(st) & 1) {
			b[where] ^= (uint8_t)(1u << (t_rand(st) % 8));
		} else {
			where &= ~(size_t)3;
			if (where + 4 > len)
				continue;
			vhd_put_be32(b + where, interesting[t_rand(st) % (sizeof(interesting) / 4)] +
						(t_rand(st) % 4 == 0 ? (uint32_t)(t_rand(st) % 64) : 0));
		}
	}
	/* Often make the checksums right, so deeper checks are reached. */
	if (t_rand(st) % 3) {
		if (!memcmp(b + len - 512, "conectix", 8))
			t_fix_footer(b + len - 512);
		if (!memcmp(b, "conectix", 8))
			t_fix_footer(b);
		if (!memcmp(b + 512, "cxsparse", 8))
			t_fix_header(b + 512);
	}
}

/* Use an opened image every way a caller may; nothing may crash. */
static void exercise(struct vhd_image *img, uint64_t *st)
{
	struct vhd_info info;
	cr_assert_eq(vhd_get_info(img, &info), 0);
	uint64_t size = vhd_virtual_size(img);
	for (int i = 0; i < vhd_locator_count(img) + 1; i++) {
		struct vhd_locator loc;
		vhd_get_locator(img, i, &loc);
	}
	uint8_t buf[3 * TINY_BS];
	if (!size)
		return;
	uint64_t off = 0;
	for (int i = 0; i < 40 && off < size; i++) {
		struct vhd_extent e;
		if (vhd_block_status(img, off, size - off, &e) < 0)
			break;
		cr_assert(e.length >= 1 && e.length <= size - off);
		off += e.length;
	}
	for (int i = 0; i < 6; i++) {
		uint64_t o = i == 0 ? 0 : t_rand(st) % size;
		size_t n = 1 + (size_t)(t_rand(st) % sizeof(buf));
		if (n > size - o)
			n = (size_t)(size - o);
		int r = vhd_pread(img, buf, n, o);
		cr_assert(r <= 0);
		if (r < 0)
			cr_assert_neq(vhd_errmsg(img)[0], '\0');
	}
}

static void fuzz_images(enum vhd_type type, uint64_t seed, int iterations)
{
	size_t len;
	uint8_t *orig = t_tiny_image(type, &len);
	uint8_t *b = malloc(len);
	uint64_t st = seed;
	int opened = 0, opened_rw = 0;
	for (int iter = 0; iter < iterations; iter++) {
		memcpy(b, orig, len);
		mutate(b, len, &st);
		size_t blen = len;
		if (t_rand(&st) % 16 == 0)
			blen = (size_t)(t_rand(&st) % len);

		struct vhd_check_report rep;
		cr_assert_eq(t_check_bytes(b, blen, &rep), 0);
		cr_assert(rep.count <= VHD_CHECK_MAX_FINDINGS);
		vhd_check_report_free(&rep);

		unsigned flags = VHD_OPEN_NO_PARENT;
		if (type == VHD_TYPE_DIFFERENCING && iter % 2)
			flags = VHD_OPEN_PARENT_OPTIONAL;
		struct vhd_image *img;
		struct vhd_error err;
		int r = t_open_bytes(b, blen, flags, &img, &err);
		if (r < 0) {
			cr_assert_neq(err.message[0], '\0', "iter %d: refusal %d without a message", iter, r);
			cr_assert_null(img);
		} else {
			opened++;
			exercise(img, &st);
			vhd_close(img);
		}

		/* Writable: allocate and rewrite, then the result must still parse. */
		r = t_open_bytes(b, blen, flags | VHD_OPEN_RDWR, &img, &err);
		if (r == 0) {
			opened_rw++;
			struct vhd_info info;
			vhd_get_info(img, &info);
			uint64_t size = vhd_virtual_size(img);
			if (size && (info.type == VHD_TYPE_FIXED || info.block_size <= (1u << 20))) {
				uint8_t data[1500];
				t_fill(data, sizeof(data), (uint64_t)iter);
				for (int k = 0; k < 3; k++) {
					uint64_t o = t_rand(&st) % size;
					size_t n = (size_t)vhd_min_u64(sizeof(data), size - o);
					vhd_pwrite(img, data, n, o);
				}
				vhd_flush(img);
				exercise(img, &st);
			}
			size_t after_len;
			uint8_t *after = t_image_bytes(img, &after_len);
			vhd_close(img);
			cr_assert_eq(t_check_bytes(after, after_len, &rep), 0);
			vhd_check_report_free(&rep);
			free(after);
		}
	}
	cr_log_info("%s fuzz: %d mutations, %d opened read-only, %d opened for writing",
		    type == VHD_TYPE_DYNAMIC ? "dynamic" : "differencing", iterations, opened, opened_rw);
	cr_assert_gt(opened, 0, "some mutations must still open");
	free(b);
	free(orig);
}

Test(hostile, random_corruption_dynamic)
{
	fuzz_images(VHD_TYPE_DYNAMIC, 11, 3000);
}

Test(hostile, random_corruption_differencing)
{
	fuzz_images(VHD_TYPE_DIFFERENCING, 12, 3000);
}

Test(hostile, random_corruption_of_created_fixed_and_dynamic)
{
	/* Real layouts from vhd_create_io, fewer rounds (bigger files). */
	uint64_t st = 13;
	for (int t = 0; t < 2; t++) {
		size_t len;
		uint8_t *orig = t_create_bytes(t ? VHD_TYPE_DYNAMIC : VHD_TYPE_FIXED, 3 * T_MIB + 512,
					      512u << 10, &len);
		uint8_t *b = malloc(len);
		for (int iter = 0; iter < 300; iter++) {
			memcpy(b, orig, len);
			mutate(b, len, &st);
			struct vhd_image *img;
			struct vhd_error err;
			if (t_open_bytes(b, len, 0, &img, &err) == 0) {
				exercise(img, &st);
				vhd_close(img);
			} else {
				cr_assert_neq(err.message[0], '\0');
			}
			struct vhd_check_report rep;
			cr_assert_eq(t_check_bytes(b, len, &rep), 0);
			vhd_check_report_free(&rep);
		}
		free(b);
		free(orig);
	}
}
