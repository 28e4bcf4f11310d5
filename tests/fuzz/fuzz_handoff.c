/* SPDX-License-Identifier: MIT */
/*
 * vhd-handoff's parsers (handoff/): the kernel command line's vhd.* words,
 * the VhdbootHandoff variable, the extent-list checks, and a GPT read from
 * memory.
 *
 * Input: one flags byte, then data.  Bit 0 set: data is a disk image for
 * ho_gpt_read (bit 1: 4096-byte LBAs).  Otherwise data is a command line,
 * optionally followed by "\n--efivar--\n" and the variable's text.
 *
 * Oracles: results are 0 or negative; a failure explains itself and keeps
 * no list; parsed lists hold at most HO_MAX_EXTENTS non-empty runs; a
 * validated list stays valid after normalizing; a file compared with its own
 * extents matches; every GPT partition lies in the usable LBAs, and finding
 * it by its unique GUID returns it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "handoff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const uint8_t *p;
	size_t n;
};

static int mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	const struct mem *m = ctx;
	if (off > m->n || len > m->n - off)
		return -EIO;
	memcpy(buf, m->p + off, len);
	return 0;
}

/* The pieces vhdtool boot-check uses, on the last LBA, where a backup
 * header sits: a header that parses places its array inside the disk. */
static void fuzz_gpt_pieces(const uint8_t *d, size_t n, uint32_t lba)
{
	uint64_t lbas = n / lba;
	struct ho_gpt_header h;
	struct ho_gpt_part *parts;
	size_t used;
	char err[HO_ERR_MAX] = "";

	if (lbas < 3)
		return;
	int r = ho_gpt_header_parse(d + (lbas - 1) * lba, lba, lbas - 1, lbas, &h, err, sizeof(err));
	if (r) {
		FZ_CHECK((r == -ENOENT || r == -EINVAL) && err[0] != '\0');
		return;
	}
	size_t bytes = ho_gpt_array_bytes(&h);
	FZ_CHECK(bytes > 0 && bytes <= HO_GPT_MAX_ENTRIES_BYTES);
	FZ_CHECK(h.entries_lba >= 2 && h.entries_lba < lbas && bytes <= n - h.entries_lba * lba);
	FZ_CHECK(h.first_usable <= h.last_usable && h.last_usable < lbas);
	const uint8_t *array = d + h.entries_lba * lba;
	if (ho_gpt_array_check(&h, array, err, sizeof(err)) != 0)
		return;
	FZ_CHECK(ho_gpt_used_entries(&h, array, &parts, &used) == 0);
	FZ_CHECK(used <= h.n_entries);
	for (size_t i = 0; i < used; i++)
		FZ_CHECK(parts[i].number >= 1 && parts[i].number <= h.n_entries &&
			 strlen(parts[i].name) < sizeof(parts[i].name));
	free(parts);
}

static void fuzz_gpt(const uint8_t *d, size_t n, uint32_t lba)
{
	struct mem m = { d, n };
	struct ho_gpt g;
	char err[HO_ERR_MAX] = "";

	fuzz_gpt_pieces(d, n, lba);
	int r = ho_gpt_read(mem_read, &m, lba, n, &g, err, sizeof(err));
	if (r) {
		FZ_CHECK(r < 0 && err[0] != '\0' && g.parts == NULL);
		return;
	}
	for (size_t i = 0; i < g.n_parts; i++) {
		const struct ho_gpt_part *p = &g.parts[i];
		FZ_CHECK(p->first_lba >= g.hdr.first_usable && p->last_lba <= g.hdr.last_usable);
		FZ_CHECK(p->first_lba <= p->last_lba && g.hdr.last_usable < g.disk_lbas);
		FZ_CHECK(p->number >= 1 && p->number <= g.hdr.n_entries);
		FZ_CHECK(ho_gpt_find_unique(&g, p->unique) == p);
		FZ_CHECK(strlen(p->name) < sizeof(p->name));
	}
	ho_gpt_free(&g);
}

static void check_list(const struct ho_extent_list *l)
{
	FZ_CHECK(l->n <= HO_MAX_EXTENTS);
	for (size_t i = 0; i < l->n; i++)
		FZ_CHECK(l->v[i].sectors > 0);
}

static void fuzz_cmdline(const uint8_t *d, size_t n)
{
	static const char sep[] = "\n--efivar--\n";
	const uint8_t *var = NULL;
	size_t line = n, varlen = 0;
	struct ho_params p;
	char err[HO_ERR_MAX] = "";

	for (size_t i = 0; i + sizeof(sep) - 1 <= n; i++) {
		if (memcmp(d + i, sep, sizeof(sep) - 1) == 0) {
			line = i;
			var = d + i + sizeof(sep) - 1;
			varlen = n - line - (sizeof(sep) - 1);
			break;
		}
	}
	int r = ho_params_parse(&p, (const char *)d, line, err, sizeof(err));
	if (r) {
		FZ_CHECK(r < 0 && err[0] != '\0' && p.fext.v == NULL && p.dm.v == NULL);
		return;
	}
	FZ_CHECK(p.handoff >= HO_HANDOFF_NONE && p.handoff <= HO_HANDOFF_NBD);
	FZ_CHECK(!p.has_path || (p.path[0] == '/' && strstr(p.path, "/../") == NULL));
	if (var && (p.fext_efivar || p.dm_efivar)) {
		err[0] = '\0';
		r = ho_params_merge_efivar(&p, var, varlen, err, sizeof(err));
		FZ_CHECK(r <= 0 && (r == 0 || err[0] != '\0'));
	}
	check_list(&p.fext);
	check_list(&p.dm);
	if (p.has_size && p.fext.v) {
		uint64_t part = UINT64_MAX / 2, vs = 0;
		if (ho_fext_validate(&p.fext, p.size, part, err, sizeof(err)) == 0) {
			if (p.dm.v)
				(void)ho_dm_validate(&p.dm, &p.fext, p.size, &vs, err, sizeof(err));
			/* A file compared with its own extents, split differently, matches. */
			struct ho_extent_list a = { malloc(p.fext.n * sizeof(*a.v)), p.fext.n };
			FZ_CHECK(a.v != NULL);
			memcpy(a.v, p.fext.v, p.fext.n * sizeof(*a.v));
			FZ_CHECK(ho_fext_compare(&p.fext, &a, p.size, err, sizeof(err)) == 0);
			FZ_CHECK(ho_fext_validate(&p.fext, p.size, part, err, sizeof(err)) == 0);
			free(a.v);
		}
	}
	ho_params_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_gpt(data + 1, size - 1, (data[0] & 2) ? 4096 : 512);
	else
		fuzz_cmdline(data + 1, size - 1);
	return 0;
}
