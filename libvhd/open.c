/* SPDX-License-Identifier: MIT */
/* Opening an image: find and judge the footer, load header and BAT. */
#include <errno.h>
#include <string.h>

#include "endian.h"
#include "internal.h"

struct vhd_image *vhd_image_alloc(struct vhd_io *io)
{
	struct vhd_image *img = vhd_calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	img->io = io;
	img->meta_lock = vhd_mutex_new();
	img->err_lock = vhd_mutex_new();
	img->bitmap_lock = vhd_mutex_new();
	if (!img->meta_lock || !img->err_lock || !img->bitmap_lock) {
		img->io = NULL;
		vhd_image_free(img);
		return NULL;
	}
	return img;
}

void vhd_image_free(struct vhd_image *img)
{
	if (!img)
		return;
	if (img->parent)
		vhd_close(img->parent);
	if (img->io && !img->io_borrowed)
		img->io->ops->close(img->io);
	if (img->meta_lock)
		vhd_mutex_free(img->meta_lock);
	if (img->err_lock)
		vhd_mutex_free(img->err_lock);
	if (img->bitmap_lock)
		vhd_mutex_free(img->bitmap_lock);
	vhd_bitmap_cache_free(img);
	vhd_free(img->bat);
	vhd_free(img->block_state);
	vhd_free(img->bat_dirty);
	vhd_free(img->parent_path);
	vhd_free(img->parent_error);
	vhd_free(img->moved);
	vhd_free(img);
}

void vhd_image_set_block_size(struct vhd_image *img, uint32_t block_size)
{
	img->block_size = block_size;
	img->bitmap_bytes = vhd_bitmap_bytes(block_size);
	img->sectors_per_block = block_size / VHD_SECTOR_SIZE;
	img->block_shift = 0;
	while ((1u << img->block_shift) < block_size)
		img->block_shift++;
}

/* What we found at one footer position. */
struct footer_candidate {
	bool present;           /* cookie found */
	bool valid;             /* structure validates */
	bool checksum_ok;
	uint32_t computed;      /* the checksum the bytes call for */
	unsigned size;
	struct vhd_footer f;
	uint8_t raw[VHD_FOOTER_SIZE];
	char why[160];
};

static void judge_footer(const uint8_t *buf, unsigned size, struct footer_candidate *c)
{
	memset(c, 0, sizeof(*c));
	c->size = size;
	memcpy(c->raw, buf, size);
	if (!vhd_footer_decode(buf, size, &c->f))
		return;
	c->present = true;
	c->valid = vhd_footer_validate(&c->f, c->why, sizeof(c->why)) == 0;
	c->computed = vhd_checksum(buf, size, 64);
	c->checksum_ok = c->computed == c->f.checksum;
}

static int read_footers(struct vhd_image *img, struct footer_candidate *end,
			struct footer_candidate *copy, struct vhd_error *err)
{
	uint8_t buf[VHD_FOOTER_SIZE];
	uint64_t size = img->file_size;
	int r;

	memset(end, 0, sizeof(*end));
	memset(copy, 0, sizeof(*copy));
	if (size < VHD_LEGACY_FOOTER_SIZE) {
		vhd_set_error(err, -EINVAL, "%s: file is too small to be a VHD (%llu bytes)",
			      img->io->name, (unsigned long long)size);
		return -EINVAL;
	}
	if (size >= VHD_FOOTER_SIZE) {
		r = img->io->ops->pread(img->io, buf, VHD_FOOTER_SIZE, size - VHD_FOOTER_SIZE);
		if (r < 0)
			goto io_error;
		judge_footer(buf, VHD_FOOTER_SIZE, end);
	}
	if (!end->present) {
		/* Virtual PC before 2004 wrote a 511-byte footer. */
		memset(buf, 0, sizeof(buf));
		r = img->io->ops->pread(img->io, buf, VHD_LEGACY_FOOTER_SIZE,
					size - VHD_LEGACY_FOOTER_SIZE);
		if (r < 0)
			goto io_error;
		judge_footer(buf, VHD_LEGACY_FOOTER_SIZE, end);
	}
	if (size >= VHD_FOOTER_SIZE * 2) {
		r = img->io->ops->pread(img->io, buf, VHD_FOOTER_SIZE, 0);
		if (r < 0)
			goto io_error;
		judge_footer(buf, VHD_FOOTER_SIZE, copy);
	}
	return 0;
io_error:
	vhd_set_error(err, r, "%s: cannot read the footer", img->io->name);
	return r;
}

/* Pick the footer to trust; fills warnings and the read-only verdict. */
static int choose_footer(struct vhd_image *img, bool want_write, struct vhd_error *err)
{
	struct footer_candidate end, copy;
	const char *name = img->io->name;
	int r = read_footers(img, &end, &copy, err);
	if (r < 0)
		return r;

	bool copy_good = copy.valid && copy.checksum_ok && copy.f.disk_type != VHD_TYPE_FIXED;
	const struct footer_candidate *use = NULL;
	char why[200];

	if (end.valid && end.checksum_ok) {
		use = &end;
	} else {
		if (!end.present)
			vhd_format(why, sizeof(why), "no footer at the end of the file");
		else if (!end.valid)
			vhd_format(why, sizeof(why), "%s", end.why);
		else
			vhd_format(why, sizeof(why),
				   "footer checksum mismatch (field checksum at offset %llu: stored 0x%08x, computed 0x%08x)",
				   (unsigned long long)(img->file_size - end.size + 64),
				   end.f.checksum, end.computed);
		if (copy_good) {
			use = &copy;
			img->footer_from_copy = true;
			vhd_img_warn(img, "%s; using the footer copy at offset 0", why);
		} else if (end.present && end.valid) {
			use = &end;
			vhd_img_warn(img, "%s", why);
		} else if (!end.present && copy.present && !copy.valid) {
			vhd_set_error(err, -EINVAL, "%s: %s; the copy at offset 0 is bad too: %s", name,
				      why, copy.why);
			return -EINVAL;
		} else if (!end.present && !copy.present) {
			vhd_set_error(err, -EINVAL,
				      "%s: not a VHD image (no 'conectix' footer at the end of the file or at offset 0)",
				      name);
			return -EINVAL;
		} else {
			vhd_set_error(err, -EINVAL, "%s: %s", name, why);
			return -EINVAL;
		}
		img->read_only = true;
		if (want_write) {
			vhd_set_error(err, -EROFS,
				      "%s: %s%s; refusing to open a damaged image for writing (vhdtool check names the damage)",
				      name, why,
				      img->footer_from_copy ? " (the footer copy at offset 0 is intact)" : "");
			return -EROFS;
		}
	}
	img->footer = use->f;
	/* Rewritten as read (a legacy footer gains its 512th byte): other
	 * tools keep flags in the reserved bytes (blktap's "hidden"). */
	memcpy(img->footer_raw, use->raw, VHD_FOOTER_SIZE);
	img->footer_size = use->size;
	img->footer_checksum_ok = use->checksum_ok;
	img->footer_offset = img->footer_from_copy ? img->file_size : img->file_size - use->size;
	img->virtual_size = vhd_footer_virtual_size(&img->footer, &img->size_from_geometry);
	return 0;
}

static int load_header(struct vhd_image *img, bool want_write, struct vhd_error *err)
{
	const char *name = img->io->name;
	uint8_t buf[VHD_HEADER_SIZE];
	uint64_t hoff = img->footer.data_offset;
	char why[160];
	int r;

	if (!vhd_range_ok(hoff, VHD_HEADER_SIZE, img->footer_offset) || hoff < VHD_FOOTER_SIZE) {
		vhd_set_error(err, -EINVAL,
			      "%s: footer data offset 0x%llx does not leave room for the 1024-byte dynamic header in a file of %llu bytes",
			      name, (unsigned long long)hoff, (unsigned long long)img->file_size);
		return -EINVAL;
	}
	r = img->io->ops->pread(img->io, buf, VHD_HEADER_SIZE, hoff);
	if (r < 0) {
		vhd_set_error(err, r, "%s: cannot read the dynamic header", name);
		return r;
	}
	if (!vhd_header_decode(buf, sizeof(buf), &img->header)) {
		vhd_set_error(err, -EINVAL,
			      "%s: no dynamic header (cookie 'cxsparse') at offset 0x%llx named by the footer",
			      name, (unsigned long long)hoff);
		return -EINVAL;
	}
	if (vhd_header_validate(&img->header, why, sizeof(why)) < 0) {
		vhd_set_error(err, -EINVAL, "%s: %s", name, why);
		return -EINVAL;
	}
	img->header_checksum_ok = vhd_header_checksum_ok(buf);
	if (!img->header_checksum_ok) {
		vhd_format(why, sizeof(why),
			   "dynamic header checksum mismatch (field checksum at offset %llu: stored 0x%08x, computed 0x%08x)",
			   (unsigned long long)(hoff + 36), img->header.checksum,
			   vhd_checksum(buf, VHD_HEADER_SIZE, 36));
		if (want_write) {
			vhd_set_error(err, -EROFS,
				      "%s: %s; refusing to open a damaged image for writing", name, why);
			return -EROFS;
		}
		img->read_only = true;
		vhd_img_warn(img, "%s", why);
	}
	vhd_image_set_block_size(img, img->header.block_size);
	return 0;
}

struct region {
	uint64_t start, end;
	const char *what;
};

static int load_bat(struct vhd_image *img, struct vhd_error *err)
{
	const char *name = img->io->name;
	const struct vhd_header *h = &img->header;
	uint64_t needed = vhd_bat_entries_needed(img->virtual_size, img->block_size);
	uint64_t span = (uint64_t)img->bitmap_bytes + img->block_size;
	int r;

	if (needed > h->max_table_entries) {
		vhd_set_error(err, -EINVAL,
			      "%s: header max table entries %u cannot cover a %llu-byte disk in %u-byte blocks (%llu needed)",
			      name, h->max_table_entries, (unsigned long long)img->virtual_size,
			      img->block_size, (unsigned long long)needed);
		return -EINVAL;
	}
	if (needed > VHD_MAX_BAT_ENTRIES) {
		vhd_set_error(err, -EFBIG, "%s: the BAT needs %llu entries; at most %u are supported",
			      name, (unsigned long long)needed, VHD_MAX_BAT_ENTRIES);
		return -EFBIG;
	}
	uint64_t bat_len = vhd_bat_bytes(needed);
	/* The table as declared: readers such as qemu load all of it. */
	uint64_t declared = vhd_bat_bytes(h->max_table_entries);
	if (!vhd_range_ok(h->table_offset, declared, img->footer_offset)) {
		char why[200];
		vhd_format(why, sizeof(why),
			   "header: max table entries %u declare a BAT of %llu bytes at 0x%llx, past the data area (0x%llx)",
			   h->max_table_entries, (unsigned long long)declared,
			   (unsigned long long)h->table_offset, (unsigned long long)img->footer_offset);
		if (!img->read_only && (img->open_flags & VHD_OPEN_RDWR)) {
			vhd_set_error(err, -EINVAL, "%s: %s; refusing to open it for writing", name, why);
			return -EINVAL;
		}
		vhd_img_warn(img, "%s", why);
		img->read_only = true;
	} else {
		bat_len = declared;     /* no block may overlap any of it */
	}
	if (!vhd_range_ok(h->table_offset, needed * 4, img->footer_offset)) {
		vhd_set_error(err, -EINVAL,
			      "%s: the BAT (offset 0x%llx, %llu entries) runs past the end of the file (%llu bytes)",
			      name, (unsigned long long)h->table_offset, (unsigned long long)needed,
			      (unsigned long long)img->file_size);
		return -EINVAL;
	}
	img->bat_entries = (uint32_t)needed;
	img->bat = vhd_malloc(needed ? needed * 4 : 4);
	img->block_state = vhd_calloc(needed ? needed : 1, 1);
	img->bat_dirty = vhd_calloc(bat_len / VHD_SECTOR_SIZE / 8 + 1, 1);
	if (!img->bat || !img->block_state || !img->bat_dirty) {
		vhd_set_error(err, -ENOMEM, "%s: out of memory for the BAT", name);
		return -ENOMEM;
	}
	if (needed) {
		r = img->io->ops->pread(img->io, img->bat, needed * 4, h->table_offset);
		if (r < 0) {
			vhd_set_error(err, r, "%s: cannot read the BAT", name);
			return r;
		}
	}

	/* Metadata that no block may overlap. */
	struct region meta[3 + VHD_LOCATOR_COUNT];
	size_t nmeta = 0;
	meta[nmeta++] = (struct region){ 0, VHD_FOOTER_SIZE, "the footer copy" };
	meta[nmeta++] = (struct region){ img->footer.data_offset,
					 img->footer.data_offset + VHD_HEADER_SIZE, "the dynamic header" };
	meta[nmeta++] = (struct region){ h->table_offset, h->table_offset + bat_len, "the BAT" };
	uint64_t meta_end = 0;
	for (size_t i = 0; i < nmeta; i++)
		meta_end = meta[i].end > meta_end ? meta[i].end : meta_end;
	if (img->footer.disk_type == VHD_TYPE_DIFFERENCING) {
		for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
			const struct vhd_locator_entry *l = &h->loc[i];
			uint64_t space = vhd_locator_space_bytes(l);
			/* Codes we do not know name nothing we use: not metadata. */
			if (!vhd_locator_known(l->code) || !space)
				continue;
			uint64_t e = l->data_offset + space;
			if (!vhd_range_ok(l->data_offset, space, img->footer_offset)) {
				/* Damaged.  Readable, but a writer could grow the file
				 * over it and leave an image that no longer opens. */
				char why[160];
				vhd_format(why, sizeof(why),
					   "parent locator %d (0x%llx, %llu bytes) lies past the end of the data", i,
					   (unsigned long long)l->data_offset, (unsigned long long)space);
				if (img->open_flags & VHD_OPEN_RDWR) {
					vhd_set_error(err, -EINVAL,
						      "%s: %s; refusing to open it for writing (vhdtool check --repair)",
						      name, why);
					return -EINVAL;
				}
				vhd_img_warn(img, "%s", why);
				continue;
			}
			meta[nmeta++] = (struct region){ l->data_offset, e, "a parent locator" };
			if (l->data_offset + space > meta_end)
				meta_end = l->data_offset + space;
		}
	}

	uint32_t *sorted = NULL;
	size_t nalloc = 0;
	for (uint32_t i = 0; i < needed; i++) {
		uint32_t e = vhd_be32((const uint8_t *)&img->bat[i]);
		img->bat[i] = e;
		if (e == VHD_BAT_FREE)
			continue;
		uint64_t off = (uint64_t)e * VHD_SECTOR_SIZE;
		if (!vhd_range_ok(off, span, img->footer_offset)) {
			vhd_set_error(err, -EINVAL,
				      "%s: BAT entry %u (at offset 0x%llx) points to 0x%llx, past the end of the data (0x%llx)",
				      name, i, (unsigned long long)(h->table_offset + 4ull * i),
				      (unsigned long long)off, (unsigned long long)img->footer_offset);
			return -EINVAL;
		}
		for (size_t m = 0; m < nmeta; m++) {
			if (off < meta[m].end && meta[m].start < off + span) {
				vhd_set_error(err, -EINVAL,
					      "%s: BAT entry %u (at offset 0x%llx) points to 0x%llx, inside %s",
					      name, i, (unsigned long long)(h->table_offset + 4ull * i),
					      (unsigned long long)off, meta[m].what);
				return -EINVAL;
			}
		}
		nalloc++;
	}
	if (nalloc) {
		sorted = vhd_malloc(nalloc * sizeof(*sorted));
		if (!sorted) {
			vhd_set_error(err, -ENOMEM, "%s: out of memory", name);
			return -ENOMEM;
		}
		size_t k = 0;
		for (uint32_t i = 0; i < needed; i++)
			if (img->bat[i] != VHD_BAT_FREE)
				sorted[k++] = img->bat[i];
		vhd_sort_u32(sorted, nalloc);
		for (size_t k2 = 1; k2 < nalloc; k2++) {
			if ((uint64_t)(sorted[k2] - sorted[k2 - 1]) * VHD_SECTOR_SIZE < span) {
				uint64_t a = (uint64_t)sorted[k2 - 1] * VHD_SECTOR_SIZE;
				uint64_t b = (uint64_t)sorted[k2] * VHD_SECTOR_SIZE;
				vhd_free(sorted);
				vhd_set_error(err, -EINVAL,
					      "%s: BAT: the blocks at 0x%llx and 0x%llx overlap (each takes %llu bytes)",
					      name, (unsigned long long)a, (unsigned long long)b,
					      (unsigned long long)span);
				return -EINVAL;
			}
		}
		uint64_t last_end = (uint64_t)sorted[nalloc - 1] * VHD_SECTOR_SIZE + span;
		if (last_end > meta_end)
			meta_end = last_end;
		vhd_free(sorted);
	}
	/* New blocks go where the end footer is now (or just after it). */
	uint64_t next = (img->footer_offset + VHD_SECTOR_SIZE - 1) & ~(uint64_t)(VHD_SECTOR_SIZE - 1);
	img->next_block = vhd_block_slot(next > meta_end ? next : meta_end, img->bitmap_bytes);
	img->used_end = vhd_block_slot(meta_end, img->bitmap_bytes);
	return 0;
}

/*
 * A writer takes back the space after the last block that nothing refers
 * to: blocks a crashed writer filled but never entered in the BAT, or room
 * it had reserved.  The footer moves down (durably) before the file is cut,
 * so a crash in between leaves two valid footers, never none.  Best effort:
 * if a step fails the file stays as it was, which is valid too.
 */
static void trim_unused_tail(struct vhd_image *img)
{
	uint64_t end = img->used_end;
	if (img->footer_offset <= end)
		return;
	if (img->io->ops->pwrite(img->io, img->footer_raw, VHD_FOOTER_SIZE, end) < 0)
		return;
	if (!(img->open_flags & VHD_OPEN_NO_SYNC) && img->io->ops->flush(img->io) < 0)
		return;
	if (img->io->ops->truncate(img->io, end + VHD_FOOTER_SIZE) < 0)
		return;
	img->footer_offset = img->next_block = end;
	img->file_size = end + VHD_FOOTER_SIZE;
}

int vhd_open_io_depth(struct vhd_io *io, unsigned flags, int depth, const uint8_t (*seen)[16],
		      struct vhd_image **out, struct vhd_error *err)
{
	bool want_write = flags & VHD_OPEN_RDWR;
	struct vhd_image *img;
	int r;

	*out = NULL;
	if (err) {
		err->code = 0;
		err->message[0] = '\0';
	}
	img = vhd_image_alloc(io);
	if (!img) {
		io->ops->close(io);
		vhd_set_error(err, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	img->open_flags = flags;
	r = io->ops->size(io, &img->file_size);
	if (r < 0) {
		vhd_set_error(err, r, "%s: cannot get the file size", io->name);
		goto fail;
	}
	r = choose_footer(img, want_write, err);
	if (r < 0)
		goto fail;
	/* Opened as a parent: stop at once if this image is already below us. */
	if (seen && vhd_chain_has_uuid(seen, depth, img->footer.uuid)) {
		vhd_set_error(err, -ELOOP, "%s is already in the parent chain (a cycle)", io->name);
		r = -ELOOP;
		goto fail;
	}
	if (img->footer.disk_type == VHD_TYPE_FIXED) {
		if (img->virtual_size > img->footer_offset) {
			vhd_set_error(err, -EINVAL,
				      "%s: fixed image of %llu bytes, but the file holds only %llu bytes of data",
				      io->name, (unsigned long long)img->virtual_size,
				      (unsigned long long)img->footer_offset);
			r = -EINVAL;
			goto fail;
		}
	} else {
		r = load_header(img, want_write, err);
		if (r < 0)
			goto fail;
		r = load_bat(img, err);
		if (r < 0)
			goto fail;
		if (want_write && !img->read_only)
			trim_unused_tail(img);
	}
	img->read_only = img->read_only || !want_write;
	if (img->footer.disk_type == VHD_TYPE_DIFFERENCING && !(flags & VHD_OPEN_NO_PARENT)) {
		r = vhd_chain_open_parent(img, flags, depth, seen, err);
		if (r < 0)
			goto fail;
	}
	*out = img;
	return 0;
fail:
	if (err && !err->code)
		vhd_set_error(err, r, "%s: cannot open the %s image", io->name,
			      vhd_type_name((enum vhd_type)img->footer.disk_type));
	vhd_image_free(img);
	return r;
}

int vhd_open_io(struct vhd_io *io, unsigned flags, struct vhd_image **out, struct vhd_error *err)
{
	return vhd_open_io_depth(io, flags, 0, NULL, out, err);
}
