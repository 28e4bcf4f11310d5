/* SPDX-License-Identifier: MIT */
/* header.c: dynamic header round trip, validation, parent locators. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"

static struct vhd_header sample_header(void)
{
	struct vhd_header h;
	memset(&h, 0, sizeof(h));
	h.data_offset = VHD_NO_OFFSET;
	h.table_offset = 1536;
	h.header_version = VHD_HEADER_VERSION;
	h.max_table_entries = 512;
	h.block_size = 2u << 20;
	for (int i = 0; i < 16; i++)
		h.parent_uuid[i] = (uint8_t)(0x10 * i + 1);
	h.parent_timestamp = 0x1A2B3C4D;
	/* "p.vhd" in UTF-16BE */
	const char *name = "p.vhd";
	for (int i = 0; name[i]; i++)
		h.parent_name[2 * i + 1] = (uint8_t)name[i];
	h.parent_name[510] = 0xAB;
	h.parent_name[511] = 0xCD;
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		h.loc[i].code = 0x41424300u + (uint32_t)i;
		h.loc[i].data_space = 512u * (uint32_t)(i + 1);
		h.loc[i].data_length = 100u + (uint32_t)i;
		h.loc[i].data_offset = 0x100000000ull * (uint64_t)(i + 1) + 512u * (uint64_t)i;
	}
	return h;
}

Test(header, encode_decode_round_trip_with_8_locators)
{
	struct vhd_header h = sample_header(), g;
	uint8_t buf[1024];
	vhd_header_encode(&h, buf);

	cr_assert_eq(memcmp(buf, "cxsparse", 8), 0);
	cr_assert(vhd_header_checksum_ok(buf));
	cr_assert_eq(vhd_be64(buf + 8), VHD_NO_OFFSET);
	cr_assert_eq(vhd_be64(buf + T_H_TABLE_OFFSET), 1536u);
	cr_assert_eq(vhd_be32(buf + 24), 0x00010000u);
	cr_assert_eq(vhd_be32(buf + T_H_MAX_ENTRIES), 512u);
	cr_assert_eq(vhd_be32(buf + T_H_BLOCK_SIZE), 2u << 20);
	cr_assert_eq(vhd_be32(buf + 56), 0x1A2B3C4Du);
	cr_assert_eq(buf[64 + 1], 'p');
	/* Locator 7 is the last 24-byte entry: 576 + 7*24 = 744. */
	cr_assert_eq(vhd_be32(buf + 744), 0x41424307u);
	cr_assert_eq(vhd_be32(buf + 748), 4096u);
	cr_assert_eq(vhd_be32(buf + 752), 107u);
	cr_assert_eq(vhd_be32(buf + 756), 0u, "reserved");
	cr_assert_eq(vhd_be64(buf + 760), h.loc[7].data_offset);
	cr_assert(t_all_zero(buf + 768, 256), "reserved tail is zero");

	cr_assert(vhd_header_decode(buf, sizeof(buf), &g));
	cr_assert_eq(g.data_offset, h.data_offset);
	cr_assert_eq(g.table_offset, h.table_offset);
	cr_assert_eq(g.header_version, h.header_version);
	cr_assert_eq(g.max_table_entries, h.max_table_entries);
	cr_assert_eq(g.block_size, h.block_size);
	cr_assert_eq(g.checksum, vhd_be32(buf + T_H_CHECKSUM));
	cr_assert_eq(memcmp(g.parent_uuid, h.parent_uuid, 16), 0);
	cr_assert_eq(g.parent_timestamp, h.parent_timestamp);
	cr_assert_eq(memcmp(g.parent_name, h.parent_name, 512), 0);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		cr_assert_eq(g.loc[i].code, h.loc[i].code, "loc %d", i);
		cr_assert_eq(g.loc[i].data_space, h.loc[i].data_space, "loc %d", i);
		cr_assert_eq(g.loc[i].data_length, h.loc[i].data_length, "loc %d", i);
		cr_assert_eq(g.loc[i].data_offset, h.loc[i].data_offset, "loc %d", i);
	}
	cr_assert_eq(vhd_header_validate(&g, NULL, 0), 0);
	uint8_t again[1024];
	vhd_header_encode(&g, again);
	cr_assert_eq(memcmp(buf, again, sizeof(buf)), 0);
}

Test(header, decode_needs_cookie_and_1024_bytes)
{
	struct vhd_header h = sample_header(), g;
	uint8_t buf[1024];
	vhd_header_encode(&h, buf);
	cr_assert(!vhd_header_decode(buf, 1023, &g));
	cr_assert(!vhd_header_decode(buf, 0, &g));
	buf[0] = 'C';
	cr_assert(!vhd_header_decode(buf, 1024, &g));
}

Test(header, checksum_detects_changes)
{
	struct vhd_header h = sample_header();
	uint8_t buf[1024];
	vhd_header_encode(&h, buf);
	for (size_t i = 0; i < sizeof(buf); i += 7) {
		if (i >= 36 && i < 40)
			continue;
		buf[i] ^= 0x01;
		cr_assert(!vhd_header_checksum_ok(buf), "byte %zu", i);
		buf[i] ^= 0x01;
	}
	cr_assert(vhd_header_checksum_ok(buf));
}

static void expect_invalid(const struct vhd_header *h, const char *needle)
{
	char why[200] = "";
	cr_assert_eq(vhd_header_validate(h, why, sizeof(why)), -EINVAL, "accepted");
	cr_assert_not_null(strstr(why, needle), "message '%s' lacks '%s'", why, needle);
}

Test(header, validate_rejects_bad_block_sizes)
{
	struct vhd_header h = sample_header();
	uint32_t bad[] = { 0, 3, 256, 511, 513, 3u << 20, (2u << 20) + 512, 0xFFFFFFFFu, 0x80000001u };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h.block_size = bad[i];
		expect_invalid(&h, "block size");
	}
	/* Any power of two from 512 is legal to read. */
	for (unsigned s = 9; s < 32; s++) {
		h.block_size = 1u << s;
		cr_assert_eq(vhd_header_validate(&h, NULL, 0), 0, "block size 2^%u", s);
	}
}

Test(header, validate_rejects_unaligned_table_offset)
{
	struct vhd_header h = sample_header();
	h.table_offset = 1537;
	expect_invalid(&h, "table offset");
	h.table_offset = 1536 + 256;
	expect_invalid(&h, "table offset");
	h.table_offset = VHD_NO_OFFSET;
	expect_invalid(&h, "table offset");
	h.table_offset = 0x200000;
	cr_assert_eq(vhd_header_validate(&h, NULL, 0), 0);
}

Test(header, validate_rejects_bad_version)
{
	struct vhd_header h = sample_header();
	h.header_version = 0x00020000;
	expect_invalid(&h, "version");
	h.header_version = 0;
	expect_invalid(&h, "version");
}

Test(header, locator_space_sectors_or_bytes)
{
	struct vhd_locator_entry l = { VHD_PLAT_W2RU, 0, 0, 0 };
	cr_assert_eq(vhd_locator_space_bytes(&l), 0u);
	l.data_space = 1;
	cr_assert_eq(vhd_locator_space_bytes(&l), 512u, "1 is a sector count");
	l.data_space = 2;
	cr_assert_eq(vhd_locator_space_bytes(&l), 1024u);
	l.data_space = 511;
	cr_assert_eq(vhd_locator_space_bytes(&l), 511u * 512u);
	l.data_space = 512;
	cr_assert_eq(vhd_locator_space_bytes(&l), 512u, "512 is bytes (Hyper-V)");
	l.data_space = 4096;
	cr_assert_eq(vhd_locator_space_bytes(&l), 4096u);
	l.data_space = 0xFFFFFFFFu;
	cr_assert_eq(vhd_locator_space_bytes(&l), 0xFFFFFFFFull);
}

/* UTF-8 text as UTF-16LE bytes (ASCII and 2-byte sequences only). */
static size_t to_utf16le(const char *s, uint8_t *out)
{
	int n = vhd_utf8_to_utf16(s, false, out, 2048);
	cr_assert(n >= 0);
	return (size_t)n;
}

Test(header, decode_w2ru_and_w2ku_utf16le)
{
	uint8_t data[2048];
	char out[VHD_LOCATOR_MAX_PATH];
	size_t n = to_utf16le(".\\parent.vhd", data);
	cr_assert_eq(n, 24u);
	cr_assert_eq(data[0], '.');
	cr_assert_eq(data[1], 0);
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_W2RU, data, n, out, sizeof(out)), 0);
	cr_assert_str_eq(out, ".\\parent.vhd");

	n = to_utf16le("C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd", data);
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_W2KU, data, n, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd");

	/* Non-ASCII names survive; NUL padding to the data space is fine. */
	memset(data, 0, sizeof(data));
	n = to_utf16le(".\\d\xc3\xa9j\xc3\xa0 vu.vhd", data);
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_W2RU, data, 512, out, sizeof(out)), 0);
	cr_assert_str_eq(out, ".\\d\xc3\xa9j\xc3\xa0 vu.vhd");

	/* Big-endian bytes are not what Windows writes: 'a' as BE is U+6100. */
	uint8_t be[] = { 0, 'a', 0, 'b' };
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_W2RU, be, 4, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "\xe6\x84\x80\xe6\x88\x80");
}

Test(header, decode_w2ru_rejects_bad_utf16_and_empty)
{
	char out[64];
	uint8_t lone[] = { 0x00, 0xDC, 'a', 0 };
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_W2RU, lone, 4, out, sizeof(out)), -EINVAL);
	uint8_t empty[] = { 0, 0 };
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_W2KU, empty, 2, out, sizeof(out)), -EINVAL);
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_W2KU, empty, 0, out, sizeof(out)), -EINVAL);
	/* Too long for out. */
	uint8_t data[2048];
	memset(data, 0, sizeof(data));
	for (int i = 0; i < 100; i++)
		data[2 * i] = 'x';
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_W2KU, data, 200, out, sizeof(out)), -EINVAL);
}

Test(header, decode_macx_utf8_url)
{
	char out[VHD_LOCATOR_MAX_PATH];
	const char *url = "file:///var/lib/images/a%20b.vhd";
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_MACX, (const uint8_t *)url, strlen(url), out,
					     sizeof(out)),
		     0);
	cr_assert_str_eq(out, url);

	/* Trailing NUL padding stops the string. */
	uint8_t padded[512];
	memset(padded, 0, sizeof(padded));
	memcpy(padded, url, strlen(url));
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_MACX, padded, sizeof(padded), out, sizeof(out)), 0);
	cr_assert_str_eq(out, url);

	/* UTF-8 passes through. */
	const char *u8 = "file:///tmp/\xc3\xa9t\xc3\xa9.vhd";
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_MACX, (const uint8_t *)u8, strlen(u8), out,
					     sizeof(out)),
		     0);
	cr_assert_str_eq(out, u8);

	/* Empty, and too long for out. */
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_MACX, padded + 100, 10, out, sizeof(out)), -EINVAL);
	char small[8];
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_MACX, (const uint8_t *)url, strlen(url), small,
					     sizeof(small)),
		     -EINVAL);
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_MACX, (const uint8_t *)"abcdefgh", 8, small,
					     sizeof(small)),
		     -EINVAL, "8 bytes need 9 with the NUL");
	cr_assert_eq(vhd_locator_decode_path(VHD_PLAT_MACX, (const uint8_t *)"abcdefg", 7, small,
					     sizeof(small)),
		     0);
	cr_assert_str_eq(small, "abcdefg");
}

/*
 * BUG: header.c vhd_locator_decode_path, MacX case: the comment says it
 * refuses "invalid sequences", and internal.h promises a UTF-8 string, but
 * the bytes are copied unchecked: a MacX locator holding invalid UTF-8
 * (a lone continuation byte, a truncated sequence, an overlong '/') is
 * returned as success and reaches open_sibling and vhdtool's output as is.
 */
Test(header, decode_macx_rejects_invalid_utf8)
{
	char out[64];
	const uint8_t bad1[] = { 'f', 'i', 'l', 'e', ':', '/', '/', '/', 0x80, 'x' };
	const uint8_t bad2[] = { 'f', 'i', 'l', 'e', ':', '/', '/', '/', 0xC3 };
	const uint8_t bad3[] = { 'f', 'i', 'l', 'e', ':', '/', '/', '/', 0xC0, 0xAF, 'x' };
	cr_expect_eq(vhd_locator_decode_path(VHD_PLAT_MACX, bad1, sizeof(bad1), out, sizeof(out)),
		     -EINVAL);
	cr_expect_eq(vhd_locator_decode_path(VHD_PLAT_MACX, bad2, sizeof(bad2), out, sizeof(out)),
		     -EINVAL);
	cr_expect_eq(vhd_locator_decode_path(VHD_PLAT_MACX, bad3, sizeof(bad3), out, sizeof(out)),
		     -EINVAL);
}

Test(header, decode_rejects_unknown_codes)
{
	char out[64];
	const uint8_t data[] = { '.', 0, '\\', 0, 'p', 0 };
	uint32_t codes[] = { 0, 0x12345678u, VHD_PLAT_WI2R, VHD_PLAT_WI2K, VHD_PLAT_MAC,
			     0x77327275u /* "w2ru" lower case */ };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		strcpy(out, "untouched");
		cr_assert_eq(vhd_locator_decode_path(codes[i], data, sizeof(data), out, sizeof(out)),
			     -EINVAL, "code 0x%08x", codes[i]);
	}
}

Test(header, created_child_has_w2ru_and_macx_locators)
{
	char *dir = t_mkdtemp();
	char parent[4200], child[4200];
	snprintf(parent, sizeof(parent), "%s/parent.vhd", dir);
	snprintf(child, sizeof(child), "%s/child.vhd", dir);
	struct vhd_error err = { 0 };
	struct vhd_create_params pp = { .type = VHD_TYPE_DYNAMIC, .size = 8 * T_MIB };
	cr_assert_eq(vhd_create(parent, &pp, NULL, &err), 0, "%s", err.message);
	struct vhd_create_params cp = { .type = VHD_TYPE_DIFFERENCING, .parent = parent };
	struct vhd_image *img;
	cr_assert_eq(vhd_create(child, &cp, &img, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_get_type(img), VHD_TYPE_DIFFERENCING);
	cr_assert_not_null(vhd_parent(img));
	cr_assert_eq(vhd_virtual_size(img), 8 * T_MIB);

	cr_assert_eq(vhd_locator_count(img), 2);
	struct vhd_locator loc;
	cr_assert_eq(vhd_get_locator(img, 0, &loc), 0);
	cr_assert_str_eq(loc.code, "W2ru");
	cr_assert(loc.valid);
	cr_assert_str_eq(loc.path, ".\\parent.vhd");
	cr_assert_eq(loc.data_length, 24u);
	cr_assert_eq(loc.data_space % 512, 0u);
	cr_assert(loc.data_space >= 512, "data space in bytes, as Hyper-V writes it");
	cr_assert_eq(loc.data_offset % 512, 0u);

	cr_assert_eq(vhd_get_locator(img, 1, &loc), 0);
	cr_assert_str_eq(loc.code, "MacX");
	cr_assert(loc.valid);
	char url[4300];
	char *real = realpath(parent, NULL);
	cr_assert_not_null(real);
	snprintf(url, sizeof(url), "file://%s", real);
	free(real);
	cr_assert_str_eq(loc.path, url);
	cr_assert_neq(vhd_get_locator(img, 2, &loc), 0);
	cr_assert_neq(vhd_get_locator(img, -1, &loc), 0);

	struct vhd_info info;
	cr_assert_eq(vhd_get_info(img, &info), 0);
	cr_assert_str_eq(info.parent_name, "parent.vhd");
	struct vhd_info pinfo;
	cr_assert_eq(vhd_get_info(vhd_parent(img), &pinfo), 0);
	cr_assert_eq(memcmp(info.parent_uuid, pinfo.uuid, 16), 0);
	cr_assert_eq(info.parent_timestamp, pinfo.timestamp);
	cr_assert_eq(vhd_close(img), 0);

	struct vhd_check_report rep;
	cr_assert_eq(vhd_check(child, &rep, &err), 0);
	cr_assert_eq(rep.corruptions, 0u, "%s", t_report_text(&rep));
	cr_assert(rep.complete);
	vhd_check_report_free(&rep);
	t_rmtree(dir);
	free(dir);
}
