/* SPDX-License-Identifier: MIT */
/*
 * The virtual disk the firmware sees: EFI_BLOCK_IO (Revision 3) over an open
 * image, on a new handle with a vendor hardware device path that carries
 * the image's UUID, so two disks never share a path.
 */
#include "efi_glue.h"

/* {5d1a7e3c-9b0f-4c55-8e07-1f0a6b2d8c41} */
EFI_GUID vb_vendor_guid = { 0x5d1a7e3c, 0x9b0f, 0x4c55,
				   { 0x8e, 0x07, 0x1f, 0x0a, 0x6b, 0x2d, 0x8c, 0x41 } };

struct vhd_device_path {
	VENDOR_DEVICE_PATH vendor;
	UINT8 uuid[16];
	EFI_DEVICE_PATH end;
} __attribute__((packed));

struct vb_blockdev {
	EFI_BLOCK_IO block_io;      /* first: This points here */
	EFI_BLOCK_IO_MEDIA media;
	struct vhd_device_path path;
	struct vhd_image *img;
	EFI_HANDLE handle;
};

#define SECTOR 512u

static struct vb_blockdev *dev_of(EFI_BLOCK_IO *This)
{
	return (struct vb_blockdev *)This;
}

static EFI_STATUS EFIAPI bd_reset(EFI_BLOCK_IO *This, BOOLEAN ExtendedVerification)
{
	(void)This;
	(void)ExtendedVerification;
	return EFI_SUCCESS;
}

/* The checks the UEFI spec gives ReadBlocks and WriteBlocks, in its order. */
static EFI_STATUS bd_validate(struct vb_blockdev *d, UINT32 MediaId, EFI_LBA Lba, UINTN size,
			      const void *buf)
{
	if (MediaId != d->media.MediaId)
		return EFI_MEDIA_CHANGED;
	if (size == 0)
		return EFI_SUCCESS;
	if (!buf)
		return EFI_INVALID_PARAMETER;
	if (size % SECTOR)
		return EFI_BAD_BUFFER_SIZE;
	uint64_t blocks = size / SECTOR;
	if (Lba > d->media.LastBlock || blocks - 1 > d->media.LastBlock - Lba)
		return EFI_INVALID_PARAMETER;
	return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI bd_read(EFI_BLOCK_IO *This, UINT32 MediaId, EFI_LBA Lba, UINTN BufferSize,
				 VOID *Buffer)
{
	struct vb_blockdev *d = dev_of(This);
	EFI_STATUS st = bd_validate(d, MediaId, Lba, BufferSize, Buffer);
	if (st != EFI_SUCCESS || BufferSize == 0)
		return st;
	return vhd_pread(d->img, Buffer, BufferSize, Lba * SECTOR) == 0 ? EFI_SUCCESS
									: EFI_DEVICE_ERROR;
}

static EFI_STATUS EFIAPI bd_write(EFI_BLOCK_IO *This, UINT32 MediaId, EFI_LBA Lba,
				  UINTN BufferSize, VOID *Buffer)
{
	struct vb_blockdev *d = dev_of(This);
	if (d->media.ReadOnly)
		return EFI_WRITE_PROTECTED;
	EFI_STATUS st = bd_validate(d, MediaId, Lba, BufferSize, Buffer);
	if (st != EFI_SUCCESS || BufferSize == 0)
		return st;
	return vhd_pwrite(d->img, Buffer, BufferSize, Lba * SECTOR) == 0 ? EFI_SUCCESS
									 : EFI_DEVICE_ERROR;
}

static EFI_STATUS EFIAPI bd_flush(EFI_BLOCK_IO *This)
{
	struct vb_blockdev *d = dev_of(This);
	if (d->media.ReadOnly)
		return EFI_SUCCESS; /* the FAT driver flushes read-only disks too */
	return vhd_flush(d->img) == 0 ? EFI_SUCCESS : EFI_DEVICE_ERROR;
}

EFI_STATUS vb_blockdev_install(struct vhd_image *img, bool writable, struct vb_blockdev **out)
{
	struct vhd_info info;
	if (vhd_get_info(img, &info) < 0 || info.virtual_size < SECTOR)
		return EFI_INVALID_PARAMETER;
	struct vb_blockdev *d = vhd_calloc(1, sizeof(*d));
	if (!d)
		return EFI_OUT_OF_RESOURCES;
	d->img = img;
	d->media.MediaId = 1;
	d->media.MediaPresent = TRUE;
	d->media.ReadOnly = !writable;
	d->media.BlockSize = SECTOR;
	d->media.IoAlign = 0;
	d->media.LastBlock = info.virtual_size / SECTOR - 1;
	d->media.LogicalBlocksPerPhysicalBlock = 1;
	d->block_io.Revision = EFI_BLOCK_IO_PROTOCOL_REVISION3;
	d->block_io.Media = &d->media;
	d->block_io.Reset = bd_reset;
	d->block_io.ReadBlocks = bd_read;
	d->block_io.WriteBlocks = bd_write;
	d->block_io.FlushBlocks = bd_flush;

	d->path.vendor.Header.Type = HARDWARE_DEVICE_PATH;
	d->path.vendor.Header.SubType = HW_VENDOR_DP;
	SetDevicePathNodeLength(&d->path.vendor.Header, sizeof(d->path.vendor) + sizeof(d->path.uuid));
	d->path.vendor.Guid = vb_vendor_guid;
	memcpy(d->path.uuid, info.uuid, 16);
	SetDevicePathEndNode(&d->path.end);

	EFI_STATUS st = BS->InstallProtocolInterface(&d->handle, &gEfiDevicePathProtocolGuid,
						      EFI_NATIVE_INTERFACE, &d->path);
	if (st == EFI_SUCCESS) {
		st = BS->InstallProtocolInterface(&d->handle, &gEfiBlockIoProtocolGuid,
						  EFI_NATIVE_INTERFACE, &d->block_io);
		if (st != EFI_SUCCESS)
			BS->UninstallProtocolInterface(d->handle, &gEfiDevicePathProtocolGuid, &d->path);
	}
	if (st != EFI_SUCCESS) {
		vhd_free(d);
		return st;
	}
	*out = d;
	return EFI_SUCCESS;
}

EFI_HANDLE vb_blockdev_handle(const struct vb_blockdev *d)
{
	return d->handle;
}

EFI_DEVICE_PATH *vb_blockdev_path(const struct vb_blockdev *d)
{
	return (EFI_DEVICE_PATH *)&d->path;
}

EFI_STATUS vb_blockdev_uninstall(struct vb_blockdev *d)
{
	BS->DisconnectController(d->handle, NULL, NULL);
	/* A driver that will not let go (EFI_ACCESS_DENIED) keeps the
	 * interfaces installed: freeing them then would leave the firmware
	 * calling into freed memory, so d (and its image) stay alive. */
	EFI_STATUS st = BS->UninstallMultipleProtocolInterfaces(
		d->handle, &gEfiBlockIoProtocolGuid, &d->block_io, &gEfiDevicePathProtocolGuid,
		&d->path, NULL);
	if (st == EFI_SUCCESS)
		vhd_free(d);
	return st;
}
