/* SPDX-License-Identifier: MIT */
/* Relinking a differencing image to a moved or replaced parent. */
#include <errno.h>
#include <string.h>

#include "internal.h"

int vhd_set_parent(struct vhd_image *img, const struct vhd_parent_ref *parent, unsigned flags)
{
	uint8_t (*data)[2 * VHD_LOCATOR_MAX_PATH] = NULL;
	struct vhd_header h = img->header;
	struct vhd_error err;
	char want[37], got[37];
	int r;

	if (img->footer.disk_type != VHD_TYPE_DIFFERENCING)
		return vhd_img_error(img, -EINVAL, "%s is not a differencing image", img->io->name);
	if (img->read_only)
		return vhd_img_error(img, -EROFS, "%s: the image is open read-only", img->io->name);
	if (parent->image->virtual_size < img->virtual_size)
		return vhd_img_error(img, -EINVAL, "the new parent is smaller (%llu bytes) than the child (%llu)",
				     (unsigned long long)parent->image->virtual_size,
				     (unsigned long long)img->virtual_size);
	if (memcmp(parent->image->footer.uuid, h.parent_uuid, 16) != 0 &&
	    !(flags & VHD_SET_PARENT_IGNORE_ID)) {
		vhd_uuid_text(h.parent_uuid, want);
		vhd_uuid_text(parent->image->footer.uuid, got);
		return vhd_img_error(img, -EINVAL,
				     "%s has UUID %s, the child expects %s; relinking to a different image needs --ignore-id-mismatch",
				     parent->image->io->name, got, want);
	}
	data = vhd_calloc(VHD_LOCATOR_COUNT, sizeof(*data));
	if (!data)
		return vhd_img_error(img, -ENOMEM, "out of memory");
	memset(h.loc, 0, sizeof(h.loc));
	memset(h.parent_name, 0, sizeof(h.parent_name));
	uint64_t need;
	r = vhd_fill_parent(&h, parent, data, 0, &need, &err);
	if (r < 0) {
		vhd_img_error(img, r, "%s", err.message);
		goto out;
	}
	/*
	 * The new locators go to new space at the end of the file, durably,
	 * before the header points at them: a cut leaves the old links or the
	 * new ones, whole.  The old locator space is zeroed afterwards.
	 */
	vhd_mutex_lock(img->meta_lock);
	uint64_t at;
	r = vhd_claim_space(img, need ? need : VHD_SECTOR_SIZE, &at);
	for (int i = 0; r == 0 && i < VHD_LOCATOR_COUNT && h.loc[i].code; i++) {
		h.loc[i].data_offset += at;
		uint8_t *space = vhd_calloc(1, h.loc[i].data_space);
		if (!space) {
			r = vhd_img_error(img, -ENOMEM, "out of memory");
			break;
		}
		memcpy(space, data[i], h.loc[i].data_length);
		r = vhd_write_file(img, space, h.loc[i].data_space, h.loc[i].data_offset);
		vhd_free(space);
	}
	if (r == 0)
		r = vhd_sync(img);
	uint8_t hbuf[VHD_HEADER_SIZE];
	if (r == 0) {
		vhd_header_encode(&h, hbuf);
		r = vhd_write_file(img, hbuf, sizeof(hbuf), img->footer.data_offset);
	}
	if (r == 0)
		r = vhd_sync(img);
	if (r == 0) {
		static const uint8_t zeros[VHD_SECTOR_SIZE];
		for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
			const struct vhd_locator_entry *l = &img->header.loc[i];
			uint64_t space = vhd_locator_space_bytes(l);
			if (!vhd_locator_known(l->code) ||
			    !vhd_range_ok(l->data_offset, space, img->footer_offset))
				continue;
			for (uint64_t o = 0; o < space; o += sizeof(zeros))
				vhd_write_file(img, zeros, (size_t)vhd_min_u64(sizeof(zeros), space - o),
					       l->data_offset + o);
		}
		img->header = h;
		img->header_checksum_ok = true;
	}
	vhd_mutex_unlock(img->meta_lock);
out:
	vhd_free(data);
	return r;
}
