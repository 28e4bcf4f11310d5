/* SPDX-License-Identifier: MIT */
/* The outer partition that holds the VHD file, read through DiskIo. */
#include "efi_glue.h"

static int volume_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct vb_volume *vol = ctx;
	if (off > vol->size || len > vol->size - off)
		return -EIO;
	EFI_STATUS st = vol->disk_io->ReadDisk(vol->disk_io, vol->media_id, off, len, buf);
	return st == EFI_SUCCESS ? 0 : -EIO;
}

int vb_volume_open(EFI_HANDLE h, struct vb_volume *vol, char *err, size_t errlen)
{
	memset(vol, 0, sizeof(*vol));
	vol->handle = h;
	if (BS->HandleProtocol(h, &gEfiDiskIoProtocolGuid, (void **)&vol->disk_io) != EFI_SUCCESS ||
	    BS->HandleProtocol(h, &gEfiBlockIoProtocolGuid, (void **)&vol->block_io) != EFI_SUCCESS) {
		vhd_format(err, errlen, "the partition has no DiskIo/BlockIo protocol");
		return -ENODEV;
	}
	EFI_BLOCK_IO_MEDIA *media = vol->block_io->Media;
	if (!media || !media->MediaPresent || media->BlockSize == 0 ||
	    media->LastBlock >= UINT64_MAX / media->BlockSize) {
		vhd_format(err, errlen, "the partition reports no usable medium");
		return -ENODEV;
	}
	vol->media_id = media->MediaId;
	vol->size = (media->LastBlock + 1) * media->BlockSize;
	vol->disk.read = volume_read;
	vol->disk.ctx = vol;
	vol->disk.size = vol->size;
	return 0;
}

/* A hard-drive node is 42 bytes; gnu-efi's struct is padded to 48. */
#define HD_NODE_LENGTH (offsetof(HARDDRIVE_DEVICE_PATH, SignatureType) + 1)

/* The hard-drive node ending dp, if it is a GPT partition's. */
static HARDDRIVE_DEVICE_PATH *gpt_node(EFI_DEVICE_PATH *dp)
{
	HARDDRIVE_DEVICE_PATH *hd = NULL;
	for (EFI_DEVICE_PATH *n = dp; n && !IsDevicePathEnd(n); n = NextDevicePathNode(n)) {
		if (DevicePathNodeLength(n) < 4)
			return NULL;
		hd = (DevicePathType(n) == MEDIA_DEVICE_PATH && DevicePathSubType(n) == MEDIA_HARDDRIVE_DP &&
		      (size_t)DevicePathNodeLength(n) >= HD_NODE_LENGTH)
			     ? (HARDDRIVE_DEVICE_PATH *)n
			     : NULL;
	}
	return hd && hd->SignatureType == SIGNATURE_TYPE_GUID ? hd : NULL;
}

int vb_volume_partuuid(const struct vb_volume *vol, uint8_t guid[16])
{
	HARDDRIVE_DEVICE_PATH *hd = gpt_node(DevicePathFromHandle(vol->handle));
	if (!hd)
		return -ENOENT;
	memcpy(guid, hd->Signature, 16);
	return 0;
}

int vb_volume_find_partuuid(const uint8_t guid[16], struct vb_volume *vol, char *err,
			    size_t errlen)
{
	UINTN count = 0;
	EFI_HANDLE *handles = NULL;
	if (BS->LocateHandleBuffer(ByProtocol, &gEfiBlockIoProtocolGuid, NULL, &count, &handles) !=
	    EFI_SUCCESS)
		count = 0;
	int r = -ENOENT;
	for (UINTN i = 0; i < count; i++) {
		HARDDRIVE_DEVICE_PATH *hd = gpt_node(DevicePathFromHandle(handles[i]));
		if (hd && memcmp(hd->Signature, guid, 16) == 0) {
			r = vb_volume_open(handles[i], vol, err, errlen);
			break;
		}
	}
	if (handles)
		BS->FreePool(handles);
	if (r == -ENOENT) {
		const uint8_t *g = guid;
		vhd_format(err, errlen,
			   "no partition with PARTUUID %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			   g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12],
			   g[13], g[14], g[15]);
	}
	return r;
}
