/* SPDX-License-Identifier: MIT */
/*
 * Reading and writing the virtual disk.
 *
 * Crash safety comes from the order of writes.  New blocks go into room
 * that reserve_space made before the end footer, and making that room ends
 * in a flush, so the file always ends in a durable footer that no block
 * write touches.  A block's data and bitmap go first; its BAT entry is
 * written only at the next vhd_flush, after the data is durable.  A cut
 * before that flush leaves leaked space, never a BAT entry that points at
 * foreign bytes.  In an existing block the new bitmap bits stay in memory
 * (bitmap_cache.c) and reach the disk at vhd_flush, after the data sync, so
 * no cut keeps a bit whose sector's data was lost.
 */
#include <errno.h>
#include <string.h>

#include "endian.h"
#include "internal.h"

/* A bitmap buffer: on the stack for the usual sizes, else on the heap. */
struct bitmap_buf {
	uint8_t *bits;
	uint8_t small[1024];
};

static int bitmap_buf_get(struct vhd_image *img, struct bitmap_buf *b)
{
	if (img->bitmap_bytes <= sizeof(b->small)) {
		b->bits = b->small;
		return 0;
	}
	b->bits = vhd_malloc(img->bitmap_bytes);
	return b->bits ? 0 : vhd_img_error(img, -ENOMEM, "out of memory for a sector bitmap");
}

static void bitmap_buf_put(struct bitmap_buf *b)
{
	if (b->bits != b->small)
		vhd_free(b->bits);
}

/*
 * What a sector reads as when this layer does not hold it: zeros in a
 * dynamic image, the parent's data in a differencing one.
 */
int vhd_read_below(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
	if (img->footer.disk_type != VHD_TYPE_DIFFERENCING) {
		memset(buf, 0, len);
		return 0;
	}
	if (!img->parent)
		return vhd_img_error(img, -ENOENT, "%s: the parent image is not available%s%s",
				     img->io->name, img->parent_error ? ": " : "",
				     img->parent_error ? img->parent_error : "");
	/* A child may be larger than its parent: the rest reads as zeros. */
	uint64_t psize = img->parent->virtual_size;
	size_t from_parent = off >= psize ? 0 : (size_t)vhd_min_u64(len, psize - off);
	memset((uint8_t *)buf + from_parent, 0, len - from_parent);
	if (!from_parent)
		return 0;
	int r = vhd_pread(img->parent, buf, from_parent, off);
	if (r < 0)
		return vhd_img_parent_error(img, r);
	return 0;
}

static int read_file(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
	int r = img->io->ops->pread(img->io, buf, len, off);
	if (r < 0)
		return vhd_img_error(img, r, "%s: read of %zu bytes at 0x%llx failed: %s",
				     img->io->name, len, (unsigned long long)off, vhd_strerror(r));
	return 0;
}

int vhd_write_file(struct vhd_image *img, const void *buf, size_t len, uint64_t off)
{
	int r = img->io->ops->pwrite(img->io, buf, len, off);
	if (r < 0)
		return vhd_img_error(img, r, "%s: write of %zu bytes at 0x%llx failed: %s",
				     img->io->name, len, (unsigned long long)off, vhd_strerror(r));
	return 0;
}

/* Read [in_off, in_off + len) of block blk. */
static int read_block(struct vhd_image *img, uint32_t blk, uint32_t in_off, uint8_t *buf,
		      size_t len, uint64_t voff)
{
	if (vhd_bat_get(img, blk) == VHD_BAT_FREE)
		return vhd_read_below(img, buf, len, voff);

	uint64_t data = vhd_block_offset(img, blk) + img->bitmap_bytes;
	if (vhd_state_get(img, blk) == VHD_BLOCK_FULL)
		return read_file(img, buf, len, data + in_off);

	struct bitmap_buf bm;
	int r = bitmap_buf_get(img, &bm);
	if (r < 0)
		return r;
	r = vhd_bitmap_load(img, blk, bm.bits);
	uint32_t sector = in_off / VHD_SECTOR_SIZE;
	size_t done = 0;
	while (r == 0 && done < len) {
		uint32_t last = (uint32_t)((in_off + len - 1) / VHD_SECTOR_SIZE);
		bool present;
		uint32_t run = vhd_bitmap_run(bm.bits, sector, last - sector + 1, &present);
		uint64_t run_end = (uint64_t)(sector + run) * VHD_SECTOR_SIZE;
		size_t n = (size_t)(vhd_min_u64(run_end, in_off + len) - (in_off + done));
		if (present)
			r = read_file(img, buf + done, n, data + in_off + done);
		else
			r = vhd_read_below(img, buf + done, n, voff + done);
		done += n;
		sector += run;
	}
	bitmap_buf_put(&bm);
	return r;
}

static int check_range(struct vhd_image *img, size_t len, uint64_t off, int code)
{
	if (!vhd_range_ok(off, len, img->virtual_size))
		return vhd_img_error(img, code,
				     "%s: access of %zu bytes at offset %llu is beyond the end of the %llu-byte virtual disk",
				     img->io->name, len, (unsigned long long)off,
				     (unsigned long long)img->virtual_size);
	return 0;
}

int vhd_pread(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
	int r = check_range(img, len, off, -EINVAL);
	if (r < 0 || !len)
		return r;
	if (img->footer.disk_type == VHD_TYPE_FIXED)
		return read_file(img, buf, len, off);

	uint8_t *p = buf;
	while (len) {
		uint32_t blk = (uint32_t)(off >> img->block_shift);
		uint32_t in_off = (uint32_t)(off & (img->block_size - 1));
		size_t n = (size_t)vhd_min_u64(len, img->block_size - in_off);
		r = read_block(img, blk, in_off, p, n, off);
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static bool holds(const uint8_t *bits, uint32_t sector)
{
	return bits && vhd_bitmap_test(bits, sector);
}

/*
 * Write [in_off, in_off + len) into the block whose data starts at file
 * offset data.  bits says which sectors the block already holds (NULL:
 * none): a partial sector it does not hold is completed from below first.
 */
static int write_sectors(struct vhd_image *img, const uint8_t *bits, uint64_t data,
			 uint32_t in_off, const uint8_t *buf, size_t len, uint64_t voff)
{
	uint8_t sector_buf[VHD_SECTOR_SIZE];
	uint32_t head = in_off % VHD_SECTOR_SIZE;
	int r;

	if (head && !holds(bits, in_off / VHD_SECTOR_SIZE)) {
		size_t n = (size_t)vhd_min_u64(len, VHD_SECTOR_SIZE - head);
		r = vhd_read_below(img, sector_buf, VHD_SECTOR_SIZE, voff - head);
		if (r < 0)
			return r;
		memcpy(sector_buf + head, buf, n);
		r = vhd_write_file(img, sector_buf, VHD_SECTOR_SIZE, data + in_off - head);
		if (r < 0)
			return r;
		buf += n;
		voff += n;
		in_off += (uint32_t)n;
		len -= n;
	}
	if (!len)
		return 0;
	/* Here in_off is sector-aligned or inside a sector the block holds. */
	uint32_t tail = (uint32_t)((in_off + len) % VHD_SECTOR_SIZE);
	if (tail && holds(bits, (uint32_t)((in_off + len) / VHD_SECTOR_SIZE)))
		tail = 0;
	size_t body = len - tail;
	if (body) {
		r = vhd_write_file(img, buf, body, data + in_off);
		if (r < 0)
			return r;
	}
	if (tail) {
		r = vhd_read_below(img, sector_buf, VHD_SECTOR_SIZE, voff + body);
		if (r < 0)
			return r;
		memcpy(sector_buf, buf + body, tail);
		r = vhd_write_file(img, sector_buf, VHD_SECTOR_SIZE, data + in_off + body);
		if (r < 0)
			return r;
	}
	return 0;
}

static int flush_io(struct vhd_image *img)
{
	if (img->open_flags & VHD_OPEN_NO_SYNC)
		return 0;
	int r = img->io->ops->flush(img->io);
	if (r < 0)
		return vhd_img_error(img, r, "%s: flush failed: %s", img->io->name, vhd_strerror(r));
	return 0;
}

static int write_footer_at(struct vhd_image *img, uint64_t off)
{
	return vhd_write_file(img, img->footer_raw, VHD_FOOTER_SIZE, off);
}

void vhd_mark_bat_dirty(struct vhd_image *img, uint32_t blk)
{
	uint32_t sector = blk / (VHD_SECTOR_SIZE / 4);
	img->bat_dirty[sector / 8] |= (uint8_t)(1u << (sector % 8));
	img->bat_is_dirty = true;
}

/*
 * Move the end footer out so that [next_block, next_block + need) lies
 * before it, with room for more blocks.  The flush is the one barrier in
 * the allocation path: once it returns, the file ends in a durable footer
 * that no later write touches, whatever order the unflushed block writes
 * reach the disk in.  Growing by up to 256 MiB at a time keeps the flushes
 * rare; vhd_close gives back the room that was not used.
 */
static int reserve_space(struct vhd_image *img, uint64_t need, bool exact)
{
	static const uint8_t zeros[VHD_FOOTER_SIZE];
	uint64_t grow = vhd_min_u64(img->next_block, 256u << 20);
	if (grow < 4 * need)
		grow = 4 * need;
	if (exact)
		grow = need;
	uint64_t old = img->footer_offset;
	uint64_t end = vhd_block_slot(img->next_block + grow, img->bitmap_bytes);
	int r = write_footer_at(img, end);
	if (r == 0)
		r = flush_io(img);
	if (r < 0)
		return r;
	img->footer_offset = end;
	/* The old footer now lies where blocks will go: blocks must read
	 * zeros in the sectors they are not given, never a stale footer. */
	if (vhd_range_ok(old, VHD_FOOTER_SIZE, end))
		r = vhd_write_file(img, zeros, VHD_FOOTER_SIZE, old);
	return r;
}

int vhd_reserve_room(struct vhd_image *img, uint64_t len)
{
	if (img->next_block + len <= img->footer_offset)
		return 0;
	vhd_mutex_lock(img->meta_lock);
	int r = reserve_space(img, len, true);
	vhd_mutex_unlock(img->meta_lock);
	return r;
}

int vhd_claim_space(struct vhd_image *img, uint64_t len, uint64_t *off)
{
	*off = img->next_block;
	if (*off / VHD_SECTOR_SIZE >= VHD_BAT_FREE)
		return vhd_img_error(img, -ENOSPC,
				     "%s: the file has reached the 2 TiB that a BAT can address",
				     img->io->name);
	if (*off + len > img->footer_offset) {
		int r = reserve_space(img, len, false);
		if (r < 0)
			return r;
	}
	img->next_block = vhd_block_slot(*off + len, img->bitmap_bytes);
	return 0;
}

int vhd_write_footers(struct vhd_image *img)
{
	vhd_footer_encode_into(&img->footer, img->footer_raw);
	int r = write_footer_at(img, img->footer_offset);
	if (r == 0 && img->footer.disk_type != VHD_TYPE_FIXED)
		r = write_footer_at(img, 0);
	if (r == 0)
		r = flush_io(img);
	return r;
}

int vhd_copy_file_range(struct vhd_image *img, uint64_t from, uint64_t to, uint64_t len)
{
	/* In the kernel when the backend can (no trip through our memory). */
	if (img->io->ops->copy && img->io->ops->copy(img->io, from, to, len) == 0)
		return 0;
	size_t chunk = (size_t)vhd_min_u64(len, 1u << 20);
	uint8_t *buf = vhd_malloc(chunk ? chunk : 1);
	if (!buf)
		return vhd_img_error(img, -ENOMEM, "out of memory");
	int r = 0;
	for (uint64_t done = 0; r == 0 && done < len; done += chunk) {
		size_t n = (size_t)vhd_min_u64(chunk, len - done);
		r = read_file(img, buf, n, from + done);
		if (r == 0)
			r = vhd_write_file(img, buf, n, to + done);
	}
	vhd_free(buf);
	return r;
}

int vhd_sync(struct vhd_image *img)
{
	return flush_io(img);
}

/* Called with meta_lock held and the block unallocated. */
int vhd_allocate_block(struct vhd_image *img, uint32_t blk, uint32_t in_off,
			  const uint8_t *buf, size_t len, uint64_t voff)
{
	uint64_t off;
	uint64_t span = (uint64_t)img->bitmap_bytes + img->block_size;
	bool diff = img->footer.disk_type == VHD_TYPE_DIFFERENCING;
	struct bitmap_buf bm;
	int r = vhd_claim_space(img, span, &off);
	if (r < 0)
		return r;
	r = bitmap_buf_get(img, &bm);
	if (r < 0)
		return r;

	/*
	 * A dynamic block gets every bit set, as qemu and Hyper-V write it
	 * (qemu ignores a dynamic image's bitmap when it reads).  A
	 * differencing block holds only what is written now.
	 */
	memset(bm.bits, 0xFF, img->bitmap_bytes);
	/* A new dynamic block lies past the old end of the file and reads as
	 * zeros, so it holds every sector already; a differencing block holds
	 * none, and partial sectors are completed from the parent. */
	if (buf) {
		r = write_sectors(img, diff ? NULL : bm.bits, off + img->bitmap_bytes, in_off, buf,
				  len, voff);
		if (r < 0)
			goto out;
	}
	if (diff && buf) {
		memset(bm.bits, 0, img->bitmap_bytes);
		vhd_bitmap_set_range(bm.bits, in_off / VHD_SECTOR_SIZE,
				     (uint32_t)((in_off + len - 1) / VHD_SECTOR_SIZE -
						in_off / VHD_SECTOR_SIZE + 1));
	}
	r = vhd_write_file(img, bm.bits, img->bitmap_bytes, off);
	if (r < 0)
		goto out;
	__atomic_store_n(&img->bat[blk], (uint32_t)(off / VHD_SECTOR_SIZE), __ATOMIC_RELEASE);
	vhd_state_set(img, blk, !diff || vhd_bitmap_all_set(bm.bits, img->sectors_per_block)
			    ? VHD_BLOCK_FULL : VHD_BLOCK_PARTIAL);
	vhd_mark_bat_dirty(img, blk);
out:
	bitmap_buf_put(&bm);
	return r;
}

/* Called with meta_lock held; the block is allocated but not full. */
static int write_partial_block(struct vhd_image *img, uint32_t blk, uint32_t in_off,
			       const uint8_t *buf, size_t len, uint64_t voff)
{
	uint64_t boff = vhd_block_offset(img, blk);
	struct bitmap_buf bm;
	int r = bitmap_buf_get(img, &bm);
	if (r < 0)
		return r;
	r = vhd_bitmap_load(img, blk, bm.bits);
	if (r < 0)
		goto out;
	r = write_sectors(img, bm.bits, boff + img->bitmap_bytes, in_off, buf, len, voff);
	if (r < 0)
		goto out;
	uint32_t first = in_off / VHD_SECTOR_SIZE;
	uint32_t last = (uint32_t)((in_off + len - 1) / VHD_SECTOR_SIZE);
	vhd_bitmap_set_range(bm.bits, first, last - first + 1);
	/* The bits reach the disk at the next flush, after the data. */
	r = vhd_bitmap_store(img, blk, bm.bits, first, last);
	if (r < 0)
		goto out;
	vhd_state_set(img, blk, vhd_bitmap_all_set(bm.bits, img->sectors_per_block) ? VHD_BLOCK_FULL
										: VHD_BLOCK_PARTIAL);
out:
	bitmap_buf_put(&bm);
	return r;
}

static int write_block(struct vhd_image *img, uint32_t blk, uint32_t in_off, const uint8_t *buf,
		       size_t len, uint64_t voff)
{
	int r;

	/* The common case needs no lock: the block is there and complete. */
	if (vhd_bat_get(img, blk) != VHD_BAT_FREE && vhd_state_get(img, blk) == VHD_BLOCK_FULL)
		return vhd_write_file(img, buf, len, vhd_block_offset(img, blk) + img->bitmap_bytes + in_off);

	vhd_mutex_lock(img->meta_lock);
	if (vhd_bat_get(img, blk) == VHD_BAT_FREE) {
		r = vhd_allocate_block(img, blk, in_off, buf, len, voff);
	} else {
		if (vhd_state_get(img, blk) == VHD_BLOCK_UNKNOWN) {
			struct bitmap_buf bm;
			r = bitmap_buf_get(img, &bm);
			if (r == 0)
				r = vhd_bitmap_load(img, blk, bm.bits);
			bitmap_buf_put(&bm);
			if (r < 0)
				goto out;
		}
		if (vhd_state_get(img, blk) == VHD_BLOCK_FULL)
			r = vhd_write_file(img, buf, len,
				       vhd_block_offset(img, blk) + img->bitmap_bytes + in_off);
		else
			r = write_partial_block(img, blk, in_off, buf, len, voff);
	}
out:
	vhd_mutex_unlock(img->meta_lock);
	return r;
}

int vhd_pwrite(struct vhd_image *img, const void *buf, size_t len, uint64_t off)
{
	if (img->read_only)
		return vhd_img_error(img, -EROFS, "%s: the image is open read-only", img->io->name);
	int r = check_range(img, len, off, -ENOSPC);
	if (r < 0 || !len)
		return r;
	if (img->footer.disk_type == VHD_TYPE_FIXED)
		return vhd_write_file(img, buf, len, off);

	const uint8_t *p = buf;
	while (len) {
		uint32_t blk = (uint32_t)(off >> img->block_shift);
		uint32_t in_off = (uint32_t)(off & (img->block_size - 1));
		size_t n = (size_t)vhd_min_u64(len, img->block_size - in_off);
		r = write_block(img, blk, in_off, p, n, off);
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Write the BAT sectors that new blocks changed.  meta_lock held. */
static int write_dirty_bat(struct vhd_image *img)
{
	uint8_t sector[VHD_SECTOR_SIZE];
	const uint32_t per = VHD_SECTOR_SIZE / 4;
	uint32_t nsectors = (img->bat_entries + per - 1) / per;

	for (uint32_t s = 0; s < nsectors; s++) {
		if (!(img->bat_dirty[s / 8] & (1u << (s % 8))))
			continue;
		uint64_t at = img->header.table_offset + (uint64_t)s * VHD_SECTOR_SIZE;
		uint32_t first = s * per;
		/* The last sector may hold entries past the disk's end: keep them. */
		if (first + per > img->bat_entries) {
			int r = read_file(img, sector, sizeof(sector), at);
			if (r < 0)
				return r;
		}
		for (uint32_t i = 0; i < per && first + i < img->bat_entries; i++)
			vhd_put_be32(sector + 4 * i, img->bat[first + i]);
		int r = vhd_write_file(img, sector, sizeof(sector), at);
		if (r < 0)
			return r;
		img->bat_dirty[s / 8] &= (uint8_t)~(1u << (s % 8));
	}
	img->bat_is_dirty = false;
	return 0;
}

int vhd_flush(struct vhd_image *img)
{
	if (img->read_only)
		return 0;
	vhd_mutex_lock(img->meta_lock);
	int r = 0;
	if (img->bat_is_dirty || vhd_bitmap_any_dirty(img)) {
		/* Data must be durable before a BAT entry or a bitmap bit points
		 * at it. */
		r = flush_io(img);
		if (r == 0)
			r = vhd_bitmap_write_dirty(img);
		if (r == 0 && img->bat_is_dirty)
			r = write_dirty_bat(img);
	}
	if (r == 0)
		r = flush_io(img);
	vhd_mutex_unlock(img->meta_lock);
	return r;
}

/*
 * Give back the room reserve_space took beyond the last block: the footer
 * goes right after it (durably) before the file is cut, so a crash at any
 * point leaves a file that ends in a footer.
 */
static int trim_reserved_space(struct vhd_image *img)
{
	uint64_t end = img->next_block;
	if (img->read_only || img->footer.disk_type == VHD_TYPE_FIXED || img->footer_offset <= end)
		return 0;
	int r = write_footer_at(img, end);
	if (r == 0)
		r = flush_io(img);
	if (r == 0) {
		r = img->io->ops->truncate(img->io, end + VHD_FOOTER_SIZE);
		if (r < 0)
			return vhd_img_error(img, r, "%s: cannot cut the file to %llu bytes: %s",
					     img->io->name, (unsigned long long)(end + VHD_FOOTER_SIZE),
					     vhd_strerror(r));
		img->footer_offset = end;
	}
	return r;
}

int vhd_close(struct vhd_image *img)
{
	if (!img)
		return 0;
	int r = vhd_flush(img);
	if (r == 0)
		r = trim_reserved_space(img);
	vhd_image_free(img);
	return r;
}
