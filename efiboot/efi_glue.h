/* SPDX-License-Identifier: MIT */
/*
 * vhdboot.efi's own parts, shared between its files (UEFI only; the pure
 * parts, bootconf and fsmap, are host-tested and live beside these).
 */
#ifndef VHDBOOT_EFI_GLUE_H
#define VHDBOOT_EFI_GLUE_H

#include <efi.h>
#include <efilib.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fsmap.h"
#include "internal.h" /* vhd_format, vhd_vformat */
#include "libvhd.h"

/* A partition read through DiskIo: the outer volume that holds the VHD. */
struct vb_volume {
	EFI_HANDLE handle;
	EFI_DISK_IO *disk_io;
	EFI_BLOCK_IO *block_io;
	UINT32 media_id;
	uint64_t size;
	struct vb_disk disk;        /* vb_disk view for fsmap */
};

/* The volume on handle h (the loader's own, or one found by PARTUUID). */
int vb_volume_open(EFI_HANDLE h, struct vb_volume *vol, char *err, size_t errlen);
/* The GPT unique partition GUID of vol (EFI_GUID byte order), or -ENOENT
 * when vol is not a GPT partition. */
int vb_volume_partuuid(const struct vb_volume *vol, uint8_t guid[16]);
/* The GPT partition whose unique GUID is guid (EFI_GUID byte order). */
int vb_volume_find_partuuid(const uint8_t guid[16], struct vb_volume *vol, char *err,
			    size_t errlen);

/*
 * A vhd_io over a file mapped on vol: reads and writes go through DiskIo
 * at the file's extents, never through the firmware's file system (see
 * docs/vhdboot.md).  writable allows pwrite inside the file's size; the
 * file never grows.  Parents open through open_sibling on the same volume.
 */
int vb_file_io_open(struct vb_volume *vol, const char *path, bool writable, struct vhd_io **out,
		    char *err, size_t errlen);
/* The map behind an io made by vb_file_io_open (for the handoffs). */
const struct vb_file_map *vb_file_io_map(struct vhd_io *io);

/* The virtual disk: EFI_BLOCK_IO + a vendor device path on a new handle. */
struct vb_blockdev;
EFI_STATUS vb_blockdev_install(struct vhd_image *img, bool writable, struct vb_blockdev **out);
EFI_HANDLE vb_blockdev_handle(const struct vb_blockdev *dev);
EFI_DEVICE_PATH *vb_blockdev_path(const struct vb_blockdev *dev);
/* EFI_SUCCESS and dev freed, or dev (and its image) still in use. */
EFI_STATUS vb_blockdev_uninstall(struct vb_blockdev *dev);

/* vhdboot's vendor GUID: its device paths and its EFI variables. */
extern EFI_GUID vb_vendor_guid;

/* x86 Linux keeps this much command line (NUL included) and cuts the rest
 * silently, vhd.* parameters and all. */
#define VB_KERNEL_CMDLINE_SIZE 2048u

/* The OS handoffs (docs/handoff.md).  vb_handoff_params writes the kernel
 * parameters into out (" vhd.handoff=..."; "" for handoff=none), refusing a
 * line the kernel would cut; vb_ramdisk_register copies the disk into
 * reserved memory and registers it with EFI_RAM_DISK_PROTOCOL. */
struct vb_entry;
int vb_handoff_params(const struct vb_entry *e, struct vb_volume *vol, struct vhd_image *img,
		      struct vhd_io *io, char *out, size_t outlen, char *err, size_t errlen);
struct vb_ramdisk {
	EFI_PHYSICAL_ADDRESS base;
	UINTN pages;
	EFI_DEVICE_PATH *path;  /* from Register; edk2 frees it at Unregister */
};
EFI_STATUS vb_ramdisk_register(struct vhd_image *img, struct vb_ramdisk *rd, char *err,
			       size_t errlen);
/* After a boot that failed: EFI_SUCCESS and the memory freed, or the disk
 * still in use (then it stays registered and its memory reserved). */
EFI_STATUS vb_ramdisk_unregister(struct vb_ramdisk *rd);

/* One line on the console (and so the serial port): "vhdboot: ...". */
void vb_say(const char *fmt, ...);
void vb_error(const char *fmt, ...);

#endif
