/* SPDX-License-Identifier: MIT */
/*
 * Where a file's bytes lie on a FAT12/16/32 or exFAT partition.
 *
 * vhdboot.efi maps the VHD file once, through the outer partition's DiskIo,
 * and then serves all I/O from the map: it must never call back into the
 * firmware's file system driver from BlockIo (see docs/vhdboot.md).  The
 * code reads the partition only through vb_disk.read, allocates only with
 * platform.h's vhd_malloc, and treats the file system as hostile (cycles,
 * clusters out of range, sizes past the chain: -EIO with a message).
 */
#ifndef VHDBOOT_FSMAP_H
#define VHDBOOT_FSMAP_H

#include <stddef.h>
#include <stdint.h>

struct vb_disk {
	/* Read len bytes at byte offset off of the partition; 0 or -errno. */
	int (*read)(void *ctx, uint64_t off, void *buf, size_t len);
	void *ctx;
	uint64_t size;              /* partition size in bytes */
};

enum vb_fs_type { VB_FS_FAT12 = 12, VB_FS_FAT16 = 16, VB_FS_FAT32 = 32, VB_FS_EXFAT = 64 };

struct vb_extent {
	uint64_t file_offset;       /* bytes into the file */
	uint64_t disk_offset;       /* bytes into the partition */
	uint64_t length;            /* bytes; extents are sorted, merged, and cover [0, size) */
};

struct vb_file_map {
	enum vb_fs_type fs;
	uint64_t size;              /* the file's size in bytes */
	/* exFAT's ValidDataLength (FAT: == size): bytes at or past it read as
	 * zeros whatever the disk holds there. */
	uint64_t valid_length;
	uint32_t cluster_size;
	size_t count;
	struct vb_extent *extents;  /* vhd_malloc'd; vb_file_map_free releases */
};

/*
 * Map the file at path ("\dir\file" or "/dir/file"; "." and ".." resolved,
 * names matched case-insensitively as the file system does: FAT long and
 * 8.3 names, exFAT names).  Returns 0, -ENOENT (missing, or a directory),
 * -EINVAL (not a FAT/exFAT file system), -EIO (inconsistent) or -ENOMEM;
 * on failure err holds one line naming the problem.
 */
int vb_file_map_open(const struct vb_disk *disk, const char *path, struct vb_file_map *map,
		     char *err, size_t errlen);

/* The extent holding file byte off, or NULL past the end (binary search). */
const struct vb_extent *vb_file_map_find(const struct vb_file_map *map, uint64_t off);

void vb_file_map_free(struct vb_file_map *map);

const char *vb_fs_type_name(enum vb_fs_type fs);

#endif
