/* SPDX-License-Identifier: MIT */
/* The POSIX file backend, with the writer's lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "internal.h"

struct posix_io {
	struct vhd_io base;
	int fd;
	bool regular;
	char *path;
	/* vhd_io_posix_confine: resolved folders parents may be opened from
	 * (NULL-terminated), or NULL for anywhere. */
	char **parent_dirs;
	/* Write-behind for a handle that flushes: bytes written since the
	 * last writeback kick (see px_pwrite). */
	bool flushes;
	uint64_t unkicked;
	/* A file this handle created on ext4: large writes reserve their
	 * range first (see px_reserve). */
	bool reserve_writes;
};

/* A handle that has flushed once will flush again: start writeback every
 * WRITE_BEHIND bytes so the disk works while we copy, and the next flush
 * waits only for the tail (merge, compact and synced converts run at
 * close to the disk's speed instead of copy time plus flush time). */
#define WRITE_BEHIND (32u << 20)

static struct posix_io *pio(struct vhd_io *io)
{
	return (struct posix_io *)io;
}

static int px_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(pio(io)->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* past the end of the file */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Large writes only: the copy loops write up to 2 MiB at a time, and a
 * small write has little per-block work to save for its extra call. */
#define RESERVE_MIN (256u << 10)

/*
 * A new file is filled by large writes into holes.  ext4 then reserves,
 * per 4 KiB block, space for delayed allocation at write time and
 * allocates at writeback; one fallocate for the write's range allocates
 * it as a single unwritten extent, so the write only copies (figures:
 * docs/figures.md, convert).  KEEP_SIZE: a dynamic image appends blocks
 * over its end footer, and the file must not grow before the data is
 * written.  Only a hint: any failure (ENOSPC included) is left for the
 * write to report.
 */
static void px_reserve(struct posix_io *p, size_t len, uint64_t off)
{
	if (fallocate(p->fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 &&
	    (errno == EOPNOTSUPP || errno == ENOSYS))
		p->reserve_writes = false;
}

static int px_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	if (pio(io)->reserve_writes && len >= RESERVE_MIN)
		px_reserve(pio(io), len, off);
	while (len) {
		ssize_t n = pwrite(pio(io)->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
		pio(io)->unkicked += (uint64_t)n;
	}
	if (pio(io)->flushes && pio(io)->unkicked >= WRITE_BEHIND) {
		pio(io)->unkicked = 0;
		/* Only a hint: a failure shows up at the next flush. */
		(void)sync_file_range(pio(io)->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	return 0;
}

static int px_flush(struct vhd_io *io)
{
	pio(io)->flushes = pio(io)->regular;
	pio(io)->unkicked = 0;
	return fdatasync(pio(io)->fd) < 0 ? -errno : 0;
}

static int px_size(struct vhd_io *io, uint64_t *size)
{
	struct stat st;
	if (fstat(pio(io)->fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	off_t end = lseek(pio(io)->fd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	*size = (uint64_t)end;
	return 0;
}

static int px_truncate(struct vhd_io *io, uint64_t size)
{
	return ftruncate(pio(io)->fd, (off_t)size) < 0 ? -errno : 0;
}

static int px_discard(struct vhd_io *io, uint64_t off, uint64_t len)
{
	if (fallocate(pio(io)->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) < 0)
		return errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	return 0;
}

static int px_data_extent(struct vhd_io *io, uint64_t off, uint64_t *len, bool *is_data)
{
	int fd = pio(io)->fd;
	if (!pio(io)->regular)
		return -EOPNOTSUPP;
	off_t data = lseek(fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno != ENXIO)
		return -errno;
	if (data == (off_t)off) {
		off_t hole = lseek(fd, (off_t)off, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		*is_data = true;
		*len = (uint64_t)hole - off;
		return 0;
	}
	uint64_t size;
	int r = px_size(io, &size);
	if (r < 0)
		return r;
	*is_data = false;
	*len = (data < 0 ? size : (uint64_t)data) - off;
	return 0;
}

/* Internal flag: the last component must not be a symbolic link. */
#define PX_NOFOLLOW 0x100u

static int px_open_fd(const char *path, unsigned flags, int *out_fd, bool *regular)
{
	int oflags = O_CLOEXEC | O_NONBLOCK; /* a FIFO must not block the open */
	if (flags & PX_NOFOLLOW)
		oflags |= O_NOFOLLOW;
	if (flags & VHD_IO_RDWR)
		oflags |= O_RDWR;
	else
		oflags |= O_RDONLY;
	if (flags & VHD_IO_CREATE)
		oflags |= O_CREAT | O_EXCL;
	int fd = open(path, oflags, 0644);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	*regular = S_ISREG(st.st_mode);
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	if (!*regular && !(flags & VHD_IO_ANY_FILE)) {
		close(fd);
		return -ENODEV;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if ((flags & VHD_IO_RDWR) && *regular) {
		struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fcntl(fd, F_OFD_SETLK, &lk) < 0) {
			int e = errno;
			close(fd);
			return e == EAGAIN || e == EACCES ? -EBUSY : -e;
		}
	}
	*out_fd = fd;
	return 0;
}

static const struct vhd_io_ops posix_ops;
static void px_close(struct vhd_io *io);

static int px_make(const char *path, unsigned flags, struct vhd_io **out)
{
	struct posix_io *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->path = strdup(path);
	if (!p->path) {
		free(p);
		return -ENOMEM;
	}
	int r = px_open_fd(path, flags, &p->fd, &p->regular);
	if (r < 0) {
		free(p->path);
		free(p);
		return r;
	}
	p->base.ops = &posix_ops;
	p->base.name = p->path;
	/* Only on ext4, where it was measured (bench/convert.sh); on tmpfs
	 * fallocate would clear pages the write then fills. */
	struct statfs fs;
	p->reserve_writes = (flags & VHD_IO_CREATE) && p->regular && fstatfs(p->fd, &fs) == 0 &&
			    fs.f_type == EXT4_SUPER_MAGIC;
	*out = &p->base;
	return 0;
}

static void free_dirs(char **dirs)
{
	if (!dirs)
		return;
	for (char **d = dirs; *d; d++)
		free(*d);
	free(dirs);
}

static char **copy_dirs(char *const *dirs)
{
	size_t n = 0;
	while (dirs[n])
		n++;
	char **out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		if (!(out[i] = strdup(dirs[i]))) {
			free_dirs(out);
			return NULL;
		}
	}
	return out;
}

/* Is real (a resolved path) dir itself or inside its tree? */
static bool path_inside(const char *real, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(real, dir, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

static bool inside_any(const char *real, char *const *dirs)
{
	for (; *dirs; dirs++)
		if (path_inside(real, *dirs))
			return true;
	return false;
}

/* Kernel file systems whose "regular" files are not disk images (their
 * contents are the process's memory, environment, kernel state). */
static bool on_pseudo_fs(int fd)
{
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return true;
	switch ((unsigned long)sf.f_type) {
	case PROC_SUPER_MAGIC:
	case SYSFS_MAGIC:
	case DEBUGFS_MAGIC:
	case TRACEFS_MAGIC:
	case SECURITYFS_MAGIC:
	case CGROUP_SUPER_MAGIC:
	case CGROUP2_SUPER_MAGIC:
	case EFIVARFS_MAGIC:
		return true;
	}
	return false;
}

/* The file fd is open on, resolved afresh: a folder swapped for a link
 * between the check and the open shows here. */
static bool fd_inside_any(int fd, const char *real, char *const *dirs)
{
	char link[64], now[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, now, sizeof(now) - 1);
	if (n > 0) {
		now[n] = '\0';
		return inside_any(now, dirs);
	}
	/* No /proc: the file must still be the one the name resolves to. */
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(real, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/*
 * Open a parent under the rules of vhd_io_posix_confine: the name resolved
 * (every link followed) must lie inside an allowed folder, the open must
 * not follow a link, the file must be regular (px_open_fd) and not on a
 * kernel pseudo file system.  A refusal by these rules is -EPERM (and
 * -EPERM means nothing else here), so the core can say why.
 */
static int px_open_confined(const char *path, char *const *dirs, struct vhd_io **out)
{
	char *real = realpath(path, NULL);
	if (!real)
		return errno == EPERM ? -EACCES : -errno;
	int r = -EPERM;
	if (inside_any(real, dirs)) {
		r = px_make(real, PX_NOFOLLOW, out);
		if (r == -EPERM)
			r = -EACCES;
	}
	if (r == 0) {
		int fd = pio(*out)->fd;
		if (on_pseudo_fs(fd) || !fd_inside_any(fd, real, dirs)) {
			px_close(*out);
			*out = NULL;
			r = -EPERM;
		} else if (!(pio(*out)->parent_dirs = copy_dirs(dirs))) {
			px_close(*out);
			*out = NULL;
			r = -ENOMEM;
		}
	}
	free(real);
	return r;
}

static int px_open_sibling(struct vhd_io *io, const char *path, struct vhd_io **out)
{
	const char *self = pio(io)->path;
	char *const *dirs = pio(io)->parent_dirs;
	*out = NULL;
	if (path[0] == '/')
		return dirs ? px_open_confined(path, dirs, out) : px_make(path, 0, out);
	const char *slash = strrchr(self, '/');
	size_t dlen = slash ? (size_t)(slash - self) + 1 : 0;
	size_t plen = strlen(path);
	char *full = malloc(dlen + plen + 1);
	if (!full)
		return -ENOMEM;
	memcpy(full, self, dlen);
	memcpy(full + dlen, path, plen + 1);
	int r = dirs ? px_open_confined(full, dirs, out) : px_make(full, 0, out);
	free(full);
	return r;
}

static int px_copy(struct vhd_io *io, uint64_t from, uint64_t to, uint64_t len)
{
	int fd = pio(io)->fd;
	while (len) {
		loff_t in = (loff_t)from, out = (loff_t)to;
		ssize_t n = copy_file_range(fd, &in, fd, &out, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		from += (uint64_t)n;
		to += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static void px_close(struct vhd_io *io)
{
	close(pio(io)->fd);
	free(pio(io)->path);
	free_dirs(pio(io)->parent_dirs);
	free(io);
}

static const struct vhd_io_ops posix_ops = {
	.pread = px_pread,
	.pwrite = px_pwrite,
	.flush = px_flush,
	.size = px_size,
	.truncate = px_truncate,
	.discard = px_discard,
	.data_extent = px_data_extent,
	.open_sibling = px_open_sibling,
	.close = px_close,
	.copy = px_copy,
};

int vhd_io_posix_open(const char *path, unsigned flags, struct vhd_io **out,
		      struct vhd_error *err)
{
	int r = px_make(path, flags, out);
	if (r == -EBUSY)
		vhd_set_error(err, r, "%s: another process has the image open for writing", path);
	else if (r == -ENODEV)
		vhd_set_error(err, r, "%s: not a regular file", path);
	else if (r == -EEXIST)
		vhd_set_error(err, r, "%s: file already exists", path);
	else if (r < 0)
		vhd_set_error(err, r, "%s: %s", path, strerror(-r));
	return r;
}

int vhd_io_posix_confine(struct vhd_io *io, const char *const *dirs, struct vhd_error *err)
{
	if (io->ops != &posix_ops) {
		vhd_set_error(err, -EINVAL, "%s: not a POSIX file backend", io->name);
		return -EINVAL;
	}
	size_t n = 0;
	while (dirs && dirs[n])
		n++;
	char **real = calloc(n + 1, sizeof(*real));
	if (!real) {
		vhd_set_error(err, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		real[i] = realpath(dirs[i], NULL);
		if (!real[i] || stat(real[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			int r = real[i] ? -ENOTDIR : -errno;
			vhd_set_error(err, r, "%s: cannot allow parents from this folder: %s", dirs[i],
				      strerror(-r));
			free_dirs(real);
			return r;
		}
	}
	free_dirs(pio(io)->parent_dirs);
	pio(io)->parent_dirs = real;
	return 0;
}
