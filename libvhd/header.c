/* SPDX-License-Identifier: MIT */
/* The dynamic disk header and its parent locators. */
#include <errno.h>
#include <string.h>

#include "endian.h"
#include "internal.h"

enum {
	H_COOKIE = 0,
	H_DATA_OFFSET = 8,
	H_TABLE_OFFSET = 16,
	H_VERSION = 24,
	H_MAX_ENTRIES = 28,
	H_BLOCK_SIZE = 32,
	H_CHECKSUM = 36,
	H_PARENT_UUID = 40,
	H_PARENT_TIMESTAMP = 56,
	H_PARENT_NAME = 64,
	H_LOCATORS = 576,
	H_LOCATOR_SIZE = 24,
};

static const char header_cookie[8] = { 'c', 'x', 's', 'p', 'a', 'r', 's', 'e' };

bool vhd_header_decode(const uint8_t *buf, size_t len, struct vhd_header *h)
{
	if (len < VHD_HEADER_SIZE || memcmp(buf, header_cookie, 8) != 0)
		return false;
	h->data_offset = vhd_be64(buf + H_DATA_OFFSET);
	h->table_offset = vhd_be64(buf + H_TABLE_OFFSET);
	h->header_version = vhd_be32(buf + H_VERSION);
	h->max_table_entries = vhd_be32(buf + H_MAX_ENTRIES);
	h->block_size = vhd_be32(buf + H_BLOCK_SIZE);
	h->checksum = vhd_be32(buf + H_CHECKSUM);
	memcpy(h->parent_uuid, buf + H_PARENT_UUID, 16);
	h->parent_timestamp = vhd_be32(buf + H_PARENT_TIMESTAMP);
	memcpy(h->parent_name, buf + H_PARENT_NAME, sizeof(h->parent_name));
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const uint8_t *p = buf + H_LOCATORS + i * H_LOCATOR_SIZE;
		h->loc[i].code = vhd_be32(p);
		h->loc[i].data_space = vhd_be32(p + 4);
		h->loc[i].data_length = vhd_be32(p + 8);
		h->loc[i].data_offset = vhd_be64(p + 16);
	}
	return true;
}

bool vhd_header_checksum_ok(const uint8_t *buf)
{
	return vhd_checksum(buf, VHD_HEADER_SIZE, H_CHECKSUM) == vhd_be32(buf + H_CHECKSUM);
}

int vhd_header_validate(const struct vhd_header *h, char *why, size_t why_len)
{
	uint32_t bs = h->block_size;

	if ((h->header_version >> 16) != 1) {
		vhd_format(why, why_len, "header: unsupported header version 0x%08x",
			   h->header_version);
		return -EINVAL;
	}
	if (bs < VHD_SECTOR_SIZE || (bs & (bs - 1)) != 0) {
		vhd_format(why, why_len, "header: block size %u is not a power of two of at least 512",
			   bs);
		return -EINVAL;
	}
	if (h->table_offset % VHD_SECTOR_SIZE || h->table_offset == VHD_NO_OFFSET) {
		vhd_format(why, why_len, "header: table offset 0x%llx is not a sector offset",
			   (unsigned long long)h->table_offset);
		return -EINVAL;
	}
	return 0;
}

void vhd_header_encode(const struct vhd_header *h, uint8_t buf[VHD_HEADER_SIZE])
{
	memset(buf, 0, VHD_HEADER_SIZE);
	memcpy(buf + H_COOKIE, header_cookie, 8);
	vhd_put_be64(buf + H_DATA_OFFSET, h->data_offset);
	vhd_put_be64(buf + H_TABLE_OFFSET, h->table_offset);
	vhd_put_be32(buf + H_VERSION, h->header_version);
	vhd_put_be32(buf + H_MAX_ENTRIES, h->max_table_entries);
	vhd_put_be32(buf + H_BLOCK_SIZE, h->block_size);
	memcpy(buf + H_PARENT_UUID, h->parent_uuid, 16);
	vhd_put_be32(buf + H_PARENT_TIMESTAMP, h->parent_timestamp);
	memcpy(buf + H_PARENT_NAME, h->parent_name, sizeof(h->parent_name));
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		uint8_t *p = buf + H_LOCATORS + i * H_LOCATOR_SIZE;
		vhd_put_be32(p, h->loc[i].code);
		vhd_put_be32(p + 4, h->loc[i].data_space);
		vhd_put_be32(p + 8, h->loc[i].data_length);
		vhd_put_be64(p + 16, h->loc[i].data_offset);
	}
	vhd_put_be32(buf + H_CHECKSUM, vhd_checksum(buf, VHD_HEADER_SIZE, H_CHECKSUM));
}

bool vhd_locator_known(uint32_t code)
{
	return code == VHD_PLAT_W2RU || code == VHD_PLAT_W2KU || code == VHD_PLAT_MACX ||
	       code == VHD_PLAT_WI2R || code == VHD_PLAT_WI2K || code == VHD_PLAT_MAC;
}

uint64_t vhd_locator_space_bytes(const struct vhd_locator_entry *l)
{
	return l->data_space < VHD_SECTOR_SIZE ? (uint64_t)l->data_space * VHD_SECTOR_SIZE
					       : l->data_space;
}

int vhd_locator_decode_path(uint32_t code, const uint8_t *data, size_t len, char *out,
			    size_t out_len)
{
	int n;

	switch (code) {
	case VHD_PLAT_W2RU:
	case VHD_PLAT_W2KU:
		n = vhd_utf16_to_utf8(data, len, false, out, out_len);
		break;
	case VHD_PLAT_MACX:
		/* UTF-8 already; refuse embedded NULs and invalid sequences */
		if (len >= out_len)
			return -EINVAL;
		for (size_t i = 0; i < len; i++) {
			if (data[i] == 0) {
				len = i;
				break;
			}
		}
		if (!vhd_utf8_valid(data, len))
			return -EINVAL;
		memcpy(out, data, len);
		out[len] = '\0';
		n = (int)len;
		break;
	default:
		return -EINVAL;
	}
	return n <= 0 ? -EINVAL : 0;
}
