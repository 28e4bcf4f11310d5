/* SPDX-License-Identifier: MIT */
/*
 * vhdboot's 4 GiB trap: FAT32 holds no file of 4 GiB or more, too small for
 * a real OS disk.  Find which file system a destination is, through
 * statfs(2), and for FUSE mounts (fusefat, exfat-fuse) through
 * /proc/self/mountinfo and, for fuseblk, the source device's boot sector.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bootcheck.h"
#include "vhdtool.h"

#define MSDOS_MAGIC 0x4d44u         /* vfat and msdos */
#define FUSE_MAGIC  0x65735546u

void bc_note(struct bc_notes *n, const char *fmt, ...)
{
	va_list ap;
	if (n->count >= BC_NOTES_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(n->text[n->count++], BC_NOTE_LEN, fmt, ap);
	va_end(ap);
}

/* The boot sector of a FUSE block device (exfat-fuse mounts as plain
 * "fuseblk"): which file system is it?  Unreadable: leave fstype. */
static void fuseblk_source(const char *dev, struct bc_dest *out)
{
	uint8_t b[512];
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (n != (ssize_t)sizeof(b) || b[510] != 0x55 || b[511] != 0xAA)
		return;
	if (memcmp(b + 3, "EXFAT   ", 8) == 0) {
		snprintf(out->fstype, sizeof(out->fstype), "fuseblk (exfat)");
	} else if (memcmp(b + 3, "NTFS    ", 8) == 0) {
		snprintf(out->fstype, sizeof(out->fstype), "fuseblk (ntfs)");
	} else if (memcmp(b + 82, "FAT32   ", 8) == 0 || memcmp(b + 54, "FAT1", 4) == 0) {
		snprintf(out->fstype, sizeof(out->fstype), "fuseblk (vfat)");
		out->fat = true;
	}
}

/* The type of the mount with device number dev in mountinfo ("ext4",
 * "fuse.fusefat", "fuseblk"; the last one listed: it is on top) and its
 * source, or false. */
static bool mount_type(dev_t dev, char *type, size_t typelen, char *source, size_t srclen)
{
	char line[4096], want[32], t[64], src[1024];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	snprintf(want, sizeof(want), "%u:%u", major(dev), minor(dev));
	while (fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint options... - fstype source superopts */
		char id[32];
		if (sscanf(line, "%*s %*s %31s", id) != 1 || strcmp(id, want) != 0)
			continue;
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(sep + 3, "%63s %1023s", t, src) != 2)
			continue;
		snprintf(type, typelen, "%s", t);
		snprintf(source, srclen, "%s", src);
		found = true;
	}
	fclose(f);
	return found;
}

/* FUSE hides the file system behind its own magic: fusefat says so in its
 * subtype, exfat-fuse and ntfs-3g mount as plain "fuseblk". */
static void fuse_type(const char *source, struct bc_dest *out)
{
	const char *sub = strchr(out->fstype, '.');
	sub = sub ? sub + 1 : "";
	if (strcmp(sub, "fusefat") == 0 || strcmp(sub, "vfat") == 0 || strcmp(sub, "msdos") == 0)
		out->fat = true;
	else if (strcmp(out->fstype, "fuseblk") == 0 && source[0] == '/')
		fuseblk_source(source, out);
}

int bc_dest_probe(const char *dest, struct bc_dest *out, char *err, size_t errlen)
{
	char folder[4096];
	struct statfs sfs;
	struct stat st;
	const char *at = dest;

	memset(out, 0, sizeof(*out));
	if (statfs(dest, &sfs) < 0 || stat(dest, &st) < 0) {
		/* A file not written yet: its folder decides. */
		int e = errno;
		snprintf(folder, sizeof(folder), "%s", dest);
		at = dirname(folder);
		if (e != ENOENT || statfs(at, &sfs) < 0 || stat(at, &st) < 0) {
			snprintf(err, errlen, "%s: %s", e == ENOENT ? at : dest, strerror(e == ENOENT ? errno : e));
			return -(e == ENOENT ? errno : e);
		}
	}
	char source[1024] = "";
	if (!mount_type(st.st_dev, out->fstype, sizeof(out->fstype), source, sizeof(source)))
		snprintf(out->fstype, sizeof(out->fstype), "0x%llx", (unsigned long long)sfs.f_type);
	switch ((uint32_t)sfs.f_type) {
	case MSDOS_MAGIC:
		out->fat = true;
		break;
	case FUSE_MAGIC:
		fuse_type(source, out);
		break;
	default:
		break;
	}
	return 0;
}

/* The largest a dynamic or differencing image becomes with every block
 * allocated: its metadata, every block with its sector bitmap, the footer. */
static uint64_t grown_size(const struct vhd_info *in)
{
	uint64_t bitmap = ((uint64_t)in->block_size / 512 / 8 + 511) / 512 * 512;
	uint64_t bat = ((uint64_t)in->max_table_entries * 4 + 511) / 512 * 512;
	return in->table_offset + bat + (uint64_t)in->max_table_entries * (bitmap + in->block_size) + 512;
}

void bc_dest_check(struct vhd_image *img, const struct bc_dest *dest, struct bc_notes *notes)
{
	char size[32];
	if (!dest->fat)
		return;
	for (struct vhd_image *layer = img; layer; layer = vhd_parent(layer)) {
		struct vhd_info in;
		if (vhd_get_info(layer, &in) < 0)
			continue;
		if (in.file_size > BC_FAT_FILE_MAX) {
			vt_format_size(in.file_size, size, sizeof(size));
			bc_note(notes, "%s is %s (%" PRIu64 " bytes): the destination is FAT (%s), which "
				"holds files up to 4 GiB - 1 byte; put the VHD on exFAT", vhd_filename(layer),
				size, in.file_size, dest->fstype);
			continue;
		}
		/* Only the image itself is written to; its parents stay as they are. */
		if (layer != img || in.type == VHD_TYPE_FIXED)
			continue;
		uint64_t grown = grown_size(&in);
		if (grown > BC_FAT_FILE_MAX) {
			vt_format_size(grown, size, sizeof(size));
			bc_note(notes, "%s is %s and can grow to %s (%" PRIu64 " bytes, its virtual size plus "
				"metadata): the destination is FAT (%s), which holds files up to 4 GiB - 1 "
				"byte; put the VHD on exFAT", vhd_filename(layer),
				vhd_type_name(in.type), size, grown, dest->fstype);
		}
	}
}
