/* SPDX-License-Identifier: MIT */
/* vhdtool boot-check: the pieces shared by its files. */
#ifndef VHDTOOL_BOOTCHECK_H
#define VHDTOOL_BOOTCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "libvhd.h"

/* Warnings collected for the report (text and --json alike). */
#define BC_NOTES_MAX 24
#define BC_NOTE_LEN  640
struct bc_notes {
	char text[BC_NOTES_MAX][BC_NOTE_LEN];
	size_t count;
};
void bc_note(struct bc_notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* FAT32's largest file: 4 GiB - 1 byte. */
#define BC_FAT_FILE_MAX 0xFFFFFFFFull

/* The file system a VHD will sit on. */
struct bc_dest {
	char fstype[64];            /* "vfat", "exfat", "ext4", "fuse.fusefat", ... */
	bool fat;                   /* FAT12/16/32: files up to 4 GiB - 1 byte */
};

/* What holds dest (a folder, or a file path whose folder exists): 0, or
 * -errno with err. */
int bc_dest_probe(const char *dest, struct bc_dest *out, char *err, size_t errlen);

/* Warn when a file of img's chain cannot sit on a FAT dest: too large now
 * or, for the image itself when dynamic or differencing, once it grows. */
void bc_dest_check(struct vhd_image *img, const struct bc_dest *dest, struct bc_notes *notes);

#endif
