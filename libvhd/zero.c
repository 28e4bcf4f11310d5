/* SPDX-License-Identifier: MIT */
/* Zeroing and discarding ranges: unmap or punch where possible, write where not. */
#include <errno.h>
#include <string.h>

#include "internal.h"

static int check_writable(struct vhd_image *img, uint64_t off, uint64_t len)
{
	if (img->read_only)
		return vhd_img_error(img, -EROFS, "%s: the image is open read-only", img->io->name);
	if (!vhd_range_ok(off, len, img->virtual_size))
		return vhd_img_error(img, -ENOSPC,
				     "%s: range of %llu bytes at %llu is beyond the end of the disk",
				     img->io->name, (unsigned long long)len, (unsigned long long)off);
	return 0;
}

static int punch(struct vhd_image *img, uint64_t off, uint64_t len)
{
	if (!img->io->ops->discard)
		return -EOPNOTSUPP;
	return img->io->ops->discard(img->io, off, len);
}

/* Write zeros through the normal write path (it handles every case). */
static int write_zeros(struct vhd_image *img, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[64 * 1024];
	while (len) {
		size_t n = (size_t)vhd_min_u64(len, sizeof(zeros));
		int r = vhd_pwrite(img, zeros, n, off);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * Unmap an allocated block of a dynamic image (meta_lock held): it reads
 * as zeros at once through the in-memory BAT; the on-disk entry follows at
 * the next flush.  Punching first is safe: until then the old entry points
 * at zeros (bitmap included), which is what the block now holds either way.
 */
static void unmap_block(struct vhd_image *img, uint32_t blk)
{
	/* Bitmap too: the freed span then reads as zeros, which check knows
	 * for space to compact, not leaked. */
	punch(img, vhd_block_offset(img, blk), (uint64_t)img->bitmap_bytes + img->block_size);
	vhd_bitmap_forget(img, blk);
	__atomic_store_n(&img->bat[blk], VHD_BAT_FREE, __ATOMIC_RELEASE);
	vhd_state_set(img, blk, VHD_BLOCK_UNKNOWN);
	vhd_mark_bat_dirty(img, blk);
}

/*
 * A whole differencing block must read zeros, hiding the parent (meta_lock
 * held): a new block with every bit set over fresh space, or an existing
 * one punched (or written) and then given every bit at the next flush.
 */
static int zero_diff_block(struct vhd_image *img, uint32_t blk, unsigned flags)
{
	if (vhd_bat_get(img, blk) == VHD_BAT_FREE)
		return vhd_allocate_block(img, blk, 0, NULL, img->block_size,
					  (uint64_t)blk << img->block_shift);
	uint64_t boff = vhd_block_offset(img, blk);
	int r = -EOPNOTSUPP;
	if (flags & VHD_ZERO_MAY_UNMAP)
		r = punch(img, boff + img->bitmap_bytes, img->block_size);
	if (r < 0) {
		if (flags & VHD_ZERO_FAST)
			return vhd_img_error(img, -ENOTSUP, "zeroing would write data");
		static const uint8_t zeros[64 * 1024];
		for (uint64_t done = 0; done < img->block_size; done += sizeof(zeros)) {
			r = vhd_write_file(img, zeros,
					   (size_t)vhd_min_u64(sizeof(zeros), img->block_size - done),
					   boff + img->bitmap_bytes + done);
			if (r < 0)
				return r;
		}
	}
	uint8_t *bits = vhd_malloc(img->bitmap_bytes);
	if (!bits)
		return vhd_img_error(img, -ENOMEM, "out of memory");
	memset(bits, 0xFF, img->bitmap_bytes);
	/* The bits go to disk at the next flush, after the zeros. */
	r = vhd_bitmap_store(img, blk, bits, 0, img->bitmap_bytes * 8 - 1);
	vhd_free(bits);
	if (r == 0)
		vhd_state_set(img, blk, VHD_BLOCK_FULL);
	return r;
}

int vhd_zero(struct vhd_image *img, uint64_t off, uint64_t len, unsigned flags)
{
	int r = check_writable(img, off, len);
	if (r < 0 || !len)
		return r;
	if (img->footer.disk_type == VHD_TYPE_FIXED) {
		if ((flags & VHD_ZERO_MAY_UNMAP) && punch(img, off, len) == 0)
			return 0;
		if (flags & VHD_ZERO_FAST)
			return vhd_img_error(img, -ENOTSUP, "zeroing would write data");
		return write_zeros(img, off, len);
	}
	bool diff = img->footer.disk_type == VHD_TYPE_DIFFERENCING;
	while (len) {
		uint32_t blk = (uint32_t)(off >> img->block_shift);
		uint64_t in_off = off & (img->block_size - 1);
		uint64_t n = vhd_min_u64(len, img->block_size - in_off);
		bool whole = in_off == 0 && n == img->block_size;

		vhd_mutex_lock(img->meta_lock);
		bool allocated = vhd_bat_get(img, blk) != VHD_BAT_FREE;
		r = 1;  /* 1: not handled here, write zeros below */
		if (!diff && !allocated && (flags & VHD_ZERO_MAY_UNMAP))
			r = 0;          /* reads as zeros already */
		else if (!diff && whole && (flags & VHD_ZERO_MAY_UNMAP))
			unmap_block(img, blk), r = 0;
		else if (diff && whole)
			r = zero_diff_block(img, blk, flags);
		vhd_mutex_unlock(img->meta_lock);

		if (r == 1) {
			if (flags & VHD_ZERO_FAST)
				return vhd_img_error(img, -ENOTSUP, "zeroing part of a block would write data");
			r = write_zeros(img, off, n);
		}
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

int vhd_discard(struct vhd_image *img, uint64_t off, uint64_t len)
{
	int r = check_writable(img, off, len);
	if (r < 0 || !len)
		return r;
	if (img->footer.disk_type == VHD_TYPE_FIXED) {
		punch(img, off, len);   /* advisory: a file system without holes keeps the data */
		return 0;
	}
	if (img->footer.disk_type != VHD_TYPE_DYNAMIC)
		return 0;               /* a child's sectors would show the parent again */
	uint64_t first = (off + img->block_size - 1) >> img->block_shift;
	uint64_t end = (off + len) >> img->block_shift;
	for (uint64_t blk = first; blk < end; blk++) {
		vhd_mutex_lock(img->meta_lock);
		if (vhd_bat_get(img, (uint32_t)blk) != VHD_BAT_FREE)
			unmap_block(img, (uint32_t)blk);
		vhd_mutex_unlock(img->meta_lock);
	}
	return 0;
}
