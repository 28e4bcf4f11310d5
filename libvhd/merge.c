/* SPDX-License-Identifier: MIT */
/* Merging a child's sectors into an ancestor. */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define CHUNK (1u << 20)

/* Depth of target in img's chain, or -1. */
static int depth_of(struct vhd_image *img, struct vhd_image *target)
{
	int d = 0;
	for (struct vhd_image *l = img; l; l = l->parent, d++)
		if (memcmp(l->footer.uuid, target->footer.uuid, 16) == 0)
			return d;
	return -1;
}

int vhd_merge(struct vhd_image *img, struct vhd_image *target, vhd_progress_fn progress,
	      void *opaque, uint64_t *merged)
{
	uint64_t written = 0;
	int r;

	if (merged)
		*merged = 0;
	if (img->footer.disk_type != VHD_TYPE_DIFFERENCING)
		return vhd_img_error(img, -EINVAL, "%s is not a differencing image: it has no parent to merge into",
				     img->io->name);
	int depth = depth_of(img, target);
	if (depth <= 0)
		return vhd_img_error(img, -EINVAL, "%s is not a parent or ancestor of %s",
				     target->io->name, img->io->name);
	if (target->read_only)
		return vhd_img_error(img, -EROFS, "%s is open read-only", target->io->name);
	/* A layer between that is smaller than img makes the chain read zeros
	 * past its end; merging cannot say that in the target: refuse. */
	for (struct vhd_image *l = img->parent; l && l != target &&
	     memcmp(l->footer.uuid, target->footer.uuid, 16) != 0; l = l->parent)
		if (l->virtual_size < img->virtual_size)
			return vhd_img_error(img, -EINVAL,
					     "%s (%llu bytes) lies between and is smaller than %s (%llu bytes); merge it first or resize it",
					     l->io->name, (unsigned long long)l->virtual_size, img->io->name,
					     (unsigned long long)img->virtual_size);
	if (target->virtual_size < img->virtual_size)
		return vhd_img_error(img, -ENOSPC,
				     "%s (%llu bytes) is smaller than %s (%llu bytes); resize it first",
				     target->io->name, (unsigned long long)target->virtual_size,
				     img->io->name, (unsigned long long)img->virtual_size);
	uint8_t *buf = vhd_malloc(CHUNK);
	if (!buf)
		return vhd_img_error(img, -ENOMEM, "out of memory");

	/* Room for the blocks the target lacks, claimed with one flush. */
	if (target->footer.disk_type != VHD_TYPE_FIXED) {
		uint64_t fresh = 0;
		uint32_t last = VHD_BAT_FREE;
		for (uint64_t off = 0; off < img->virtual_size;) {
			struct vhd_extent ext;
			r = vhd_block_status(img, off, img->virtual_size - off, &ext);
			if (r < 0)
				goto out;
			if ((ext.flags & VHD_EXTENT_DATA) && ext.depth < depth) {
				for (uint64_t b = off >> target->block_shift;
				     b <= (off + ext.length - 1) >> target->block_shift && b < target->bat_entries; b++)
					if (b != last && vhd_bat_get(target, (uint32_t)b) == VHD_BAT_FREE)
						fresh++, last = (uint32_t)b;
			}
			off += ext.length;
		}
		r = vhd_reserve_room(target, fresh * ((uint64_t)target->bitmap_bytes + target->block_size));
		if (r < 0) {
			vhd_img_error(img, r, "%s", vhd_errmsg(target));
			goto out;
		}
	}

	/*
	 * Every range some layer above the target holds, as the top of the
	 * chain reads it (the uppermost copy wins).  Rewriting the same bytes
	 * is harmless, so a run cut short is finished by running it again;
	 * meanwhile each sector of the target holds its old or its merged
	 * content.
	 */
	uint64_t size = img->virtual_size;
	for (uint64_t off = 0; off < size;) {
		struct vhd_extent ext;
		r = vhd_block_status(img, off, vhd_min_u64(size - off, CHUNK), &ext);
		if (r < 0)
			goto out;
		uint64_t n = ext.length;
		if ((ext.flags & VHD_EXTENT_DATA) && ext.depth < depth) {
			r = vhd_pread(img, buf, (size_t)n, off);
			if (r == 0) {
				r = vhd_pwrite(target, buf, (size_t)n, off);
				if (r < 0)
					r = vhd_img_error(img, r, "%s", vhd_errmsg(target));
			}
			if (r < 0)
				goto out;
			written += n;
		}
		off += n;
		if (progress)
			progress(opaque, off, size);
	}
	r = vhd_flush(target);
	if (r < 0)
		r = vhd_img_error(img, r, "%s", vhd_errmsg(target));
out:
	vhd_free(buf);
	if (merged)
		*merged = written;
	return r;
}
