/* SPDX-License-Identifier: MIT */
/* GUID partition table parsing for vhdtool boot-check (see gpt.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "gpt.h"

/* GPT is little-endian throughout (libvhd's endian.h is VHD's big-endian). */
static uint16_t le16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t le64_get(const uint8_t *p)
{
	return (uint64_t)le32_get(p) | ((uint64_t)le32_get(p + 4) << 32);
}

/* Type GUIDs in on-disk order: the first three fields little-endian. */
const uint8_t gpt_type_esp[16] = { 0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
				   0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B };

static const struct {
	const char *guid;
	const char *name;
} known_types[] = {
	{ "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System" },
	{ "21686148-6449-6E6F-744E-656564454649", "BIOS boot" },
	{ "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved" },
	{ "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data" },
	{ "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows recovery" },
	{ "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem" },
	{ "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux root (x86-64)" },
	{ "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap" },
	{ "E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM" },
	{ "BC13C2FF-59E6-4262-A352-B275FD6F7172", "Linux extended boot" },
};

static void say(char *why, size_t len, const char *text)
{
	if (why && len)
		snprintf(why, len, "%s", text);
}

bool gpt_protective_mbr(const uint8_t mbr[GPT_SECTOR])
{
	if (mbr[510] != 0x55 || mbr[511] != 0xAA)
		return false;
	for (int i = 0; i < 4; i++) {
		const uint8_t *rec = mbr + 446 + 16 * i;
		if (rec[4] == 0xEE && le32_get(rec + 8) == 1)
			return true;
	}
	return false;
}

int gpt_header_parse(const uint8_t sector[GPT_SECTOR], uint64_t lba, uint64_t disk_sectors,
		     struct gpt_header *h, char *why, size_t whylen)
{
	uint8_t copy[GPT_SECTOR];

	memset(h, 0, sizeof(*h));
	if (memcmp(sector, "EFI PART", 8) != 0) {
		say(why, whylen, "no 'EFI PART' signature");
		return -EINVAL;
	}
	h->revision = le32_get(sector + 8);
	h->header_size = le32_get(sector + 12);
	if (h->header_size < GPT_HEADER_MIN || h->header_size > GPT_SECTOR) {
		if (why)
			snprintf(why, whylen, "header size %u is outside %u..%u", h->header_size,
				 GPT_HEADER_MIN, GPT_SECTOR);
		return -EINVAL;
	}
	uint32_t crc = le32_get(sector + 16);
	memcpy(copy, sector, h->header_size);
	memset(copy + 16, 0, 4);
	uint32_t want = (uint32_t)crc32(0, copy, h->header_size);
	if (crc != want) {
		if (why)
			snprintf(why, whylen, "header CRC32 is %08x, the header's bytes give %08x", crc, want);
		return -EINVAL;
	}
	h->my_lba = le64_get(sector + 24);
	h->alternate_lba = le64_get(sector + 32);
	h->first_usable_lba = le64_get(sector + 40);
	h->last_usable_lba = le64_get(sector + 48);
	memcpy(h->disk_guid, sector + 56, 16);
	h->entries_lba = le64_get(sector + 72);
	h->entry_count = le32_get(sector + 80);
	h->entry_size = le32_get(sector + 84);
	h->entries_crc = le32_get(sector + 88);

	if (h->my_lba != lba) {
		if (why)
			snprintf(why, whylen, "header read at LBA %llu says it is at LBA %llu",
				 (unsigned long long)lba, (unsigned long long)h->my_lba);
		return -EINVAL;
	}
	if (h->first_usable_lba > h->last_usable_lba || h->last_usable_lba >= disk_sectors) {
		if (why)
			snprintf(why, whylen, "usable LBAs %llu..%llu do not fit a disk of %llu sectors",
				 (unsigned long long)h->first_usable_lba,
				 (unsigned long long)h->last_usable_lba, (unsigned long long)disk_sectors);
		return -EINVAL;
	}
	/* EDK2: at least the 128 bytes it reads, a multiple of them. */
	if (h->entry_size < 128 || h->entry_size % 128) {
		if (why)
			snprintf(why, whylen, "partition entry size %u is not a multiple of 128", h->entry_size);
		return -EINVAL;
	}
	uint64_t bytes = (uint64_t)h->entry_count * h->entry_size;
	if (h->entry_count == 0 || bytes > GPT_ARRAY_MAX) {
		if (why)
			snprintf(why, whylen, "partition array of %u entries (%llu bytes) is empty or too large",
				 h->entry_count, (unsigned long long)bytes);
		return -EINVAL;
	}
	uint64_t array_sectors = (bytes + GPT_SECTOR - 1) / GPT_SECTOR;
	if (h->entries_lba < 2 || h->entries_lba >= disk_sectors ||
	    array_sectors > disk_sectors - h->entries_lba) {
		if (why)
			snprintf(why, whylen, "partition array at LBA %llu (%llu sectors) is not inside the disk",
				 (unsigned long long)h->entries_lba, (unsigned long long)array_sectors);
		return -EINVAL;
	}
	/* The array must not overlap the space partitions may use. */
	if (h->entries_lba <= h->last_usable_lba &&
	    h->entries_lba + array_sectors > h->first_usable_lba) {
		if (why)
			snprintf(why, whylen, "partition array at LBA %llu overlaps the usable LBAs %llu..%llu",
				 (unsigned long long)h->entries_lba, (unsigned long long)h->first_usable_lba,
				 (unsigned long long)h->last_usable_lba);
		return -EINVAL;
	}
	return 0;
}

size_t gpt_array_bytes(const struct gpt_header *h)
{
	return (size_t)h->entry_count * h->entry_size;
}

int gpt_array_check(const struct gpt_header *h, const uint8_t *array, char *why, size_t whylen)
{
	uint32_t got = (uint32_t)crc32(0, array, (uInt)gpt_array_bytes(h));
	if (got == h->entries_crc)
		return 0;
	if (why)
		snprintf(why, whylen, "partition array CRC32 is %08x, the header says %08x", got,
			 h->entries_crc);
	return -EINVAL;
}

/* UTF-16LE (unpaired surrogates become '?') to UTF-8, up to a NUL. */
static void name_text(const uint8_t *p, char *out)
{
	size_t o = 0;
	for (int i = 0; i < GPT_NAME_UNITS; i++) {
		uint32_t c = le16_get(p + 2 * i);
		if (c == 0)
			break;
		if (c >= 0xD800 && c <= 0xDBFF && i + 1 < GPT_NAME_UNITS) {
			uint32_t lo = le16_get(p + 2 * i + 2);
			if (lo >= 0xDC00 && lo <= 0xDFFF) {
				c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
				i++;
			}
		}
		if (c >= 0xD800 && c <= 0xDFFF)
			c = '?';
		if (c < 0x20 || c == 0x7F)
			c = '?';               /* one line: no control characters */
		if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xC0 | (c >> 6));
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xE0 | (c >> 12));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else {
			out[o++] = (char)(0xF0 | (c >> 18));
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	out[o] = '\0';
}

int gpt_entry(const struct gpt_header *h, const uint8_t *array, uint32_t index, struct gpt_part *p)
{
	static const uint8_t unused[16];
	const uint8_t *e = array + (size_t)index * h->entry_size;

	memset(p, 0, sizeof(*p));
	if (memcmp(e, unused, 16) == 0)
		return 0;
	p->number = index + 1;
	memcpy(p->type, e, 16);
	memcpy(p->guid, e + 16, 16);
	p->first_lba = le64_get(e + 32);
	p->last_lba = le64_get(e + 40);
	p->attributes = le64_get(e + 48);
	name_text(e + 56, p->name);
	return 1;
}

bool gpt_guid_equal(const uint8_t a[16], const uint8_t b[16])
{
	return memcmp(a, b, 16) == 0;
}

void gpt_guid_text(const uint8_t g[16], char out[37])
{
	snprintf(out, 37, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", le32_get(g),
		 le16_get(g + 4), le16_get(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

const char *gpt_type_name(const uint8_t type[16])
{
	char text[37];
	gpt_guid_text(type, text);
	for (size_t i = 0; i < sizeof(known_types) / sizeof(known_types[0]); i++)
		if (strcmp(text, known_types[i].guid) == 0)
			return known_types[i].name;
	return NULL;
}
