/* SPDX-License-Identifier: MIT */
/* The hard disk footer: checksum, decode, validate, encode, geometry. */
#include <errno.h>
#include <string.h>

#include "endian.h"
#include "internal.h"

enum {
	F_COOKIE = 0,
	F_FEATURES = 8,
	F_VERSION = 12,
	F_DATA_OFFSET = 16,
	F_TIMESTAMP = 24,
	F_CREATOR_APP = 28,
	F_CREATOR_VERSION = 32,
	F_CREATOR_OS = 36,
	F_ORIGINAL_SIZE = 40,
	F_CURRENT_SIZE = 48,
	F_GEOMETRY = 56,
	F_DISK_TYPE = 60,
	F_CHECKSUM = 64,
	F_UUID = 68,
	F_SAVED_STATE = 84,
};

static const char footer_cookie[8] = { 'c', 'o', 'n', 'e', 'c', 't', 'i', 'x' };

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t checksum_off)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i++)
		if (i < checksum_off || i >= checksum_off + 4)
			sum += buf[i];
	return ~sum;
}

bool vhd_footer_decode(const uint8_t *buf, size_t len, struct vhd_footer *f)
{
	if (len < VHD_LEGACY_FOOTER_SIZE || memcmp(buf, footer_cookie, 8) != 0)
		return false;
	f->features = vhd_be32(buf + F_FEATURES);
	f->format_version = vhd_be32(buf + F_VERSION);
	f->data_offset = vhd_be64(buf + F_DATA_OFFSET);
	f->timestamp = vhd_be32(buf + F_TIMESTAMP);
	memcpy(f->creator_app, buf + F_CREATOR_APP, 4);
	f->creator_version = vhd_be32(buf + F_CREATOR_VERSION);
	f->creator_host_os = vhd_be32(buf + F_CREATOR_OS);
	f->original_size = vhd_be64(buf + F_ORIGINAL_SIZE);
	f->current_size = vhd_be64(buf + F_CURRENT_SIZE);
	f->geometry.cylinders = vhd_be16(buf + F_GEOMETRY);
	f->geometry.heads = buf[F_GEOMETRY + 2];
	f->geometry.sectors = buf[F_GEOMETRY + 3];
	f->disk_type = vhd_be32(buf + F_DISK_TYPE);
	f->checksum = vhd_be32(buf + F_CHECKSUM);
	memcpy(f->uuid, buf + F_UUID, 16);
	f->saved_state = buf[F_SAVED_STATE];
	return true;
}

bool vhd_footer_checksum_ok(const uint8_t *buf, size_t len)
{
	return vhd_checksum(buf, len, F_CHECKSUM) == vhd_be32(buf + F_CHECKSUM);
}

int vhd_footer_validate(const struct vhd_footer *f, char *why, size_t why_len)
{
	if ((f->format_version >> 16) != 1) {
		vhd_format(why, why_len, "footer: unsupported file format version 0x%08x",
			   f->format_version);
		return -EINVAL;
	}
	if (f->disk_type != VHD_TYPE_FIXED && f->disk_type != VHD_TYPE_DYNAMIC &&
	    f->disk_type != VHD_TYPE_DIFFERENCING) {
		vhd_format(why, why_len, "footer: unknown disk type %u", f->disk_type);
		return -EINVAL;
	}
	bool from_geometry;
	uint64_t size = vhd_footer_virtual_size(f, &from_geometry);
	if (size % VHD_SECTOR_SIZE) {
		vhd_format(why, why_len, "footer: current size %llu is not a multiple of 512",
			   (unsigned long long)f->current_size);
		return -EINVAL;
	}
	if (size > (UINT64_MAX >> 1)) {
		vhd_format(why, why_len, "footer: current size %llu is impossibly large",
			   (unsigned long long)f->current_size);
		return -EINVAL;
	}
	if (f->disk_type != VHD_TYPE_FIXED &&
	    (f->data_offset == VHD_NO_OFFSET || f->data_offset % VHD_SECTOR_SIZE)) {
		vhd_format(why, why_len, "footer: data offset 0x%llx of a %s image is not a sector offset",
			   (unsigned long long)f->data_offset,
			   f->disk_type == VHD_TYPE_DYNAMIC ? "dynamic" : "differencing");
		return -EINVAL;
	}
	return 0;
}

void vhd_footer_encode(const struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE])
{
	memset(buf, 0, VHD_FOOTER_SIZE);
	vhd_footer_encode_into(f, buf);
}

void vhd_footer_encode_into(const struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE])
{
	memcpy(buf + F_COOKIE, footer_cookie, 8);
	vhd_put_be32(buf + F_FEATURES, f->features);
	vhd_put_be32(buf + F_VERSION, f->format_version);
	vhd_put_be64(buf + F_DATA_OFFSET, f->data_offset);
	vhd_put_be32(buf + F_TIMESTAMP, f->timestamp);
	memcpy(buf + F_CREATOR_APP, f->creator_app, 4);
	vhd_put_be32(buf + F_CREATOR_VERSION, f->creator_version);
	vhd_put_be32(buf + F_CREATOR_OS, f->creator_host_os);
	vhd_put_be64(buf + F_ORIGINAL_SIZE, f->original_size);
	vhd_put_be64(buf + F_CURRENT_SIZE, f->current_size);
	vhd_put_be16(buf + F_GEOMETRY, f->geometry.cylinders);
	buf[F_GEOMETRY + 2] = f->geometry.heads;
	buf[F_GEOMETRY + 3] = f->geometry.sectors;
	vhd_put_be32(buf + F_DISK_TYPE, f->disk_type);
	memcpy(buf + F_UUID, f->uuid, 16);
	buf[F_SAVED_STATE] = f->saved_state;
	vhd_put_be32(buf + F_CHECKSUM, vhd_checksum(buf, VHD_FOOTER_SIZE, F_CHECKSUM));
}

/* The specification's CHS algorithm (appendix "CHS calculation"). */
struct vhd_geometry vhd_geometry_for_size(uint64_t size)
{
	uint64_t total = size / VHD_SECTOR_SIZE;
	uint64_t spt, heads, cth;

	if (total > VHD_MAX_CHS_SECTORS)
		total = VHD_MAX_CHS_SECTORS;
	if (total >= 65535ull * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = total / spt;
	} else {
		spt = 17;
		cth = total / spt;
		heads = (cth + 1023) / 1024;
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024 || heads > 16) {
			spt = 31;
			heads = 16;
			cth = total / spt;
		}
		if (cth >= heads * 1024) {
			spt = 63;
			heads = 16;
			cth = total / spt;
		}
	}
	struct vhd_geometry g = {
		.cylinders = (uint16_t)(cth / heads),
		.heads = (uint8_t)heads,
		.sectors = (uint8_t)spt,
	};
	return g;
}

uint64_t vhd_geometry_size(struct vhd_geometry g)
{
	return (uint64_t)g.cylinders * g.heads * g.sectors * VHD_SECTOR_SIZE;
}

/*
 * Virtual PC sized disks by CHS; qemu-img writes `qemu` images the same
 * way.  For those two creators the CHS size is the disk size unless the
 * geometry is the maximum (then the disk is bigger than CHS can say).
 * Hyper-V, disk2vhd, XenServer, VirtualBox and we mean current_size.
 * qemu-img 7.2 agrees for `vpc `, `qemu` and its current_size list, but
 * also takes the CHS size for every other creator (`vbox` among them);
 * there we follow the writer's intent and libvhdi, not qemu-img.
 */
uint64_t vhd_footer_virtual_size(const struct vhd_footer *f, bool *from_geometry)
{
	bool chs_creator = memcmp(f->creator_app, "vpc ", 4) == 0 ||
			   memcmp(f->creator_app, "qemu", 4) == 0;
	bool max_geometry = f->geometry.cylinders == 65535 && f->geometry.heads == 16 &&
			    f->geometry.sectors == 255;

	*from_geometry = chs_creator && !max_geometry;
	return *from_geometry ? vhd_geometry_size(f->geometry) : f->current_size;
}
