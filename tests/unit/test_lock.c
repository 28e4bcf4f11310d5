/* SPDX-License-Identifier: MIT */
/* The writer's lock: one writer at a time, readers share; also across processes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libvhd.h"

static char dir[64], path[96];

static void setup(void)
{
	strcpy(dir, "/tmp/vhdlock.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/l.vhd", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(lock, .init = setup, .fini = teardown);

Test(lock, second_writer_refused_readers_share)
{
	struct vhd_create_params p = { .type = VHD_TYPE_DYNAMIC, .size = 4u << 20 };
	struct vhd_image *writer, *other, *reader;
	struct vhd_error err;

	cr_assert_eq(vhd_create(path, &p, &writer, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_open(path, VHD_OPEN_RDWR, &other, &err), -EBUSY);
	cr_assert_not_null(strstr(err.message, "another process has the image open for writing"),
			   "message: %s", err.message);
	cr_assert_eq(vhd_open(path, 0, &reader, &err), 0, "%s", err.message);

	/* Another process is refused as well. */
	pid_t pid = fork();
	if (pid == 0) {
		struct vhd_image *img;
		_exit(vhd_open(path, VHD_OPEN_RDWR, &img, NULL) == -EBUSY ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a second process got the write lock");

	cr_assert_eq(vhd_close(writer), 0);
	cr_assert_eq(vhd_open(path, VHD_OPEN_RDWR, &other, &err), 0, "%s", err.message);
	cr_assert_eq(vhd_close(other), 0);
	cr_assert_eq(vhd_close(reader), 0);
}
