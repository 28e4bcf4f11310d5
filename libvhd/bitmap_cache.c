/* SPDX-License-Identifier: MIT */
/*
 * Sector bitmaps changed since the last flush, held in memory.
 *
 * A bit that says "this block holds sector s" must never reach the disk
 * before the sector's data does: if a cut kept the bit but not the data, the
 * sector would read whatever the data area held (zeros, stale bytes) instead
 * of the parent's or the old contents.  Writes into an existing block
 * therefore change the bitmap here only; vhd_flush syncs the data first and
 * writes these bitmaps after, as it does the BAT.  Reads through the same
 * handle see the copy kept here.
 *
 * Locking: writers hold meta_lock (so only one changes the table at a time)
 * and take bitmap_lock around every change; readers take bitmap_lock alone,
 * to copy a bitmap out.  No lock is held during I/O: the table's bytes change
 * only under meta_lock, which the flush holds while it writes them.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Bitmaps held at most (and at most 8 MiB of them): past that, the next
 * change first syncs the data and writes them all out. */
#define DIRTY_MAX_COUNT 1024u
#define DIRTY_MAX_BYTES (8u << 20)

static uint8_t *slot_bits(struct vhd_image *img, uint32_t i)
{
	return img->dirty_bits + (size_t)i * img->bitmap_bytes;
}

/* Index of blk's entry, or dirty_count when there is none (bitmap_lock held). */
static uint32_t find(const struct vhd_image *img, uint32_t blk)
{
	uint32_t i = 0;
	while (i < img->dirty_count && img->dirty_bitmaps[i].blk != blk)
		i++;
	return i;
}

int vhd_bitmap_load(struct vhd_image *img, uint32_t blk, uint8_t *bits)
{
	bool cached = false;
	vhd_mutex_lock(img->bitmap_lock);
	uint32_t i = find(img, blk);
	if (i < img->dirty_count) {
		memcpy(bits, slot_bits(img, i), img->bitmap_bytes);
		cached = true;
	}
	vhd_mutex_unlock(img->bitmap_lock);
	if (!cached) {
		int r = img->io->ops->pread(img->io, bits, img->bitmap_bytes,
					    vhd_block_offset(img, blk));
		if (r < 0)
			return vhd_img_error(img, r, "%s: cannot read the sector bitmap of block %u",
					     img->io->name, blk);
	}
	vhd_state_set(img, blk, vhd_bitmap_all_set(bits, img->sectors_per_block) ? VHD_BLOCK_FULL
									   : VHD_BLOCK_PARTIAL);
	return 0;
}

bool vhd_bitmap_any_dirty(const struct vhd_image *img)
{
	return img->dirty_count != 0;
}

static int make_table(struct vhd_image *img)
{
	uint32_t cap = DIRTY_MAX_BYTES / img->bitmap_bytes;
	if (cap > DIRTY_MAX_COUNT)
		cap = DIRTY_MAX_COUNT;
	if (cap < 4)
		cap = 4;
	img->dirty_bitmaps = vhd_calloc(cap, sizeof(*img->dirty_bitmaps));
	img->dirty_bits = vhd_malloc((size_t)cap * img->bitmap_bytes);
	if (!img->dirty_bitmaps || !img->dirty_bits) {
		vhd_free(img->dirty_bitmaps);
		vhd_free(img->dirty_bits);
		img->dirty_bitmaps = NULL;
		img->dirty_bits = NULL;
		return vhd_img_error(img, -ENOMEM, "out of memory for sector bitmaps");
	}
	img->dirty_cap = cap;
	return 0;
}

int vhd_bitmap_store(struct vhd_image *img, uint32_t blk, const uint8_t *bits, uint32_t first_bit,
		     uint32_t last_bit)
{
	int r;
	if (!img->dirty_bits && (r = make_table(img)) < 0)
		return r;
	uint32_t s0 = first_bit / 8 / VHD_SECTOR_SIZE, s1 = last_bit / 8 / VHD_SECTOR_SIZE;

	vhd_mutex_lock(img->bitmap_lock);
	uint32_t i = find(img, blk);
	if (i == img->dirty_count && i == img->dirty_cap) {
		/* Full: make the data durable, then write the bitmaps out. */
		vhd_mutex_unlock(img->bitmap_lock);
		r = vhd_sync(img);
		if (r == 0)
			r = vhd_bitmap_write_dirty(img);
		if (r < 0)
			return r;
		vhd_mutex_lock(img->bitmap_lock);
		i = 0;
	}
	struct vhd_dirty_bitmap *e = &img->dirty_bitmaps[i];
	if (i == img->dirty_count) {
		e->blk = blk;
		e->first = s0;
		e->last = s1;
		img->dirty_count++;
	} else {
		if (s0 < e->first)
			e->first = s0;
		if (s1 > e->last)
			e->last = s1;
	}
	memcpy(slot_bits(img, i), bits, img->bitmap_bytes);
	vhd_mutex_unlock(img->bitmap_lock);
	return 0;
}

int vhd_bitmap_write_dirty(struct vhd_image *img)
{
	for (uint32_t i = 0; i < img->dirty_count; i++) {
		const struct vhd_dirty_bitmap *e = &img->dirty_bitmaps[i];
		/* A block freed since (vhd_bitmap_forget missed) has no bitmap. */
		if (e->blk >= img->bat_entries || vhd_bat_get(img, e->blk) == VHD_BAT_FREE)
			continue;
		uint64_t at = vhd_block_offset(img, e->blk) + (uint64_t)e->first * VHD_SECTOR_SIZE;
		int r = vhd_write_file(img, slot_bits(img, i) + (size_t)e->first * VHD_SECTOR_SIZE,
				       (size_t)(e->last - e->first + 1) * VHD_SECTOR_SIZE, at);
		if (r < 0)
			return r;       /* all kept: the next flush tries again */
	}
	/* The file now says what the table says: readers may go to it. */
	vhd_mutex_lock(img->bitmap_lock);
	img->dirty_count = 0;
	vhd_mutex_unlock(img->bitmap_lock);
	return 0;
}

void vhd_bitmap_forget(struct vhd_image *img, uint32_t blk)
{
	vhd_mutex_lock(img->bitmap_lock);
	uint32_t i = find(img, blk);
	if (i < img->dirty_count) {
		uint32_t last = img->dirty_count - 1;
		if (i != last) {
			img->dirty_bitmaps[i] = img->dirty_bitmaps[last];
			memcpy(slot_bits(img, i), slot_bits(img, last), img->bitmap_bytes);
		}
		img->dirty_count = last;
	}
	vhd_mutex_unlock(img->bitmap_lock);
}

void vhd_bitmap_cache_free(struct vhd_image *img)
{
	vhd_free(img->dirty_bitmaps);
	vhd_free(img->dirty_bits);
	img->dirty_bitmaps = NULL;
	img->dirty_bits = NULL;
	img->dirty_count = img->dirty_cap = 0;
}
