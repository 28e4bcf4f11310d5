/* SPDX-License-Identifier: MIT */
/*
 * Compaction in place.  Crash safety by order, with a flush between steps:
 *   1. free the blocks that hold nothing (zeros; in a child, the parent's
 *      bytes) and punch their space: they read the same either way;
 *   2. copy blocks from the end of the file into freed space;
 *   3. point their BAT entries at the copies;
 *   4. move the footer down and cut the file.
 * Until a step's flush, the BAT points at the old, intact places.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define CHUNK (1u << 20)

struct compactor {
	struct vhd_image *img;
	struct vhd_compact_result *res;
	bool dry_run;
	vhd_progress_fn progress;
	void *opaque;
	uint64_t done, total;
	uint8_t *buf, *pbuf, *bits;
	uint8_t *freed;         /* dry run: blocks that would be freed */
};

static void tick(struct compactor *c, uint64_t n)
{
	c->done += n;
	if (c->progress)
		c->progress(c->opaque, c->done, c->total);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int punch(struct vhd_image *img, uint64_t off, uint64_t len)
{
	return img->io->ops->discard ? img->io->ops->discard(img->io, off, len) : -EOPNOTSUPP;
}

/* ---- fixed images: runs of zeros become holes --------------------------- */

static int compact_fixed(struct compactor *c)
{
	struct vhd_image *img = c->img;
	uint64_t size = img->virtual_size;
	for (uint64_t off = 0; off < size;) {
		uint64_t n = vhd_min_u64(CHUNK - off % CHUNK, size - off);
		bool is_data = true;
		uint64_t ext;
		if (img->io->ops->data_extent && img->io->ops->data_extent(img->io, off, &ext, &is_data) == 0 &&
		    ext && !is_data) {
			n = vhd_min_u64(ext, size - off);       /* a hole already */
		} else {
			int r = img->io->ops->pread(img->io, c->buf, (size_t)n, off);
			if (r < 0)
				return vhd_img_error(img, r, "%s: read at %llu failed", img->io->name,
						     (unsigned long long)off);
			/* Whole 4 KiB pages of zeros become holes. */
			for (uint64_t p = 0; p < n; p += 4096) {
				size_t k = (size_t)vhd_min_u64(4096, n - p);
				if (k == 4096 && all_zero(c->buf + p, k)) {
					c->res->sectors_released += 8;
					if (!c->dry_run)
						punch(img, off + p, k);
				}
			}
		}
		off += n;
		tick(c, n);
	}
	return 0;
}

/* ---- step 1: what holds nothing ------------------------------------------- */

/* The end of the metadata: footer copy, header, BAT, locators. */
static uint64_t metadata_end(struct vhd_image *img)
{
	uint64_t end = img->footer.data_offset + VHD_HEADER_SIZE;
	uint64_t bat = img->header.table_offset + vhd_bat_bytes(img->header.max_table_entries);
	if (bat > end)
		end = bat;
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const struct vhd_locator_entry *l = &img->header.loc[i];
		uint64_t e = l->data_offset + vhd_locator_space_bytes(l);
		/* Even a locator past the end keeps blocks off its place (as
		 * open.c does), or the image would not open again. */
		if (vhd_locator_known(l->code) && e > end && e > l->data_offset &&
		    e <= (uint64_t)VHD_BAT_FREE * VHD_SECTOR_SIZE)
			end = e;
	}
	return end;
}


/*
 * Is block blk redundant?  Dynamic: it reads as zeros.  Differencing: each
 * sector it holds equals what the parent returns there; sectors that equal
 * the parent in a block that is not redundant get their bit cleared.
 */
static int judge_block(struct compactor *c, uint32_t blk, bool *redundant)
{
	struct vhd_image *img = c->img;
	uint64_t boff = vhd_block_offset(img, blk);
	uint64_t vbase = (uint64_t)blk << img->block_shift;
	uint64_t vlen = vhd_min_u64(img->block_size, img->virtual_size - vbase);
	bool diff = img->footer.disk_type == VHD_TYPE_DIFFERENCING;
	bool bits_changed = false;
	int r;

	*redundant = true;
	r = vhd_bitmap_load(img, blk, c->bits);  /* a dry run has not flushed */
	if (r < 0)
		return r;
	for (uint64_t o = 0, n; o < vlen; o += n) {
		/* A small first look settles most blocks that hold data. */
		n = (size_t)vhd_min_u64(o ? CHUNK : 64 * 1024, vlen - o);
		if (!diff) {
			r = vhd_pread(img, c->buf, n, vbase + o);
			if (r < 0)
				return r;
			if (!all_zero(c->buf, n)) {
				*redundant = false;
				tick(c, vlen);
				return 0;       /* one non-zero byte settles it */
			}
			continue;
		}
		r = img->io->ops->pread(img->io, c->buf, n, boff + img->bitmap_bytes + o);
		if (r < 0)
			return vhd_img_error(img, r, "%s: cannot read block %u", img->io->name, blk);
		r = vhd_read_below(img, c->pbuf, n, vbase + o);
		if (r < 0)
			return r;
		for (size_t s = 0; s < n; s += VHD_SECTOR_SIZE) {
			uint32_t bit = (uint32_t)((o + s) / VHD_SECTOR_SIZE);
			if (!vhd_bitmap_test(c->bits, bit))
				continue;
			if (memcmp(c->buf + s, c->pbuf + s, VHD_SECTOR_SIZE) == 0) {
				c->bits[bit >> 3] &= (uint8_t)~(0x80 >> (bit & 7));
				c->res->sectors_released++;
				bits_changed = true;
			} else {
				*redundant = false;
			}
		}
	}
	tick(c, vlen);
	/* Clearing a bit is safe at any time: the sector reads the parent's
	 * bytes, which are the same. */
	if (!*redundant && bits_changed && !c->dry_run) {
		r = vhd_write_file(img, c->bits, img->bitmap_bytes, boff);
		if (r == 0)
			vhd_state_set(img, blk, VHD_BLOCK_PARTIAL);
	}
	return r;
}

static int free_redundant_blocks(struct compactor *c)
{
	struct vhd_image *img = c->img;
	for (uint32_t blk = 0; blk < img->bat_entries; blk++) {
		if (vhd_bat_get(img, blk) == VHD_BAT_FREE) {
			tick(c, vhd_min_u64(img->block_size,
					    img->virtual_size - ((uint64_t)blk << img->block_shift)));
			continue;
		}
		bool redundant;
		int r = judge_block(c, blk, &redundant);
		if (r < 0)
			return r;
		if (!redundant)
			continue;
		c->res->blocks_freed++;
		if (c->dry_run) {
			c->freed[blk] = 1;
			continue;
		}
		/* Its space is refilled, cut off, or punched once the moves are
		 * done; all but a block before metadata that lies after blocks (a
		 * locator set-parent or resize put at the end): punched now, as
		 * nothing will move there.  Safe either way: it reads the same. */
		if (vhd_block_offset(img, blk) < metadata_end(img))
			punch(img, vhd_block_offset(img, blk),
			      (uint64_t)img->bitmap_bytes + img->block_size);
		__atomic_store_n(&img->bat[blk], VHD_BAT_FREE, __ATOMIC_RELEASE);
		vhd_state_set(img, blk, VHD_BLOCK_UNKNOWN);
		vhd_mark_bat_dirty(img, blk);
	}
	return c->dry_run ? 0 : vhd_flush(img);
}

/* ---- steps 2-4: fill holes from the end, cut the file --------------------- */

struct live {
	uint64_t off;
	uint32_t blk;
};

static bool live_less(const void *a, const void *b)
{
	return ((const struct live *)a)->off < ((const struct live *)b)->off;
}

static int relocate_and_cut(struct compactor *c)
{
	struct vhd_image *img = c->img;
	uint64_t span = (uint64_t)img->bitmap_bytes + img->block_size;
	size_t n = 0;
	int r = 0;

	for (uint32_t i = 0; i < img->bat_entries; i++)
		n += vhd_bat_get(img, i) != VHD_BAT_FREE && !(c->freed && c->freed[i]);
	struct live *v = vhd_malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return vhd_img_error(img, -ENOMEM, "out of memory");
	n = 0;
	for (uint32_t i = 0; i < img->bat_entries; i++)
		if (vhd_bat_get(img, i) != VHD_BAT_FREE && !(c->freed && c->freed[i]))
			v[n++] = (struct live){ vhd_block_offset(img, i), i };
	vhd_sort(v, n, sizeof(*v), live_less);

	/*
	 * Holes are the block slots before each live block that nothing uses.
	 * The last blocks move into the first holes while a hole lies before
	 * the block; the copies never overlap a place the BAT points at.
	 */
	uint64_t hole = vhd_block_slot(metadata_end(img), img->bitmap_bytes);
	size_t next_live = 0, last = n;
	uint64_t moved = 0;
	while (last > 0) {
		/* Skip slots taken by live blocks that stay. */
		while (next_live < last && v[next_live].off < hole + span) {
			uint64_t after = vhd_block_slot(v[next_live].off + span, img->bitmap_bytes);
			if (after > hole)
				hole = after;
			next_live++;
		}
		if (next_live >= last || hole + span > v[last - 1].off)
			break;
		struct live *b = &v[last - 1];
		if (!c->dry_run) {
			r = vhd_copy_file_range(img, b->off, hole, span);
			if (r < 0)
				break;
		}
		b->off = hole;  /* remembered; the BAT changes after the flush */
		hole = vhd_block_slot(hole + span, img->bitmap_bytes);
		last--;
		moved++;
	}
	c->res->blocks_moved = moved;
	uint64_t end = vhd_block_slot(metadata_end(img), img->bitmap_bytes);
	for (size_t i = 0; i < n; i++) {
		uint64_t e = vhd_block_slot(v[i].off + span, img->bitmap_bytes);
		if (e > end)
			end = e;
	}
	/* The file is cut only when that frees something. */
	if (end < img->footer_offset)
		c->res->file_size_after = end + VHD_FOOTER_SIZE;
	if (c->dry_run || r < 0)
		goto out;

	/* Copies durable, then the BAT points at them. */
	r = vhd_sync(img);
	if (r < 0)
		goto out;
	for (size_t i = last; i < n; i++) {
		__atomic_store_n(&img->bat[v[i].blk], (uint32_t)(v[i].off / VHD_SECTOR_SIZE),
				 __ATOMIC_RELEASE);
		vhd_mark_bat_dirty(img, v[i].blk);
	}
	r = vhd_flush(img);
	if (r < 0)
		goto out;
	/* The footer moves down (durably) before the file is cut. */
	if (end < img->footer_offset) {
		img->footer_offset = end;
		r = vhd_write_footers(img);
		if (r == 0)
			r = img->io->ops->truncate(img->io, end + VHD_FOOTER_SIZE);
		if (r < 0) {
			vhd_img_error(img, r, "%s: cannot cut the file: %s", img->io->name,
				      vhd_strerror(r));
			goto out;
		}
		img->file_size = end + VHD_FOOTER_SIZE;
	}
	img->next_block = end;
	/* What is left between the blocks is unreferenced: give the space back. */
	vhd_sort(v, n, sizeof(*v), live_less);
	uint64_t at = vhd_block_slot(metadata_end(img), img->bitmap_bytes);
	for (size_t i = 0; i < n; i++) {
		if (v[i].off > at)
			punch(img, at, v[i].off - at);
		uint64_t e = v[i].off + span;
		if (e > at)
			at = e;
	}
out:
	vhd_free(v);
	return r;
}

int vhd_compact(struct vhd_image *img, unsigned flags, vhd_progress_fn progress, void *opaque,
		struct vhd_compact_result *result)
{
	struct vhd_compact_result local;
	struct compactor c = { img, result ? result : &local, (flags & VHD_COMPACT_DRY_RUN) != 0,
			       progress, opaque, 0, img->virtual_size, NULL, NULL, NULL, NULL };
	int r;

	memset(c.res, 0, sizeof(*c.res));
	uint64_t now;
	if (img->io->ops->size(img->io, &now) < 0)
		now = img->file_size;
	c.res->file_size_before = c.res->file_size_after = now;
	if (!c.dry_run && img->read_only)
		return vhd_img_error(img, -EROFS, "%s: the image is open read-only", img->io->name);
	if (img->footer.disk_type == VHD_TYPE_DIFFERENCING && !img->parent)
		return vhd_img_error(img, -ENOENT, "%s: compacting a child needs its parent%s%s",
				     img->io->name, img->parent_error ? ": " : "",
				     img->parent_error ? img->parent_error : "");
	c.buf = vhd_malloc(CHUNK);
	c.pbuf = vhd_malloc(CHUNK);
	c.bits = vhd_malloc(img->bitmap_bytes ? img->bitmap_bytes : 1);
	if (c.dry_run)
		c.freed = vhd_calloc(img->bat_entries ? img->bat_entries : 1, 1);
	if (!c.buf || !c.pbuf || !c.bits || (c.dry_run && !c.freed)) {
		r = vhd_img_error(img, -ENOMEM, "out of memory");
		goto out;
	}
	if (!c.dry_run) {
		r = vhd_flush(img);     /* every pending allocation on disk first */
		if (r < 0)
			goto out;
	}
	if (img->footer.disk_type == VHD_TYPE_FIXED) {
		r = compact_fixed(&c);
		goto out;
	}
	r = free_redundant_blocks(&c);
	if (r == 0)
		r = relocate_and_cut(&c);
	if (r == 0 && !c.dry_run) {
		uint64_t size;
		if (img->io->ops->size(img->io, &size) == 0)
			c.res->file_size_after = size;
	}
out:
	vhd_free(c.buf);
	vhd_free(c.pbuf);
	vhd_free(c.bits);
	vhd_free(c.freed);
	return r;
}
