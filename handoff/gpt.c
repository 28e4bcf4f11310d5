/* SPDX-License-Identifier: MIT */
/* The GUID partition table, parsed from bytes and checked the way a disk
 * from anywhere deserves: vhd-handoff scans every disk in the machine for
 * the host partition, and vhdtool boot-check reads the GPT of a VHD that
 * is the user's to edit (see handoff.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handoff.h"
#include "utf.h"

#define SAY(...)                                             \
	do {                                                 \
		if (err && errlen)                           \
			snprintf(err, errlen, __VA_ARGS__);  \
	} while (0)

/* The largest logical block we read a header from. */
#define GPT_LBA_MAX 4096u
#define GPT_ENTRY_MIN 128u

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

const uint8_t ho_gpt_type_esp[16] = { 0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
				      0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B };

/* As ho_guid_format writes them. */
static const struct {
	const char *guid;
	const char *name;
} known_types[] = {
	{ "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI System" },
	{ "21686148-6449-6e6f-744e-656564454649", "BIOS boot" },
	{ "e3c9e316-0b5c-4db8-817d-f92df00215ae", "Microsoft reserved" },
	{ "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "Microsoft basic data" },
	{ "de94bba4-06d1-4d40-a16a-bfd50179d6ac", "Windows recovery" },
	{ "0fc63daf-8483-4772-8e79-3d69d8477de4", "Linux filesystem" },
	{ "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "Linux root (x86-64)" },
	{ "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "Linux swap" },
	{ "e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM" },
	{ "bc13c2ff-59e6-4262-a352-b275fd6f7172", "Linux extended boot" },
};

const char *ho_gpt_type_name(const uint8_t type[16])
{
	char text[37];
	ho_guid_format(type, text);
	for (size_t i = 0; i < sizeof(known_types) / sizeof(known_types[0]); i++)
		if (strcmp(text, known_types[i].guid) == 0)
			return known_types[i].name;
	return NULL;
}

bool ho_gpt_protective_mbr(const uint8_t *mbr)
{
	if (mbr[510] != 0x55 || mbr[511] != 0xAA)
		return false;
	for (int i = 0; i < 4; i++) {
		const uint8_t *rec = mbr + 446 + 16 * i;
		if (rec[4] == 0xEE && le32(rec + 8) == 1)
			return true;
	}
	return false;
}

/* Where the entry array may lie: inside the disk past the primary header,
 * clear of the usable LBAs and of its own header. */
static int check_array_place(const struct ho_gpt_header *h, uint32_t lba_size, uint64_t disk_lbas,
			     char *err, size_t errlen)
{
	uint64_t lbas = ((uint64_t)h->n_entries * h->entry_size + lba_size - 1) / lba_size;

	if (h->entries_lba < 2 || h->entries_lba >= disk_lbas || lbas > disk_lbas - h->entries_lba) {
		SAY("partition array at LBA %" PRIu64 " (%" PRIu64 " LBAs) is not within LBAs 2..%" PRIu64,
		    h->entries_lba, lbas, disk_lbas - 1);
		return -EINVAL;
	}
	if (h->entries_lba <= h->last_usable && h->entries_lba + lbas > h->first_usable) {
		SAY("partition array at LBA %" PRIu64 " overlaps the usable LBAs %" PRIu64 "..%" PRIu64,
		    h->entries_lba, h->first_usable, h->last_usable);
		return -EINVAL;
	}
	if (h->my_lba >= h->entries_lba && h->my_lba - h->entries_lba < lbas) {
		SAY("partition array at LBA %" PRIu64 " overlaps its header at LBA %" PRIu64,
		    h->entries_lba, h->my_lba);
		return -EINVAL;
	}
	return 0;
}

int ho_gpt_header_parse(const uint8_t *sector, uint32_t lba_size, uint64_t lba, uint64_t disk_lbas,
			struct ho_gpt_header *h, char *err, size_t errlen)
{
	uint8_t copy[GPT_LBA_MAX];
	uint32_t size_max = lba_size < sizeof(copy) ? lba_size : (uint32_t)sizeof(copy);

	memset(h, 0, sizeof(*h));
	if (memcmp(sector, "EFI PART", 8) != 0) {
		SAY("no 'EFI PART' signature");
		return -ENOENT;
	}
	h->revision = le32(sector + 8);
	h->header_size = le32(sector + 12);
	if (h->header_size < HO_GPT_HEADER_MIN || h->header_size > size_max) {
		SAY("header size %" PRIu32 " is outside %u..%" PRIu32, h->header_size,
		    HO_GPT_HEADER_MIN, size_max);
		return -EINVAL;
	}
	memcpy(copy, sector, h->header_size);
	memset(copy + 16, 0, 4);
	uint32_t crc = le32(sector + 16), want = ho_crc32(0, copy, h->header_size);
	if (crc != want) {
		SAY("header CRC32 is %08" PRIx32 ", the header's bytes give %08" PRIx32, crc, want);
		return -EINVAL;
	}
	h->my_lba = le64(sector + 24);
	h->alternate_lba = le64(sector + 32);
	h->first_usable = le64(sector + 40);
	h->last_usable = le64(sector + 48);
	memcpy(h->disk_guid, sector + 56, 16);
	h->entries_lba = le64(sector + 72);
	h->n_entries = le32(sector + 80);
	h->entry_size = le32(sector + 84);
	h->entries_crc = le32(sector + 88);

	if (h->my_lba != lba) {
		SAY("header read at LBA %" PRIu64 " says it is at LBA %" PRIu64, lba, h->my_lba);
		return -EINVAL;
	}
	if (h->first_usable > h->last_usable || h->last_usable >= disk_lbas) {
		SAY("usable LBAs %" PRIu64 "..%" PRIu64 " do not fit a disk of %" PRIu64 " LBAs",
		    h->first_usable, h->last_usable, disk_lbas);
		return -EINVAL;
	}
	/* UEFI: 128 << n; EDK2 reads 128 bytes of each, Linux wants exactly 128. */
	if (h->entry_size < GPT_ENTRY_MIN || h->entry_size % GPT_ENTRY_MIN) {
		SAY("partition entry size %" PRIu32 " is not a multiple of 128", h->entry_size);
		return -EINVAL;
	}
	uint64_t bytes = (uint64_t)h->n_entries * h->entry_size;
	if (h->n_entries == 0 || bytes > HO_GPT_MAX_ENTRIES_BYTES) {
		SAY("partition array of %" PRIu32 " entries (%" PRIu64 " bytes) is empty or over 4 MiB",
		    h->n_entries, bytes);
		return -EINVAL;
	}
	return check_array_place(h, lba_size, disk_lbas, err, errlen);
}

size_t ho_gpt_array_bytes(const struct ho_gpt_header *h)
{
	return (size_t)h->n_entries * h->entry_size;
}

int ho_gpt_array_check(const struct ho_gpt_header *h, const uint8_t *array, char *err,
		       size_t errlen)
{
	uint32_t got = ho_crc32(0, array, ho_gpt_array_bytes(h));
	if (got == h->entries_crc)
		return 0;
	SAY("partition array CRC32 is %08" PRIx32 ", the header says %08" PRIx32, got,
	    h->entries_crc);
	return -EINVAL;
}

static bool entry_used(const uint8_t *e)
{
	static const uint8_t unused[16];
	return memcmp(e, unused, 16) != 0;
}

static void entry_decode(const uint8_t *e, uint32_t index, struct ho_gpt_part *p)
{
	memset(p, 0, sizeof(*p));
	p->number = index + 1;
	memcpy(p->type, e, 16);
	memcpy(p->unique, e + 16, 16);
	p->first_lba = le64(e + 32);
	p->last_lba = le64(e + 40);
	p->attributes = le64(e + 48);
	/* Room for every unit: a lone surrogate (3 bytes) becomes 1. */
	(void)vhd_utf16_decode(e + 56, 2 * HO_GPT_NAME_UNITS, false, '?', p->name, sizeof(p->name));
	/* One line: no control characters (in UTF-8 they are single bytes). */
	for (char *c = p->name; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7F)
			*c = '?';
}

int ho_gpt_used_entries(const struct ho_gpt_header *h, const uint8_t *array,
			struct ho_gpt_part **parts, size_t *n)
{
	size_t used = 0;

	for (uint32_t i = 0; i < h->n_entries; i++)
		used += entry_used(array + (size_t)i * h->entry_size);
	/* Room for the used entries only: an array may list 32768 slots. */
	*parts = calloc(used ? used : 1, sizeof(**parts));
	*n = 0;
	if (!*parts)
		return -ENOMEM;
	for (uint32_t i = 0; i < h->n_entries; i++) {
		const uint8_t *e = array + (size_t)i * h->entry_size;
		if (entry_used(e))
			entry_decode(e, i, &(*parts)[(*n)++]);
	}
	return 0;
}

void ho_gpt_free(struct ho_gpt *g)
{
	free(g->parts);
	g->parts = NULL;
	g->n_parts = 0;
}

/* What vhd-handoff asks of the partitions besides what firmware does. */
static int check_parts(const struct ho_gpt *g, char *err, size_t errlen)
{
	for (size_t i = 0; i < g->n_parts; i++) {
		const struct ho_gpt_part *p = &g->parts[i];
		if (p->first_lba > p->last_lba || p->first_lba < g->hdr.first_usable ||
		    p->last_lba > g->hdr.last_usable) {
			SAY("partition %" PRIu32 " (LBA %" PRIu64 "..%" PRIu64
			    ") is outside the usable LBAs %" PRIu64 "..%" PRIu64,
			    p->number, p->first_lba, p->last_lba, g->hdr.first_usable,
			    g->hdr.last_usable);
			return -EINVAL;
		}
		for (size_t k = 0; k < i; k++) {
			const struct ho_gpt_part *q = &g->parts[k];
			if (p->first_lba <= q->last_lba && q->first_lba <= p->last_lba) {
				SAY("partitions %" PRIu32 " and %" PRIu32 " overlap", q->number,
				    p->number);
				return -EINVAL;
			}
			if (memcmp(p->unique, q->unique, 16) == 0) {
				SAY("partitions %" PRIu32 " and %" PRIu32 " share a unique GUID",
				    q->number, p->number);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int read_primary(ho_read_fn read, void *ctx, uint32_t lba_size, uint64_t disk_bytes,
			struct ho_gpt *g, char *err, size_t errlen)
{
	uint8_t header[GPT_LBA_MAX];
	int r;

	if (lba_size < 512 || lba_size > GPT_LBA_MAX || (lba_size & (lba_size - 1))) {
		SAY("logical block size %" PRIu32 " is not a power of two in 512..4096", lba_size);
		return -EINVAL;
	}
	g->lba_size = lba_size;
	g->disk_lbas = disk_bytes / lba_size;
	if (g->disk_lbas < 3) {
		SAY("a %" PRIu64 "-byte disk is too small for one", disk_bytes);
		return -ENOENT;
	}
	r = read(ctx, lba_size, header, lba_size);
	if (r) {
		SAY("cannot read LBA 1: %s", strerror(-r));
		return r;
	}
	r = ho_gpt_header_parse(header, lba_size, 1, g->disk_lbas, &g->hdr, err, errlen);
	if (r)
		return r;
	if (g->hdr.revision >> 16 != 1) {
		SAY("revision %08" PRIx32 " is not 1.x", g->hdr.revision);
		return -EINVAL;
	}
	size_t bytes = ho_gpt_array_bytes(&g->hdr);
	uint8_t *array = malloc(bytes);
	if (!array)
		return -ENOMEM;
	r = read(ctx, g->hdr.entries_lba * lba_size, array, bytes);
	if (r)
		SAY("cannot read the entry array: %s", strerror(-r));
	else
		r = ho_gpt_array_check(&g->hdr, array, err, errlen);
	if (!r)
		r = ho_gpt_used_entries(&g->hdr, array, &g->parts, &g->n_parts);
	free(array);
	if (!r)
		r = check_parts(g, err, errlen);
	if (r)
		ho_gpt_free(g);
	return r;
}

int ho_gpt_read(ho_read_fn read, void *ctx, uint32_t lba_size, uint64_t disk_bytes,
		struct ho_gpt *g, char *err, size_t errlen)
{
	char why[HO_ERR_MAX] = "";

	memset(g, 0, sizeof(*g));
	int r = read_primary(read, ctx, lba_size, disk_bytes, g, why, sizeof(why));
	if (r)
		SAY("GPT: %s", why[0] ? why : strerror(-r));
	return r;
}

const struct ho_gpt_part *ho_gpt_find_unique(const struct ho_gpt *g, const uint8_t guid[16])
{
	for (size_t i = 0; i < g->n_parts; i++)
		if (memcmp(g->parts[i].unique, guid, 16) == 0)
			return &g->parts[i];
	return NULL;
}
