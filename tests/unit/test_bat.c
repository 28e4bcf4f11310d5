/* SPDX-License-Identifier: MIT */
/* bat.c: BAT and bitmap sizes, block placement, the overlap sort. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"

Test(bat, entries_needed)
{
	const uint32_t mb2 = 2u << 20;
	cr_assert_eq(vhd_bat_entries_needed(0, mb2), 0u);
	cr_assert_eq(vhd_bat_entries_needed(512, mb2), 1u);
	cr_assert_eq(vhd_bat_entries_needed(mb2 - 512, mb2), 1u);
	cr_assert_eq(vhd_bat_entries_needed(mb2, mb2), 1u);
	cr_assert_eq(vhd_bat_entries_needed(mb2 + 512, mb2), 2u);
	cr_assert_eq(vhd_bat_entries_needed(T_GIB, mb2), 512u);
	cr_assert_eq(vhd_bat_entries_needed(2040 * T_GIB, mb2), 1044480u);
	cr_assert_eq(vhd_bat_entries_needed(2040 * T_GIB, 512u << 10), 4177920u);
	cr_assert_eq(vhd_bat_entries_needed(2040 * T_GIB, 256u << 20), 8160u);
	cr_assert_eq(vhd_bat_entries_needed(T_GIB + 512, 512u << 10), 2049u);
	/* No overflow near the top of the range. */
	cr_assert_eq(vhd_bat_entries_needed(UINT64_MAX, 0x80000000u), (UINT64_MAX >> 31) + 1);
	cr_assert_eq(vhd_bat_entries_needed(32ull << 40, 512), 1ull << 36);
}

Test(bat, bat_bytes_round_to_sectors)
{
	cr_assert_eq(vhd_bat_bytes(0), 0u);
	cr_assert_eq(vhd_bat_bytes(1), 512u);
	cr_assert_eq(vhd_bat_bytes(127), 512u);
	cr_assert_eq(vhd_bat_bytes(128), 512u);
	cr_assert_eq(vhd_bat_bytes(129), 1024u);
	cr_assert_eq(vhd_bat_bytes(512), 2048u);
	cr_assert_eq(vhd_bat_bytes(1044480), 4177920u);
	cr_assert_eq(vhd_bat_bytes(1044481), 4178432u);
	for (uint64_t n = 0; n < 3000; n++) {
		uint64_t b = vhd_bat_bytes(n);
		cr_assert_eq(b % 512, 0u);
		cr_assert(b >= 4 * n && b < 4 * n + 512, "n %llu", (unsigned long long)n);
	}
}

Test(bat, bitmap_bytes_for_create_block_sizes)
{
	/* One bit per sector, padded to whole sectors. */
	cr_assert_eq(vhd_bitmap_bytes(512u << 10), 512u);  /* 1024 sectors = 128 bytes */
	cr_assert_eq(vhd_bitmap_bytes(1u << 20), 512u);
	cr_assert_eq(vhd_bitmap_bytes(2u << 20), 512u);    /* 4096 sectors = 512 bytes */
	cr_assert_eq(vhd_bitmap_bytes(4u << 20), 1024u);
	cr_assert_eq(vhd_bitmap_bytes(8u << 20), 2048u);
	cr_assert_eq(vhd_bitmap_bytes(16u << 20), 4096u);
	cr_assert_eq(vhd_bitmap_bytes(32u << 20), 8192u);
	cr_assert_eq(vhd_bitmap_bytes(64u << 20), 16384u);
	cr_assert_eq(vhd_bitmap_bytes(128u << 20), 32768u);
	cr_assert_eq(vhd_bitmap_bytes(256u << 20), 65536u);
	/* Readable but not creatable sizes. */
	cr_assert_eq(vhd_bitmap_bytes(512), 512u);
	cr_assert_eq(vhd_bitmap_bytes(4096), 512u);
	cr_assert_eq(vhd_bitmap_bytes(0x80000000u), 524288u);
}

Test(bat, block_slot_aligns_data_to_4k)
{
	/* A fresh 2 MiB-block image: BAT ends at 2048, bitmap 512, data at 4096. */
	cr_assert_eq(vhd_block_slot(2048, 512), 3584u);
	cr_assert_eq(vhd_block_slot(3584, 512), 3584u);
	cr_assert_eq(vhd_block_slot(3585, 512), 7680u);
	cr_assert_eq(vhd_block_slot(0, 512), 3584u);
	cr_assert_eq(vhd_block_slot(2048, 65536), 4096u);
	cr_assert_eq(vhd_block_slot(4096, 4096), 4096u);
	cr_assert_eq(vhd_block_slot(4097, 4096), 8192u);
	uint64_t st = 99;
	uint32_t bms[] = { 512, 1024, 2048, 4096, 8192, 65536 };
	for (int i = 0; i < 5000; i++) {
		uint64_t from = (t_rand(&st) % (1ull << 42)) & ~511ull;
		uint32_t bm = bms[i % 6];
		uint64_t s = vhd_block_slot(from, bm);
		cr_assert(s >= from);
		cr_assert(s - from < 4096, "from %llu bm %u -> %llu", (unsigned long long)from, bm,
			  (unsigned long long)s);
		cr_assert_eq((s + bm) % 4096, 0u);
		cr_assert_eq(s % 512, 0u);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void check_sort(uint32_t *v, size_t n)
{
	uint32_t *want = malloc((n ? n : 1) * sizeof(*want));
	cr_assert_not_null(want);
	memcpy(want, v, n * sizeof(*v));
	qsort(want, n, sizeof(*want), cmp_u32);
	vhd_sort_u32(v, n);
	cr_assert_eq(memcmp(v, want, n * sizeof(*v)), 0, "n %zu", n);
	free(want);
}

Test(bat, sort_small_and_edge_cases)
{
	uint32_t one[1] = { 5 };
	vhd_sort_u32(one, 1);
	cr_assert_eq(one[0], 5u);
	vhd_sort_u32(NULL, 0);
	uint32_t two[2] = { 0xFFFFFFFFu, 0 };
	check_sort(two, 2);
	uint32_t same[5] = { 7, 7, 7, 7, 7 };
	check_sort(same, 5);
	uint32_t dup[8] = { 3, 1, 3, 0xFFFFFFFEu, 1, 0, 3, 0 };
	check_sort(dup, 8);
}

Test(bat, sort_matches_qsort)
{
	uint64_t st = 1234;
	size_t sizes[] = { 3, 4, 5, 16, 17, 100, 1000, 4097, 100000 };
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		uint32_t *v = malloc(n * sizeof(*v));
		cr_assert_not_null(v);
		/* random, sorted, reversed, few distinct values */
		for (int shape = 0; shape < 4; shape++) {
			for (size_t i = 0; i < n; i++) {
				switch (shape) {
				case 0: v[i] = (uint32_t)t_rand(&st); break;
				case 1: v[i] = (uint32_t)i * 3; break;
				case 2: v[i] = (uint32_t)(n - i); break;
				default: v[i] = (uint32_t)(t_rand(&st) % 4); break;
				}
			}
			check_sort(v, n);
		}
		free(v);
	}
}

Test(bat, created_dynamic_layout)
{
	/* Footer copy, header at 512, BAT at 1536 filled with 0xFF, data 4K-aligned. */
	uint32_t sizes[] = { 512u << 10, 2u << 20, 256u << 20 };
	for (int i = 0; i < 3; i++) {
		size_t len;
		uint64_t vsize = 3 * T_GIB + 512;
		uint8_t *b = t_create_bytes(VHD_TYPE_DYNAMIC, vsize, sizes[i], &len);
		struct vhd_header h;
		cr_assert(vhd_header_decode(b + 512, len - 512, &h));
		cr_assert_eq(h.block_size, sizes[i]);
		cr_assert_eq(h.table_offset, 1536u);
		uint64_t entries = vhd_bat_entries_needed(vsize, sizes[i]);
		cr_assert_eq(h.max_table_entries, entries);
		uint64_t bat = vhd_bat_bytes(entries);
		for (uint64_t o = 0; o < bat; o++)
			cr_assert_eq(b[1536 + o], 0xFF, "BAT byte %llu", (unsigned long long)o);
		/* The file ends where the first block would go, then the footer. */
		uint64_t first = vhd_block_slot(1536 + bat, vhd_bitmap_bytes(sizes[i]));
		cr_assert_eq(len, first + 512, "block %u", sizes[i]);
		free(b);
	}
}
