/* SPDX-License-Identifier: MIT */
/* handoff/extents.c: the loader's lists, checked and compared with the
 * file's extents now; handoff/dmtable.c: the DM_TABLE_LOAD buffer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <linux/dm-ioctl.h>

#include "handoff.h"

static char err[HO_ERR_MAX];

/* A list from text, as the command line spells it. */
static struct ho_extent_list L(const char *text)
{
	struct ho_extent_list l;
	int r = ho_extents_parse(text, strlen(text), &l, err, sizeof(err));
	cr_assert_eq(r, 0, "'%s': %s", text, err);
	return l;
}

/* 1 MiB + 512 bytes = 2049 sectors in two pieces. */
#define SIZE (1048576u + 512u)
#define FEXT "0:1024:2048,1024:1025:8192"

Test(handoff_extents, fext_valid)
{
	struct ho_extent_list f = L(FEXT);
	cr_assert_eq(ho_fext_validate(&f, SIZE, 20000, err, sizeof(err)), 0, "%s", err);
	/* The last extent may run past the end of file (a partial cluster). */
	struct ho_extent_list g = L("0:1024:2048,1024:1032:8192");
	cr_assert_eq(ho_fext_validate(&g, SIZE, 20000, err, sizeof(err)), 0, "%s", err);
	ho_extents_free(&f);
	ho_extents_free(&g);
}

static void fext_bad(const char *text, uint64_t size, uint64_t part, const char *what)
{
	struct ho_extent_list f = L(text);
	cr_assert_eq(ho_fext_validate(&f, size, part, err, sizeof(err)), -EINVAL, "%s", text);
	cr_assert(strstr(err, what) != NULL, "'%s': message lacks '%s': %s", text, what, err);
	ho_extents_free(&f);
}

Test(handoff_extents, fext_hostile)
{
	fext_bad("1024:1025:8192,0:1024:2048", SIZE, 20000, "sorted");
	fext_bad("0:1024:2048,1025:1024:8192", SIZE, 20000, "leave no gap");
	fext_bad("0:1024:2048", SIZE, 20000, "covers 1024 sectors of the 2049");
	fext_bad("0:1024:2048,1024:1025:19000", SIZE, 20000, "runs past the 20000-sector");
	fext_bad("0:1024:2048,1024:1025:2500", SIZE, 20000, "same host sectors");
	fext_bad("0:2049:0,2049:8:5000", SIZE, 20000, "past the end");
}

Test(handoff_extents, dm_valid_inside_the_file)
{
	struct ho_extent_list f = L(FEXT), d = L("0:1000:2049,1000:1000:8192");
	uint64_t vs = 0;
	cr_assert_eq(ho_dm_validate(&d, &f, SIZE, &vs, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(vs, 2000);
	/* A segment that spans two touching file runs is fine. */
	struct ho_extent_list f2 = L("0:1024:2048,1024:1025:3072"), d2 = L("0:2048:2048");
	cr_assert_eq(ho_dm_validate(&d2, &f2, SIZE, &vs, err, sizeof(err)), 0, "%s", err);
	ho_extents_free(&f);
	ho_extents_free(&d);
	ho_extents_free(&f2);
	ho_extents_free(&d2);
}

static void dm_bad(const char *fext, const char *dm, const char *what)
{
	struct ho_extent_list f = L(fext), d = L(dm);
	uint64_t vs = 0;
	cr_assert_eq(ho_dm_validate(&d, &f, SIZE, &vs, err, sizeof(err)), -EINVAL, "%s", dm);
	cr_assert(strstr(err, what) != NULL, "'%s': message lacks '%s': %s", dm, what, err);
	ho_extents_free(&f);
	ho_extents_free(&d);
}

Test(handoff_extents, dm_hostile)
{
	dm_bad(FEXT, "1:10:2048", "starts at virtual sector 1");
	dm_bad(FEXT, "0:10:2048,20:10:2058", "leave no gap");
	dm_bad(FEXT, "0:2050:2048", "more sectors than");
	/* Host sectors outside the file: before, between and after its runs. */
	dm_bad(FEXT, "0:10:2000", "host sector 2000");
	dm_bad(FEXT, "0:1025:2048", "host sector 3072");
	dm_bad(FEXT, "0:10:9217", "host sector 9217");
	dm_bad(FEXT, "0:10:0", "host sector 0");
	dm_bad(FEXT, "0:10:2048,10:10:2050", "same host sector");
}

Test(handoff_extents, compare_equal_after_normalizing)
{
	/* FIEMAP may split where the loader did not, and run past EOF. */
	struct ho_extent_list want = L(FEXT), have = L("1024:1000:8192,0:512:2048,512:512:2560,2024:32:9192");
	cr_assert_eq(ho_fext_compare(&want, &have, SIZE, err, sizeof(err)), 0, "%s", err);
	ho_extents_free(&want);
	ho_extents_free(&have);
}

static void differs(const char *want_s, const char *have_s, const char *what)
{
	struct ho_extent_list want = L(want_s), have = L(have_s);
	cr_assert_eq(ho_fext_compare(&want, &have, SIZE, err, sizeof(err)), -ESTALE, "%s", have_s);
	cr_assert(strstr(err, what) != NULL, "'%s': message lacks '%s': %s", have_s, what, err);
	ho_extents_free(&want);
	ho_extents_free(&have);
}

Test(handoff_extents, compare_finds_the_first_difference)
{
	differs(FEXT, "0:1024:2048,1024:1025:8200", "file sector 1024 is at host sector 8200 now, the loader saw 8192");
	differs(FEXT, "0:1024:2048,1024:100:8192,1124:925:9000", "file sector 1124 is not where");
	differs(FEXT, "0:1024:2048,1100:949:8268", "file sector 1024 has no block");
	differs(FEXT, "0:1024:2048", "file sector 1024 has no block");
	differs("0:1024:2048,1024:100:8192,1124:925:9316", FEXT, "file sector 1124 is not where");
	differs(FEXT, "0:1023:2048,1023:1026:8191", "file sector 1023 is not where");
}

Test(handoff_extents, size_sectors)
{
	cr_assert_eq(ho_size_sectors(0), 0);
	cr_assert_eq(ho_size_sectors(1), 1);
	cr_assert_eq(ho_size_sectors(512), 1);
	cr_assert_eq(ho_size_sectors(513), 2);
}

Test(handoff_extents, dm_table_layout)
{
	struct ho_dm_target t[2] = { { 0, 100, 8, 2, 2048 }, { 100, 50, 8, 2, 4294967295u } };
	void *buf;
	size_t len;
	cr_assert_eq(ho_dm_table_build("vhdboot", t, 2, &buf, &len), 0);
	struct dm_ioctl *io = buf;
	cr_assert_eq(io->version[0], 4);
	cr_assert_eq(io->version[1], 0, "ask for 4.0: older kernels refuse newer minors");
	cr_assert_eq(io->data_size, len);
	cr_assert_eq(io->target_count, 2);
	cr_assert_str_eq(io->name, "vhdboot");
	const uint8_t *at = (const uint8_t *)buf + io->data_start;
	for (int i = 0; i < 2; i++) {
		const struct dm_target_spec *s = (const struct dm_target_spec *)at;
		cr_assert_eq((uintptr_t)at % 8, 0);
		cr_assert_eq(s->sector_start, t[i].start);
		cr_assert_eq(s->length, t[i].sectors);
		cr_assert_str_eq(s->target_type, "linear");
		cr_assert_str_eq((const char *)(s + 1), i ? "8:2 4294967295" : "8:2 2048");
		cr_assert_leq((size_t)(at - (const uint8_t *)buf) + s->next, len);
		at += s->next;
	}
	free(buf);
	/* A gap, an empty target, a bad name: refused. */
	t[1].start = 101;
	cr_assert_eq(ho_dm_table_build("vhdboot", t, 2, &buf, &len), -EINVAL);
	t[1].start = 100;
	t[1].sectors = 0;
	cr_assert_eq(ho_dm_table_build("vhdboot", t, 2, &buf, &len), -EINVAL);
	cr_assert_eq(ho_dm_table_build("../x", t, 1, &buf, &len), -EINVAL);
	cr_assert_eq(ho_dm_table_build("", t, 1, &buf, &len), -EINVAL);
	cr_assert(ho_dm_name_valid("vhdboot12"));
	cr_assert_not(ho_dm_name_valid("a b"));
	cr_assert_not(ho_dm_name_valid(".."));
}
