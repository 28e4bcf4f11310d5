/* SPDX-License-Identifier: MIT */
/*
 * The POSIX backend reserves the range of a large write into a file it
 * created on ext4 (one unwritten extent instead of per-block delayed
 * allocation): the data, the holes and the file size must be exactly what
 * plain writes give.  FIEMAP tells the two ways apart before writeback.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "helpers.h"

static char dir[256], path[300];

/* A scratch folder on ext4: /tmp is tmpfs on many systems. */
static void setup(void)
{
	const char *places[] = { getenv("TMPDIR"), "/tmp", "/var/tmp", "build" };
	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		struct statfs fs;
		if (!places[i] || statfs(places[i], &fs) != 0 || fs.f_type != EXT4_SUPER_MAGIC)
			continue;
		snprintf(dir, sizeof(dir), "%s/vhdreserve.XXXXXX", places[i]);
		cr_assert_not_null(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/f", dir);
		return;
	}
	cr_skip_test("no ext4 folder among $TMPDIR, /tmp, /var/tmp, build: writes are reserved only on ext4");
}

static void teardown(void)
{
	if (path[0])
		unlink(path);
	if (dir[0])
		rmdir(dir);
}

/* Write-back (or ext4 mounted nodelalloc) turns delayed blocks into
 * allocated ones and would hide the difference this test looks for. */
static void require_delayed(bool delayed)
{
	if (!delayed)
		cr_skip_test("a small write is already allocated: write-back ran, or ext4 does no delayed allocation here");
}

TestSuite(reserve, .init = setup, .fini = teardown);

enum mapping { HOLE, DELAYED, ALLOCATED };

/* How the file system maps byte off: not at all, by delayed allocation, or
 * to blocks on disk. */
static enum mapping mapping_at(uint64_t off)
{
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	struct {
		struct fiemap map;
		struct fiemap_extent ext[1];
	} fm;
	memset(&fm, 0, sizeof(fm));
	fm.map.fm_start = off;
	fm.map.fm_length = 1;
	fm.map.fm_extent_count = 1;
	cr_assert_eq(ioctl(fd, FS_IOC_FIEMAP, &fm.map), 0);
	close(fd);
	if (fm.map.fm_mapped_extents == 0 || fm.ext[0].fe_logical > off)
		return HOLE;
	return fm.ext[0].fe_flags & FIEMAP_EXTENT_DELALLOC ? DELAYED : ALLOCATED;
}

static void write_at(struct vhd_io *io, uint64_t off, size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);
	cr_assert_not_null(buf);
	t_fill(buf, len, seed);
	cr_assert_eq(io->ops->pwrite(io, buf, len, off), 0);
	free(buf);
}

static void expect_data(struct vhd_io *io, uint64_t off, size_t len, uint64_t seed)
{
	uint8_t *want = malloc(len), *got = malloc(len);
	cr_assert(want && got);
	t_fill(want, len, seed);
	cr_assert_eq(io->ops->pread(io, got, len, off), 0);
	cr_assert_arr_eq(got, want, len, "data at %llu differs", (unsigned long long)off);
	free(want);
	free(got);
}

Test(reserve, created_file_large_writes_allocated_holes_and_size_kept)
{
	struct vhd_io *io;
	struct vhd_error err;
	cr_assert_eq(vhd_io_posix_open(path, VHD_IO_RDWR | VHD_IO_CREATE, &io, &err), 0, "%s",
		     err.message);
	write_at(io, 0, 4096, 1);                /* small: left to the file system */
	write_at(io, 2 * T_MIB, T_MIB, 2);       /* large, past the end */
	write_at(io, 8 * T_MIB, 256 * T_KIB, 3); /* the smallest reserved write */

	uint64_t size;
	cr_assert_eq(io->ops->size(io, &size), 0);
	cr_assert_eq(size, 8 * T_MIB + 256 * T_KIB, "the file grew only as far as the writes");
	require_delayed(mapping_at(0) == DELAYED);
	cr_assert_eq(mapping_at(2 * T_MIB), ALLOCATED, "a large write's range is allocated at once");
	cr_assert_eq(mapping_at(3 * T_MIB - 1), ALLOCATED);
	cr_assert_eq(mapping_at(8 * T_MIB), ALLOCATED);
	cr_assert_eq(mapping_at(4096), HOLE, "the gap stays a hole");
	cr_assert_eq(mapping_at(3 * T_MIB), HOLE, "nothing is allocated past a write");

	expect_data(io, 0, 4096, 1);
	expect_data(io, 2 * T_MIB, T_MIB, 2);
	expect_data(io, 8 * T_MIB, 256 * T_KIB, 3);
	uint64_t len;
	bool is_data;
	cr_assert_eq(io->ops->data_extent(io, 4096, &len, &is_data), 0);
	cr_assert(!is_data);
	cr_assert_eq(len, 2 * T_MIB - 4096);
	io->ops->close(io);
}

Test(reserve, existing_file_not_reserved)
{
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	struct vhd_io *io;
	struct vhd_error err;
	cr_assert_eq(vhd_io_posix_open(path, VHD_IO_RDWR, &io, &err), 0, "%s", err.message);
	write_at(io, 0, 4096, 5);
	write_at(io, T_MIB, T_MIB, 4);
	require_delayed(mapping_at(0) == DELAYED);
	cr_assert_eq(mapping_at(T_MIB), DELAYED,
		     "a file opened for update is written as it always was");
	expect_data(io, T_MIB, T_MIB, 4);
	io->ops->close(io);
}
