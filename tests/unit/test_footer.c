/* SPDX-License-Identifier: MIT */
/* footer.c: checksum, decode/encode round trip, validation, legacy footers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"

static struct vhd_footer sample_footer(void)
{
	struct vhd_footer f;
	memset(&f, 0, sizeof(f));
	f.features = VHD_FEATURES_RESERVED;
	f.format_version = VHD_FILE_FORMAT_VERSION;
	f.data_offset = 512;
	f.timestamp = 0x2A3B4C5D;
	memcpy(f.creator_app, "qem2", 4);
	f.creator_version = 0x00010000;
	f.creator_host_os = 0x5769326B;
	f.original_size = 1 * T_GIB;
	f.current_size = 1 * T_GIB;
	f.geometry = (struct vhd_geometry){ 2080, 16, 63 };
	f.disk_type = VHD_TYPE_DYNAMIC;
	for (int i = 0; i < 16; i++)
		f.uuid[i] = (uint8_t)(0xA0 + i);
	f.saved_state = 0;
	return f;
}

Test(footer, checksum_is_ones_complement_of_byte_sum)
{
	uint8_t buf[512];
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(vhd_checksum(buf, sizeof(buf), 64), 0xFFFFFFFFu);
	buf[0] = 1;
	buf[511] = 2;
	cr_assert_eq(vhd_checksum(buf, sizeof(buf), 64), ~3u);
	/* The checksum field itself does not count. */
	memset(buf + 64, 0xFF, 4);
	cr_assert_eq(vhd_checksum(buf, sizeof(buf), 64), ~3u);
	/* Every byte 0xFF: 512 * 255 = 130560, less the 4 field bytes. */
	memset(buf, 0xFF, sizeof(buf));
	cr_assert_eq(vhd_checksum(buf, sizeof(buf), 64), ~(508u * 255u));
	/* The field may be anywhere (the header keeps it at 36). */
	cr_assert_eq(vhd_checksum(buf, sizeof(buf), 36), ~(508u * 255u));
}

Test(footer, checksum_of_known_bytes)
{
	/* "conectix" alone: c+o+n+e+c+t+i+x = 0x35d. */
	uint8_t buf[512] = { 'c', 'o', 'n', 'e', 'c', 't', 'i', 'x' };
	cr_assert_eq(vhd_checksum(buf, sizeof(buf), 64), ~0x35du);
}

Test(footer, encode_decode_round_trip)
{
	struct vhd_footer f = sample_footer(), g;
	uint8_t buf[512];

	vhd_footer_encode(&f, buf);
	cr_assert_eq(memcmp(buf, "conectix", 8), 0);
	cr_assert(vhd_footer_checksum_ok(buf, sizeof(buf)));
	/* Fields land big-endian at the spec's offsets. */
	cr_assert_eq(vhd_be32(buf + T_F_FEATURES), VHD_FEATURES_RESERVED);
	cr_assert_eq(vhd_be32(buf + T_F_VERSION), 0x00010000u);
	cr_assert_eq(vhd_be64(buf + T_F_DATA_OFFSET), 512u);
	cr_assert_eq(memcmp(buf + T_F_CREATOR_APP, "qem2", 4), 0);
	cr_assert_eq(vhd_be64(buf + T_F_CURRENT_SIZE), T_GIB);
	cr_assert_eq(vhd_be16(buf + T_F_GEOMETRY), 2080);
	cr_assert_eq(buf[T_F_GEOMETRY + 2], 16);
	cr_assert_eq(buf[T_F_GEOMETRY + 3], 63);
	cr_assert_eq(vhd_be32(buf + T_F_DISK_TYPE), 3u);
	cr_assert_eq(buf[68], 0xA0);
	cr_assert_eq(buf[83], 0xAF);
	cr_assert(t_all_zero(buf + 85, 512 - 85), "reserved bytes are zero");

	cr_assert(vhd_footer_decode(buf, sizeof(buf), &g));
	cr_assert_eq(g.features, f.features);
	cr_assert_eq(g.format_version, f.format_version);
	cr_assert_eq(g.data_offset, f.data_offset);
	cr_assert_eq(g.timestamp, f.timestamp);
	cr_assert_eq(memcmp(g.creator_app, f.creator_app, 4), 0);
	cr_assert_eq(g.creator_version, f.creator_version);
	cr_assert_eq(g.creator_host_os, f.creator_host_os);
	cr_assert_eq(g.original_size, f.original_size);
	cr_assert_eq(g.current_size, f.current_size);
	cr_assert_eq(g.geometry.cylinders, 2080);
	cr_assert_eq(g.geometry.heads, 16);
	cr_assert_eq(g.geometry.sectors, 63);
	cr_assert_eq(g.disk_type, f.disk_type);
	cr_assert_eq(g.checksum, vhd_be32(buf + T_F_CHECKSUM));
	cr_assert_eq(memcmp(g.uuid, f.uuid, 16), 0);
	cr_assert_eq(g.saved_state, 0);
	cr_assert_eq(vhd_footer_validate(&g, NULL, 0), 0);

	/* Encoding the decoded footer gives the same bytes. */
	uint8_t again[512];
	vhd_footer_encode(&g, again);
	cr_assert_eq(memcmp(buf, again, sizeof(buf)), 0);
}

Test(footer, round_trip_extreme_values)
{
	struct vhd_footer f = sample_footer(), g;
	uint8_t buf[512];
	f.data_offset = VHD_NO_OFFSET;
	f.disk_type = VHD_TYPE_FIXED;
	f.timestamp = UINT32_MAX;
	f.original_size = UINT64_MAX;
	f.current_size = 0x7FFFFFFFFFFFFE00ull;
	f.geometry = (struct vhd_geometry){ 65535, 255, 255 };
	f.saved_state = 1;
	vhd_footer_encode(&f, buf);
	cr_assert(vhd_footer_decode(buf, sizeof(buf), &g));
	cr_assert_eq(g.data_offset, VHD_NO_OFFSET);
	cr_assert_eq(g.timestamp, UINT32_MAX);
	cr_assert_eq(g.original_size, UINT64_MAX);
	cr_assert_eq(g.current_size, f.current_size);
	cr_assert_eq(g.geometry.cylinders, 65535);
	cr_assert_eq(g.geometry.heads, 255);
	cr_assert_eq(g.saved_state, 1);
}

Test(footer, checksum_detects_one_changed_byte)
{
	struct vhd_footer f = sample_footer();
	uint8_t buf[512];
	vhd_footer_encode(&f, buf);
	for (size_t i = 0; i < sizeof(buf); i++) {
		if (i >= 64 && i < 68)
			continue;
		buf[i] ^= 0x10;
		cr_assert(!vhd_footer_checksum_ok(buf, sizeof(buf)), "byte %zu", i);
		buf[i] ^= 0x10;
	}
	cr_assert(vhd_footer_checksum_ok(buf, sizeof(buf)));
	buf[66] ^= 1;
	cr_assert(!vhd_footer_checksum_ok(buf, sizeof(buf)));
}

Test(footer, decode_requires_cookie_and_length)
{
	struct vhd_footer f = sample_footer(), g;
	uint8_t buf[512];
	vhd_footer_encode(&f, buf);
	cr_assert(vhd_footer_decode(buf, 512, &g));
	cr_assert(vhd_footer_decode(buf, 511, &g));
	cr_assert(!vhd_footer_decode(buf, 510, &g));
	cr_assert(!vhd_footer_decode(buf, 0, &g));
	buf[7] = 'X';
	cr_assert(!vhd_footer_decode(buf, 512, &g));
}

Test(footer, legacy_511_byte_footer)
{
	/* Virtual PC before 2004: the footer's last (reserved) byte is missing. */
	struct vhd_footer f = sample_footer(), g;
	f.disk_type = VHD_TYPE_FIXED;
	f.data_offset = VHD_NO_OFFSET;
	uint8_t buf[512];
	vhd_footer_encode(&f, buf);
	uint8_t legacy[511];
	memcpy(legacy, buf, sizeof(legacy));
	cr_assert(vhd_footer_decode(legacy, sizeof(legacy), &g));
	cr_assert(vhd_footer_checksum_ok(legacy, sizeof(legacy)));
	cr_assert_eq(g.current_size, f.current_size);
	cr_assert_eq(g.saved_state, 0);
	cr_assert_eq(memcmp(g.uuid, f.uuid, 16), 0);
	cr_assert_eq(vhd_footer_validate(&g, NULL, 0), 0);
}

static void expect_invalid(const struct vhd_footer *f, const char *needle)
{
	char why[200] = "";
	cr_assert_eq(vhd_footer_validate(f, why, sizeof(why)), -EINVAL, "accepted; why='%s'", why);
	cr_assert_neq(why[0], '\0');
	cr_assert_not_null(strstr(why, needle), "message '%s' lacks '%s'", why, needle);
}

Test(footer, validate_accepts_the_three_types)
{
	struct vhd_footer f = sample_footer();
	cr_assert_eq(vhd_footer_validate(&f, NULL, 0), 0);
	f.disk_type = VHD_TYPE_DIFFERENCING;
	cr_assert_eq(vhd_footer_validate(&f, NULL, 0), 0);
	f.disk_type = VHD_TYPE_FIXED;
	f.data_offset = VHD_NO_OFFSET;
	cr_assert_eq(vhd_footer_validate(&f, NULL, 0), 0);
	/* Minor versions are fine. */
	f.format_version = 0x0001FFFF;
	cr_assert_eq(vhd_footer_validate(&f, NULL, 0), 0);
}

Test(footer, validate_rejects_bad_version)
{
	struct vhd_footer f = sample_footer();
	f.format_version = 0x00020000;
	expect_invalid(&f, "version");
	f.format_version = 0;
	expect_invalid(&f, "version");
	f.format_version = 0x00000001;
	expect_invalid(&f, "version");
}

Test(footer, validate_rejects_unknown_disk_type)
{
	struct vhd_footer f = sample_footer();
	f.disk_type = 7;
	expect_invalid(&f, "type 7");
	f.disk_type = 0;
	expect_invalid(&f, "type");
	f.disk_type = 1; /* "reserved (deprecated)" in the spec */
	expect_invalid(&f, "type");
	f.disk_type = 5;
	expect_invalid(&f, "type");
}

Test(footer, validate_rejects_size_not_multiple_of_512)
{
	struct vhd_footer f = sample_footer();
	f.current_size = T_GIB + 1;
	expect_invalid(&f, "512");
	f.current_size = 511;
	expect_invalid(&f, "512");
	f.disk_type = VHD_TYPE_FIXED;
	f.data_offset = VHD_NO_OFFSET;
	f.current_size = 4097;
	expect_invalid(&f, "multiple of 512");
}

Test(footer, validate_rejects_impossible_size)
{
	struct vhd_footer f = sample_footer();
	f.current_size = UINT64_MAX & ~511ull;
	expect_invalid(&f, "large");
}

Test(footer, validate_rejects_dynamic_without_data_offset)
{
	struct vhd_footer f = sample_footer();
	f.data_offset = VHD_NO_OFFSET;
	expect_invalid(&f, "data offset");
	f.disk_type = VHD_TYPE_DIFFERENCING;
	expect_invalid(&f, "differencing");
	f.disk_type = VHD_TYPE_DYNAMIC;
	f.data_offset = 513;
	expect_invalid(&f, "dynamic");
}

Test(footer, validate_size_rule_uses_geometry_for_vpc)
{
	/* A `vpc ` footer is sized by CHS: current_size does not matter. */
	struct vhd_footer f = sample_footer();
	memcpy(f.creator_app, "vpc ", 4);
	f.current_size = 12345; /* odd, but ignored */
	cr_assert_eq(vhd_footer_validate(&f, NULL, 0), 0);
}

Test(footer, validate_message_is_truncated_safely)
{
	struct vhd_footer f = sample_footer();
	f.disk_type = 7;
	char why[8];
	memset(why, 'Z', sizeof(why));
	cr_assert_eq(vhd_footer_validate(&f, why, sizeof(why)), -EINVAL);
	cr_assert_eq(why[7], '\0');
	cr_assert_eq(strlen(why), 7u);
}

Test(footer, created_images_carry_valid_footers)
{
	size_t len;
	uint8_t *b = t_create_bytes(VHD_TYPE_DYNAMIC, 64 * T_MIB, 0, &len);
	struct vhd_footer end, copy;
	cr_assert(vhd_footer_decode(b + len - 512, 512, &end));
	cr_assert(vhd_footer_decode(b, 512, &copy));
	cr_assert(vhd_footer_checksum_ok(b + len - 512, 512));
	cr_assert_eq(memcmp(b, b + len - 512, 512), 0, "copy at 0 equals the end footer");
	cr_assert_eq(end.data_offset, 512u);
	cr_assert_eq(end.current_size, 64 * T_MIB);
	cr_assert_eq(end.original_size, 64 * T_MIB);
	cr_assert_eq(memcmp(end.creator_app, "qem2", 4), 0);
	cr_assert_eq(end.features & VHD_FEATURES_RESERVED, VHD_FEATURES_RESERVED);
	cr_assert_eq(vhd_footer_validate(&end, NULL, 0), 0);
	free(b);

	b = t_create_bytes(VHD_TYPE_FIXED, 3 * T_MIB, 0, &len);
	cr_assert_eq(len, 3 * T_MIB + 512);
	cr_assert(vhd_footer_decode(b + len - 512, 512, &end));
	cr_assert_eq(end.data_offset, VHD_NO_OFFSET, "fixed: all 64 bits of data offset set");
	cr_assert_eq(end.disk_type, (uint32_t)VHD_TYPE_FIXED);
	cr_assert(t_all_zero(b, 3 * T_MIB));
	free(b);
}
