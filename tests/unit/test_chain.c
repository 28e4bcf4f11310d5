/* SPDX-License-Identifier: MIT */
/* chain.c: finding a differencing image's parent, identity checks, cycles. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define SIZE (2 * T_MIB)
#define BSZ (512u << 10)

static char *dir;

static void setup(void)
{
	dir = t_mkdtemp();
}

static void teardown(void)
{
	t_rmtree(dir);
	free(dir);
}

TestSuite(chain, .init = setup, .fini = teardown);

static const char *in_dir(const char *name)
{
	static char paths[4][4200];
	static int next;
	char *p = paths[next++ % 4];
	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

static void make_dynamic(const char *path, uint64_t fill_seed)
{
	struct vhd_create_params p = { .type = VHD_TYPE_DYNAMIC, .size = SIZE, .block_size = BSZ };
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_create(path, &p, &img, &err), 0, "%s", err.message);
	if (fill_seed) {
		uint8_t buf[4096];
		t_fill(buf, sizeof(buf), fill_seed);
		cr_assert_eq(vhd_pwrite(img, buf, sizeof(buf), 0), 0);
	}
	cr_assert_eq(vhd_close(img), 0);
}

static void make_child(const char *path, const char *parent)
{
	struct vhd_create_params p = { .type = VHD_TYPE_DIFFERENCING, .parent = parent };
	struct vhd_error err;
	cr_assert_eq(vhd_create(path, &p, NULL, &err), 0, "%s: %s", path, err.message);
}

/* Give a file (its footers) a new UUID or timestamp; checksums fixed. */
static void patch_file_footers(const char *path, size_t field, const uint8_t *bytes, size_t n)
{
	size_t len;
	uint8_t *b = t_read_file(path, &len);
	uint8_t *footers[2] = { b + len - 512, memcmp(b, "conectix", 8) == 0 ? b : NULL };
	for (int i = 0; i < 2; i++) {
		if (!footers[i])
			continue;
		memcpy(footers[i] + field, bytes, n);
		t_fix_footer(footers[i]);
	}
	t_write_file(path, b, len);
	free(b);
}

Test(chain, child_reads_through_parent)
{
	make_dynamic(in_dir("base.vhd"), 1);
	make_child(in_dir("child.vhd"), in_dir("base.vhd"));
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_open(in_dir("child.vhd"), 0, &img, &err), 0, "%s", err.message);
	cr_assert_not_null(vhd_parent(img));
	cr_assert_not_null(vhd_parent_path(img));
	cr_assert_not_null(strstr(vhd_parent_path(img), "base.vhd"));
	cr_assert_null(vhd_parent_error(img));
	uint8_t buf[4096], want[4096];
	t_fill(want, sizeof(want), 1);
	cr_assert_eq(vhd_pread(img, buf, sizeof(buf), 0), 0);
	cr_assert_eq(memcmp(buf, want, sizeof(buf)), 0);
	struct vhd_extent e;
	cr_assert_eq(vhd_block_status(img, 0, SIZE, &e), 0);
	cr_assert_eq(e.depth, 1);
	cr_assert(e.flags & VHD_EXTENT_DATA);
	cr_assert_eq(vhd_block_status(img, BSZ, SIZE - BSZ, &e), 0);
	cr_assert_eq(e.flags, VHD_EXTENT_ZERO);
	/* No layer holds it: the depth is the number of parents (qemu-img
	 * map counts the same way). */
	cr_assert_eq(e.depth, 1);
	vhd_close(img);
}

Test(chain, moved_together_still_opens)
{
	make_dynamic(in_dir("base.vhd"), 2);
	make_child(in_dir("child.vhd"), in_dir("base.vhd"));
	/* Move both into a new folder: the relative locator still works,
	 * the absolute one (MacX) no longer does. */
	cr_assert_eq(mkdir(in_dir("moved"), 0755), 0);
	cr_assert_eq(rename(in_dir("base.vhd"), in_dir("moved/base.vhd")), 0);
	cr_assert_eq(rename(in_dir("child.vhd"), in_dir("moved/child.vhd")), 0);
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_open(in_dir("moved/child.vhd"), 0, &img, &err), 0, "%s", err.message);
	uint8_t buf[512], want[4096];
	t_fill(want, sizeof(want), 2);
	cr_assert_eq(vhd_pread(img, buf, sizeof(buf), 0), 0);
	cr_assert_eq(memcmp(buf, want, sizeof(buf)), 0);
	vhd_close(img);
}

Test(chain, missing_parent_names_what_was_tried)
{
	make_dynamic(in_dir("base.vhd"), 0);
	make_child(in_dir("child.vhd"), in_dir("base.vhd"));
	cr_assert_eq(unlink(in_dir("base.vhd")), 0);
	struct vhd_image *img = (struct vhd_image *)1;
	struct vhd_error err;
	int r = vhd_open(in_dir("child.vhd"), 0, &img, &err);
	cr_assert_eq(r, -ENOENT, "%d %s", r, err.message);
	cr_assert_null(img);
	cr_assert_not_null(strstr(err.message, "base.vhd"), "%s", err.message);
	cr_assert_not_null(strstr(err.message, "not found"), "%s", err.message);
	/* check: the file is sound, the chain cannot be checked. */
	struct vhd_check_report rep;
	cr_assert_eq(vhd_check(in_dir("child.vhd"), &rep, &err), 0);
	cr_assert_eq(rep.corruptions, 0u, "%s", t_report_text(&rep));
	cr_assert(!rep.complete);
	vhd_check_report_free(&rep);
}

Test(chain, parent_uuid_mismatch)
{
	make_dynamic(in_dir("base.vhd"), 3);
	make_child(in_dir("child.vhd"), in_dir("base.vhd"));
	const uint8_t other[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	patch_file_footers(in_dir("base.vhd"), 68, other, 16);
	struct vhd_image *img;
	struct vhd_error err;
	int r = vhd_open(in_dir("child.vhd"), 0, &img, &err);
	cr_assert_lt(r, 0);
	cr_assert_not_null(strstr(err.message, "UUID"), "%s", err.message);
	cr_assert_not_null(strstr(err.message, "01020304-0506-0708-090a-0b0c0d0e0f10"), "%s",
			   err.message);
	/* The override opens it, with a warning. */
	cr_assert_eq(vhd_open(in_dir("child.vhd"), VHD_OPEN_IGNORE_PARENT_ID, &img, &err), 0, "%s",
		     err.message);
	cr_assert_not_null(strstr(vhd_warnings(img), "ignored"), "%s", vhd_warnings(img));
	vhd_close(img);
	struct vhd_check_report rep;
	cr_assert_eq(vhd_check(in_dir("child.vhd"), &rep, &err), 0);
	cr_assert_gt(rep.corruptions, 0u, "check reports the wrong parent");
	vhd_check_report_free(&rep);
}

Test(chain, parent_timestamp_mismatch_warns)
{
	make_dynamic(in_dir("base.vhd"), 4);
	make_child(in_dir("child.vhd"), in_dir("base.vhd"));
	const uint8_t ts[4] = { 0x11, 0x22, 0x33, 0x44 };
	patch_file_footers(in_dir("base.vhd"), 24, ts, 4);
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_open(in_dir("child.vhd"), 0, &img, &err), 0, "%s", err.message);
	cr_assert_not_null(strstr(vhd_warnings(img), "timestamp"), "%s", vhd_warnings(img));
	uint8_t buf[512], want[4096];
	t_fill(want, sizeof(want), 4);
	cr_assert_eq(vhd_pread(img, buf, sizeof(buf), 0), 0);
	cr_assert_eq(memcmp(buf, want, sizeof(buf)), 0);
	vhd_close(img);
	struct vhd_check_report rep;
	cr_assert_eq(vhd_check(in_dir("child.vhd"), &rep, &err), 0);
	cr_assert_eq(rep.corruptions, 0u, "%s", t_report_text(&rep));
	cr_assert_gt(rep.warnings, 0u);
	vhd_check_report_free(&rep);
}

Test(chain, cycle_is_refused)
{
	/* x <- a <- b, then b takes x's place: a -> b -> a -> ... */
	make_dynamic(in_dir("x.vhd"), 0);
	make_child(in_dir("a.vhd"), in_dir("x.vhd"));
	make_child(in_dir("b.vhd"), in_dir("a.vhd"));
	cr_assert_eq(rename(in_dir("b.vhd"), in_dir("x.vhd")), 0);
	const unsigned flags[] = { 0, VHD_OPEN_IGNORE_PARENT_ID };
	for (int i = 0; i < 2; i++) {
		struct vhd_image *img = NULL;
		struct vhd_error err;
		int r = vhd_open(in_dir("a.vhd"), flags[i], &img, &err);
		cr_assert_eq(r, -ELOOP, "flags %u: %d %s", flags[i], r, err.message);
		cr_assert_null(img);
		cr_assert(strstr(err.message, "cycle") || strstr(err.message, "chain"), "%s",
			  err.message);
	}
	/* With PARENT_OPTIONAL (and the identity override, so that b is taken
	 * as a's parent) it opens; the layer whose parent would close the
	 * loop says so, and reads that reach below it fail. */
	struct vhd_image *img = NULL;
	struct vhd_error err;
	cr_assert_eq(vhd_open(in_dir("a.vhd"), VHD_OPEN_PARENT_OPTIONAL | VHD_OPEN_IGNORE_PARENT_ID,
			      &img, &err),
		     0, "%s", err.message);
	bool named = false;
	for (struct vhd_image *p = img; p; p = vhd_parent(p))
		named = named || (vhd_parent_error(p) && strstr(vhd_parent_error(p), "cycle"));
	cr_assert(named, "no layer names the cycle");
	uint8_t buf[512];
	cr_assert_lt(vhd_pread(img, buf, sizeof(buf), 0), 0);
	cr_assert_neq(vhd_errmsg(img)[0], '\0');
	vhd_close(img);

	struct vhd_check_report rep;
	cr_assert_eq(vhd_check(in_dir("a.vhd"), &rep, &err), 0);
	cr_assert_gt(rep.corruptions + rep.warnings, 0u);
	vhd_check_report_free(&rep);
}

/* A chain of n images: level k lives in dir + "/p" * k + "/c.vhd"; each
 * names its parent ".\p\c.vhd" and has its own UUID. */
static void make_deep_chain(int n)
{
	make_dynamic(in_dir("p/c.vhd") /* placeholder parent */, 0);
	make_child(in_dir("c.vhd"), in_dir("p/c.vhd"));
	size_t len;
	uint8_t *child = t_read_file(in_dir("c.vhd"), &len);
	size_t blen;
	uint8_t *base = t_read_file(in_dir("p/c.vhd"), &blen);
	char path[4200];
	snprintf(path, sizeof(path), "%s", dir);
	for (int k = 0; k < n; k++) {
		if (k) {
			strcat(path, "/p");
			mkdir(path, 0755);
		}
		char file[4300];
		snprintf(file, sizeof(file), "%s/c.vhd", path);
		uint8_t uuid[16] = { 0xC4, 0xA1, 0x2E, (uint8_t)k };
		if (k == n - 1) {
			t_write_file(file, base, blen);
		} else {
			t_write_file(file, child, len);
		}
		patch_file_footers(file, 68, uuid, 16);
	}
	free(child);
	free(base);
}

Test(chain, ten_levels_open)
{
	cr_assert_eq(mkdir(in_dir("p"), 0755), 0);
	make_deep_chain(10);
	struct vhd_image *img;
	struct vhd_error err;
	cr_assert_eq(vhd_open(in_dir("c.vhd"), VHD_OPEN_IGNORE_PARENT_ID, &img, &err), 0, "%s",
		     err.message);
	int depth = 0;
	for (struct vhd_image *p = img; vhd_parent(p); p = vhd_parent(p))
		depth++;
	cr_assert_eq(depth, 9);
	struct vhd_extent e;
	cr_assert_eq(vhd_block_status(img, 0, SIZE, &e), 0);
	cr_assert_eq(e.depth, 9);
	cr_assert_eq(e.flags, VHD_EXTENT_ZERO);
	vhd_close(img);
}

Test(chain, too_deep_is_refused)
{
	cr_assert_eq(mkdir(in_dir("p"), 0755), 0);
	make_deep_chain(VHD_MAX_CHAIN_DEPTH + 6);
	struct vhd_image *img = NULL;
	struct vhd_error err;
	int r = vhd_open(in_dir("c.vhd"), VHD_OPEN_IGNORE_PARENT_ID, &img, &err);
	cr_assert(r == -EMLINK || r == -ELOOP, "%d %s", r, err.message);
	cr_assert_null(img);
	cr_assert_not_null(strstr(err.message, "deeper"), "%s", err.message);
}

Test(chain, child_larger_than_parent_reads_zeros_past_its_end)
{
	make_dynamic(in_dir("base.vhd"), 5);
	struct vhd_create_params p = { .type = VHD_TYPE_DIFFERENCING, .parent = in_dir("base.vhd"),
				       .block_size = BSZ };
	struct vhd_error err;
	cr_assert_eq(vhd_create(in_dir("child.vhd"), &p, NULL, &err), 0, "%s", err.message);
	/* Grow the child to twice its parent (as a resize would). */
	size_t len;
	uint8_t *b = t_read_file(in_dir("child.vhd"), &len);
	t_patch_footers_be64(b, len, T_F_CURRENT_SIZE, 2 * SIZE);
	vhd_put_be32(b + 512 + T_H_MAX_ENTRIES, 2 * SIZE / BSZ);
	t_fix_header(b + 512);
	t_write_file(in_dir("child.vhd"), b, len);
	free(b);

	struct vhd_image *img;
	cr_assert_eq(vhd_open(in_dir("child.vhd"), VHD_OPEN_RDWR, &img, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_virtual_size(img), 2 * SIZE);
	uint8_t *model = calloc(1, 2 * SIZE), *buf = malloc(2 * SIZE);
	cr_assert(model && buf);
	t_fill(model, 4096, 5);
	cr_assert_eq(vhd_pread(img, buf, 2 * SIZE, 0), 0, "%s", vhd_errmsg(img));
	cr_assert_eq(memcmp(buf, model, 2 * SIZE), 0);
	/* Partial sectors past the parent's end are completed with zeros;
	 * one write straddles the parent's end. */
	uint8_t data[3000];
	t_fill(data, sizeof(data), 6);
	const uint64_t at[] = { SIZE + 100, SIZE - 1000, 2 * SIZE - 700 };
	for (int i = 0; i < 3; i++) {
		uint64_t n = vhd_min_u64(sizeof(data), 2 * SIZE - at[i]);
		cr_assert_eq(vhd_pwrite(img, data, n, at[i]), 0, "%s", vhd_errmsg(img));
		memcpy(model + at[i], data, n);
	}
	struct vhd_extent e;
	cr_assert_eq(vhd_block_status(img, SIZE + 512, SIZE - 512, &e), 0);
	cr_assert(e.flags & VHD_EXTENT_DATA, "the child's own sectors");
	cr_assert_eq(e.depth, 0);
	cr_assert_eq(e.length, 3000 + 100 - 512 + (512 - (3100 % 512)), "to the last held sector");
	cr_assert_eq(vhd_block_status(img, SIZE + 4096, SIZE - 4096, &e), 0);
	cr_assert_eq(e.flags, VHD_EXTENT_ZERO, "past the parent's end, not held: zeros");
	cr_assert_eq(vhd_pread(img, buf, 2 * SIZE, 0), 0);
	cr_assert_eq(memcmp(buf, model, 2 * SIZE), 0);
	cr_assert_eq(vhd_close(img), 0);

	cr_assert_eq(vhd_open(in_dir("child.vhd"), 0, &img, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_pread(img, buf, 2 * SIZE, 0), 0);
	cr_assert_eq(memcmp(buf, model, 2 * SIZE), 0, "after reopen");
	vhd_close(img);
	struct vhd_check_report rep;
	cr_assert_eq(vhd_check(in_dir("child.vhd"), &rep, &err), 0);
	cr_assert_eq(rep.corruptions, 0u, "%s", t_report_text(&rep));
	vhd_check_report_free(&rep);
	free(model);
	free(buf);
}

Test(chain, create_refuses_an_existing_file_and_leaves_it)
{
	make_dynamic(in_dir("base.vhd"), 7);
	size_t len;
	uint8_t *before = t_read_file(in_dir("base.vhd"), &len);
	struct vhd_create_params p = { .type = VHD_TYPE_DYNAMIC, .size = SIZE };
	struct vhd_error err;
	int r = vhd_create(in_dir("base.vhd"), &p, NULL, &err);
	cr_assert_eq(r, -EEXIST, "%d %s", r, err.message);
	cr_assert_neq(err.message[0], '\0');
	size_t len2;
	uint8_t *after = t_read_file(in_dir("base.vhd"), &len2);
	cr_assert_eq(len2, len);
	cr_assert_eq(memcmp(before, after, len), 0);
	/* A differencing child of itself is refused the same way. */
	struct vhd_create_params c = { .type = VHD_TYPE_DIFFERENCING, .parent = in_dir("base.vhd") };
	cr_assert_lt(vhd_create(in_dir("base.vhd"), &c, NULL, &err), 0);
	/* A missing parent: nothing is created. */
	c.parent = in_dir("nothere.vhd");
	cr_assert_lt(vhd_create(in_dir("child.vhd"), &c, NULL, &err), 0);
	cr_assert_not_null(strstr(err.message, "nothere.vhd"), "%s", err.message);
	cr_assert_neq(access(in_dir("child.vhd"), F_OK), 0);
	free(before);
	free(after);
}
