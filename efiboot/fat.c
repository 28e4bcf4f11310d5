/* SPDX-License-Identifier: MIT */
/*
 * FAT12/16/32 for fsmap: the BIOS parameter block and directory entries,
 * long (LFN) and 8.3 names, as Microsoft's FAT specification ("FAT: General
 * Overview of On-Disk Format", 1.03) defines them.  The type follows from
 * the cluster count alone, never from the "FAT32   " label.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fsmap_internal.h"

/* Directory entry fields. */
#define DIR_ATTR        11
#define DIR_NT_CASE     12
#define DIR_LFN_CHKSUM  13
#define DIR_CLUS_HI     20
#define DIR_CLUS_LO     26
#define DIR_SIZE        28
#define ATTR_VOLUME_ID  0x08
#define ATTR_DIRECTORY  0x10
#define ATTR_LONG_NAME  0x0F
#define ATTR_LONG_MASK  0x3F
#define LFN_LAST        0x40
#define LFN_CHARS       13
#define LFN_MAX_ENTRIES 20          /* 20 * 13 >= 255 */
#define ENTRY_FREE      0xE5
#define CASE_LOWER_BASE 0x08
#define CASE_LOWER_EXT  0x10
#define ENTRY_END       0x00

static bool power_of_two(uint32_t v)
{
	return v && !(v & (v - 1));
}

int fat_probe(struct fs *fs, const uint8_t boot[512])
{
	if (boot[510] != 0x55 || boot[511] != 0xAA)
		return fs_fail(fs, -EINVAL, "not a FAT or exFAT file system (no boot signature)",
			       FS_NO_NUMBER, "");
	if (boot[0] != 0xEB && boot[0] != 0xE9)
		return fs_fail(fs, -EINVAL, "not a FAT file system (no jump instruction at byte 0)",
			       FS_NO_NUMBER, "");

	uint32_t bps = fs_le16(boot + 11);
	uint32_t spc = boot[13];
	uint32_t reserved = fs_le16(boot + 14);
	uint32_t nfats = boot[16];
	uint32_t root_entries = fs_le16(boot + 17);
	uint32_t total16 = fs_le16(boot + 19);
	uint32_t fatsz16 = fs_le16(boot + 22);
	uint32_t total32 = fs_le32(boot + 32);
	uint32_t fatsz32 = fs_le32(boot + 36);
	uint32_t ext_flags = fs_le16(boot + 40);
	uint32_t root_cluster = fs_le32(boot + 44);

	if (bps < 512 || bps > 4096 || !power_of_two(bps))
		return fs_fail(fs, -EINVAL, "not a FAT file system: bytes per sector ", bps, "");
	if (!power_of_two(spc))
		return fs_fail(fs, -EINVAL, "not a FAT file system: sectors per cluster ", spc, "");
	if (reserved == 0)
		return fs_fail(fs, -EINVAL, "not a FAT file system: no reserved sectors", FS_NO_NUMBER, "");
	if (nfats == 0)
		return fs_fail(fs, -EINVAL, "not a FAT file system: no FAT", FS_NO_NUMBER, "");
	uint64_t total = total16 ? total16 : total32;
	uint64_t fatsz = fatsz16 ? fatsz16 : fatsz32;
	if (total == 0 || fatsz == 0)
		return fs_fail(fs, -EINVAL, "not a FAT file system: zero sectors or zero FAT size",
			       FS_NO_NUMBER, "");

	uint64_t root_sectors = ((uint64_t)root_entries * 32 + bps - 1) / bps;
	uint64_t meta = reserved + nfats * fatsz + root_sectors;
	if (meta >= total)
		return fs_fail(fs, -EIO, "FAT file system has no data region: ", meta,
			       " sectors of metadata fill it");
	uint64_t clusters = (total - meta) / spc;
	if (clusters == 0)
		return fs_fail(fs, -EIO, "FAT file system has no data cluster", FS_NO_NUMBER, "");
	if (clusters < 4085)
		fs->type = VB_FS_FAT12;
	else if (clusters < 65525)
		fs->type = VB_FS_FAT16;
	else
		fs->type = VB_FS_FAT32;

	uint64_t fat_need;   /* bytes for entries 0 .. clusters + 1 */
	if (fs->type == VB_FS_FAT12) {
		fat_need = ((clusters + 2) * 3 + 1) / 2;
	} else if (fs->type == VB_FS_FAT16) {
		fat_need = (clusters + 2) * 2;
	} else {
		if (clusters > 0x0FFFFFF5)
			return fs_fail(fs, -EIO, "too many clusters: ", clusters, "");
		fat_need = (clusters + 2) * 4;
	}
	if (fat_need > fatsz * bps)
		return fs_fail(fs, -EIO, "FAT of ", fatsz * bps, " bytes is too small for the clusters");
	if (total * bps > fs->disk->size)
		return fs_fail(fs, -EIO, "file system of ", total * bps, " bytes is larger than the partition");

	uint32_t active = 0;
	if (fs->type == VB_FS_FAT32) {
		if (root_entries != 0 || fatsz16 != 0)
			return fs_fail(fs, -EIO, "FAT32 boot sector has FAT12/16 root or FAT size fields",
				       FS_NO_NUMBER, "");
		/* Bit 7: mirroring off, bits 0-3 name the one FAT in use. */
		if (ext_flags & 0x80)
			active = ext_flags & 0x0F;
		if (active >= nfats)
			return fs_fail(fs, -EIO, "active FAT ", active, " does not exist");
		fs->root_cluster = root_cluster;
	} else if (root_entries == 0) {
		return fs_fail(fs, -EIO, "no root directory entries", FS_NO_NUMBER, "");
	}
	fs->cluster_size = bps * spc;
	fs->cluster_count = (uint32_t)clusters;
	fs->fat_offset = (reserved + active * fatsz) * bps;
	fs->root_offset = (reserved + nfats * fatsz) * bps;
	fs->root_bytes = root_entries * 32;
	fs->data_offset = meta * bps;
	return 0;
}

/* The 8.3 name as "BASE.EXT" in UTF-16.  Bytes past ASCII belong to an
 * unknown OEM code page: they map to private-use units that match
 * nothing (the long name, always written for such names, still does).
 * Byte 12's case bits (Windows NT, Linux, EDK2 all honour them) mark an
 * all-lowercase base or extension stored without a long name. */
static uint16_t case_unit(uint8_t c, bool lower)
{
	if (c >= 0x80)
		return (uint16_t)(0xF000 | c);
	return (lower && c >= 'A' && c <= 'Z') ? (uint16_t)(c - 'A' + 'a') : c;
}

static size_t short_name(const uint8_t e[32], uint16_t out[12])
{
	size_t n = 0, base = 8, ext = 3;
	bool lower_base = (e[DIR_NT_CASE] & CASE_LOWER_BASE) != 0;
	bool lower_ext = (e[DIR_NT_CASE] & CASE_LOWER_EXT) != 0;
	while (base && e[base - 1] == ' ')
		base--;
	while (ext && e[8 + ext - 1] == ' ')
		ext--;
	for (size_t i = 0; i < base; i++) {
		uint8_t c = (i == 0 && e[0] == 0x05) ? 0xE5 : e[i];   /* 0x05 stands for 0xE5 */
		out[n++] = case_unit(c, lower_base);
	}
	if (ext) {
		out[n++] = '.';
		for (size_t i = 0; i < ext; i++) {
			out[n++] = case_unit(e[8 + i], lower_ext);
		}
	}
	return n;
}

static uint8_t short_name_checksum(const uint8_t e[32])
{
	uint8_t sum = 0;
	for (int i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) ? 0x80 : 0) + (sum >> 1) + e[i]);
	return sum;
}

struct lfn {
	uint16_t units[LFN_MAX_ENTRIES * LFN_CHARS];
	int next;                   /* ordinal expected next; 0: complete; -1: none */
	uint32_t entries;
	uint8_t checksum;
};

/* Take one long-name entry.  They come last part first: 0x40|N, N-1 .. 1. */
static void lfn_take(struct lfn *l, const uint8_t e[32])
{
	static const uint8_t at[LFN_CHARS] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	uint32_t ord = e[0];
	if (ord & LFN_LAST) {
		ord &= 0x1F;
		if (ord == 0 || ord > LFN_MAX_ENTRIES) {
			l->next = -1;
			return;
		}
		l->entries = ord;
		l->checksum = e[DIR_LFN_CHKSUM];
	} else if (l->next < 1 || ord != (uint32_t)l->next || e[DIR_LFN_CHKSUM] != l->checksum) {
		l->next = -1;              /* an orphan or out of order: no long name */
		return;
	}
	for (uint32_t i = 0; i < LFN_CHARS; i++)
		l->units[(ord - 1) * LFN_CHARS + i] = fs_le16(e + at[i]);
	l->next = (int)ord - 1;
}

/* The long name's length, or -1 when there is none for short entry e. */
static int lfn_length(const struct lfn *l, const uint8_t e[32])
{
	if (l->next != 0 || l->checksum != short_name_checksum(e))
		return -1;
	size_t n = 0, max = l->entries * LFN_CHARS;
	while (n < max && l->units[n] != 0)
		n++;
	return n == 0 || n > FS_NAME_MAX ? -1 : (int)n;
}

int fat_find(struct fs_dir *dir, const uint16_t *name, size_t len, struct fs_node *node)
{
	struct fs *fs = dir->fs;
	struct lfn lfn;
	uint8_t e[32];
	int rc;

	lfn.next = -1;
	while ((rc = fs_dir_next(dir, e)) == 1) {
		if (e[0] == ENTRY_END)
			break;
		if (e[0] == ENTRY_FREE) {
			lfn.next = -1;
			continue;
		}
		uint8_t attr = e[DIR_ATTR];
		if ((attr & ATTR_LONG_MASK) == ATTR_LONG_NAME) {
			lfn_take(&lfn, e);
			continue;
		}
		int long_len = lfn_length(&lfn, e);
		lfn.next = -1;
		if (attr & ATTR_VOLUME_ID)
			continue;
		uint16_t sname[12];
		size_t slen = short_name(e, sname);
		if (name && !(long_len > 0 && fs_name_equal(lfn.units, (size_t)long_len, name, len)) &&
		    !fs_name_equal(sname, slen, name, len))
			continue;
		memset(node, 0, sizeof(*node));
		node->is_dir = (attr & ATTR_DIRECTORY) != 0;
		node->first_cluster = fs_le16(e + DIR_CLUS_LO);
		/* FAT12/16 keep EA data in the high word: ignore it there. */
		if (fs->type == VB_FS_FAT32)
			node->first_cluster |= (uint32_t)fs_le16(e + DIR_CLUS_HI) << 16;
		node->size = node->is_dir ? 0 : fs_le32(e + DIR_SIZE);
		node->valid_length = node->size;
		node->name_len = long_len > 0 ? (size_t)long_len : slen;
		memcpy(node->name, long_len > 0 ? lfn.units : sname, node->name_len * sizeof(uint16_t));
		return 0;
	}
	return rc < 0 ? rc : -ENOENT;
}
