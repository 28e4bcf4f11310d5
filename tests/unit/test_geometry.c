/* SPDX-License-Identifier: MIT */
/* footer.c: the specification's CHS algorithm and the size rule per creator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"

static void expect_chs(uint64_t size, unsigned c, unsigned h, unsigned s)
{
	struct vhd_geometry g = vhd_geometry_for_size(size);
	cr_assert(g.cylinders == c && g.heads == h && g.sectors == s,
		  "size %llu: got %u/%u/%u, want %u/%u/%u", (unsigned long long)size, g.cylinders,
		  g.heads, g.sectors, c, h, s);
}

Test(geometry, spec_table_known_values)
{
	expect_chs(1 * T_GIB, 2080, 16, 63);
	/* Windows diskpart's 4 MiB image (fixtures/dfvfs/fat-differential.vhd). */
	expect_chs(4 * T_MIB, 120, 4, 17);
	/* qemu's ext2.vhd (dfvfs): 4,212,736 bytes is exactly 121/4/17. */
	expect_chs(4212736, 121, 4, 17);
	/* dfvfs image.vhd: 104,448 bytes = 3/4/17. */
	expect_chs(104448, 3, 4, 17);
	/* 1000 MiB: qemu-img reads a vbox image of this size as 1,048,190,976 bytes. */
	expect_chs(1000 * T_MIB, 2031, 16, 63);
	cr_assert_eq(vhd_geometry_size(vhd_geometry_for_size(1000 * T_MIB)), 1048190976ull);
	/* 10 MiB: 20480 sectors / 17 = 1204 -> 4 heads (the minimum), 301 cylinders. */
	expect_chs(10 * T_MIB, 301, 4, 17);
	/* 100 MiB: 204800 / 17 = 12047 -> 12 heads, 1003 cylinders. */
	expect_chs(100 * T_MIB, 1003, 12, 17);
	/* 127 MiB: 260096/17 = 15299 -> 15 heads; 15299 < 15*1024 keeps 17 spt. */
	expect_chs(127 * T_MIB, 1019, 15, 17);
	/* 128 MiB: 262144/17 = 15420 -> 16 heads, 963 cylinders. */
	expect_chs(128 * T_MIB, 963, 16, 17);
	/* 136 MiB: 278528/17 = 16384 >= 16*1024 -> 31 spt: 8984 -> 561 cylinders. */
	expect_chs(136 * T_MIB, 561, 16, 31);
	/* 32 GiB is past 65535*16*63 sectors: 255 sectors per track. */
	expect_chs(32 * T_GIB, 16448, 16, 255);
	/* Zero and tiny sizes do not crash and give zero cylinders. */
	expect_chs(0, 0, 4, 17);
	expect_chs(512, 0, 4, 17);
}

Test(geometry, cap_at_65535_16_255)
{
	uint64_t max_chs = 65535ull * 16 * 255 * 512; /* 136,899,993,600 bytes, ~127.5 GiB */
	expect_chs(max_chs, 65535, 16, 255);
	expect_chs(max_chs + 512, 65535, 16, 255);
	expect_chs(128 * T_GIB, 65535, 16, 255);
	expect_chs(2040 * T_GIB, 65535, 16, 255);
	expect_chs(32ull << 40, 65535, 16, 255);
	expect_chs(UINT64_MAX & ~511ull, 65535, 16, 255);
	/* Just under the cap still uses 255 sectors and fewer cylinders. */
	expect_chs(max_chs - 255 * 16 * 512, 65534, 16, 255);
}

Test(geometry, boundary_between_63_and_255_sectors)
{
	uint64_t edge = 65535ull * 16 * 63; /* sectors */
	struct vhd_geometry below = vhd_geometry_for_size((edge - 1) * 512);
	struct vhd_geometry at = vhd_geometry_for_size(edge * 512);
	cr_assert_eq(below.sectors, 63);
	cr_assert_eq(below.heads, 16);
	cr_assert_eq(below.cylinders, 65534);
	cr_assert_eq(at.sectors, 255);
	cr_assert_eq(at.heads, 16);
	cr_assert_eq(at.cylinders, (uint16_t)(edge / 255 / 16));
}

Test(geometry, never_exceeds_the_size_and_stays_in_range)
{
	/* Over a sweep of sizes the CHS size is at most the size and the
	 * fields stay inside what the footer can hold. */
	uint64_t st = 42;
	for (int i = 0; i < 20000; i++) {
		uint64_t size;
		if (i < 4096)
			size = (uint64_t)i * 512 * 97;
		else
			size = (t_rand(&st) % (200 * T_GIB)) & ~511ull;
		struct vhd_geometry g = vhd_geometry_for_size(size);
		uint64_t chs = vhd_geometry_size(g);
		cr_assert(chs <= size, "size %llu -> CHS %llu", (unsigned long long)size,
			  (unsigned long long)chs);
		cr_assert(g.heads >= 4 && g.heads <= 16, "heads %u", g.heads);
		cr_assert(g.sectors == 17 || g.sectors == 31 || g.sectors == 63 || g.sectors == 255);
		if (g.sectors != 255)
			cr_assert(g.cylinders <= 65535);
		/* Close to the size: the two truncations lose less than one
		 * cylinder (heads * sectors sectors). */
		if (size < 65535ull * 16 * 255 * 512)
			cr_assert(size - chs < (uint64_t)g.heads * g.sectors * 512,
				  "size %llu -> CHS %llu (%u/%u/%u)", (unsigned long long)size,
				  (unsigned long long)chs, g.cylinders, g.heads, g.sectors);
	}
}

Test(geometry, geometry_size_is_c_h_s_512)
{
	struct vhd_geometry g = { 65535, 16, 255 };
	cr_assert_eq(vhd_geometry_size(g), 136899993600ull);
	g = (struct vhd_geometry){ 2080, 16, 63 };
	cr_assert_eq(vhd_geometry_size(g), 1073479680ull);
	g = (struct vhd_geometry){ 65535, 255, 255 };
	cr_assert_eq(vhd_geometry_size(g), 65535ull * 255 * 255 * 512);
	g = (struct vhd_geometry){ 0, 0, 0 };
	cr_assert_eq(vhd_geometry_size(g), 0u);
}

static struct vhd_footer footer_for(const char *app, uint64_t current, struct vhd_geometry g)
{
	struct vhd_footer f;
	memset(&f, 0, sizeof(f));
	f.format_version = VHD_FILE_FORMAT_VERSION;
	f.data_offset = 512;
	f.disk_type = VHD_TYPE_DYNAMIC;
	memcpy(f.creator_app, app, 4);
	f.current_size = current;
	f.original_size = current;
	f.geometry = g;
	return f;
}

Test(geometry, vpc_and_qemu_creators_use_chs_size)
{
	struct vhd_geometry g = vhd_geometry_for_size(T_GIB);
	const char *apps[] = { "vpc ", "qemu" };
	for (size_t i = 0; i < 2; i++) {
		struct vhd_footer f = footer_for(apps[i], T_GIB, g);
		bool from_geometry = false;
		cr_assert_eq(vhd_footer_virtual_size(&f, &from_geometry), 1073479680ull, "%s", apps[i]);
		cr_assert(from_geometry, "%s", apps[i]);
	}
}

Test(geometry, other_creators_use_current_size)
{
	struct vhd_geometry g = vhd_geometry_for_size(T_GIB);
	const char *apps[] = { "qem2", "win ", "vbox", "d2v ", "CTXS", "tap", "vhd+", "\xff\xff\xff\xff" };
	for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++) {
		struct vhd_footer f = footer_for(apps[i], T_GIB, g);
		bool from_geometry = true;
		cr_assert_eq(vhd_footer_virtual_size(&f, &from_geometry), T_GIB, "app %zu", i);
		cr_assert(!from_geometry, "app %zu", i);
	}
	/* The dfvfs qemu image: CHS and current_size agree. */
	struct vhd_footer f = footer_for("qemu", 4212736, (struct vhd_geometry){ 121, 4, 17 });
	bool fg;
	cr_assert_eq(vhd_footer_virtual_size(&f, &fg), 4212736u);
	cr_assert(fg);
}

Test(geometry, max_geometry_uses_current_size_even_for_vpc)
{
	struct vhd_geometry max = { 65535, 16, 255 };
	const char *apps[] = { "vpc ", "qemu", "qem2", "win " };
	for (size_t i = 0; i < 4; i++) {
		struct vhd_footer f = footer_for(apps[i], 2000 * T_GIB, max);
		bool from_geometry = true;
		cr_assert_eq(vhd_footer_virtual_size(&f, &from_geometry), 2000 * T_GIB, "%s", apps[i]);
		cr_assert(!from_geometry);
	}
	/* One short of the maximum is a real geometry for vpc. */
	struct vhd_geometry almost = { 65534, 16, 255 };
	struct vhd_footer f = footer_for("vpc ", 2000 * T_GIB, almost);
	bool fg;
	cr_assert_eq(vhd_footer_virtual_size(&f, &fg), vhd_geometry_size(almost));
	cr_assert(fg);
}

Test(geometry, created_image_keeps_exact_size_and_spec_geometry)
{
	/* We write qem2 and the exact size, with the spec's geometry filled in. */
	uint64_t sizes[] = { T_GIB, 1000 * T_MIB, 4 * T_MIB, 20 * T_MIB + 512 };
	for (size_t i = 0; i < 4; i++) {
		struct vhd_image *img = t_create_mem(VHD_TYPE_DYNAMIC, sizes[i], 0);
		struct vhd_info info;
		cr_assert_eq(vhd_get_info(img, &info), 0);
		cr_assert_eq(info.virtual_size, sizes[i]);
		cr_assert_eq(vhd_virtual_size(img), sizes[i]);
		cr_assert(!info.size_from_geometry);
		struct vhd_geometry g = vhd_geometry_for_size(sizes[i]);
		cr_assert_eq(info.geometry.cylinders, g.cylinders);
		cr_assert_eq(info.geometry.heads, g.heads);
		cr_assert_eq(info.geometry.sectors, g.sectors);
		cr_assert_str_eq(info.creator_app, "qem2");
		vhd_close(img);
	}
}

Test(geometry, windows_fixture_footer_matches_spec_geometry)
{
	const char *paths[] = { "fixtures/dfvfs/fat-differential.vhd", "fixtures/dfvfs/ext2.vhd",
				"fixtures/dfvfs/image.vhd" };
	int seen = 0;
	for (size_t i = 0; i < 3; i++) {
		FILE *fp = fopen(paths[i], "rb");
		if (!fp)
			continue;
		fclose(fp);
		size_t len;
		uint8_t *b = t_read_file(paths[i], &len);
		struct vhd_footer f;
		cr_assert(vhd_footer_decode(b + len - 512, 512, &f), "%s", paths[i]);
		struct vhd_geometry g = vhd_geometry_for_size(f.current_size);
		cr_assert(g.cylinders == f.geometry.cylinders && g.heads == f.geometry.heads &&
			  g.sectors == f.geometry.sectors,
			  "%s: stored %u/%u/%u, computed %u/%u/%u", paths[i], f.geometry.cylinders,
			  f.geometry.heads, f.geometry.sectors, g.cylinders, g.heads, g.sectors);
		free(b);
		seen++;
	}
	if (!seen)
		cr_skip_test("run from the source tree to see the fixtures");
}
