/* SPDX-License-Identifier: MIT */
/* Block allocation table arithmetic and the sort used to find overlaps. */
#include "internal.h"

uint64_t vhd_bat_entries_needed(uint64_t virtual_size, uint32_t block_size)
{
	return virtual_size / block_size + (virtual_size % block_size != 0);
}

uint64_t vhd_bat_bytes(uint64_t entries)
{
	uint64_t bytes = entries * 4;
	return (bytes + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
}

uint32_t vhd_bitmap_bytes(uint32_t block_size)
{
	uint32_t sectors = block_size / VHD_SECTOR_SIZE;
	uint32_t bytes = (sectors + 7) / 8;
	return (bytes + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
}

uint64_t vhd_block_slot(uint64_t from, uint32_t bitmap_bytes)
{
	const uint64_t page = 4096;
	return (from + bitmap_bytes + page - 1) / page * page - bitmap_bytes;
}

static void swap_bytes(uint8_t *a, uint8_t *b, size_t size)
{
	while (size--) {
		uint8_t t = *a;
		*a++ = *b;
		*b++ = t;
	}
}

static void sift_down(uint8_t *v, size_t root, size_t n, size_t size,
		      bool (*less)(const void *, const void *))
{
	for (;;) {
		size_t child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && less(v + child * size, v + (child + 1) * size))
			child++;
		if (!less(v + root * size, v + child * size))
			return;
		swap_bytes(v + root * size, v + child * size, size);
		root = child;
	}
}

void vhd_sort(void *base, size_t n, size_t size, bool (*less)(const void *a, const void *b))
{
	uint8_t *v = base;
	if (n < 2)
		return;
	for (size_t i = n / 2; i-- > 0;)
		sift_down(v, i, n, size, less);
	for (size_t end = n - 1; end > 0; end--) {
		swap_bytes(v, v + end * size, size);
		sift_down(v, 0, end, size, less);
	}
}

static bool less_u32(const void *a, const void *b)
{
	return *(const uint32_t *)a < *(const uint32_t *)b;
}

void vhd_sort_u32(uint32_t *v, size_t n)
{
	vhd_sort(v, n, sizeof(*v), less_u32);
}
