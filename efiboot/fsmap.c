/* SPDX-License-Identifier: MIT */
/*
 * Map a file's extents on a FAT12/16/32 or exFAT partition: path walking,
 * cluster chains and extent lists, shared by both file systems.  fat.c and
 * exfat.c decode the boot sectors and directory entries.
 *
 * Everything read from the partition is hostile: every cluster number is
 * range-checked, every chain walk is bounded by the cluster count (a chain
 * that does not end within it has a cycle), and directories are bounded
 * by the size their file system allows.  Memory stays small: the FAT is
 * read on demand through a few cached blocks, never loaded whole.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fsmap.h"
#include "fsmap_internal.h"
#include "platform.h"

/* ---- one-line messages (no stdio in firmware) ---- */

struct msg {
	char *buf;
	size_t cap, len;
};

static void msg_bytes(struct msg *m, const char *s, size_t n)
{
	if (!m->buf || m->cap == 0)
		return;
	for (size_t i = 0; i < n && m->len + 1 < m->cap; i++) {
		char c = s[i];
		/* One line: control bytes from a hostile name become '?'. */
		m->buf[m->len++] = (c == '\n' || c == '\r' || c == '\t' || (c > 0 && c < 0x20)) ? '?' : c;
	}
	m->buf[m->len] = '\0';
}

static void msg_str(struct msg *m, const char *s)
{
	msg_bytes(m, s, strlen(s));
}

static void msg_num(struct msg *m, uint64_t v)
{
	char digits[21];
	size_t n = 0;
	do {
		digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	msg_bytes(m, digits + sizeof(digits) - n, n);
}

static struct msg msg_begin(struct fs *fs)
{
	struct msg m = { fs->err, fs->errlen, 0 };
	if (m.buf && m.cap)
		m.buf[0] = '\0';
	if (fs->type) {
		msg_str(&m, vb_fs_type_name(fs->type));
		msg_str(&m, ": ");
	}
	fs->failed = true;
	return m;
}

int fs_fail(struct fs *fs, int rc, const char *pre, uint64_t number, const char *post)
{
	if (fs->failed)
		return rc;
	struct msg m = msg_begin(fs);
	msg_str(&m, pre);
	if (number != FS_NO_NUMBER)
		msg_num(&m, number);
	msg_str(&m, post);
	return rc;
}

/* "<pre>'<path component>'<post>" */
static int fail_name(struct fs *fs, int rc, const char *pre, const char *name, size_t len,
		     const char *post)
{
	if (fs->failed)
		return rc;
	struct msg m = msg_begin(fs);
	msg_str(&m, pre);
	msg_str(&m, "'");
	msg_bytes(&m, name, len);
	msg_str(&m, "'");
	msg_str(&m, post);
	return rc;
}

const char *vb_fs_type_name(enum vb_fs_type fs)
{
	switch (fs) {
	case VB_FS_FAT12: return "FAT12";
	case VB_FS_FAT16: return "FAT16";
	case VB_FS_FAT32: return "FAT32";
	case VB_FS_EXFAT: return "exFAT";
	}
	return "unknown";
}

/* ---- cached reads ---- */

static int disk_read(struct fs *fs, uint64_t off, void *buf, size_t len)
{
	const struct vb_disk *d = fs->disk;
	if (off > d->size || len > d->size - off)
		return fs_fail(fs, -EIO, "read past the end of the partition at byte ", off, "");
	int rc = d->read(d->ctx, off, buf, len);
	if (rc < 0)
		return fs_fail(fs, rc, "cannot read the partition at byte ", off, "");
	return 0;
}

int fs_read(struct fs *fs, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;
	if (off > fs->disk->size || len > fs->disk->size - off)
		return fs_fail(fs, -EIO, "read past the end of the partition at byte ", off, "");
	while (len) {
		uint64_t block = off / FS_CACHE_BLOCK;
		uint32_t slot = (uint32_t)(block % FS_CACHE_SLOTS);
		uint8_t *data = fs->cache + (size_t)slot * FS_CACHE_BLOCK;
		if (fs->cache_len[slot] == 0 || fs->cache_block[slot] != block) {
			uint64_t start = block * FS_CACHE_BLOCK;
			uint64_t avail = fs->disk->size - start;
			uint32_t n = avail < FS_CACHE_BLOCK ? (uint32_t)avail : FS_CACHE_BLOCK;
			fs->cache_len[slot] = 0;
			int rc = disk_read(fs, start, data, n);
			if (rc < 0)
				return rc;
			fs->cache_block[slot] = block;
			fs->cache_len[slot] = n;
		}
		uint32_t in = (uint32_t)(off % FS_CACHE_BLOCK);
		size_t take = fs->cache_len[slot] - in;   /* > 0: off is inside the disk */
		if (take > len)
			take = len;
		memcpy(out, data + in, take);
		out += take;
		off += take;
		len -= take;
	}
	return 0;
}

/* ---- clusters ---- */

bool fs_cluster_valid(const struct fs *fs, uint32_t cluster)
{
	return cluster >= 2 && (uint64_t)cluster <= (uint64_t)fs->cluster_count + 1;
}

uint64_t fs_cluster_offset(const struct fs *fs, uint32_t cluster)
{
	return fs->data_offset + (uint64_t)(cluster - 2) * fs->cluster_size;
}

int fs_next_cluster(struct fs *fs, uint32_t cluster, uint32_t *next)
{
	uint8_t b[4] = { 0 };
	uint32_t v, end_min, bad;
	int rc;

	switch (fs->type) {
	case VB_FS_FAT12:
		rc = fs_read(fs, fs->fat_offset + cluster + cluster / 2, b, 2);
		v = fs_le16(b);
		v = (cluster & 1) ? v >> 4 : v & 0xFFF;
		end_min = 0xFF8;
		bad = 0xFF7;
		break;
	case VB_FS_FAT16:
		rc = fs_read(fs, fs->fat_offset + (uint64_t)cluster * 2, b, 2);
		v = fs_le16(b);
		end_min = 0xFFF8;
		bad = 0xFFF7;
		break;
	case VB_FS_FAT32:
		rc = fs_read(fs, fs->fat_offset + (uint64_t)cluster * 4, b, 4);
		v = fs_le32(b) & 0x0FFFFFFF;   /* the top 4 bits are reserved */
		end_min = 0x0FFFFFF8;
		bad = 0x0FFFFFF7;
		break;
	default:                           /* exFAT */
		rc = fs_read(fs, fs->fat_offset + (uint64_t)cluster * 4, b, 4);
		v = fs_le32(b);
		end_min = 0xFFFFFFFF;
		bad = 0xFFFFFFF7;
		break;
	}
	if (rc < 0)
		return rc;
	if (v >= end_min)
		return 1;
	if (v == 0)
		return fs_fail(fs, -EIO, "cluster chain runs into a free cluster after cluster ", cluster, "");
	if (v == bad)
		return fs_fail(fs, -EIO, "cluster chain runs into a bad cluster after cluster ", cluster, "");
	if (!fs_cluster_valid(fs, v))
		return fs_fail(fs, -EIO, "cluster chain leaves the volume: FAT entry of cluster ", cluster,
			       " is out of range");
	*next = v;
	return 0;
}

/* ---- directory streams ---- */

/* FAT: at most 65536 entries per directory (the FAT specification);
 * exFAT: at most 256 MiB. */
#define FAT_DIR_MAX   (65536u * 32u)
#define EXFAT_DIR_MAX (256u << 20)

int fs_dir_open_root(struct fs *fs, struct fs_dir *dir)
{
	memset(dir, 0, sizeof(*dir));
	dir->fs = fs;
	if (fs->type == VB_FS_FAT12 || fs->type == VB_FS_FAT16) {
		dir->fixed = true;
		dir->offset = fs->root_offset;
		dir->limit = fs->root_bytes;
		return 0;
	}
	if (!fs_cluster_valid(fs, fs->root_cluster))
		return fs_fail(fs, -EIO, "root directory cluster ", fs->root_cluster, " is out of range");
	dir->cluster = fs->root_cluster;
	dir->limit = fs->type == VB_FS_EXFAT ? EXFAT_DIR_MAX : FAT_DIR_MAX;
	return 0;
}

int fs_dir_open(struct fs *fs, const struct fs_node *node, struct fs_dir *dir)
{
	memset(dir, 0, sizeof(*dir));
	dir->fs = fs;
	if (fs->type != VB_FS_EXFAT) {
		if (!fs_cluster_valid(fs, node->first_cluster))
			return fs_fail(fs, -EIO, "directory starts at cluster ", node->first_cluster,
				       ", out of range");
		dir->cluster = node->first_cluster;
		dir->limit = FAT_DIR_MAX;
		return 0;
	}
	if (node->size > EXFAT_DIR_MAX)
		return fs_fail(fs, -EIO, "directory of ", node->size, " bytes exceeds exFAT's 256 MiB");
	dir->sized = true;
	dir->contiguous = node->contiguous;
	dir->limit = node->size;
	if (node->size == 0)
		return 0;                  /* cluster stays 0: empty */
	if (!fs_cluster_valid(fs, node->first_cluster))
		return fs_fail(fs, -EIO, "directory starts at cluster ", node->first_cluster,
			       ", out of range");
	dir->cluster = node->first_cluster;
	return 0;
}

int fs_dir_next(struct fs_dir *d, uint8_t entry[32])
{
	struct fs *fs = d->fs;
	int rc;

	if (d->fixed) {
		if (d->pos + 32 > d->limit)
			return 0;
		rc = fs_read(fs, d->offset + d->pos, entry, 32);
		d->pos += 32;
		return rc < 0 ? rc : 1;
	}
	if (d->cluster == 0)
		return 0;
	if (d->pos + 32 > d->limit) {
		if (d->sized)
			return 0;
		return fs_fail(fs, -EIO, "directory larger than its file system allows (a cycle?) at cluster ",
			       d->cluster, "");
	}
	uint32_t in = (uint32_t)(d->pos % fs->cluster_size);
	if (d->pos > 0 && in == 0) {
		uint32_t next = d->cluster + 1;
		if (d->contiguous) {
			if (!fs_cluster_valid(fs, next))
				return fs_fail(fs, -EIO, "contiguous directory runs past the last cluster ",
					       d->cluster, "");
		} else {
			rc = fs_next_cluster(fs, d->cluster, &next);
			if (rc < 0)
				return rc;
			if (rc == 1) {
				if (d->sized)
					return fs_fail(fs, -EIO, "directory's cluster chain ends after ",
						       d->pos, " bytes, short of its size");
				d->cluster = 0;
				return 0;
			}
		}
		if (++d->steps > fs->cluster_count)
			return fs_fail(fs, -EIO, "directory's cluster chain has a cycle at cluster ",
				       next, "");
		d->cluster = next;
	}
	rc = fs_read(fs, fs_cluster_offset(fs, d->cluster) + in, entry, 32);
	d->pos += 32;
	return rc < 0 ? rc : 1;
}

/* ---- names ---- */

static uint16_t fold(uint16_t c)
{
	return (c >= 'a' && c <= 'z') ? (uint16_t)(c - 'a' + 'A') : c;
}

bool fs_name_equal(const uint16_t *a, size_t alen, const uint16_t *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (fold(a[i]) != fold(b[i]))
			return false;
	return true;
}

int fs_utf8_to_utf16(const char *s, size_t len, uint16_t out[FS_NAME_MAX])
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, n = 0;
	while (i < len) {
		uint32_t c = p[i], min;
		size_t more;
		if (c < 0x80) {
			more = 0, min = 0;
		} else if ((c & 0xE0) == 0xC0) {
			more = 1, min = 0x80, c &= 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			more = 2, min = 0x800, c &= 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			more = 3, min = 0x10000, c &= 0x07;
		} else {
			return -EINVAL;
		}
		if (more > len - i - 1)
			return -EINVAL;
		for (size_t k = 1; k <= more; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return -EINVAL;
			c = (c << 6) | (p[i + k] & 0x3F);
		}
		i += more + 1;
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			return -EINVAL;
		if (c >= 0x10000) {
			if (n + 2 > FS_NAME_MAX)
				return -ENAMETOOLONG;
			c -= 0x10000;
			out[n++] = (uint16_t)(0xD800 | (c >> 10));
			out[n++] = (uint16_t)(0xDC00 | (c & 0x3FF));
		} else {
			if (n + 1 > FS_NAME_MAX)
				return -ENAMETOOLONG;
			out[n++] = (uint16_t)c;
		}
	}
	return (int)n;
}

/* ---- extent lists ---- */

struct extent_list {
	struct vb_extent *v;
	size_t n, cap;
};

static int extent_add(struct fs *fs, struct extent_list *l, uint64_t file_off, uint64_t disk_off,
		      uint64_t len)
{
	if (l->n) {
		struct vb_extent *last = &l->v[l->n - 1];
		if (last->disk_offset + last->length == disk_off) {
			last->length += len;
			return 0;
		}
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		if (cap > SIZE_MAX / sizeof(*l->v))
			return fs_fail(fs, -ENOMEM, "too many extents", FS_NO_NUMBER, "");
		struct vb_extent *v = vhd_malloc(cap * sizeof(*v));
		if (!v)
			return fs_fail(fs, -ENOMEM, "out of memory for ", (uint64_t)cap, " extents");
		if (l->n)
			memcpy(v, l->v, l->n * sizeof(*v));
		vhd_free(l->v);
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct vb_extent){ file_off, disk_off, len };
	return 0;
}

/* The extents of node's first node->size bytes. */
static int map_node(struct fs *fs, const struct fs_node *node, struct extent_list *l)
{
	uint64_t cs = fs->cluster_size, size = node->size;
	uint64_t need = size ? (size - 1) / cs + 1 : 0;
	uint32_t c = node->first_cluster;
	int rc;

	if (need > fs->cluster_count)
		return fs_fail(fs, -EIO, "file size ", size, " is larger than the volume");
	if (need == 0)
		return 0;
	if (!fs_cluster_valid(fs, c))
		return fs_fail(fs, -EIO, "file starts at cluster ", c, ", out of range");
	if (node->contiguous) {
		if ((uint64_t)c + need - 1 > (uint64_t)fs->cluster_count + 1)
			return fs_fail(fs, -EIO, "contiguous file runs past the last cluster, from cluster ",
				       c, "");
		return extent_add(fs, l, 0, fs_cluster_offset(fs, c), size);
	}
	/* Walk the whole chain.  One longer than the file is tolerated (fsck
	 * trims it), but it must end: a chain that does not end within
	 * cluster_count links has a cycle, which could also have served one
	 * cluster at two file offsets. */
	uint64_t steps = 1;
	for (uint64_t i = 0;; i++) {
		if (i < need) {
			uint64_t off = i * cs;
			rc = extent_add(fs, l, off, fs_cluster_offset(fs, c),
					size - off < cs ? size - off : cs);
			if (rc < 0)
				return rc;
		}
		uint32_t next;
		rc = fs_next_cluster(fs, c, &next);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (i + 1 < need)
				return fs_fail(fs, -EIO, "cluster chain ends after ", i + 1,
					       " clusters, short of the file size");
			return 0;
		}
		if (++steps > fs->cluster_count)
			return fs_fail(fs, -EIO, "cluster chain has a cycle (through cluster ", next, ")");
		c = next;
	}
}

/* ---- paths ---- */

struct span {
	size_t start, len;
};

static bool is_sep(char c)
{
	return c == '/' || c == '\\';
}

size_t fs_path_next(const char *path, size_t plen, size_t *pos, size_t *start)
{
	size_t i = *pos, len;
	do {
		while (i < plen && is_sep(path[i]))
			i++;
		*start = i;
		while (i < plen && !is_sep(path[i]))
			i++;
		len = i - *start;
	} while (len == 1 && path[*start] == '.');
	*pos = i;
	return len;
}

/* Split path into components with "." dropped and ".." applied (".." at
 * the root stays there, as on every file system). */
static size_t resolve_path(const char *path, size_t plen, struct span *out)
{
	size_t n = 0, i = 0, start, len;
	while ((len = fs_path_next(path, plen, &i, &start)) != 0) {
		if (len == 2 && path[start] == '.' && path[start + 1] == '.') {
			if (n)
				n--;
			continue;
		}
		out[n++] = (struct span){ start, len };
	}
	return n;
}

static int walk(struct fs *fs, const char *path, struct fs_node *node)
{
	size_t plen = strlen(path);
	struct span *comp = vhd_malloc((plen / 2 + 1) * sizeof(*comp));
	uint16_t name[FS_NAME_MAX];
	struct fs_dir dir;
	int rc;

	if (!comp)
		return fs_fail(fs, -ENOMEM, "out of memory", FS_NO_NUMBER, "");
	size_t n = resolve_path(path, plen, comp);
	if (n == 0) {
		vhd_free(comp);
		return fs_fail(fs, -ENOENT, "path names the root directory, not a file", FS_NO_NUMBER, "");
	}
	rc = fs_dir_open_root(fs, &dir);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *s = path + comp[i].start;
		int len = fs_utf8_to_utf16(s, comp[i].len, name);
		if (len == -EINVAL) {
			rc = fail_name(fs, -EINVAL, "path component ", s, comp[i].len, " is not valid UTF-8");
			break;
		}
		if (len < 0) {
			rc = fail_name(fs, -ENOENT, "no such file: ", s, comp[i].len, " (name too long)");
			break;
		}
		rc = fs->type == VB_FS_EXFAT ? exfat_find(&dir, name, (size_t)len, node)
					     : fat_find(&dir, name, (size_t)len, node);
		if (rc == -ENOENT) {
			rc = fail_name(fs, rc, "no such file: ", path, comp[i].start + comp[i].len,
				       fs->skipped_sets ? " (corrupt entry sets were skipped)" : "");
			break;
		}
		if (rc < 0)
			break;
		if (i + 1 < n) {
			if (!node->is_dir) {
				rc = fail_name(fs, -ENOENT, "", path, comp[i].start + comp[i].len,
					       " is not a directory");
				break;
			}
			rc = fs_dir_open(fs, node, &dir);
		} else if (node->is_dir) {
			rc = fail_name(fs, -ENOENT, "", path, plen, " is a directory, not a file");
		}
	}
	vhd_free(comp);
	return rc;
}

/* ---- the API ---- */

int vb_file_map_open(const struct vb_disk *disk, const char *path, struct vb_file_map *map,
		     char *err, size_t errlen)
{
	struct fs fs;
	struct fs_node node;
	struct extent_list list = { NULL, 0, 0 };
	uint8_t boot[512];
	int rc;

	if (!map)
		return -EINVAL;
	memset(map, 0, sizeof(*map));
	memset(&fs, 0, sizeof(fs));
	memset(&node, 0, sizeof(node));
	fs.disk = disk;
	fs.err = err;
	fs.errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	if (!disk || !disk->read || !path)
		return fs_fail(&fs, -EINVAL, "no partition or no path", FS_NO_NUMBER, "");
	if (disk->size < 512)
		return fs_fail(&fs, -EINVAL, "partition of ", disk->size,
			       " bytes is too small for a FAT or exFAT file system");
	fs.cache = vhd_malloc((size_t)FS_CACHE_SLOTS * FS_CACHE_BLOCK);
	if (!fs.cache)
		return fs_fail(&fs, -ENOMEM, "out of memory", FS_NO_NUMBER, "");

	rc = fs_read(&fs, 0, boot, sizeof(boot));
	if (rc == 0) {
		rc = exfat_probe(&fs, boot);
		if (rc == -EINVAL && !fs.failed)
			rc = fat_probe(&fs, boot);
	}
	if (rc == 0)
		rc = walk(&fs, path, &node);
	if (rc == 0)
		rc = map_node(&fs, &node, &list);
	vhd_free(fs.cache);
	if (rc < 0) {
		vhd_free(list.v);
		return rc;
	}
	map->fs = fs.type;
	map->size = node.size;
	map->valid_length = node.valid_length;
	map->cluster_size = fs.cluster_size;
	map->count = list.n;
	map->extents = list.v;
	return 0;
}

const struct vb_extent *vb_file_map_find(const struct vb_file_map *map, uint64_t off)
{
	size_t lo = 0, hi = map->count;
	if (off >= map->size)
		return NULL;
	/* The last extent starting at or before off. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (map->extents[mid].file_offset <= off)
			lo = mid;
		else
			hi = mid;
	}
	if (lo >= map->count)
		return NULL;
	const struct vb_extent *e = &map->extents[lo];
	if (off < e->file_offset || off - e->file_offset >= e->length)
		return NULL;
	return e;
}

void vb_file_map_free(struct vb_file_map *map)
{
	if (!map)
		return;
	vhd_free(map->extents);
	map->extents = NULL;
	map->count = 0;
}
