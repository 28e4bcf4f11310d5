/* SPDX-License-Identifier: MIT */
/* The primary GUID partition table, read through a callback and checked
 * the way a disk from anywhere deserves: any disk in the machine is scanned
 * for the host partition, and the VHD's own GPT is the user's to edit. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handoff.h"

#define SAY(...)                                             \
	do {                                                 \
		if (err && errlen)                           \
			snprintf(err, errlen, __VA_ARGS__);  \
	} while (0)

#define GPT_HEADER_MIN 92u
#define GPT_ENTRY_MIN 128u

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* UTF-16LE (36 units, NUL padded) to UTF-8; unpaired surrogates become '?'. */
static void name_utf8(const uint8_t *p, char *out)
{
	size_t o = 0;

	for (int i = 0; i < 36; i++) {
		uint32_t c = (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;
		if (c == 0)
			break;
		if (c >= 0xD800 && c <= 0xDBFF && i + 1 < 36) {
			uint32_t lo = (uint32_t)p[2 * i + 2] | (uint32_t)p[2 * i + 3] << 8;
			if (lo >= 0xDC00 && lo <= 0xDFFF) {
				c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
				i++;
			}
		}
		if (c >= 0xD800 && c <= 0xDFFF)
			c = '?';
		if (c < 0x20 || c == 0x7f) {
			out[o++] = '?';
		} else if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xC0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xE0 | c >> 12);
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else {
			out[o++] = (char)(0xF0 | c >> 18);
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	out[o] = '\0';
}

void ho_gpt_free(struct ho_gpt *g)
{
	free(g->parts);
	g->parts = NULL;
	g->n_parts = 0;
}

static int parse_header(const uint8_t *h, struct ho_gpt *g, char *err, size_t errlen)
{
	uint8_t copy[4096];
	uint32_t hsize = le32(h + 12);

	if (memcmp(h, "EFI PART", 8) != 0) {
		SAY("no GPT signature");
		return -ENOENT;
	}
	if (le32(h + 8) >> 16 != 1) {
		SAY("GPT revision %08" PRIx32 " is not 1.x", le32(h + 8));
		return -EINVAL;
	}
	if (hsize < GPT_HEADER_MIN || hsize > g->lba_size) {
		SAY("GPT header size %" PRIu32 " is outside 92..%" PRIu32, hsize, g->lba_size);
		return -EINVAL;
	}
	memcpy(copy, h, hsize);
	memset(copy + 16, 0, 4);
	if (ho_crc32(0, copy, hsize) != le32(h + 16)) {
		SAY("GPT header CRC mismatch");
		return -EINVAL;
	}
	if (le64(h + 24) != 1) {
		SAY("the primary GPT header says it is at LBA %" PRIu64 ", not 1", le64(h + 24));
		return -EINVAL;
	}
	g->first_usable = le64(h + 40);
	g->last_usable = le64(h + 48);
	memcpy(g->disk_guid, h + 56, 16);
	g->entries_lba = le64(h + 72);
	g->n_entries = le32(h + 80);
	g->entry_size = le32(h + 84);
	if (g->first_usable > g->last_usable || g->last_usable >= g->disk_lbas) {
		SAY("GPT usable LBAs %" PRIu64 "..%" PRIu64 " do not fit the %" PRIu64 "-LBA disk",
		    g->first_usable, g->last_usable, g->disk_lbas);
		return -EINVAL;
	}
	if (g->entry_size < GPT_ENTRY_MIN || g->entry_size % 8 || g->entry_size > 4096) {
		SAY("GPT entry size %" PRIu32 " is not a multiple of 8 in 128..4096", g->entry_size);
		return -EINVAL;
	}
	uint64_t bytes = (uint64_t)g->n_entries * g->entry_size;
	if (g->n_entries == 0 || bytes > HO_GPT_MAX_ENTRIES_BYTES) {
		SAY("GPT entry array of %" PRIu32 " entries is empty or over 1 MiB", g->n_entries);
		return -EINVAL;
	}
	uint64_t lbas = (bytes + g->lba_size - 1) / g->lba_size;
	/* The primary array sits between the header and the first usable LBA. */
	if (g->entries_lba < 2 || g->entries_lba > g->first_usable ||
	    lbas > g->first_usable - g->entries_lba) {
		SAY("GPT entry array at LBA %" PRIu64 " overlaps the header or the usable space",
		    g->entries_lba);
		return -EINVAL;
	}
	return 0;
}

static int parse_entries(const uint8_t *a, uint32_t array_crc, struct ho_gpt *g, char *err,
			 size_t errlen)
{
	size_t bytes = (size_t)g->n_entries * g->entry_size, used = 0;
	static const uint8_t zero[16];

	if (ho_crc32(0, a, bytes) != array_crc) {
		SAY("GPT entry array CRC mismatch");
		return -EINVAL;
	}
	for (uint32_t i = 0; i < g->n_entries; i++)
		used += memcmp(a + (size_t)i * g->entry_size, zero, 16) != 0;
	g->parts = calloc(used ? used : 1, sizeof(*g->parts));
	if (!g->parts)
		return -ENOMEM;
	for (uint32_t i = 0; i < g->n_entries; i++) {
		const uint8_t *e = a + (size_t)i * g->entry_size;
		if (memcmp(e, zero, 16) == 0)
			continue;
		struct ho_gpt_part *p = &g->parts[g->n_parts];
		p->number = i + 1;
		memcpy(p->type, e, 16);
		memcpy(p->unique, e + 16, 16);
		p->first_lba = le64(e + 32);
		p->last_lba = le64(e + 40);
		p->attributes = le64(e + 48);
		name_utf8(e + 56, p->name);
		if (p->first_lba > p->last_lba || p->first_lba < g->first_usable ||
		    p->last_lba > g->last_usable) {
			SAY("GPT partition %" PRIu32 " (LBA %" PRIu64 "..%" PRIu64
			    ") is outside the usable LBAs %" PRIu64 "..%" PRIu64,
			    p->number, p->first_lba, p->last_lba, g->first_usable, g->last_usable);
			ho_gpt_free(g);
			return -EINVAL;
		}
		for (size_t k = 0; k < g->n_parts; k++) {
			const struct ho_gpt_part *q = &g->parts[k];
			if (p->first_lba <= q->last_lba && q->first_lba <= p->last_lba) {
				SAY("GPT partitions %" PRIu32 " and %" PRIu32 " overlap", q->number,
				    p->number);
				ho_gpt_free(g);
				return -EINVAL;
			}
			if (memcmp(p->unique, q->unique, 16) == 0) {
				SAY("GPT partitions %" PRIu32 " and %" PRIu32 " share a unique GUID",
				    q->number, p->number);
				ho_gpt_free(g);
				return -EINVAL;
			}
		}
		g->n_parts++;
	}
	return 0;
}

int ho_gpt_read(ho_read_fn read, void *ctx, uint32_t lba_size, uint64_t disk_bytes,
		struct ho_gpt *g, char *err, size_t errlen)
{
	uint8_t header[4096];
	int r;

	memset(g, 0, sizeof(*g));
	if (lba_size < 512 || lba_size > 4096 || (lba_size & (lba_size - 1))) {
		SAY("logical block size %" PRIu32 " is not a power of two in 512..4096", lba_size);
		return -EINVAL;
	}
	g->lba_size = lba_size;
	g->disk_lbas = disk_bytes / lba_size;
	if (g->disk_lbas < 3) {
		SAY("a %" PRIu64 "-byte disk is too small for a GPT", disk_bytes);
		return -ENOENT;
	}
	r = read(ctx, lba_size, header, lba_size);
	if (r) {
		SAY("cannot read LBA 1: %s", strerror(-r));
		return r;
	}
	r = parse_header(header, g, err, errlen);
	if (r)
		return r;
	size_t bytes = (size_t)g->n_entries * g->entry_size;
	uint8_t *array = malloc(bytes);
	if (!array)
		return -ENOMEM;
	r = read(ctx, g->entries_lba * lba_size, array, bytes);
	if (r)
		SAY("cannot read the GPT entry array: %s", strerror(-r));
	else
		r = parse_entries(array, le32(header + 88), g, err, errlen);
	free(array);
	return r;
}

const struct ho_gpt_part *ho_gpt_find_unique(const struct ho_gpt *g, const uint8_t guid[16])
{
	for (size_t i = 0; i < g->n_parts; i++)
		if (memcmp(g->parts[i].unique, guid, 16) == 0)
			return &g->parts[i];
	return NULL;
}
