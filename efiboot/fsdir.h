/* SPDX-License-Identifier: MIT */
/*
 * Folder listings on a FAT12/16/32 or exFAT partition, next to fsmap's
 * file maps: vhdtool boot-check runs the loader's program search
 * (\EFI\*\shimx64.efi) over them, in the order the directory holds the
 * entries, which is the order the firmware's file system returns them.
 */
#ifndef VHDBOOT_FSDIR_H
#define VHDBOOT_FSDIR_H

#include <stdbool.h>
#include <stdint.h>

#include "fsmap.h"

struct vb_dir_entry {
	const char *name;           /* UTF-8: the long name, else the 8.3 one */
	bool is_dir;
	uint64_t size;              /* bytes; 0 for FAT directories */
};

/* Called once per entry ("." and ".." left out): 0 goes on, a positive
 * value stops the listing and vb_dir_list returns it, a negative one is
 * an error returned as is. */
typedef int (*vb_dir_visit)(void *ctx, const struct vb_dir_entry *entry);

/*
 * List the folder at path ("\", "\EFI", "/EFI/debian"; names matched as
 * vb_file_map_open matches them; "." dropped, ".." refused).  Returns 0
 * after the last entry, the visitor's positive stop value, -ENOENT (no such
 * folder), -EINVAL (not FAT/exFAT, or a bad path), -EIO or -ENOMEM; on
 * failure err holds one line naming the problem.
 */
int vb_dir_list(const struct vb_disk *disk, const char *path, vb_dir_visit visit, void *ctx,
		char *err, size_t errlen);

/* Which file system the partition holds: 0 and *type, or -EINVAL (none of
 * these) / -EIO (one of these, with impossible geometry) and err. */
int vb_fs_probe(const struct vb_disk *disk, enum vb_fs_type *type, char *err, size_t errlen);

#endif
