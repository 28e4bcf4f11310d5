/* SPDX-License-Identifier: MIT */
/*
 * vhd-handoff: the initramfs side of vhdboot's OS handoff (docs/handoff.md).
 *
 * The pure parts (crc32.c, params.c, extents.c, gpt.c, dmtable.c) make no
 * system calls: the unit tests and the fuzzer drive them over memory.  The
 * rest (sysblock.c, filemap.c, dm.c, shutdown.c, vhd-handoff.c) talks to the
 * kernel.  Functions return 0 or a negative errno; those that can fail for
 * a reason worth telling write one line into `err` (no "vhd-handoff: "
 * prefix, no newline).
 */
#ifndef VHD_HANDOFF_H
#define VHD_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HO_SECTOR 512u
/* Longest vhd.path= value, and the most extents or dm segments we accept:
 * a 2 TiB file in 4 KiB fragments would need more, but the loader gives up
 * long before (its own list lives in one EFI variable). */
#define HO_PATH_MAX 1024u
#define HO_MAX_EXTENTS 65536u
#define HO_ERR_MAX 256u

enum ho_handoff { HO_HANDOFF_NONE, HO_HANDOFF_LINEAR, HO_HANDOFF_RAMDISK, HO_HANDOFF_NBD };

/* One run of 512-byte sectors: `start` is a file sector (vhd.fext) or a
 * virtual disk sector (vhd.dm); `host` is a sector of the host partition. */
struct ho_extent {
	uint64_t start;
	uint64_t sectors;
	uint64_t host;
};

struct ho_extent_list {
	struct ho_extent *v;
	size_t n;
};

/* The vhd.* parameters of one kernel command line. */
struct ho_params {
	enum ho_handoff handoff;
	bool has_host, has_path, has_size, has_fext, has_dm;
	uint8_t host_guid[16]; /* on-disk (mixed-endian) byte order */
	char path[HO_PATH_MAX + 1];
	uint64_t size;
	bool fext_efivar, dm_efivar; /* "efivar": the list is in VhdbootHandoff */
	struct ho_extent_list fext, dm;
};

/* crc32.c: CRC-32 (IEEE 802.3, reflected, as GPT uses). */
uint32_t ho_crc32(uint32_t crc, const void *buf, size_t len);

/* params.c */
const char *ho_handoff_name(enum ho_handoff h);
int ho_guid_parse(const char *s, size_t len, uint8_t out[16]);
void ho_guid_format(const uint8_t g[16], char out[37]);
int ho_extents_parse(const char *s, size_t len, struct ho_extent_list *out, char *err,
		     size_t errlen);
void ho_extents_free(struct ho_extent_list *l);
/* Parse the vhd.* words of a kernel command line; other words are ignored,
 * a repeated or malformed vhd.* word is an error.  Free with
 * ho_params_free (also after a failure). */
int ho_params_parse(struct ho_params *p, const char *text, size_t len, char *err, size_t errlen);
/* Fill the lists marked "efivar" from the VhdbootHandoff text (the variable
 * without its 4 attribute bytes). */
int ho_params_merge_efivar(struct ho_params *p, const uint8_t *data, size_t len, char *err,
			   size_t errlen);
void ho_params_free(struct ho_params *p);
/* The path as the loader's configuration spells it: "\dir\disk.vhd". */
void ho_path_display(const char *path, char *out, size_t outlen);

/* extents.c */
uint64_t ho_size_sectors(uint64_t bytes);
/* vhd.fext: sorted, contiguous from file sector 0, covering the file's
 * size (only the last extent may run past it), each inside the partition,
 * no two sharing a host sector. */
int ho_fext_validate(const struct ho_extent_list *fext, uint64_t file_size,
		     uint64_t part_sectors, char *err, size_t errlen);
/* vhd.dm: contiguous from virtual sector 0, at most the file's sectors,
 * each host run inside the file's extents, no two sharing a host sector.
 * `virtual_sectors` gets the mapped disk's size. */
int ho_dm_validate(const struct ho_extent_list *dm, const struct ho_extent_list *fext,
		   uint64_t file_size, uint64_t *virtual_sectors, char *err, size_t errlen);
/* Sort by start and join runs contiguous in both start and host. */
void ho_extents_normalize(struct ho_extent_list *l);
/* Do the file's extents now (`have`, from FIEMAP/FIBMAP) equal the loader's
 * (`want`) over the file's `file_size` bytes?  0, or -ESTALE with the first
 * difference in `why`.  Both lists are normalized in place. */
int ho_fext_compare(struct ho_extent_list *want, struct ho_extent_list *have, uint64_t file_size,
		    char *why, size_t whylen);

/* gpt.c: the GUID partition table (UEFI 2.10, chapter 5) from bytes.
 * vhd-handoff reads the primary GPT of each disk with ho_gpt_read; vhdtool
 * boot-check uses the pieces, as firmware does (protective MBR, the backup
 * header when the primary is broken, notes instead of refusals). */
#define HO_GPT_HEADER_MIN 92u
#define HO_GPT_NAME_UNITS 36
/* A larger entry array is refused: 128 entries of 128 bytes are the norm. */
#define HO_GPT_MAX_ENTRIES_BYTES (4u << 20)

struct ho_gpt_header {
	uint32_t revision, header_size;
	uint64_t my_lba, alternate_lba;
	uint64_t first_usable, last_usable; /* inclusive */
	uint8_t disk_guid[16];
	uint64_t entries_lba;
	uint32_t n_entries, entry_size, entries_crc;
};

struct ho_gpt_part {
	uint32_t number; /* Linux's partition number: entry index + 1 */
	uint64_t first_lba, last_lba;
	uint8_t type[16], unique[16]; /* on-disk (mixed-endian) byte order */
	uint64_t attributes;
	char name[HO_GPT_NAME_UNITS * 3 + 1]; /* UTF-8; '?' for a lone surrogate or a control */
};

struct ho_gpt {
	uint32_t lba_size;
	uint64_t disk_lbas;
	struct ho_gpt_header hdr;
	struct ho_gpt_part *parts; /* used entries only, in entry order */
	size_t n_parts;
};

/* The EFI System Partition's type GUID, in on-disk order. */
extern const uint8_t ho_gpt_type_esp[16];

/* Does the MBR (512 bytes of LBA 0) hold a protective (0xEE) partition
 * starting at LBA 1?  EDK2's partition driver reads no GPT without one. */
bool ho_gpt_protective_mbr(const uint8_t *mbr);
/* Parse and check the header read at `lba` (lba_size bytes at `sector`) of
 * a disk of `disk_lbas`: signature, size, CRC-32, MyLBA, the usable range
 * inside the disk, the entry size, and the array inside the disk, clear of
 * the usable range and of the header.  Not the revision (EDK2 and Linux do
 * not check it).  -ENOENT: no signature; -EINVAL: a check failed. */
int ho_gpt_header_parse(const uint8_t *sector, uint32_t lba_size, uint64_t lba, uint64_t disk_lbas,
			struct ho_gpt_header *h, char *err, size_t errlen);
/* The entry array's size in bytes (at most HO_GPT_MAX_ENTRIES_BYTES once
 * the header is parsed). */
size_t ho_gpt_array_bytes(const struct ho_gpt_header *h);
/* 0 when the array's CRC-32 matches the header's, else -EINVAL. */
int ho_gpt_array_check(const struct ho_gpt_header *h, const uint8_t *array, char *err,
		       size_t errlen);
/* The used entries of an array, in entry order, not checked against the
 * header's usable range: *parts is malloc'd (free it).  0 or -ENOMEM. */
int ho_gpt_used_entries(const struct ho_gpt_header *h, const uint8_t *array,
			struct ho_gpt_part **parts, size_t *n);
/* "EFI System", "Linux filesystem", ... or NULL. */
const char *ho_gpt_type_name(const uint8_t type[16]);

/* Read `len` bytes at byte `offset`; 0 or a negative errno. */
typedef int (*ho_read_fn)(void *ctx, uint64_t offset, void *buf, size_t len);

/* The primary GPT, strictly: revision 1.x, every partition inside the
 * usable LBAs, no two overlapping or sharing a unique GUID.  Messages start
 * with "GPT: ".  -ENOENT: no GPT signature (or a disk too small for one);
 * -EINVAL: a GPT that fails a check; a read's error. */
int ho_gpt_read(ho_read_fn read, void *ctx, uint32_t lba_size, uint64_t disk_bytes,
		struct ho_gpt *out, char *err, size_t errlen);
void ho_gpt_free(struct ho_gpt *g);
const struct ho_gpt_part *ho_gpt_find_unique(const struct ho_gpt *g, const uint8_t guid[16]);

/* dmtable.c: device-mapper ioctl buffers (linux/dm-ioctl.h), built in memory. */
struct ho_dm_target {
	uint64_t start, sectors; /* in the new device */
	uint32_t major, minor;   /* the device underneath */
	uint64_t offset;         /* sector on the device underneath */
};

int ho_dm_name_valid(const char *name);
/* The DM_TABLE_LOAD buffer for `n` linear targets: malloc'd, size in *len. */
int ho_dm_table_build(const char *name, const struct ho_dm_target *t, size_t n, void **buf,
		      size_t *len);

#endif
