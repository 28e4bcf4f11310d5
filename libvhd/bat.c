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

/* Heapsort: in place, O(n log n) worst case, no libc needed. */
static void sift_down(uint32_t *v, size_t root, size_t n)
{
	for (;;) {
		size_t child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && v[child + 1] > v[child])
			child++;
		if (v[root] >= v[child])
			return;
		uint32_t t = v[root];
		v[root] = v[child];
		v[child] = t;
		root = child;
	}
}

void vhd_sort_u32(uint32_t *v, size_t n)
{
	if (n < 2)
		return;
	for (size_t i = n / 2; i-- > 0;)
		sift_down(v, i, n);
	for (size_t end = n - 1; end > 0; end--) {
		uint32_t t = v[0];
		v[0] = v[end];
		v[end] = t;
		sift_down(v, 0, end);
	}
}
