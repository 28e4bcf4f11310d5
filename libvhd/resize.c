/* SPDX-License-Identifier: MIT */
/* Changing the virtual size of an image. */
#include <errno.h>
#include <string.h>

#include "internal.h"

static void set_size(struct vhd_image *img, uint64_t size)
{
	img->footer.current_size = size;
	/* libvhdi reads original_size as the disk size; Hyper-V resizes both. */
	img->footer.original_size = size;
	img->footer.geometry = vhd_geometry_for_size(size);
	img->virtual_size = size;
	img->size_from_geometry = false;
	/* A vpc/qemu creator would make readers take the CHS size: say ours. */
	if (memcmp(img->footer.creator_app, "vpc ", 4) == 0 ||
	    memcmp(img->footer.creator_app, "qemu", 4) == 0)
		memcpy(img->footer.creator_app, "qem2", 4);
}


static int resize_fixed(struct vhd_image *img, uint64_t size, unsigned flags)
{
	uint64_t old = img->virtual_size;
	static const uint8_t zeros[VHD_FOOTER_SIZE];
	int r = 0;
	if (size < old) {
		r = vhd_io_reads_zero(img->io, size, old - size, UINT64_MAX);
		if (r < 0)
			return vhd_img_error(img, r, "%s: read failed: %s", img->io->name, vhd_strerror(r));
		if (r == 0 && !(flags & VHD_RESIZE_FORCE))
			return vhd_img_error(img, -ENOTEMPTY,
					     "%s: data lies between the new end (%llu) and the old (%llu); refusing to drop it without force",
					     img->io->name, (unsigned long long)size,
					     (unsigned long long)old);
	}
	/* The new footer first, durably: until the file is cut (or the old
	 * footer zeroed) the old one still ends it or lies in unused space.
	 * The old footer is where it was, which is not always the old size
	 * (a CHS-sized image has data past its disk). */
	uint64_t old_footer = img->footer_offset;
	if (old_footer < size) {
		/* Growing: first the file ends at the new place with the old size,
		 * so the old footer and any slack can be zeroed before the new
		 * range becomes part of the disk. */
		r = vhd_write_file(img, img->footer_raw, VHD_FOOTER_SIZE, size);
		if (r == 0)
			r = vhd_sync(img);
		if (r < 0)
			return r;
		img->footer_offset = size;
	}
	set_size(img, size);
	img->footer_offset = size;
	if (old_footer > size) {
		r = vhd_write_footers(img);
		if (r < 0)
			return r;
	}
	if (old_footer > size) {
		r = img->io->ops->truncate(img->io, size + VHD_FOOTER_SIZE);
		if (r < 0)
			return vhd_img_error(img, r, "%s: cannot cut the file: %s", img->io->name,
					     vhd_strerror(r));
	} else if (old_footer < size) {
		/* The new range reads zeros: the old footer and any slack between
		 * the old disk end and it (a CHS-sized image) are cleared, then the
		 * footer says the new size. */
		uint64_t from = old < old_footer ? old : old_footer;
		uint64_t len = old_footer + VHD_FOOTER_SIZE - from;
		if (!img->io->ops->discard || img->io->ops->discard(img->io, from, len) < 0)
			for (uint64_t o = 0; r == 0 && o < len; o += sizeof(zeros))
				r = vhd_write_file(img, zeros, (size_t)vhd_min_u64(sizeof(zeros), len - o),
						   from + o);
		if (r == 0)
			r = vhd_sync(img);
		if (r == 0)
			r = vhd_write_footers(img);
	}
	img->file_size = size + VHD_FOOTER_SIZE;
	return r;
}

/* Move what occupies [start, end) of the file (blocks, locators) to new
 * space at the end, so a larger BAT fits.  meta_lock held. */
static int clear_region(struct vhd_image *img, uint64_t start, uint64_t end, bool *header_changed)
{
	uint64_t span = (uint64_t)img->bitmap_bytes + img->block_size;
	uint64_t to;
	int r;

	/* New space must start past the region, and the end footer must not
	 * lie inside it: claiming (even nothing) moves it out, durably. */
	if (img->next_block < end)
		img->next_block = vhd_block_slot(end, img->bitmap_bytes);
	if (img->footer_offset < img->next_block) {
		r = vhd_claim_space(img, 0, &to);
		if (r < 0)
			return r;
	}
	bool moved = false;
	for (uint32_t i = 0; i < img->bat_entries; i++) {
		uint32_t e = vhd_bat_get(img, i);
		uint64_t off = (uint64_t)e * VHD_SECTOR_SIZE;
		if (e == VHD_BAT_FREE || off >= end || off + span <= start)
			continue;
		r = vhd_claim_space(img, span, &to);
		if (r == 0)
			r = vhd_copy_file_range(img, off, to, span);
		if (r < 0)
			return r;
		uint64_t *m = vhd_malloc((img->moved_count + 1) * sizeof(*m));
		if (m) {
			if (img->moved_count)
				memcpy(m, img->moved, img->moved_count * sizeof(*m));
			vhd_free(img->moved);
			m[img->moved_count++] = off;
			img->moved = m;
		}
		__atomic_store_n(&img->bat[i], (uint32_t)(to / VHD_SECTOR_SIZE), __ATOMIC_RELEASE);
		vhd_mark_bat_dirty(img, i);
		moved = true;
	}
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		struct vhd_locator_entry *l = &img->header.loc[i];
		uint64_t space = vhd_locator_space_bytes(l);
		if (!l->code || !space || l->data_offset >= end || l->data_offset + space <= start)
			continue;
		r = vhd_claim_space(img, space, &to);
		if (r == 0)
			r = vhd_copy_file_range(img, l->data_offset, to, space);
		if (r < 0)
			return r;
		l->data_offset = to;
		*header_changed = true;
		moved = true;
	}
	/* Copies durable before anything points at them. */
	if (moved) {
		r = vhd_sync(img);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Old places of the blocks clear_region moved (offset each), for punch_moved. */
static void punch_moved(struct vhd_image *img, uint64_t table_end)
{
	if (!img->io->ops->discard)
		return;
	for (size_t i = 0; i < img->moved_count; i++) {
		uint64_t from = img->moved[i] > table_end ? img->moved[i] : table_end;
		uint64_t to = img->moved[i] + img->bitmap_bytes + img->block_size;
		if (to > from)
			img->io->ops->discard(img->io, from, to - from);
	}
	vhd_free(img->moved);
	img->moved = NULL;
	img->moved_count = 0;
}

static int write_header(struct vhd_image *img)
{
	uint8_t buf[VHD_HEADER_SIZE];
	vhd_header_encode(&img->header, buf);
	int r = vhd_write_file(img, buf, sizeof(buf), img->footer.data_offset);
	return r == 0 ? vhd_sync(img) : r;
}

/* Make the in-memory tables hold n entries (new ones free). */
static int grow_tables(struct vhd_image *img, uint32_t n)
{
	uint32_t *bat = vhd_malloc((size_t)n * 4);
	uint8_t *state = vhd_calloc(n, 1);
	uint8_t *dirty = vhd_calloc(vhd_bat_bytes(n) / VHD_SECTOR_SIZE / 8 + 1, 1);
	if (!bat || !state || !dirty) {
		vhd_free(bat);
		vhd_free(state);
		vhd_free(dirty);
		return vhd_img_error(img, -ENOMEM, "out of memory for the BAT");
	}
	memcpy(bat, img->bat, (size_t)img->bat_entries * 4);
	for (uint32_t i = img->bat_entries; i < n; i++)
		bat[i] = VHD_BAT_FREE;
	memcpy(state, img->block_state, img->bat_entries);
	uint64_t old_dirty = vhd_bat_bytes(img->bat_entries) / VHD_SECTOR_SIZE / 8 + 1;
	memcpy(dirty, img->bat_dirty, old_dirty);
	vhd_free(img->bat);
	vhd_free(img->block_state);
	vhd_free(img->bat_dirty);
	img->bat = bat;
	img->block_state = state;
	img->bat_dirty = dirty;
	img->bat_entries = n;
	return 0;
}

static int resize_dynamic(struct vhd_image *img, uint64_t size, unsigned flags)
{
	uint64_t needed = vhd_bat_entries_needed(size, img->block_size);
	int r;

	if (size > VHD_MAX_DYNAMIC_SIZE)
		return vhd_img_error(img, -EFBIG,
				     "%s: %llu bytes exceeds the 2040 GiB the specification allows",
				     img->io->name, (unsigned long long)size);
	if (needed > VHD_MAX_BAT_ENTRIES)
		return vhd_img_error(img, -EFBIG, "%s: too many blocks", img->io->name);
	if (size < img->virtual_size) {
		for (uint64_t i = needed; i < img->bat_entries; i++)
			if (vhd_bat_get(img, (uint32_t)i) != VHD_BAT_FREE && !(flags & VHD_RESIZE_FORCE))
				return vhd_img_error(img, -ENOTEMPTY,
						     "%s: block %llu past the new end holds data; refusing to drop it without force",
						     img->io->name, (unsigned long long)i);
		/* Sectors past the new end in its last block would come back on
		 * a later grow: zero them now. */
		uint64_t tail_end = vhd_min_u64(img->virtual_size, needed << img->block_shift);
		if (tail_end > size) {
			r = vhd_zero(img, size, tail_end - size, VHD_ZERO_MAY_UNMAP);
			if (r < 0)
				return r;
		}
		/* Blocks past the end: their space punched (nothing reads it),
		 * their entries freed. */
		vhd_mutex_lock(img->meta_lock);
		for (uint64_t i = needed; i < img->bat_entries; i++) {
			if (vhd_bat_get(img, (uint32_t)i) == VHD_BAT_FREE)
				continue;
			if (img->io->ops->discard)
				img->io->ops->discard(img->io, vhd_block_offset(img, (uint32_t)i),
						      (uint64_t)img->bitmap_bytes + img->block_size);
			vhd_bitmap_forget(img, (uint32_t)i);
			__atomic_store_n(&img->bat[i], VHD_BAT_FREE, __ATOMIC_RELEASE);
			vhd_mark_bat_dirty(img, (uint32_t)i);
		}
		vhd_mutex_unlock(img->meta_lock);
		r = vhd_flush(img);     /* freed entries on disk before the size drops */
		if (r < 0)
			return r;
		vhd_mutex_lock(img->meta_lock);
		set_size(img, size);
		img->bat_entries = (uint32_t)needed;
		r = vhd_write_footers(img);
		vhd_mutex_unlock(img->meta_lock);
		return r;
	}

	r = vhd_flush(img);
	if (r < 0)
		return r;
	vhd_mutex_lock(img->meta_lock);
	bool header_changed = false;
	if (needed > img->header.max_table_entries) {
		uint64_t old_len = vhd_bat_bytes(img->header.max_table_entries);
		uint64_t new_len = vhd_bat_bytes(needed);
		uint64_t start = img->header.table_offset + old_len;
		uint64_t end = img->header.table_offset + new_len;
		uint32_t old_entries = img->bat_entries;
		r = clear_region(img, start, end, &header_changed);
		/* Moved locators are in place before their old space is overwritten. */
		if (r == 0 && header_changed)
			r = write_header(img);
		if (r < 0)
			goto out;
		/* So are the moved blocks' new entries (in the old table): only then
		 * may the larger table be written over their old places. */
		vhd_mutex_unlock(img->meta_lock);
		r = vhd_flush(img);
		vhd_mutex_lock(img->meta_lock);
		if (r == 0)
			r = grow_tables(img, (uint32_t)needed);
		if (r < 0)
			goto out;
		/* Every new entry is written free: the old last sector's padding may
		 * not say so (zeros would point at offset 0). */
		for (uint32_t i = old_entries; i < needed; i += VHD_SECTOR_SIZE / 4)
			vhd_mark_bat_dirty(img, i);
		vhd_mark_bat_dirty(img, (uint32_t)needed - 1);
		/* The new free entries, durable before the header declares the
		 * larger table. */
		vhd_mutex_unlock(img->meta_lock);
		r = vhd_flush(img);
		vhd_mutex_lock(img->meta_lock);
		if (r < 0)
			goto out;
		/* Nothing points at the old copies now: punch what lies past the
		 * new table, so check sees free space there, not leaked data. */
		punch_moved(img, end);
		uint8_t ff[4096];
		memset(ff, 0xFF, sizeof(ff));
		for (uint64_t o = start; r == 0 && o < end; o += sizeof(ff))
			r = vhd_write_file(img, ff, (size_t)vhd_min_u64(sizeof(ff), end - o), o);
		if (r == 0)
			r = vhd_sync(img);
		img->header.max_table_entries = (uint32_t)needed;
		header_changed = true;
	} else if (needed > img->bat_entries) {
		uint32_t old_entries = img->bat_entries;
		r = grow_tables(img, (uint32_t)needed);
		for (uint32_t i = old_entries; r == 0 && i < needed; i += VHD_SECTOR_SIZE / 4)
			vhd_mark_bat_dirty(img, i);
		if (r == 0)
			vhd_mark_bat_dirty(img, (uint32_t)needed - 1);
		vhd_mutex_unlock(img->meta_lock);
		if (r == 0)
			r = vhd_flush(img);
		vhd_mutex_lock(img->meta_lock);
	}
	if (r == 0 && header_changed)
		r = write_header(img);
	if (r < 0)
		goto out;
	uint64_t old = img->virtual_size;
	/*
	 * A child grown over a larger parent: the new range must read zeros,
	 * not the parent's bytes past the child's old end.  Zeroed (and the
	 * BAT flushed) before the footers announce the size, so a cut never
	 * shows the parent's bytes there.
	 */
	if (img->parent && img->parent->virtual_size > old) {
		vhd_mutex_unlock(img->meta_lock);
		img->virtual_size = size;       /* in memory only, until the footers */
		r = vhd_zero(img, old, vhd_min_u64(size, img->parent->virtual_size) - old,
			     VHD_ZERO_MAY_UNMAP);
		if (r == 0)
			r = vhd_flush(img);
		img->virtual_size = old;
		vhd_mutex_lock(img->meta_lock);
		if (r < 0)
			goto out;
	}
	set_size(img, size);
	r = vhd_write_footers(img);
out:
	vhd_mutex_unlock(img->meta_lock);
	return r;
}

int vhd_resize(struct vhd_image *img, uint64_t size, unsigned flags)
{
	if (img->read_only)
		return vhd_img_error(img, -EROFS, "%s: the image is open read-only", img->io->name);
	if (size == 0 || size % VHD_SECTOR_SIZE)
		return vhd_img_error(img, -EINVAL, "size %llu is not a positive multiple of 512 bytes",
				     (unsigned long long)size);
	if (size == img->virtual_size)
		return 0;
	if (size < img->virtual_size && !(flags & VHD_RESIZE_SHRINK))
		return vhd_img_error(img, -EINVAL,
				     "%s: %llu bytes is smaller than the disk (%llu); shrinking must be asked for",
				     img->io->name, (unsigned long long)size,
				     (unsigned long long)img->virtual_size);
	if (img->footer.disk_type == VHD_TYPE_FIXED)
		return resize_fixed(img, size, flags);
	return resize_dynamic(img, size, flags);
}
