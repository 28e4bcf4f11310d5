/* SPDX-License-Identifier: MIT */
/*
 * Folder listings through fsmap's machinery: the same probe, directory
 * streams and entry decoding as a file lookup (fat_find / exfat_find with
 * no name take each entry in turn), so a listing sees exactly the names a
 * lookup would match.  The partition is as hostile here as in fsmap.c:
 * the directory streams bound every walk.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fsdir.h"
#include "fsmap_internal.h"
#include "platform.h"
#include "utf.h"

/* Probe the partition into fs (cache allocated: fs_unmount frees it). */
static int fs_mount(struct fs *fs, const struct vb_disk *disk, char *err, size_t errlen)
{
	uint8_t boot[512];
	int rc;

	memset(fs, 0, sizeof(*fs));
	fs->disk = disk;
	fs->err = err;
	fs->errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	if (!disk || !disk->read)
		return fs_fail(fs, -EINVAL, "no partition", FS_NO_NUMBER, "");
	if (disk->size < 512)
		return fs_fail(fs, -EINVAL, "partition of ", disk->size,
			       " bytes is too small for a FAT or exFAT file system");
	fs->cache = vhd_malloc((size_t)FS_CACHE_SLOTS * FS_CACHE_BLOCK);
	if (!fs->cache)
		return fs_fail(fs, -ENOMEM, "out of memory", FS_NO_NUMBER, "");
	rc = fs_read(fs, 0, boot, sizeof(boot));
	if (rc == 0) {
		rc = exfat_probe(fs, boot);
		if (rc == -EINVAL && !fs->failed)
			rc = fat_probe(fs, boot);
	}
	return rc;
}

static void fs_unmount(struct fs *fs)
{
	vhd_free(fs->cache);
	fs->cache = NULL;
}

int vb_fs_probe(const struct vb_disk *disk, enum vb_fs_type *type, char *err, size_t errlen)
{
	struct fs fs;
	int rc = fs_mount(&fs, disk, err, errlen);
	if (rc == 0)
		*type = fs.type;
	fs_unmount(&fs);
	return rc;
}

static int find(struct fs_dir *dir, const uint16_t *name, size_t len, struct fs_node *node)
{
	return dir->fs->type == VB_FS_EXFAT ? exfat_find(dir, name, len, node)
					    : fat_find(dir, name, len, node);
}

/* Open the folder at path, one component at a time. */
static int open_folder(struct fs *fs, const char *path, struct fs_dir *dir, struct fs_node *node)
{
	uint16_t name[FS_NAME_MAX];
	size_t i = 0, start, len, plen = strlen(path);
	int rc = fs_dir_open_root(fs, dir);

	while (rc == 0 && (len = fs_path_next(path, plen, &i, &start)) != 0) {
		if (len == 2 && path[start] == '.' && path[start + 1] == '.')
			return fs_fail(fs, -EINVAL, "'..' in a folder path is not supported", FS_NO_NUMBER,
				       "");
		int n = fs_utf8_to_utf16(path + start, len, name);
		if (n == -EINVAL)
			return fs_fail(fs, -EINVAL, "folder path is not valid UTF-8", FS_NO_NUMBER, "");
		if (n < 0)
			return fs_fail(fs, -ENOENT, "no such folder (a name is too long)", FS_NO_NUMBER, "");
		rc = find(dir, name, (size_t)n, node);
		if (rc == -ENOENT || (rc == 0 && !node->is_dir))
			return fs_fail(fs, -ENOENT, "no such folder: a path component is missing or a file",
				       FS_NO_NUMBER, "");
		if (rc == 0)
			rc = fs_dir_open(fs, node, dir);
	}
	return rc;
}

/* A name as UTF-8 (unpaired surrogates become U+FFFD, and so does a NUL,
 * which would cut the name short); out holds 3 bytes per unit plus 1. */
static void name_to_utf8(const struct fs_node *node, uint8_t units[FS_NAME_MAX * 2], char *out,
			 size_t outlen)
{
	for (size_t i = 0; i < node->name_len; i++) {
		uint16_t u = node->name[i] ? node->name[i] : 0xFFFD;
		units[2 * i] = (uint8_t)u;
		units[2 * i + 1] = (uint8_t)(u >> 8);
	}
	(void)vhd_utf16_decode(units, node->name_len * 2, false, 0xFFFD, out, outlen);
}

int vb_dir_list(const struct vb_disk *disk, const char *path, vb_dir_visit visit, void *ctx,
		char *err, size_t errlen)
{
	struct fs fs;
	struct fs_dir dir;
	/* Large (a name and a node): off the stack, which is small in firmware. */
	struct scratch {
		struct fs_node node;
		uint8_t units[FS_NAME_MAX * 2];
		char name[FS_NAME_MAX * 3 + 1];
	} *s = NULL;
	int rc = fs_mount(&fs, disk, err, errlen);

	if (rc == 0 && (!path || !visit))
		rc = fs_fail(&fs, -EINVAL, "no path or no visitor", FS_NO_NUMBER, "");
	if (rc == 0 && !(s = vhd_malloc(sizeof(*s))))
		rc = fs_fail(&fs, -ENOMEM, "out of memory", FS_NO_NUMBER, "");
	if (rc == 0)
		rc = open_folder(&fs, path, &dir, &s->node);
	while (rc == 0) {
		rc = find(&dir, NULL, 0, &s->node);
		if (rc == -ENOENT) {
			rc = 0;            /* the end of the folder */
			break;
		}
		if (rc < 0)
			break;
		name_to_utf8(&s->node, s->units, s->name, sizeof(s->name));
		if (strcmp(s->name, ".") == 0 || strcmp(s->name, "..") == 0)
			continue;
		struct vb_dir_entry e = { s->name, s->node.is_dir, s->node.size };
		rc = visit(ctx, &e);
	}
	vhd_free(s);
	fs_unmount(&fs);
	return rc;
}
