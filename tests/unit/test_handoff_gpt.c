/* SPDX-License-Identifier: MIT */
/* handoff/gpt.c over an in-memory disk: a GPT as sgdisk writes it, then
 * broken one field at a time. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "handoff.h"

#define DISK_LBAS 4096u
#define ENTRIES 128u

static uint8_t *disk;
static size_t disk_len;
static char err[HO_ERR_MAX];
static int reads;

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static void guid(uint8_t *at, const char *text)
{
	cr_assert_eq(ho_guid_parse(text, strlen(text), at), 0);
}

static uint8_t *hdr(void)
{
	return disk + 512;
}

static uint8_t *entry(unsigned i)
{
	return disk + 2 * 512 + 128 * i;
}

/* Recompute both CRCs after an edit. */
static void seal(void)
{
	put32(hdr() + 88, ho_crc32(0, entry(0), ENTRIES * 128));
	put32(hdr() + 16, 0);
	put32(hdr() + 16, ho_crc32(0, hdr(), 92));
}

static void add(unsigned i, uint64_t first, uint64_t last, const char *unique, const char *name)
{
	guid(entry(i), "0fc63daf-8483-4772-8e79-3d69d8477de4");
	guid(entry(i) + 16, unique);
	put64(entry(i) + 32, first);
	put64(entry(i) + 40, last);
	for (size_t k = 0; name[k]; k++)
		entry(i)[56 + 2 * k] = (uint8_t)name[k];
}

static void setup(void)
{
	disk_len = DISK_LBAS * 512;
	disk = calloc(1, disk_len);
	memcpy(hdr(), "EFI PART", 8);
	put32(hdr() + 8, 0x00010000);
	put32(hdr() + 12, 92);
	put64(hdr() + 24, 1);
	put64(hdr() + 32, DISK_LBAS - 1);
	put64(hdr() + 40, 34);
	put64(hdr() + 48, DISK_LBAS - 34);
	guid(hdr() + 56, "01234567-89ab-cdef-0123-456789abcdef");
	put64(hdr() + 72, 2);
	put32(hdr() + 80, ENTRIES);
	put32(hdr() + 84, 128);
	add(0, 2048, 3071, "11111111-2222-3333-4444-555555555555", "host");
	add(2, 3072, 4000, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "");
	seal();
	reads = 0;
}

static void teardown(void)
{
	free(disk);
}

static int mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	(void)ctx;
	reads++;
	if (off > disk_len || len > disk_len - off)
		return -EIO;
	memcpy(buf, disk + off, len);
	return 0;
}

static int parse(struct ho_gpt *g)
{
	return ho_gpt_read(mem_read, NULL, 512, disk_len, g, err, sizeof(err));
}

TestSuite(handoff_gpt, .init = setup, .fini = teardown);

Test(handoff_gpt, valid_table)
{
	struct ho_gpt g;
	char text[37];
	cr_assert_eq(parse(&g), 0, "%s", err);
	cr_assert_eq(g.n_parts, 2);
	cr_assert_eq(g.parts[0].number, 1);
	cr_assert_eq(g.parts[1].number, 3, "Linux numbers partitions by entry index");
	cr_assert_eq(g.parts[0].first_lba, 2048);
	cr_assert_eq(g.parts[0].last_lba, 3071);
	cr_assert_str_eq(g.parts[0].name, "host");
	ho_guid_format(g.hdr.disk_guid, text);
	cr_assert_str_eq(text, "01234567-89ab-cdef-0123-456789abcdef");
	uint8_t want[16];
	guid(want, "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE");
	const struct ho_gpt_part *p = ho_gpt_find_unique(&g, want);
	cr_assert_not_null(p);
	cr_assert_eq(p->number, 3);
	guid(want, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeef");
	cr_assert_null(ho_gpt_find_unique(&g, want));
	ho_gpt_free(&g);
}

Test(handoff_gpt, utf16_names)
{
	struct ho_gpt g;
	/* "é" (U+00E9), "€" (U+20AC), U+1F600 as a surrogate pair, a lone surrogate. */
	static const uint8_t name[] = { 0xE9, 0, 0xAC, 0x20, 0x3D, 0xD8, 0x00, 0xDE, 0x00, 0xDC, 'x', 0 };
	memset(entry(0) + 56, 0, 72);
	memcpy(entry(0) + 56, name, sizeof(name));
	seal();
	cr_assert_eq(parse(&g), 0, "%s", err);
	cr_assert_str_eq(g.parts[0].name, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80?x");
	ho_gpt_free(&g);
}

static void broken(int code, const char *what)
{
	struct ho_gpt g;
	int r = parse(&g);
	cr_assert_eq(r, code, "expected %d, got %d (%s)", code, r, err);
	cr_assert(strstr(err, what) != NULL, "message lacks '%s': %s", what, err);
	cr_assert_null(g.parts);
}

Test(handoff_gpt, no_signature)
{
	hdr()[0] = 'X';
	broken(-ENOENT, "GPT: no 'EFI PART' signature");
}

Test(handoff_gpt, header_crc)
{
	hdr()[60] ^= 1;
	broken(-EINVAL, "header CRC");
}

Test(handoff_gpt, entries_crc)
{
	entry(5)[0] = 1;
	broken(-EINVAL, "partition array CRC32");
}

Test(handoff_gpt, header_size)
{
	put32(hdr() + 12, 91);
	seal();
	broken(-EINVAL, "header size 91");
	put32(hdr() + 12, 513);
	seal();
	broken(-EINVAL, "header size 513");
}

Test(handoff_gpt, revision)
{
	put32(hdr() + 8, 0x00020000);
	seal();
	broken(-EINVAL, "revision");
}

Test(handoff_gpt, my_lba)
{
	put64(hdr() + 24, 2);
	seal();
	broken(-EINVAL, "header read at LBA 1 says it is at LBA 2");
}

Test(handoff_gpt, usable_past_the_disk)
{
	put64(hdr() + 48, DISK_LBAS);
	seal();
	broken(-EINVAL, "do not fit");
	put64(hdr() + 40, DISK_LBAS - 10);
	put64(hdr() + 48, 40);
	seal();
	broken(-EINVAL, "do not fit");
}

Test(handoff_gpt, entry_size)
{
	put32(hdr() + 84, 100);
	seal();
	broken(-EINVAL, "entry size 100");
	put32(hdr() + 84, 132);
	seal();
	broken(-EINVAL, "entry size 132");
}

Test(handoff_gpt, entry_count)
{
	put32(hdr() + 80, 0);
	seal();
	broken(-EINVAL, "empty or over 4 MiB");
	put32(hdr() + 80, 0x40000000);
	seal();
	reads = 0;
	broken(-EINVAL, "empty or over 4 MiB");
	cr_assert_eq(reads, 1, "a huge array is refused before it is read");
}

Test(handoff_gpt, entries_overlap_usable)
{
	put64(hdr() + 72, 20); /* 32 LBAs from 20 run past first usable 34 */
	seal();
	broken(-EINVAL, "partition array at LBA 20 overlaps the usable LBAs 34..4062");
	put64(hdr() + 72, 1);
	seal();
	broken(-EINVAL, "partition array at LBA 1 (32 LBAs) is not within LBAs 2..4095");
	put64(hdr() + 72, DISK_LBAS - 16);
	seal();
	broken(-EINVAL, "is not within LBAs 2..4095");
}

Test(handoff_gpt, partition_outside_usable)
{
	put64(entry(0) + 40, DISK_LBAS - 33);
	seal();
	broken(-EINVAL, "outside the usable LBAs");
	put64(entry(0) + 40, 2047);
	seal();
	broken(-EINVAL, "outside the usable LBAs");
}

Test(handoff_gpt, partitions_overlap)
{
	put64(entry(2) + 32, 3071);
	seal();
	broken(-EINVAL, "partitions 1 and 3 overlap");
}

Test(handoff_gpt, duplicate_unique_guid)
{
	memcpy(entry(2) + 16, entry(0) + 16, 16);
	seal();
	broken(-EINVAL, "share a unique GUID");
}

Test(handoff_gpt, short_disk)
{
	struct ho_gpt g;
	cr_assert_eq(ho_gpt_read(mem_read, NULL, 512, 1024, &g, err, sizeof(err)), -ENOENT);
	cr_assert_eq(ho_gpt_read(mem_read, NULL, 1000, disk_len, &g, err, sizeof(err)), -EINVAL);
	/* The device is shorter than it claims: the array cannot be read. */
	put64(hdr() + 72, DISK_LBAS + 10);
	put64(hdr() + 40, DISK_LBAS + 50);
	put64(hdr() + 48, 2 * DISK_LBAS - 40);
	put64(entry(0) + 32, DISK_LBAS + 60);
	put64(entry(0) + 40, DISK_LBAS + 70);
	put64(entry(2) + 32, DISK_LBAS + 80);
	put64(entry(2) + 40, DISK_LBAS + 90);
	seal();
	cr_assert_eq(ho_gpt_read(mem_read, NULL, 512, 2 * disk_len, &g, err, sizeof(err)), -EIO);
	cr_assert(strstr(err, "GPT: cannot read the entry array") != NULL, "%s", err);
}

/* ---- the pieces vhdtool boot-check uses ---- */

Test(handoff_gpt, array_after_the_usable_space)
{
	/* As a backup GPT lays it out: firmware and Linux accept it. */
	struct ho_gpt g;
	memcpy(disk + (DISK_LBAS - 33) * 512, entry(0), ENTRIES * 128);
	put64(hdr() + 72, DISK_LBAS - 33);
	seal();
	cr_assert_eq(parse(&g), 0, "%s", err);
	cr_assert_eq(g.n_parts, 2);
	ho_gpt_free(&g);
}

/* The backup header at the last LBA, as sgdisk writes it (its array just
 * before it), parsed on its own. */
Test(handoff_gpt, backup_header)
{
	struct ho_gpt_header h;
	uint8_t *b = disk + (DISK_LBAS - 1) * 512;
	memcpy(b, hdr(), 92);
	put64(b + 24, DISK_LBAS - 1);
	put64(b + 32, 1);
	put64(b + 72, DISK_LBAS - 33);
	put32(b + 16, 0);
	put32(b + 16, ho_crc32(0, b, 92));
	cr_assert_eq(ho_gpt_header_parse(b, 512, DISK_LBAS - 1, DISK_LBAS, &h, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(h.my_lba, DISK_LBAS - 1);
	cr_assert_eq(h.alternate_lba, 1);
	cr_assert_eq(h.entries_lba, DISK_LBAS - 33);
	cr_assert_eq(ho_gpt_array_bytes(&h), ENTRIES * 128);
	/* Read where it does not claim to be. */
	cr_assert_eq(ho_gpt_header_parse(b, 512, 1, DISK_LBAS, &h, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "header read at LBA 1 says it is at LBA 4095") != NULL, "%s", err);
	/* An array running over its own header. */
	put64(b + 72, DISK_LBAS - 32);
	put64(b + 48, DISK_LBAS - 40);
	put32(b + 16, 0);
	put32(b + 16, ho_crc32(0, b, 92));
	cr_assert_eq(ho_gpt_header_parse(b, 512, DISK_LBAS - 1, DISK_LBAS, &h, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "partition array at LBA 4064 overlaps its header at LBA 4095") != NULL,
		  "%s", err);
}

Test(handoff_gpt, array_crc_and_used_entries)
{
	struct ho_gpt_header h;
	struct ho_gpt_part *parts;
	size_t n;
	static const uint8_t name[] = { 'a', 0, 0x07, 0, 0x7F, 0, 'b', 0 };
	memcpy(entry(2) + 56, name, sizeof(name));
	seal();
	cr_assert_eq(ho_gpt_header_parse(hdr(), 512, 1, DISK_LBAS, &h, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ho_gpt_array_check(&h, entry(0), err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ho_gpt_used_entries(&h, entry(0), &parts, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(parts[1].number, 3);
	cr_assert_eq(parts[1].first_lba, 3072);
	cr_assert_str_eq(parts[1].name, "a??b", "control characters become '?'");
	cr_assert_str_eq(ho_gpt_type_name(parts[0].type), "Linux filesystem");
	free(parts);
	entry(7)[3] = 1;
	cr_assert_eq(ho_gpt_array_check(&h, entry(0), err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "partition array CRC32 is") != NULL, "%s", err);
}

Test(handoff_gpt, protective_mbr_and_types)
{
	uint8_t mbr[512] = { 0 };
	uint8_t esp[16];
	cr_assert_not(ho_gpt_protective_mbr(mbr), "no 55 AA");
	mbr[510] = 0x55;
	mbr[511] = 0xAA;
	mbr[446 + 16 + 4] = 0xEE;
	put32(mbr + 446 + 16 + 8, 2);
	cr_assert_not(ho_gpt_protective_mbr(mbr), "0xEE must start at LBA 1");
	put32(mbr + 446 + 16 + 8, 1);
	cr_assert(ho_gpt_protective_mbr(mbr));
	mbr[446 + 16 + 4] = 0x07;
	cr_assert_not(ho_gpt_protective_mbr(mbr), "an MBR partition, not a protective one");
	guid(esp, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
	cr_assert_eq(memcmp(esp, ho_gpt_type_esp, 16), 0);
	cr_assert_str_eq(ho_gpt_type_name(esp), "EFI System");
	esp[15] ^= 1;
	cr_assert_null(ho_gpt_type_name(esp));
}
