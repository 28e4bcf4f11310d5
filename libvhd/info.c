/* SPDX-License-Identifier: MIT */
/* Accessors, metadata, block status and the per-image error text. */
#include <errno.h>
#include <string.h>

#include "internal.h"

int vhd_img_error(struct vhd_image *img, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vhd_mutex_lock(img->err_lock);
	vhd_vformat(img->errmsg, sizeof(img->errmsg), fmt, ap);
	vhd_mutex_unlock(img->err_lock);
	va_end(ap);
	return code;
}

int vhd_img_parent_error(struct vhd_image *img, int code)
{
	char msg[sizeof(img->errmsg)];
	vhd_errmsg_copy(img->parent, msg, sizeof(msg));
	return vhd_img_error(img, code, "%s", msg);
}

void vhd_img_warn(struct vhd_image *img, const char *fmt, ...)
{
	size_t used = strlen(img->warnings);
	va_list ap;

	if (used + 2 >= sizeof(img->warnings))
		return;
	if (used)
		img->warnings[used++] = '\n';
	va_start(ap, fmt);
	vhd_vformat(img->warnings + used, sizeof(img->warnings) - used, fmt, ap);
	va_end(ap);
}

const char *vhd_errmsg(struct vhd_image *img)
{
	return img->errmsg;
}

void vhd_errmsg_copy(struct vhd_image *img, char *buf, size_t len)
{
	vhd_mutex_lock(img->err_lock);
	vhd_strlcpy(buf, img->errmsg, len);
	vhd_mutex_unlock(img->err_lock);
}

const char *vhd_warnings(struct vhd_image *img)
{
	return img->warnings;
}

uint64_t vhd_virtual_size(const struct vhd_image *img)
{
	return img->virtual_size;
}

const char *vhd_type_name(enum vhd_type type)
{
	switch (type) {
	case VHD_TYPE_FIXED:
		return "fixed";
	case VHD_TYPE_DYNAMIC:
		return "dynamic";
	case VHD_TYPE_DIFFERENCING:
		return "differencing";
	}
	return "unknown";
}

enum vhd_type vhd_get_type(const struct vhd_image *img)
{
	return (enum vhd_type)img->footer.disk_type;
}

struct vhd_image *vhd_parent(struct vhd_image *img)
{
	return img->parent;
}

const char *vhd_parent_path(struct vhd_image *img)
{
	return img->parent_path;
}

const char *vhd_parent_error(struct vhd_image *img)
{
	return img->parent_error;
}

const char *vhd_filename(struct vhd_image *img)
{
	return img->io->name;
}

int64_t vhd_timestamp_to_unix(uint32_t ts)
{
	return (int64_t)ts + VHD_EPOCH_OFFSET;
}

int vhd_get_info(struct vhd_image *img, struct vhd_info *info)
{
	const struct vhd_footer *f = &img->footer;

	memset(info, 0, sizeof(*info));
	info->type = (enum vhd_type)f->disk_type;
	info->virtual_size = img->virtual_size;
	info->current_size = f->current_size;
	info->original_size = f->original_size;
	info->size_from_geometry = img->size_from_geometry;
	info->file_size = img->file_size;
	memcpy(info->uuid, f->uuid, 16);
	memcpy(info->creator_app, f->creator_app, 4);
	info->creator_version = f->creator_version;
	info->creator_host_os = f->creator_host_os;
	info->geometry = f->geometry;
	info->timestamp = f->timestamp;
	info->features = f->features;
	info->footer_checksum = f->checksum;
	info->footer_checksum_ok = img->footer_checksum_ok;
	info->footer_size = img->footer_size;
	info->footer_from_copy = img->footer_from_copy;
	info->read_only = img->read_only;
	info->header_checksum_ok = true;
	if (f->disk_type == VHD_TYPE_FIXED) {
		info->allocated_bytes = img->virtual_size;
		return 0;
	}
	info->header_checksum_ok = img->header_checksum_ok;
	info->block_size = img->block_size;
	info->max_table_entries = img->header.max_table_entries;
	info->table_offset = img->header.table_offset;
	for (uint32_t i = 0; i < img->bat_entries; i++)
		if (__atomic_load_n(&img->bat[i], __ATOMIC_RELAXED) != VHD_BAT_FREE)
			info->allocated_blocks++;
	info->allocated_bytes = (uint64_t)info->allocated_blocks * (img->block_size + img->bitmap_bytes);
	if (f->disk_type == VHD_TYPE_DIFFERENCING) {
		memcpy(info->parent_uuid, img->header.parent_uuid, 16);
		info->parent_timestamp = img->header.parent_timestamp;
		if (vhd_utf16_to_utf8(img->header.parent_name, sizeof(img->header.parent_name), true,
				      info->parent_name, sizeof(info->parent_name)) < 0)
			vhd_strlcpy(info->parent_name, "(undecodable)", sizeof(info->parent_name));
	}
	return 0;
}

int vhd_locator_count(struct vhd_image *img)
{
	int n = 0;
	if (img->footer.disk_type != VHD_TYPE_DIFFERENCING)
		return 0;
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
		if (img->header.loc[i].code)
			n++;
	return n;
}

int vhd_get_locator(struct vhd_image *img, int index, struct vhd_locator *loc)
{
	if (img->footer.disk_type != VHD_TYPE_DIFFERENCING || index < 0)
		return vhd_img_error(img, -EINVAL, "no such parent locator");
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		if (!img->header.loc[i].code)
			continue;
		if (index-- == 0) {
			vhd_read_locator(img, i, loc);
			return 0;
		}
	}
	return vhd_img_error(img, -EINVAL, "no such parent locator");
}

/* ---- block status ----------------------------------------------------- */

static int chain_depth(const struct vhd_image *img)
{
	int d = 0;
	while (img->parent) {
		img = img->parent;
		d++;
	}
	return d;
}

/* The extent of [off, off + len) as seen below this layer. */
static int status_below(struct vhd_image *img, uint64_t off, uint64_t len, struct vhd_extent *ext)
{
	if (img->footer.disk_type == VHD_TYPE_DIFFERENCING && !img->parent)
		return vhd_img_error(img, -ENOENT, "%s: the parent image is not available%s%s",
				     img->io->name, img->parent_error ? ": " : "",
				     img->parent_error ? img->parent_error : "");
	if (img->footer.disk_type == VHD_TYPE_DIFFERENCING && off < img->parent->virtual_size) {
		int r = vhd_block_status(img->parent, off,
					 vhd_min_u64(len, img->parent->virtual_size - off), ext);
		if (r < 0)
			return vhd_img_parent_error(img, r);
		ext->depth++;
		return 0;
	}
	ext->length = len;
	ext->flags = VHD_EXTENT_ZERO;
	ext->depth = chain_depth(img);
	ext->file_offset = UINT64_MAX;
	return 0;
}

static int fixed_status(struct vhd_image *img, uint64_t off, uint64_t len, struct vhd_extent *ext)
{
	ext->length = len;
	ext->flags = VHD_EXTENT_DATA;
	ext->depth = 0;
	ext->file_offset = off;
	if (img->io->ops->data_extent) {
		uint64_t n;
		bool is_data;
		int r = img->io->ops->data_extent(img->io, off, &n, &is_data);
		if (r == 0 && n) {
			ext->length = vhd_min_u64(n, len);
			if (!is_data)
				ext->flags |= VHD_EXTENT_ZERO;
		}
	}
	return 0;
}

int vhd_block_status(struct vhd_image *img, uint64_t off, uint64_t len, struct vhd_extent *ext)
{
	if (off >= img->virtual_size || !len)
		return vhd_img_error(img, -EINVAL,
				     "%s: block status at offset %llu is outside the %llu-byte disk",
				     img->io->name, (unsigned long long)off,
				     (unsigned long long)img->virtual_size);
	len = vhd_min_u64(len, img->virtual_size - off);
	if (img->footer.disk_type == VHD_TYPE_FIXED)
		return fixed_status(img, off, len, ext);

	uint32_t blk = (uint32_t)(off >> img->block_shift);
	uint64_t in_off = off & (img->block_size - 1);
	uint64_t in_len = vhd_min_u64(len, img->block_size - in_off);
	uint32_t e = __atomic_load_n(&img->bat[blk], __ATOMIC_ACQUIRE);

	if (e == VHD_BAT_FREE) {
		/* Merge the following free blocks: one answer for a long hole. */
		uint64_t n = in_len;
		while (n < len && __atomic_load_n(&img->bat[++blk], __ATOMIC_ACQUIRE) == VHD_BAT_FREE)
			n += vhd_min_u64(img->block_size, len - n);
		return status_below(img, off, n, ext);
	}

	uint64_t data = (uint64_t)e * VHD_SECTOR_SIZE + img->bitmap_bytes;
	uint64_t n = in_len;
	bool present = true;
	if (__atomic_load_n(&img->block_state[blk], __ATOMIC_RELAXED) != VHD_BLOCK_FULL) {
		uint8_t *bits = vhd_malloc(img->bitmap_bytes);
		if (!bits)
			return vhd_img_error(img, -ENOMEM, "out of memory");
		/* The bitmap as this handle sees it: bits set since the last
		 * flush may not be on disk yet. */
		int r = vhd_bitmap_load(img, blk, bits);
		if (r < 0) {
			vhd_free(bits);
			return r;
		}
		uint32_t first = (uint32_t)(in_off / VHD_SECTOR_SIZE);
		uint32_t last = (uint32_t)((in_off + in_len - 1) / VHD_SECTOR_SIZE);
		uint32_t run = vhd_bitmap_run(bits, first, last - first + 1, &present);
		vhd_free(bits);
		n = vhd_min_u64((uint64_t)(first + run) * VHD_SECTOR_SIZE, in_off + in_len) - in_off;
	}
	if (!present)
		return status_below(img, off, n, ext);

	ext->flags = VHD_EXTENT_DATA;
	ext->depth = 0;
	ext->file_offset = data + in_off;
	ext->length = n;
	/* Holes in the file inside a block (never written, or punched) read as
	 * zeros: say so, and readers (convert, NBD clients) skip them. */
	if (img->io->ops->data_extent) {
		uint64_t run;
		bool is_data;
		if (img->io->ops->data_extent(img->io, data + in_off, &run, &is_data) == 0 && run) {
			ext->length = vhd_min_u64(n, run);
			if (!is_data)
				ext->flags |= VHD_EXTENT_ZERO;
			return 0;
		}
	}
	return 0;
}
