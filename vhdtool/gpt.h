/* SPDX-License-Identifier: MIT */
/*
 * The GUID partition table (UEFI 2.10, chapter 5) as vhdboot.efi's firmware
 * reads it: the protective MBR, a header, its partition array.  Pure
 * parsers over bytes (512-byte sectors, the VHD's sector size); every field
 * read from the disk is checked before it is used.
 */
#ifndef VHDTOOL_GPT_H
#define VHDTOOL_GPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPT_SECTOR       512u
#define GPT_HEADER_MIN   92u
/* A larger array is refused: 128 entries of 128 bytes are the norm. */
#define GPT_ARRAY_MAX    (4u << 20)
#define GPT_NAME_UNITS   36

struct gpt_header {
	uint32_t revision;
	uint32_t header_size;
	uint64_t my_lba;
	uint64_t alternate_lba;
	uint64_t first_usable_lba;
	uint64_t last_usable_lba;
	uint8_t disk_guid[16];
	uint64_t entries_lba;
	uint32_t entry_count;
	uint32_t entry_size;
	uint32_t entries_crc;
};

struct gpt_part {
	unsigned number;            /* 1-based slot in the array */
	uint8_t type[16];           /* on-disk byte order */
	uint8_t guid[16];
	uint64_t first_lba;
	uint64_t last_lba;          /* inclusive */
	uint64_t attributes;
	char name[GPT_NAME_UNITS * 3 + 1];   /* UTF-8 */
};

extern const uint8_t gpt_type_esp[16];

/* Does the MBR in sector 0 hold a protective (0xEE) partition starting at
 * LBA 1?  EDK2's partition driver reads no GPT without one. */
bool gpt_protective_mbr(const uint8_t mbr[GPT_SECTOR]);

/* Parse and validate the header read at lba of a disk of disk_sectors:
 * signature, size, CRC32, MyLBA, usable range and array inside the disk.
 * 0, or -EINVAL with why holding one line. */
int gpt_header_parse(const uint8_t sector[GPT_SECTOR], uint64_t lba, uint64_t disk_sectors,
		     struct gpt_header *h, char *why, size_t whylen);

/* The array's size in bytes (validated by gpt_header_parse: <= GPT_ARRAY_MAX). */
size_t gpt_array_bytes(const struct gpt_header *h);

/* 0 when the array's CRC32 matches the header, else -EINVAL and why. */
int gpt_array_check(const struct gpt_header *h, const uint8_t *array, char *why, size_t whylen);

/* Entry index of the array: 1 and *p when used, 0 when empty. */
int gpt_entry(const struct gpt_header *h, const uint8_t *array, uint32_t index, struct gpt_part *p);

bool gpt_guid_equal(const uint8_t a[16], const uint8_t b[16]);
/* "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" (mixed-endian, as GPT stores it). */
void gpt_guid_text(const uint8_t guid[16], char out[37]);
/* "EFI System", "Linux filesystem", ... or NULL. */
const char *gpt_type_name(const uint8_t type[16]);

#endif
