/* SPDX-License-Identifier: MIT */
/*
 * vhdboot's FAT12/16/32 and exFAT extent map (efiboot/fsmap.c).
 *
 * Input: a whole (small) partition image.  First the partition is exactly
 * the input, held in an exact-size heap copy so AddressSanitizer sees any
 * read past it; then a 40 MiB partition that starts with the input and
 * reads zeros after it (room for FAT16/FAT32 cluster counts).  A few fixed
 * paths are mapped each time (the seeds hold files at them), and one taken
 * from the input's last bytes.
 *
 * Oracles: fsmap reads only inside the partition; results are 0 or the
 * documented errors, and a failure explains itself in one terminated line
 * (also in a tiny buffer); a map has a known type and a cluster size that
 * is a power of two up to 32 MiB, valid_length <= size, extents that are
 * non-empty, in file order, merged (never adjacent on disk), cover exactly
 * [0, size), lie inside the partition and never overlap on disk; and
 * vb_file_map_find agrees with the list at each extent's first and last
 * byte and returns NULL at the size.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "fsmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The second pass: a partition this big whose first bytes are the input
 * and the rest zeros, so FAT16 and FAT32 geometries (4085 and 65525
 * clusters at least) fit, from seeds with their zero tails cut off. */
#define VIRTUAL_SIZE (40u << 20)

struct part {
	const uint8_t *bytes;
	size_t have;                /* input bytes */
	uint64_t size;              /* partition size: have, or VIRTUAL_SIZE */
};

static int part_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct part *p = ctx;
	FZ_CHECK(off <= p->size && len <= p->size - off);
	size_t from_input = off < p->have ? p->have - (size_t)off : 0;
	if (from_input > len)
		from_input = len;
	if (from_input)
		memcpy(buf, p->bytes + off, from_input);
	memset((uint8_t *)buf + from_input, 0, len - from_input);
	return 0;
}

static int by_disk_offset(const void *a, const void *b)
{
	const struct vb_extent *x = a, *y = b;
	return x->disk_offset < y->disk_offset ? -1 : x->disk_offset > y->disk_offset;
}

static void check_map(const struct vb_file_map *m, const struct part *p)
{
	FZ_CHECK(m->fs == VB_FS_FAT12 || m->fs == VB_FS_FAT16 || m->fs == VB_FS_FAT32 ||
	      m->fs == VB_FS_EXFAT);
	FZ_CHECK(strcmp(vb_fs_type_name(m->fs), "unknown") != 0);
	FZ_CHECK(m->cluster_size >= 512 && m->cluster_size <= (32u << 20) &&
	      !(m->cluster_size & (m->cluster_size - 1)));
	FZ_CHECK(m->valid_length <= m->size);
	FZ_CHECK((m->count == 0) == (m->size == 0));
	uint64_t want = 0;
	uint8_t sink = 0;
	for (size_t i = 0; i < m->count; i++) {
		const struct vb_extent *e = &m->extents[i];
		FZ_CHECK(e->length > 0);
		FZ_CHECK(e->file_offset == want);
		FZ_CHECK(e->disk_offset <= p->size && e->length <= p->size - e->disk_offset);
		if (i)
			FZ_CHECK(m->extents[i - 1].disk_offset + m->extents[i - 1].length != e->disk_offset);
		FZ_CHECK(vb_file_map_find(m, e->file_offset) == e);
		FZ_CHECK(vb_file_map_find(m, e->file_offset + e->length - 1) == e);
		/* Touch the bytes a BlockIo read would serve. */
		if (e->disk_offset + e->length <= p->have)
			sink ^= p->bytes[e->disk_offset] ^ p->bytes[e->disk_offset + e->length - 1];
		want += e->length;
	}
	FZ_CHECK(want == m->size);
	FZ_CHECK(vb_file_map_find(m, m->size) == NULL);
	FZ_CHECK(vb_file_map_find(m, UINT64_MAX) == NULL);
	(void)sink;
	if (m->count > 1) {
		struct vb_extent *s = malloc(m->count * sizeof(*s));
		FZ_CHECK(s);
		memcpy(s, m->extents, m->count * sizeof(*s));
		qsort(s, m->count, sizeof(*s), by_disk_offset);
		for (size_t i = 1; i < m->count; i++)
			FZ_CHECK(s[i - 1].disk_offset + s[i - 1].length <= s[i].disk_offset);
		free(s);
	}
}

static const char *const paths[] = {
	"/DISK.VHD",
	"\\Virtual Disks\\Nested Folder\\Debian Bookworm Disk.vhd",
	"virtual disks/./nested folder/../NESTED FOLDER/debian bookworm disk.VHD",
	"/VIRTUA~1/NESTED~1/DEBIAN~1.VHD",
	"/empty.txt",
	"/frag.bin",
};

/* The fixed paths, then one from the input's last bytes (up to a NUL):
 * bytes no file system needs, so mutating them exercises path parsing
 * and UTF-8 decoding without changing the image's meaning. */
#define TAIL_PATH_MAX 48

static void map_paths(struct part *p)
{
	struct vb_disk disk = { part_read, p, p->size };
	char tail[TAIL_PATH_MAX + 1];
	size_t take = p->have < TAIL_PATH_MAX ? p->have : TAIL_PATH_MAX;
	memcpy(tail, p->bytes + p->have - take, take);
	tail[take] = '\0';
	for (size_t i = 0; i <= sizeof(paths) / sizeof(paths[0]); i++) {
		const char *path = i < sizeof(paths) / sizeof(paths[0]) ? paths[i] : tail;
		struct vb_file_map map;
		/* A tiny message buffer for one path: messages must truncate cleanly. */
		char err[200];
		size_t errlen = i == 1 ? 7 : sizeof(err);
		memset(err, 'X', sizeof(err));
		int rc = vb_file_map_open(&disk, path, &map, err, errlen);
		if (rc == 0) {
			check_map(&map, p);
			vb_file_map_free(&map);
			FZ_CHECK(map.extents == NULL && map.count == 0);
		} else {
			FZ_CHECK(rc == -ENOENT || rc == -EINVAL || rc == -EIO || rc == -ENOMEM);
			const char *nul = memchr(err, '\0', errlen);
			FZ_CHECK(nul != NULL);
			size_t len = (size_t)(nul - err);
			FZ_CHECK(len > 0);
			FZ_CHECK(memchr(err, '\n', len) == NULL);
			FZ_CHECK(map.extents == NULL);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > VIRTUAL_SIZE)
		return 0;
	uint8_t *copy = malloc(size ? size : 1);
	FZ_CHECK(copy);
	if (size)
		memcpy(copy, data, size);
	struct part p = { copy, size, size };
	map_paths(&p);
	p.size = VIRTUAL_SIZE;
	map_paths(&p);
	free(copy);
	return 0;
}
