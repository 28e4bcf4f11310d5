/* SPDX-License-Identifier: MIT */
/* Creating fixed, dynamic and differencing images. */
#include <errno.h>
#include <string.h>

#include "internal.h"

/*
 * The creator application.  qemu-img (and so every tool built on it) sizes
 * a VHD by its CHS geometry unless the creator is one of `win `, `qem2`,
 * `d2v `, `tap\0`, `CTXS`; then it uses current_size, as Hyper-V, libvhdi
 * and VirtualBox do.  We write `qem2`: qemu defined it for exactly this
 * meaning (an image whose size is current_size, not a geometry), and unlike
 * `win ` it does not claim that Windows made the file.
 */
static const uint8_t creator_app[4] = { 'q', 'e', 'm', '2' };
#define CREATOR_VERSION ((uint32_t)LIBVHD_VERSION_MAJOR << 16 | LIBVHD_VERSION_MINOR)
#define CREATOR_HOST_WI2K 0x5769326Bu

int vhd_create_check_params(const struct vhd_create_params *p, struct vhd_error *err)
{
	uint32_t bs = p->block_size;

	if (p->type != VHD_TYPE_FIXED && p->type != VHD_TYPE_DYNAMIC &&
	    p->type != VHD_TYPE_DIFFERENCING) {
		vhd_set_error(err, -EINVAL, "unknown image type %d", (int)p->type);
		return -EINVAL;
	}
	if (p->flags & VHD_CREATE_AZURE) {
		if (p->type != VHD_TYPE_FIXED) {
			vhd_set_error(err, -EINVAL, "Azure takes fixed images only");
			return -EINVAL;
		}
		if (p->size % (1u << 20) || p->size < VHD_AZURE_MIN_SIZE || p->size > VHD_AZURE_MAX_SIZE) {
			vhd_set_error(err, -EINVAL,
				      "size %llu is not valid for Azure: it must be a whole number of MiB from 20 MiB to 32 TiB",
				      (unsigned long long)p->size);
			return -EINVAL;
		}
	}
	if (p->type != VHD_TYPE_DIFFERENCING) {
		if (p->size == 0) {
			vhd_set_error(err, -EINVAL, "the size must not be zero");
			return -EINVAL;
		}
		if (p->size % VHD_SECTOR_SIZE) {
			vhd_set_error(err, -EINVAL,
				      "size %llu is not a multiple of 512 bytes (the nearest are %llu and %llu)",
				      (unsigned long long)p->size,
				      (unsigned long long)(p->size / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE),
				      (unsigned long long)(p->size / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE +
							   VHD_SECTOR_SIZE));
			return -EINVAL;
		}
		if (p->size > (UINT64_MAX >> 2)) {
			vhd_set_error(err, -EFBIG, "size %llu is too large", (unsigned long long)p->size);
			return -EFBIG;
		}
	} else if (!p->parent) {
		vhd_set_error(err, -EINVAL, "a differencing image needs a parent");
		return -EINVAL;
	}
	if (p->type != VHD_TYPE_FIXED && p->size > VHD_MAX_DYNAMIC_SIZE) {
		vhd_set_error(err, -EFBIG,
			      "size %llu exceeds the 2040 GiB that the VHD specification allows for %s images",
			      (unsigned long long)p->size,
			      p->type == VHD_TYPE_DYNAMIC ? "dynamic" : "differencing");
		return -EFBIG;
	}
	if (bs && p->type != VHD_TYPE_FIXED &&
	    ((bs & (bs - 1)) || bs < VHD_MIN_CREATE_BLOCK_SIZE || bs > VHD_MAX_CREATE_BLOCK_SIZE)) {
		vhd_set_error(err, -EINVAL,
			      "block size %u is not a power of two from 512 KiB to 256 MiB", bs);
		return -EINVAL;
	}
	return 0;
}

static void fill_footer(struct vhd_footer *f, enum vhd_type type, uint64_t size)
{
	memset(f, 0, sizeof(*f));
	f->features = VHD_FEATURES_RESERVED;
	f->format_version = VHD_FILE_FORMAT_VERSION;
	f->data_offset = type == VHD_TYPE_FIXED ? VHD_NO_OFFSET : VHD_FOOTER_SIZE;
	int64_t now = vhd_time_now() - VHD_EPOCH_OFFSET;
	f->timestamp = now < 0 ? 0 : now > UINT32_MAX ? UINT32_MAX : (uint32_t)now;
	memcpy(f->creator_app, creator_app, 4);
	f->creator_version = CREATOR_VERSION;
	f->creator_host_os = CREATOR_HOST_WI2K;
	f->original_size = size;
	f->current_size = size;
	f->geometry = vhd_geometry_for_size(size);
	f->disk_type = type;
	vhd_uuid_generate(f->uuid);
}

static int write_all(struct vhd_io *io, const void *buf, size_t len, uint64_t off,
		     struct vhd_error *err)
{
	int r = io->ops->pwrite(io, buf, len, off);
	if (r < 0)
		vhd_set_error(err, r, "%s: write of %zu bytes at offset %llu failed: %s", io->name, len,
			      (unsigned long long)off, vhd_strerror(r));
	return r;
}

/* "a/b c" -> ".\a\b c" as UTF-16LE. */
static int encode_w2ru(const char *rel, uint8_t *out, size_t out_len)
{
	char win[VHD_LOCATOR_MAX_PATH];
	size_t o = 0;
	if (strncmp(rel, "../", 3) != 0) {
		win[o++] = '.';
		win[o++] = '\\';
	}
	for (; *rel && o + 1 < sizeof(win); rel++)
		win[o++] = *rel == '/' ? '\\' : *rel;
	if (*rel)
		return -ENAMETOOLONG;
	win[o] = '\0';
	return vhd_utf8_to_utf16(win, false, out, out_len);
}

/* "/a b/c" -> "file:///a%20b/c" */
static int encode_macx(const char *abs, uint8_t *out, size_t out_len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	const char *prefix = "file://";
	while (*prefix && o < out_len)
		out[o++] = (uint8_t)*prefix++;
	for (const uint8_t *p = (const uint8_t *)abs; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '/' || *p == '.' || *p == '_' ||
			     *p == '-' || *p == '~';
		if (o + 3 > out_len)
			return -ENAMETOOLONG;
		if (plain) {
			out[o++] = *p;
		} else {
			out[o++] = '%';
			out[o++] = (uint8_t)hex[*p >> 4];
			out[o++] = (uint8_t)hex[*p & 15];
		}
	}
	return (int)o;
}

static const char *last_component(const char *p)
{
	const char *b = p;
	for (; *p; p++)
		if (*p == '/')
			b = p + 1;
	return b;
}


int vhd_fill_parent(struct vhd_header *h, const struct vhd_parent_ref *parent,
		       uint8_t (*loc_data)[2 * VHD_LOCATOR_MAX_PATH], uint64_t first_loc_off,
		       uint64_t *end, struct vhd_error *err)
{
	struct vhd_image *pimg = parent->image;
	const char *rel = parent->relative_path;
	uint64_t off = first_loc_off;
	int n, nloc = 0;

	memcpy(h->parent_uuid, pimg->footer.uuid, 16);
	h->parent_timestamp = pimg->footer.timestamp;
	if (vhd_utf8_to_utf16(last_component(rel), true, h->parent_name,
			      sizeof(h->parent_name)) < 0) {
		vhd_set_error(err, -ENAMETOOLONG, "parent name '%s' does not fit in the header",
			      last_component(rel));
		return -ENAMETOOLONG;
	}
	n = encode_w2ru(rel, loc_data[nloc], sizeof(loc_data[0]));
	if (n < 0) {
		vhd_set_error(err, -ENAMETOOLONG, "parent path '%s' is too long for a locator", rel);
		return -ENAMETOOLONG;
	}
	h->loc[nloc++] = (struct vhd_locator_entry){ VHD_PLAT_W2RU, 0, (uint32_t)n, 0 };
	if (parent->absolute_path) {
		n = encode_macx(parent->absolute_path, loc_data[nloc], sizeof(loc_data[0]));
		if (n < 0) {
			vhd_set_error(err, -ENAMETOOLONG, "parent path '%s' is too long for a locator",
				      parent->absolute_path);
			return -ENAMETOOLONG;
		}
		h->loc[nloc++] = (struct vhd_locator_entry){ VHD_PLAT_MACX, 0, (uint32_t)n, 0 };
	}
	for (int i = 0; i < nloc; i++) {
		/* Data space in bytes, whole sectors, as Hyper-V writes it. */
		uint32_t space = (h->loc[i].data_length + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE *
				 VHD_SECTOR_SIZE;
		h->loc[i].data_space = space;
		h->loc[i].data_offset = off;
		off += space;
	}
	*end = off;
	return 0;
}

int vhd_create_io(struct vhd_io *io, const struct vhd_create_params *params,
		  const struct vhd_parent_ref *parent, struct vhd_image **out, struct vhd_error *err)
{
	struct vhd_create_params p = *params;
	struct vhd_footer f;
	uint8_t footer[VHD_FOOTER_SIZE];
	uint8_t (*loc_data)[2 * VHD_LOCATOR_MAX_PATH] = NULL;
	uint8_t *chunk = NULL;
	int r;

	if (out)
		*out = NULL;
	if (p.type == VHD_TYPE_DIFFERENCING) {
		if (!parent || !parent->image || !parent->relative_path) {
			vhd_set_error(err, -EINVAL, "a differencing image needs an open parent");
			r = -EINVAL;
			goto fail;
		}
		p.size = parent->image->virtual_size;
		p.parent = p.parent ? p.parent : parent->relative_path;
	}
	if (!p.block_size)
		p.block_size = VHD_DEFAULT_BLOCK_SIZE;
	r = vhd_create_check_params(&p, err);
	if (r < 0)
		goto fail;
	fill_footer(&f, p.type, p.size);
	vhd_footer_encode(&f, footer);

	if (p.type == VHD_TYPE_FIXED) {
		/* Sparse: the data area is a hole until written. */
		r = io->ops->truncate(io, p.size);
		if (r < 0) {
			vhd_set_error(err, r, "%s: cannot size the file to %llu bytes", io->name,
				      (unsigned long long)p.size);
			goto fail;
		}
		r = write_all(io, footer, sizeof(footer), p.size, err);
		if (r < 0)
			goto fail;
	} else {
		struct vhd_header h;
		uint64_t entries = vhd_bat_entries_needed(p.size, p.block_size);
		uint64_t table_off = VHD_FOOTER_SIZE + VHD_HEADER_SIZE;
		uint64_t end = table_off + vhd_bat_bytes(entries);

		memset(&h, 0, sizeof(h));
		h.data_offset = VHD_NO_OFFSET;
		h.table_offset = table_off;
		h.header_version = VHD_HEADER_VERSION;
		h.max_table_entries = (uint32_t)entries;
		h.block_size = p.block_size;
		if (p.type == VHD_TYPE_DIFFERENCING) {
			loc_data = vhd_calloc(VHD_LOCATOR_COUNT, sizeof(*loc_data));
			if (!loc_data) {
				r = -ENOMEM;
				vhd_set_error(err, r, "out of memory");
				goto fail;
			}
			r = vhd_fill_parent(&h, parent, loc_data, end, &end, err);
			if (r < 0)
				goto fail;
		}
		end = vhd_block_slot(end, vhd_bitmap_bytes(p.block_size));
		/* The file ends in the footer: size it first, then fill in. */
		r = write_all(io, footer, sizeof(footer), end, err);
		if (r < 0)
			goto fail;
		size_t chunk_len = 64 * 1024;
		chunk = vhd_malloc(chunk_len);
		if (!chunk) {
			r = -ENOMEM;
			vhd_set_error(err, r, "out of memory");
			goto fail;
		}
		memset(chunk, 0xFF, chunk_len);
		for (uint64_t o = 0, bat = vhd_bat_bytes(entries); o < bat; o += chunk_len) {
			r = write_all(io, chunk, (size_t)vhd_min_u64(chunk_len, bat - o), table_off + o, err);
			if (r < 0)
				goto fail;
		}
		for (int i = 0; i < VHD_LOCATOR_COUNT && loc_data && h.loc[i].code; i++) {
			memset(chunk, 0, h.loc[i].data_space);
			memcpy(chunk, loc_data[i], h.loc[i].data_length);
			r = write_all(io, chunk, h.loc[i].data_space, h.loc[i].data_offset, err);
			if (r < 0)
				goto fail;
		}
		uint8_t hbuf[VHD_HEADER_SIZE];
		vhd_header_encode(&h, hbuf);
		r = write_all(io, hbuf, sizeof(hbuf), VHD_FOOTER_SIZE, err);
		if (r < 0)
			goto fail;
		r = write_all(io, footer, sizeof(footer), 0, err);
		if (r < 0)
			goto fail;
	}
	r = (p.flags & VHD_CREATE_NO_SYNC) ? 0 : io->ops->flush(io);
	if (r < 0) {
		vhd_set_error(err, r, "%s: flush failed", io->name);
		goto fail;
	}
	vhd_free(chunk);
	vhd_free(loc_data);
	if (!out) {
		io->ops->close(io);
		return 0;
	}
	return vhd_open_io(io, VHD_OPEN_RDWR | ((p.flags & VHD_CREATE_NO_SYNC) ? VHD_OPEN_NO_SYNC : 0),
			   out, err);
fail:
	vhd_free(chunk);
	vhd_free(loc_data);
	io->ops->close(io);
	return r;
}
