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

#include "handoff.h"

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                   \
			abort();                                                          \
		}                                                                         \
	} while (0)

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

static void fuzz_gpt(const uint8_t *d, size_t n, uint32_t lba)
{
	struct mem m = { d, n };
	struct ho_gpt g;
	char err[HO_ERR_MAX] = "";

	int r = ho_gpt_read(mem_read, &m, lba, n, &g, err, sizeof(err));
	if (r) {
		CHECK(r < 0 && err[0] != '\0' && g.parts == NULL);
		return;
	}
	for (size_t i = 0; i < g.n_parts; i++) {
		const struct ho_gpt_part *p = &g.parts[i];
		CHECK(p->first_lba >= g.first_usable && p->last_lba <= g.last_usable);
		CHECK(p->first_lba <= p->last_lba && g.last_usable < g.disk_lbas);
		CHECK(p->number >= 1 && p->number <= g.n_entries);
		CHECK(ho_gpt_find_unique(&g, p->unique) == p);
		CHECK(strlen(p->name) < sizeof(p->name));
	}
	ho_gpt_free(&g);
}

static void check_list(const struct ho_extent_list *l)
{
	CHECK(l->n <= HO_MAX_EXTENTS);
	for (size_t i = 0; i < l->n; i++)
		CHECK(l->v[i].sectors > 0);
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
		CHECK(r < 0 && err[0] != '\0' && p.fext.v == NULL && p.dm.v == NULL);
		return;
	}
	CHECK(p.handoff >= HO_HANDOFF_NONE && p.handoff <= HO_HANDOFF_NBD);
	CHECK(!p.has_path || (p.path[0] == '/' && strstr(p.path, "/../") == NULL));
	if (var && (p.fext_efivar || p.dm_efivar)) {
		err[0] = '\0';
		r = ho_params_merge_efivar(&p, var, varlen, err, sizeof(err));
		CHECK(r <= 0 && (r == 0 || err[0] != '\0'));
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
			CHECK(a.v != NULL);
			memcpy(a.v, p.fext.v, p.fext.n * sizeof(*a.v));
			CHECK(ho_fext_compare(&p.fext, &a, p.size, err, sizeof(err)) == 0);
			CHECK(ho_fext_validate(&p.fext, p.size, part, err, sizeof(err)) == 0);
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
