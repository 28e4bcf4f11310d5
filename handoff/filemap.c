/* SPDX-License-Identifier: MIT */
/* Where a file's bytes sit on its device now: FIEMAP, or FIBMAP one block
 * at a time where the file system has no FIEMAP; and a read-only mount of
 * the host partition to ask. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fiemap.h>
#include <linux/fs.h>

#include "sys.h"

#define SAY(...)                                             \
	do {                                                 \
		if (err && errlen)                           \
			snprintf(err, errlen, __VA_ARGS__);  \
	} while (0)

#define FIEMAP_BATCH 512u

static int push(struct ho_extent_list *l, size_t *cap, uint64_t start, uint64_t sectors,
		uint64_t host)
{
	if (l->n && l->v[l->n - 1].start + l->v[l->n - 1].sectors == start &&
	    l->v[l->n - 1].host + l->v[l->n - 1].sectors == host) {
		l->v[l->n - 1].sectors += sectors;
		return 0;
	}
	if (l->n >= 4 * (size_t)HO_MAX_EXTENTS)
		return -E2BIG;
	if (l->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct ho_extent *v = realloc(l->v, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		*cap = ncap;
	}
	l->v[l->n++] = (struct ho_extent){ start, sectors, host };
	return 0;
}

/* Extents a block device cannot stand in for: data not (yet) in place,
 * shared with another file, or transformed on the way. */
#define FIEMAP_REFUSED                                                                      \
	(FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_ENCODED |             \
	 FIEMAP_EXTENT_DATA_ENCRYPTED | FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_DATA_INLINE | \
	 FIEMAP_EXTENT_DATA_TAIL | FIEMAP_EXTENT_UNWRITTEN | FIEMAP_EXTENT_SHARED)

static int by_fiemap(int fd, struct ho_extent_list *out, size_t *cap, char *err, size_t errlen)
{
	size_t bytes = sizeof(struct fiemap) + FIEMAP_BATCH * sizeof(struct fiemap_extent);
	struct fiemap *fm = malloc(bytes);
	uint64_t at = 0;
	int r = 0;

	if (!fm)
		return -ENOMEM;
	for (;;) {
		memset(fm, 0, bytes);
		fm->fm_start = at;
		fm->fm_length = FIEMAP_MAX_OFFSET - at;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = FIEMAP_BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
			r = -errno;
			break;
		}
		if (fm->fm_mapped_extents == 0)
			break;
		bool last = false;
		for (uint32_t i = 0; i < fm->fm_mapped_extents && !r; i++) {
			const struct fiemap_extent *e = &fm->fm_extents[i];
			if (e->fe_flags & FIEMAP_REFUSED) {
				SAY("the file system reports an extent at byte %" PRIu64
				    " as unwritten, shared or not block-aligned (flags %#" PRIx32 ")",
				    (uint64_t)e->fe_logical, e->fe_flags);
				r = -ESTALE;
				break;
			}
			if (e->fe_logical % HO_SECTOR || e->fe_physical % HO_SECTOR ||
			    e->fe_length % HO_SECTOR || e->fe_length == 0 ||
			    e->fe_logical + e->fe_length < e->fe_logical) {
				SAY("the file system reports an extent at byte %" PRIu64
				    " that is not sector-aligned", (uint64_t)e->fe_logical);
				r = -ESTALE;
				break;
			}
			r = push(out, cap, e->fe_logical / HO_SECTOR, e->fe_length / HO_SECTOR,
				 e->fe_physical / HO_SECTOR);
			at = e->fe_logical + e->fe_length;
			last = e->fe_flags & FIEMAP_EXTENT_LAST;
		}
		if (r || last)
			break;
	}
	free(fm);
	return r;
}

static int by_fibmap(int fd, struct ho_extent_list *out, size_t *cap, char *err, size_t errlen)
{
	struct stat st;
	int bsz = 0;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (ioctl(fd, FIGETBSZ, &bsz) != 0)
		return -errno;
	if (bsz < (int)HO_SECTOR || bsz % (int)HO_SECTOR) {
		SAY("file system block size %d is not a multiple of 512", bsz);
		return -EINVAL;
	}
	uint64_t per = (uint64_t)bsz / HO_SECTOR;
	uint64_t blocks = ((uint64_t)st.st_size + (uint64_t)bsz - 1) / (uint64_t)bsz;
	if (blocks > INT32_MAX) {
		SAY("the file has more blocks than FIBMAP can number");
		return -EFBIG;
	}
	for (uint64_t b = 0; b < blocks; b++) {
		int blk = (int)b;
		if (ioctl(fd, FIBMAP, &blk) != 0)
			return -errno;
		if (blk == 0) {
			SAY("file block %" PRIu64 " has no place on the disk (a hole)", b);
			return -ESTALE;
		}
		int r = push(out, cap, b * per, per, (uint64_t)(unsigned)blk * per);
		if (r)
			return r;
	}
	return 0;
}

int ho_file_extents(int fd, int no_fiemap, struct ho_extent_list *out, char *err, size_t errlen)
{
	size_t cap = 0;
	int r = -EOPNOTSUPP;

	out->v = NULL;
	out->n = 0;
	if (!no_fiemap)
		r = by_fiemap(fd, out, &cap, err, errlen);
	if (r == -EOPNOTSUPP || r == -ENOTTY) {
		ho_extents_free(out);
		cap = 0;
		r = by_fibmap(fd, out, &cap, err, errlen);
	}
	if (r)
		ho_extents_free(out);
	return r;
}

/* File systems to try, most likely first; then any other the kernel has. */
static const char *const preferred[] = { "vfat", "exfat", "ext4" };

static int kernel_has(const char *list, const char *fs)
{
	size_t n = strlen(fs);
	for (const char *p = list; (p = strstr(p, fs)) != NULL; p += n)
		if ((p == list || p[-1] == '\t') && (p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

int ho_mount_ro(const struct ho_env *env, const char *node, char *mnt, size_t mntlen, char *err,
		size_t errlen)
{
	uint8_t *fs = NULL;
	size_t fslen = 0;
	char tried[160] = "";

	if (mkdir(env->run, 0700) != 0 && errno != EEXIST) {
		SAY("cannot create %s: %s", env->run, strerror(errno));
		return -errno;
	}
	snprintf(mnt, mntlen, "%s/check.XXXXXX", env->run);
	if (!mkdtemp(mnt)) {
		SAY("cannot create a folder in %s: %s", env->run, strerror(errno));
		return -errno;
	}
	int r = ho_read_file("/proc/filesystems", &fs, &fslen, 1 << 16);
	if (r) {
		rmdir(mnt);
		SAY("cannot read /proc/filesystems: %s", strerror(-r));
		return r;
	}
	char *list = realloc(fs, fslen + 1);
	if (!list) {
		free(fs);
		rmdir(mnt);
		return -ENOMEM;
	}
	list[fslen] = '\0';
	int last = -ENODEV;
	/* The preferred three, then every block-backed ("\t"-led) entry. */
	for (int pass = 0; pass < 2; pass++) {
		char *line = list;
		for (size_t i = 0; pass == 0 ? i < 3 : *line != '\0'; i++) {
			char name[32];
			if (pass == 0) {
				if (!kernel_has(list, preferred[i]))
					continue;
				snprintf(name, sizeof(name), "%s", preferred[i]);
			} else {
				char *eol = strchr(line, '\n');
				size_t len = eol ? (size_t)(eol - line) : strlen(line);
				char *cur = line;
				line = eol ? eol + 1 : line + len;
				if (len < 2 || cur[0] != '\t' || len - 1 >= sizeof(name))
					continue;
				memcpy(name, cur + 1, len - 1);
				name[len - 1] = '\0';
				if (!strcmp(name, "vfat") || !strcmp(name, "exfat") || !strcmp(name, "ext4"))
					continue;
			}
			if (mount(node, mnt, name, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ==
			    0) {
				free(list);
				return 0;
			}
			last = -errno;
			size_t t = strlen(tried);
			snprintf(tried + t, sizeof(tried) - t, "%s%s", t ? ", " : "", name);
		}
	}
	free(list);
	rmdir(mnt);
	SAY("cannot mount %s read-only (tried %s: %s)", node, tried[0] ? tried : "nothing",
	    strerror(-last));
	return last;
}

void ho_unmount(const char *mnt)
{
	if (umount2(mnt, 0) != 0)
		umount2(mnt, MNT_DETACH);
	rmdir(mnt);
}

int ho_open_beneath(const char *dir, const char *path, char *err, size_t errlen)
{
	char part[HO_PATH_MAX + 1];
	int at = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (at < 0) {
		SAY("%s: %s", dir, strerror(errno));
		return -errno;
	}
	const char *p = path;
	while (*p == '/')
		p++;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n > HO_PATH_MAX) {
			close(at);
			return -EINVAL;
		}
		memcpy(part, p, n);
		part[n] = '\0';
		int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (slash ? O_DIRECTORY : 0);
		int next = openat(at, part, flags);
		int e = errno;
		close(at);
		if (next < 0) {
			SAY("%s: %s", path, e == ELOOP ? "a symbolic link is in the way" : strerror(e));
			return -e;
		}
		at = next;
		if (!slash)
			return at;
		p = slash + 1;
	}
}
