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

/* gpt.c: the primary GPT of a disk read through a callback. */
struct ho_gpt_part {
	uint32_t number; /* Linux's partition number: entry index + 1 */
	uint64_t first_lba, last_lba;
	uint8_t type[16], unique[16];
	uint64_t attributes;
	char name[36 * 3 + 1]; /* UTF-8 */
};

struct ho_gpt {
	uint32_t lba_size;
	uint64_t disk_lbas;
	uint64_t first_usable, last_usable, entries_lba;
	uint32_t n_entries, entry_size;
	uint8_t disk_guid[16];
	struct ho_gpt_part *parts; /* used entries only, in entry order */
	size_t n_parts;
};

/* Read `len` bytes at byte `offset`; 0 or a negative errno. */
typedef int (*ho_read_fn)(void *ctx, uint64_t offset, void *buf, size_t len);

#define HO_GPT_MAX_ENTRIES_BYTES (1u << 20)
/* -ENOENT: no GPT signature; -EINVAL: a GPT that fails a check. */
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
