/* SPDX-License-Identifier: MIT */
/* bitmap.c: sector bitmaps, most significant bit first. */
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"

/* The obvious bit-at-a-time model. */
static void model_set(uint8_t *bm, uint32_t first, uint32_t count)
{
	for (uint32_t b = first; b < first + count; b++)
		bm[b / 8] |= (uint8_t)(0x80u >> (b % 8));
}

Test(bitmap, test_reads_msb_first)
{
	uint8_t bm[2] = { 0x80, 0x01 };
	cr_assert(vhd_bitmap_test(bm, 0));
	for (uint32_t b = 1; b < 15; b++)
		cr_assert(!vhd_bitmap_test(bm, b), "bit %u", b);
	cr_assert(vhd_bitmap_test(bm, 15));
}

Test(bitmap, set_range_within_one_byte)
{
	uint8_t bm[4] = { 0 };
	vhd_bitmap_set_range(bm, 2, 3);
	cr_assert_eq(bm[0], 0x38);
	cr_assert(bm[1] == 0 && bm[2] == 0 && bm[3] == 0);
	vhd_bitmap_set_range(bm, 0, 1);
	cr_assert_eq(bm[0], 0xB8);
	vhd_bitmap_set_range(bm, 7, 1);
	cr_assert_eq(bm[0], 0xB9);
	vhd_bitmap_set_range(bm, 8, 0);
	cr_assert_eq(bm[1], 0);
}

Test(bitmap, set_range_across_byte_boundaries)
{
	uint8_t bm[8] = { 0 };
	vhd_bitmap_set_range(bm, 6, 4); /* bits 6..9 */
	cr_assert_eq(bm[0], 0x03);
	cr_assert_eq(bm[1], 0xC0);
	memset(bm, 0, sizeof(bm));
	vhd_bitmap_set_range(bm, 5, 24); /* bits 5..28 */
	cr_assert_eq(bm[0], 0x07);
	cr_assert_eq(bm[1], 0xFF);
	cr_assert_eq(bm[2], 0xFF);
	cr_assert_eq(bm[3], 0xF8);
	cr_assert_eq(bm[4], 0x00);
	memset(bm, 0, sizeof(bm));
	vhd_bitmap_set_range(bm, 8, 16); /* whole bytes 1 and 2 */
	cr_assert(bm[0] == 0 && bm[1] == 0xFF && bm[2] == 0xFF && bm[3] == 0);
	memset(bm, 0, sizeof(bm));
	vhd_bitmap_set_range(bm, 0, 64);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(bm[i], 0xFF);
}

Test(bitmap, set_range_matches_model_exhaustively)
{
	/* Every (first, count) in a 48-bit window, over a 0x00 and a noisy start. */
	for (int fill = 0; fill < 2; fill++) {
		for (uint32_t first = 0; first < 48; first++) {
			for (uint32_t count = 0; first + count <= 48; count++) {
				uint8_t a[8], b[8];
				if (fill)
					t_fill(a, sizeof(a), first * 100 + count);
				else
					memset(a, 0, sizeof(a));
				if (fill)
					for (int i = 0; i < 8; i++)
						a[i] &= 0x5A;
				memcpy(b, a, sizeof(a));
				vhd_bitmap_set_range(a, first, count);
				model_set(b, first, count);
				cr_assert_eq(memcmp(a, b, sizeof(a)), 0, "first %u count %u", first, count);
			}
		}
	}
}

Test(bitmap, set_range_large_block)
{
	/* A 2 MiB block: 4096 sectors = 512 bytes of bitmap. */
	uint8_t bm[512], model[512];
	memset(bm, 0, sizeof(bm));
	memset(model, 0, sizeof(model));
	vhd_bitmap_set_range(bm, 13, 4096 - 13 - 3);
	model_set(model, 13, 4096 - 13 - 3);
	cr_assert_eq(memcmp(bm, model, sizeof(bm)), 0);
	cr_assert(!vhd_bitmap_all_set(bm, 4096));
	vhd_bitmap_set_range(bm, 0, 13);
	vhd_bitmap_set_range(bm, 4093, 3);
	cr_assert(vhd_bitmap_all_set(bm, 4096));
}

Test(bitmap, run_lengths)
{
	uint8_t bm[8] = { 0xF0, 0x0F, 0xFF, 0xFF, 0x00, 0x00, 0x01, 0x80 };
	bool v;
	cr_assert_eq(vhd_bitmap_run(bm, 0, 64, &v), 4u);
	cr_assert(v);
	cr_assert_eq(vhd_bitmap_run(bm, 4, 60, &v), 8u); /* bits 4..11 clear */
	cr_assert(!v);
	cr_assert_eq(vhd_bitmap_run(bm, 12, 52, &v), 20u); /* bits 12..31 set */
	cr_assert(v);
	cr_assert_eq(vhd_bitmap_run(bm, 32, 32, &v), 23u); /* bits 32..54 clear */
	cr_assert(!v);
	cr_assert_eq(vhd_bitmap_run(bm, 55, 9, &v), 2u); /* bits 55, 56 set */
	cr_assert(v);
	cr_assert_eq(vhd_bitmap_run(bm, 57, 7, &v), 7u); /* to the end */
	cr_assert(!v);
	/* max limits the run */
	cr_assert_eq(vhd_bitmap_run(bm, 12, 5, &v), 5u);
	cr_assert(v);
	cr_assert_eq(vhd_bitmap_run(bm, 16, 16, &v), 16u);
	cr_assert_eq(vhd_bitmap_run(bm, 33, 1, &v), 1u);
	cr_assert(!v);
}

Test(bitmap, run_matches_model)
{
	uint8_t bm[64];
	uint64_t st = 7;
	for (int iter = 0; iter < 200; iter++) {
		/* Long runs: a few random ranges set over zero. */
		memset(bm, 0, sizeof(bm));
		for (int k = 0; k < 4; k++) {
			uint32_t a = (uint32_t)(t_rand(&st) % 512), n = (uint32_t)(t_rand(&st) % 100);
			if (a + n > 512)
				n = 512 - a;
			model_set(bm, a, n);
		}
		uint32_t first = (uint32_t)(t_rand(&st) % 512);
		uint32_t max = 1 + (uint32_t)(t_rand(&st) % (512 - first));
		bool v;
		uint32_t n = vhd_bitmap_run(bm, first, max, &v);
		bool want = vhd_bitmap_test(bm, first);
		uint32_t len = 0;
		while (len < max && vhd_bitmap_test(bm, first + len) == want)
			len++;
		cr_assert_eq(v, want);
		cr_assert_eq(n, len, "iter %d first %u max %u", iter, first, max);
	}
}

Test(bitmap, all_set_with_partial_last_byte)
{
	uint8_t bm[4] = { 0xFF, 0xFF, 0xE0, 0x00 };
	cr_assert(vhd_bitmap_all_set(bm, 16));
	cr_assert(vhd_bitmap_all_set(bm, 19));
	cr_assert(!vhd_bitmap_all_set(bm, 20));
	cr_assert(!vhd_bitmap_all_set(bm, 32));
	cr_assert(vhd_bitmap_all_set(bm, 1));
	cr_assert(vhd_bitmap_all_set(bm, 0));
	/* Bits past the count do not matter. */
	uint8_t one[1] = { 0xF0 };
	cr_assert(vhd_bitmap_all_set(one, 4));
	cr_assert(!vhd_bitmap_all_set(one, 5));
	/* A clear bit in a whole byte. */
	uint8_t hole[3] = { 0xFF, 0xEF, 0xFF };
	cr_assert(!vhd_bitmap_all_set(hole, 24));
	cr_assert(vhd_bitmap_all_set(hole, 11));
	cr_assert(!vhd_bitmap_all_set(hole, 12));
}
