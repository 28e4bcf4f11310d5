/* SPDX-License-Identifier: MIT */
/* vhd_io_posix_confine / vhd_open_confined: where parents may be opened from. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define SIZE (2 * T_MIB)

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

TestSuite(confine, .init = setup, .fini = teardown);

static char *in_dir(const char *name)
{
	static char paths[6][4200];
	static int next;
	char *p = paths[next++ % 6];
	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

/* dir/a/base.vhd (dynamic) and dir/b/child.vhd above it. */
static void make_chain(void)
{
	struct vhd_error err;
	struct vhd_image *img;
	cr_assert_eq(mkdir(in_dir("a"), 0755), 0);
	cr_assert_eq(mkdir(in_dir("b"), 0755), 0);
	struct vhd_create_params base = { .type = VHD_TYPE_DYNAMIC, .size = SIZE };
	cr_assert_eq(vhd_create(in_dir("a/base.vhd"), &base, NULL, &err), 0, "%s", err.message);
	struct vhd_create_params child = { .type = VHD_TYPE_DIFFERENCING,
					   .parent = in_dir("a/base.vhd") };
	cr_assert_eq(vhd_create(in_dir("b/child.vhd"), &child, &img, &err), 0, "%s", err.message);
	vhd_close(img);
}

Test(confine, parent_outside_is_refused_inside_is_opened)
{
	struct vhd_error err;
	struct vhd_image *img;
	make_chain();
	const char *only_b[] = { in_dir("b"), NULL };
	int r = vhd_open_confined(in_dir("b/child.vhd"), 0, only_b, &img, &err);
	cr_assert_eq(r, -EPERM, "got %d: %s", r, err.message);
	cr_assert_null(img);
	cr_assert(strstr(err.message, "not in a folder allowed for parent images"), "%s", err.message);
	cr_assert(strstr(err.message, "base.vhd"), "%s", err.message);

	const char *both[] = { in_dir("b"), in_dir("a"), NULL };
	cr_assert_eq(vhd_open_confined(in_dir("b/child.vhd"), 0, both, &img, &err), 0, "%s",
		     err.message);
	cr_assert_not_null(vhd_parent(img));
	vhd_close(img);

	/* The whole tree above a folder counts: dir itself allows a/ and b/. */
	const char *top[] = { dir, NULL };
	cr_assert_eq(vhd_open_confined(in_dir("b/child.vhd"), 0, top, &img, &err), 0, "%s",
		     err.message);
	vhd_close(img);
	/* NULL: unconfined, as vhd_open. */
	cr_assert_eq(vhd_open_confined(in_dir("b/child.vhd"), 0, NULL, &img, &err), 0, "%s",
		     err.message);
	vhd_close(img);
}

Test(confine, prefix_is_not_a_folder)
{
	struct vhd_error err;
	struct vhd_image *img;
	make_chain();
	/* "dir/a" must not allow "dir/ab". */
	cr_assert_eq(rename(in_dir("a"), in_dir("ab")), 0);
	cr_assert_eq(mkdir(in_dir("a"), 0755), 0);
	struct vhd_image *relinked;
	cr_assert_eq(vhd_open(in_dir("b/child.vhd"), VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT, &relinked,
			      &err), 0, "%s", err.message);
	cr_assert_eq(vhd_set_parent_path(relinked, in_dir("ab/base.vhd"), 0, &err), 0, "%s",
		     err.message);
	vhd_close(relinked);
	const char *dirs[] = { in_dir("a"), in_dir("b"), NULL };
	cr_assert_eq(vhd_open_confined(in_dir("b/child.vhd"), 0, dirs, &img, &err), -EPERM, "%s",
		     err.message);
}

Test(confine, link_escaping_and_fifo_are_refused)
{
	struct vhd_error err;
	struct vhd_image *img;
	make_chain();
	/* b/base.vhd -> ../a/base.vhd, and the child names b/base.vhd. */
	cr_assert_eq(symlink("../a/base.vhd", in_dir("b/base.vhd")), 0);
	cr_assert_eq(vhd_open(in_dir("b/child.vhd"), VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT, &img,
			      &err), 0, "%s", err.message);
	struct vhd_parent_ref ref = { 0 };
	struct vhd_image *parent;
	cr_assert_eq(vhd_open(in_dir("a/base.vhd"), 0, &parent, &err), 0);
	ref.image = parent;
	ref.relative_path = "base.vhd";
	cr_assert_eq(vhd_set_parent(img, &ref, 0), 0, "%s", vhd_errmsg(img));
	vhd_close(parent);
	vhd_close(img);
	const char *only_b[] = { in_dir("b"), NULL };
	cr_assert_eq(vhd_open_confined(in_dir("b/child.vhd"), 0, only_b, &img, &err), -EPERM, "%s",
		     err.message);
	/* A FIFO in its place: refused (not opened for reading, which would
	 * block), the folder being allowed. */
	cr_assert_eq(unlink(in_dir("b/base.vhd")), 0);
	cr_assert_eq(mkfifo(in_dir("b/base.vhd"), 0600), 0);
	int r = vhd_open_confined(in_dir("b/child.vhd"), 0, only_b, &img, &err);
	cr_assert_eq(r, -ENODEV, "got %d: %s", r, err.message);
	cr_assert(strstr(err.message, "not a regular file"), "%s", err.message);
	/* /proc: refused even when / is allowed. */
	cr_assert_eq(unlink(in_dir("b/base.vhd")), 0);
	cr_assert_eq(symlink("/proc/self/environ", in_dir("b/base.vhd")), 0);
	const char *root[] = { "/", NULL };
	cr_assert_eq(vhd_open_confined(in_dir("b/child.vhd"), 0, root, &img, &err), -EPERM, "%s",
		     err.message);
}

Test(confine, bad_folders_and_backends)
{
	struct vhd_error err;
	struct vhd_io *io;
	make_chain();
	cr_assert_eq(vhd_io_posix_open(in_dir("b/child.vhd"), 0, &io, &err), 0);
	const char *missing[] = { in_dir("nothing"), NULL };
	cr_assert_eq(vhd_io_posix_confine(io, missing, &err), -ENOENT);
	cr_assert(strstr(err.message, "nothing"), "%s", err.message);
	const char *file[] = { in_dir("a/base.vhd"), NULL };
	cr_assert_eq(vhd_io_posix_confine(io, file, &err), -ENOTDIR);
	/* An empty list allows no parent at all. */
	const char *none[] = { NULL };
	cr_assert_eq(vhd_io_posix_confine(io, none, &err), 0);
	struct vhd_image *img;
	cr_assert_eq(vhd_open_io(io, 0, &img, &err), -EPERM, "%s", err.message);

	struct vhd_io *mem;
	cr_assert_eq(vhd_io_mem_open(NULL, 0, &mem), 0);
	cr_assert_eq(vhd_io_posix_confine(mem, none, &err), -EINVAL);
	vhd_io_close(mem);
}
