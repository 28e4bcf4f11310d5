/* SPDX-License-Identifier: MIT */
/*
 * exFAT for fsmap: the main boot sector and the File / Stream Extension /
 * File Name directory entry sets, as Microsoft's "exFAT file system
 * specification" defines them.  The allocation bitmap and the up-case table
 * are not needed to find a file's clusters; names fold ASCII letters only.
 * Entry sets whose checksum or layout is wrong are skipped and counted, so
 * a lookup that then fails can say why.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fsmap_internal.h"

#define ENTRY_END          0x00
#define ENTRY_FILE         0x85
#define ENTRY_STREAM       0xC0
#define ENTRY_NAME         0xC1
#define ENTRY_SECONDARY    0xC0     /* InUse and TypeCategory bits */
#define SET_MAX            19       /* a File entry and up to 18 secondaries */
#define NAME_UNITS         15       /* per File Name entry */
#define ATTR_DIRECTORY     0x10
#define FLAG_ALLOC_POSSIBLE 0x01
#define FLAG_NO_FAT_CHAIN  0x02

int exfat_probe(struct fs *fs, const uint8_t boot[512])
{
	if (memcmp(boot + 3, "EXFAT   ", 8) != 0)
		return -EINVAL;            /* not exFAT; no message: FAT is tried next */
	fs->type = VB_FS_EXFAT;
	if (boot[510] != 0x55 || boot[511] != 0xAA)
		return fs_fail(fs, -EINVAL, "no boot signature", FS_NO_NUMBER, "");
	for (int i = 11; i < 64; i++)
		if (boot[i])
			return fs_fail(fs, -EINVAL, "boot sector byte ", (uint64_t)i,
				       " must be zero (a FAT BPB on an exFAT volume?)");

	uint64_t volume_length = fs_le64(boot + 72);
	uint32_t fat_offset = fs_le32(boot + 80);
	uint32_t fat_length = fs_le32(boot + 84);
	uint32_t heap_offset = fs_le32(boot + 88);
	uint32_t clusters = fs_le32(boot + 92);
	uint32_t root = fs_le32(boot + 96);
	uint32_t flags = fs_le16(boot + 106);
	uint32_t bps_shift = boot[108];
	uint32_t spc_shift = boot[109];
	uint32_t nfats = boot[110];

	if (bps_shift < 9 || bps_shift > 12)
		return fs_fail(fs, -EINVAL, "BytesPerSectorShift ", bps_shift, " is outside 9..12");
	if (spc_shift > 25 - bps_shift)
		return fs_fail(fs, -EINVAL, "clusters of 2^", bps_shift + spc_shift,
			       " bytes exceed 32 MiB");
	if (nfats != 1 && nfats != 2)
		return fs_fail(fs, -EINVAL, "NumberOfFats ", nfats, " is not 1 or 2");
	if (volume_length > fs->disk->size >> bps_shift)
		return fs_fail(fs, -EIO, "volume of ", volume_length,
			       " sectors is larger than the partition");
	if (fat_offset < 24)
		return fs_fail(fs, -EIO, "FAT at sector ", fat_offset, " overlaps the boot region");
	if ((uint64_t)fat_offset + (uint64_t)fat_length * nfats > heap_offset)
		return fs_fail(fs, -EIO, "FAT overlaps the cluster heap at sector ", heap_offset, "");
	if (clusters == 0 || clusters > 0xFFFFFFF5)
		return fs_fail(fs, -EIO, "cluster count ", clusters, " is out of range");
	if (heap_offset + ((uint64_t)clusters << spc_shift) > volume_length)
		return fs_fail(fs, -EIO, "cluster heap of ", clusters, " clusters runs past the volume");
	if (((uint64_t)clusters + 2) * 4 > (uint64_t)fat_length << bps_shift)
		return fs_fail(fs, -EIO, "FAT is too small for ", clusters, " clusters");
	/* VolumeFlags bit 0: the second FAT is the one in use. */
	uint32_t active = flags & 1;
	if (active >= nfats)
		return fs_fail(fs, -EIO, "the active FAT is the second, but there is only one",
			       FS_NO_NUMBER, "");

	fs->cluster_size = 1u << (bps_shift + spc_shift);
	fs->cluster_count = clusters;
	fs->fat_offset = ((uint64_t)fat_offset + (uint64_t)active * fat_length) << bps_shift;
	fs->data_offset = (uint64_t)heap_offset << bps_shift;
	fs->root_cluster = root;
	return 0;
}

static uint16_t set_checksum(const uint8_t *set, size_t len)
{
	uint16_t sum = 0;
	for (size_t i = 0; i < len; i++) {
		if (i == 2 || i == 3)      /* the SetChecksum field itself */
			continue;
		sum = (uint16_t)(((sum & 1) ? 0x8000 : 0) + (sum >> 1) + set[i]);
	}
	return sum;
}

/* Is set (File entry first, count secondaries after it) well formed? */
static bool set_valid(const uint8_t *set, uint32_t secondaries)
{
	if (set_checksum(set, (size_t)(secondaries + 1) * 32) != fs_le16(set + 2))
		return false;
	const uint8_t *stream = set + 32;
	if (stream[0] != ENTRY_STREAM)
		return false;
	uint32_t name_len = stream[3];
	uint32_t name_entries = (name_len + NAME_UNITS - 1) / NAME_UNITS;
	if (name_len == 0 || name_entries > secondaries - 1)
		return false;
	for (uint32_t i = 0; i < name_entries; i++)
		if (set[(2 + i) * 32] != ENTRY_NAME)
			return false;
	return true;
}

static bool set_name_equal(const uint8_t *set, const uint16_t *name, size_t len)
{
	uint16_t units[FS_NAME_MAX];
	size_t n = set[32 + 3];
	if (n != len)
		return false;
	for (size_t i = 0; i < n; i++)
		units[i] = fs_le16(set + (2 + i / NAME_UNITS) * 32 + 2 + (i % NAME_UNITS) * 2);
	return fs_name_equal(units, n, name, len);
}

/* The set's name into node (set_valid checked its File Name entries). */
static void set_name(const uint8_t *set, struct fs_node *node)
{
	node->name_len = set[32 + 3];
	for (size_t i = 0; i < node->name_len; i++)
		node->name[i] = fs_le16(set + (2 + i / NAME_UNITS) * 32 + 2 + (i % NAME_UNITS) * 2);
}

static int set_node(struct fs *fs, const uint8_t *set, struct fs_node *node)
{
	const uint8_t *stream = set + 32;
	uint8_t flags = stream[1];

	memset(node, 0, sizeof(*node));
	node->is_dir = (fs_le16(set + 4) & ATTR_DIRECTORY) != 0;
	node->contiguous = (flags & FLAG_NO_FAT_CHAIN) != 0;
	node->valid_length = fs_le64(stream + 8);
	node->first_cluster = fs_le32(stream + 20);
	node->size = fs_le64(stream + 24);
	if (!(flags & FLAG_ALLOC_POSSIBLE) && node->size)
		return fs_fail(fs, -EIO, "entry without allocation has DataLength ", node->size, "");
	if (node->valid_length > node->size)
		return fs_fail(fs, -EIO, "ValidDataLength ", node->valid_length,
			       " is beyond DataLength");
	if (node->is_dir)
		node->valid_length = node->size;
	return 0;
}

int exfat_find(struct fs_dir *dir, const uint16_t *name, size_t len, struct fs_node *node)
{
	struct fs *fs = dir->fs;
	uint8_t set[SET_MAX * 32];
	uint8_t e[32];
	bool pending = false;      /* e holds an entry that cut a set short */
	int rc = 0;

	for (;;) {
		if (!pending) {
			rc = fs_dir_next(dir, e);
			if (rc <= 0)
				break;
		}
		pending = false;
		if (e[0] == ENTRY_END)
			break;
		if (e[0] != ENTRY_FILE)
			continue;          /* bitmap, up-case, label, deleted, stray secondaries */
		uint32_t secondaries = e[1];
		if (secondaries < 2 || secondaries > SET_MAX - 1) {
			fs->skipped_sets++;
			continue;
		}
		memcpy(set, e, 32);
		bool whole = true;
		for (uint32_t k = 1; k <= secondaries; k++) {
			rc = fs_dir_next(dir, e);
			if (rc < 0)
				return rc;
			if (rc == 0 || (e[0] & ENTRY_SECONDARY) != ENTRY_SECONDARY) {
				pending = rc == 1;
				whole = false;
				break;
			}
			memcpy(set + k * 32, e, 32);
		}
		if (!whole || !set_valid(set, secondaries)) {
			fs->skipped_sets++;
			if (!whole && !pending)
				break;     /* the directory ended inside the set */
			continue;
		}
		if (name && !set_name_equal(set, name, len))
			continue;
		rc = set_node(fs, set, node);
		if (rc == 0)
			set_name(set, node);
		return rc;
	}
	return rc < 0 ? rc : -ENOENT;
}
