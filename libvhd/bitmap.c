/* SPDX-License-Identifier: MIT */
/* Sector bitmaps: one bit per sector, most significant bit first. */
#include <string.h>

#include "internal.h"

void vhd_bitmap_set_range(uint8_t *bm, uint32_t first, uint32_t count)
{
	uint32_t bit = first, end = first + count;

	while (bit < end && (bit & 7))
		bm[bit >> 3] |= (uint8_t)(0x80 >> (bit & 7)), bit++;
	if (end - bit >= 8) {
		memset(bm + (bit >> 3), 0xFF, (end - bit) >> 3);
		bit += (end - bit) & ~7u;
	}
	while (bit < end)
		bm[bit >> 3] |= (uint8_t)(0x80 >> (bit & 7)), bit++;
}

uint32_t vhd_bitmap_run(const uint8_t *bm, uint32_t first, uint32_t max, bool *value)
{
	bool v = vhd_bitmap_test(bm, first);
	uint32_t n = 1, bit = first + 1, end = first + max;
	uint8_t whole = v ? 0xFF : 0x00;

	while (bit < end) {
		if (!(bit & 7) && end - bit >= 8 && bm[bit >> 3] == whole) {
			bit += 8;
			n += 8;
			continue;
		}
		if (vhd_bitmap_test(bm, bit) != v)
			break;
		bit++;
		n++;
	}
	*value = v;
	return n;
}

bool vhd_bitmap_all_set(const uint8_t *bm, uint32_t bits)
{
	for (uint32_t i = 0; i < bits / 8; i++)
		if (bm[i] != 0xFF)
			return false;
	for (uint32_t bit = bits & ~7u; bit < bits; bit++)
		if (!vhd_bitmap_test(bm, bit))
			return false;
	return true;
}
