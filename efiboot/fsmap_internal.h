/* SPDX-License-Identifier: MIT */
/*
 * What fsmap.c (the shared machinery: cached reads, cluster chains,
 * directory streams, extent lists, messages) offers to the two file system
 * readers, fat.c and exfat.c, and what they offer back.
 */
#ifndef VHDBOOT_FSMAP_INTERNAL_H
#define VHDBOOT_FSMAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsmap.h"

/* Longest name either file system stores, in UTF-16 code units. */
#define FS_NAME_MAX 255

/* The read cache: a few aligned blocks, enough for a FAT walk and a
 * directory scan at once without ever holding a whole FAT. */
#define FS_CACHE_BLOCK 4096u
#define FS_CACHE_SLOTS 8u

struct fs {
	const struct vb_disk *disk;
	char *err;
	size_t errlen;
	bool failed;                /* err already holds the first message */

	enum vb_fs_type type;
	uint32_t cluster_size;      /* bytes */
	uint64_t fat_offset;        /* bytes: the FAT in use */
	uint64_t data_offset;       /* bytes: cluster 2 */
	uint32_t cluster_count;     /* valid data clusters are 2 .. cluster_count + 1 */
	uint32_t root_cluster;      /* FAT32, exFAT */
	uint64_t root_offset;       /* FAT12/16: the fixed root directory */
	uint32_t root_bytes;
	uint32_t skipped_sets;      /* exFAT entry sets found corrupt and skipped */

	uint8_t *cache;             /* FS_CACHE_SLOTS * FS_CACHE_BLOCK */
	uint64_t cache_block[FS_CACHE_SLOTS];
	uint32_t cache_len[FS_CACHE_SLOTS];   /* 0: slot empty */
};

/* Where a file or directory's bytes are, as its directory entry says. */
struct fs_node {
	bool is_dir;
	bool contiguous;            /* exFAT NoFatChain: no FAT chain to follow */
	uint32_t first_cluster;     /* 0: no clusters */
	uint64_t size;              /* FAT directories: 0 (unknown, chain decides) */
	uint64_t valid_length;
	/* The entry's name as stored (FAT: the long name, else the 8.3 one). */
	uint16_t name[FS_NAME_MAX];
	size_t name_len;
};

/* A stream of 32-byte directory entries. */
struct fs_dir {
	struct fs *fs;
	bool fixed;                 /* FAT12/16 root: a plain byte range */
	bool contiguous;
	bool sized;                 /* exFAT: limit is the directory's exact size */
	uint64_t offset;            /* fixed: start in bytes */
	uint32_t cluster;           /* chained: current cluster */
	uint32_t steps;             /* clusters visited (cycle bound) */
	uint64_t pos;               /* bytes consumed */
	uint64_t limit;             /* bytes the directory may hold */
};

/* ---- fsmap.c ---- */

/* Record the first failure message (later ones would only echo it) and
 * return rc.  A number is printed between pre and post unless it is
 * FS_NO_NUMBER. */
#define FS_NO_NUMBER UINT64_MAX
int fs_fail(struct fs *fs, int rc, const char *pre, uint64_t number, const char *post);

/* Read len bytes at partition offset off through the cache. */
int fs_read(struct fs *fs, uint64_t off, void *buf, size_t len);

/* The FAT entry after cluster: 0 and *next, 1 at the end of the chain,
 * or -EIO for a free, bad or out-of-range entry. */
int fs_next_cluster(struct fs *fs, uint32_t cluster, uint32_t *next);

bool fs_cluster_valid(const struct fs *fs, uint32_t cluster);
uint64_t fs_cluster_offset(const struct fs *fs, uint32_t cluster);

/* Open a directory stream: the root, or the directory node describes. */
int fs_dir_open_root(struct fs *fs, struct fs_dir *dir);
int fs_dir_open(struct fs *fs, const struct fs_node *node, struct fs_dir *dir);
/* The next entry: 1 with entry filled, 0 at the end, or -errno. */
int fs_dir_next(struct fs_dir *dir, uint8_t entry[32]);

/* The next component of path[0..plen) from *pos ('/' and '\\' separate,
 * "." components are skipped): its length, with *start and *pos moved past
 * it; 0 at the end. */
size_t fs_path_next(const char *path, size_t plen, size_t *pos, size_t *start);

/* UTF-8 to UTF-16: the length in code units, -EINVAL for malformed
 * UTF-8, -ENAMETOOLONG past FS_NAME_MAX units. */
int fs_utf8_to_utf16(const char *s, size_t len, uint16_t out[FS_NAME_MAX]);

/* Equal names, ASCII letters folded. */
bool fs_name_equal(const uint16_t *a, size_t alen, const uint16_t *b, size_t blen);

static inline uint16_t fs_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t fs_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t fs_le64(const uint8_t *p)
{
	return (uint64_t)fs_le32(p) | ((uint64_t)fs_le32(p + 4) << 32);
}

/* ---- fat.c and exfat.c ----
 * probe: boot is the partition's first 512 bytes; -EINVAL when it is not
 * this file system, -EIO when it is but its geometry is impossible, else
 * fill the geometry in fs.
 * find: look name up in dir; 0 and *node, -ENOENT, or -errno.  A NULL
 * name takes the next entry whatever its name: calling again continues
 * after it (directory listings, fsdir.c). */
int fat_probe(struct fs *fs, const uint8_t boot[512]);
int fat_find(struct fs_dir *dir, const uint16_t *name, size_t len, struct fs_node *node);
int exfat_probe(struct fs *fs, const uint8_t boot[512]);
int exfat_find(struct fs_dir *dir, const uint16_t *name, size_t len, struct fs_node *node);

#endif
