/* SPDX-License-Identifier: MIT */
/* Finding the host partition by its GPT unique GUID: every whole disk under
 * /sys/class/block, its primary GPT, then the partition's sysfs entry and
 * /dev node.  No udev and no blkid in the initramfs: the 6.1 kernel's
 * uevents carry no PARTUUID (handoff-facts.md). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>

#include "sys.h"

#define SAY(...)                                             \
	do {                                                 \
		if (err && errlen)                           \
			snprintf(err, errlen, __VA_ARGS__);  \
	} while (0)

int ho_read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int ho_read_file(const char *path, uint8_t **data, size_t *len, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t have = 0, cap = 4096;
	uint8_t *buf;

	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	for (;;) {
		if (!buf) {
			close(fd);
			return -ENOMEM;
		}
		if (have == cap) {
			if (cap >= max) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			cap *= 2;
			uint8_t *bigger = realloc(buf, cap);
			if (!bigger)
				free(buf);
			buf = bigger;
			continue;
		}
		ssize_t n = read(fd, buf + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	*data = buf;
	*len = have;
	return 0;
}

static int read_u64(const char *path, uint64_t *v)
{
	char text[64], *end;

	int r = ho_read_text(path, text, sizeof(text));
	if (r)
		return r;
	errno = 0;
	unsigned long long x = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-')
		return -EINVAL;
	*v = x;
	return 0;
}

static int read_devno(const char *path, unsigned *maj, unsigned *min)
{
	char text[64], tail;

	int r = ho_read_text(path, text, sizeof(text));
	if (r)
		return r;
	if (sscanf(text, "%u:%u%c", maj, min, &tail) != 2)
		return -EINVAL;
	return 0;
}

int ho_block_node(const char *dir, const char *name, unsigned major, unsigned minor, char *out,
		  size_t outlen, char *err, size_t errlen)
{
	struct stat st;
	dev_t want = makedev(major, minor);

	/* sysfs spells '/' in a name as '!' (cciss!c0d0): keep such nodes flat. */
	if (strchr(name, '!') || strchr(name, '/') || name[0] == '.')
		snprintf(out, outlen, "%s/block-%u-%u", dir, major, minor);
	else if ((size_t)snprintf(out, outlen, "%s/%s", dir, name) >= outlen)
		return -ENAMETOOLONG;
	if (stat(out, &st) == 0) {
		if (S_ISBLK(st.st_mode) && st.st_rdev == want)
			return 0;
		SAY("%s exists but is not block device %u:%u", out, major, minor);
		return -EEXIST;
	}
	if (errno != ENOENT) {
		SAY("%s: %s", out, strerror(errno));
		return -errno;
	}
	if (mknod(out, S_IFBLK | 0600, want) != 0 && errno != EEXIST) {
		int e = errno;
		SAY("cannot create %s (block %u:%u): %s", out, major, minor, strerror(e));
		return -e;
	}
	return 0;
}

int ho_device_geometry(int fd, uint32_t *lba_size, uint64_t *bytes)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*lba_size = HO_SECTOR;
		*bytes = (uint64_t)st.st_size;
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	int ssz = 0;
	if (ioctl(fd, BLKSSZGET, &ssz) != 0 || ioctl(fd, BLKGETSIZE64, bytes) != 0)
		return -errno;
	*lba_size = (uint32_t)ssz;
	return 0;
}

static int pread_cb(void *ctx, uint64_t offset, void *buf, size_t len)
{
	int fd = *(int *)ctx;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* short device */
		done += (size_t)n;
	}
	return 0;
}

int ho_gpt_read_fd(int fd, uint32_t lba_size, uint64_t bytes, struct ho_gpt *g, char *err,
		   size_t errlen)
{
	return ho_gpt_read(pread_cb, &fd, lba_size, bytes, g, err, errlen);
}

/* The partition directory of `disk` with number `number`. */
static int find_partition(const struct ho_env *env, const char *disk, uint32_t number,
			  struct ho_host *h)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "%s/class/block/%s", env->sysfs, disk);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		uint64_t n;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/class/block/%s/%s/partition", env->sysfs, disk,
			 de->d_name);
		if (read_u64(path, &n) || n != number)
			continue;
		snprintf(h->part, sizeof(h->part), "%s", de->d_name);
		snprintf(path, sizeof(path), "%s/class/block/%s/%s/dev", env->sysfs, disk, de->d_name);
		r = read_devno(path, &h->major, &h->minor);
		if (!r) {
			snprintf(path, sizeof(path), "%s/class/block/%s/%s/start", env->sysfs, disk,
				 de->d_name);
			r = read_u64(path, &h->start);
		}
		if (!r) {
			snprintf(path, sizeof(path), "%s/class/block/%s/%s/size", env->sysfs, disk,
				 de->d_name);
			r = read_u64(path, &h->sectors);
		}
		break;
	}
	closedir(d);
	return r;
}

int ho_find_host_once(const struct ho_env *env, const uint8_t guid[16], struct ho_host *h,
		      char *err, size_t errlen)
{
	char path[PATH_MAX], node[PATH_MAX], first_disk[NAME_MAX + 1] = "";
	struct ho_gpt_part found = { 0 };
	uint32_t found_lba = 0;
	int matches = 0;
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/class/block", env->sysfs);
	d = opendir(path);
	if (!d) {
		SAY("%s: %s", path, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t sectors;
		unsigned maj, min;
		if (de->d_name[0] == '.' || strncmp(de->d_name, "fd", 2) == 0)
			continue; /* floppies can stall for seconds */
		snprintf(path, sizeof(path), "%s/class/block/%s/partition", env->sysfs, de->d_name);
		if (access(path, F_OK) == 0)
			continue; /* a partition, not a disk */
		snprintf(path, sizeof(path), "%s/class/block/%s/size", env->sysfs, de->d_name);
		if (read_u64(path, &sectors) || sectors == 0)
			continue;
		snprintf(path, sizeof(path), "%s/class/block/%s/dev", env->sysfs, de->d_name);
		if (read_devno(path, &maj, &min))
			continue;
		if (ho_block_node(env->dev, de->d_name, maj, min, node, sizeof(node), NULL, 0))
			continue;
		int fd = open(node, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			continue;
		uint32_t lba;
		uint64_t bytes;
		struct ho_gpt g;
		char why[HO_ERR_MAX] = "";
		if (ho_device_geometry(fd, &lba, &bytes) == 0 &&
		    ho_gpt_read_fd(fd, lba, bytes, &g, why, sizeof(why)) == 0) {
			const struct ho_gpt_part *p = ho_gpt_find_unique(&g, guid);
			if (p) {
				if (matches++ == 0) {
					found = *p;
					found_lba = lba;
					snprintf(first_disk, sizeof(first_disk), "%s", de->d_name);
				} else {
					SAY("partition GUID found on both %s and %s: refusing to guess",
					    first_disk, de->d_name);
				}
			}
			ho_gpt_free(&g);
		} else if (env->verbose) {
			fprintf(stderr, "vhd-handoff: %s: skipped (%s)\n", node, why);
		}
		close(fd);
	}
	closedir(d);
	if (matches > 1)
		return -ENOTUNIQ;
	if (matches == 0)
		return -ENOENT;

	memset(h, 0, sizeof(*h));
	snprintf(h->disk, sizeof(h->disk), "%s", first_disk);
	h->number = found.number;
	int r = find_partition(env, first_disk, found.number, h);
	if (r == -ENOENT)
		return -ENOENT; /* the kernel has not added it yet */
	if (r) {
		SAY("%s partition %" PRIu32 ": unreadable sysfs entry (%s)", first_disk, found.number,
		    strerror(-r));
		return r;
	}
	/* The kernel's view and the GPT we read must agree, or we would check
	 * and map different sectors than the ones the kernel exposes. */
	uint64_t per = found_lba / HO_SECTOR;
	if (h->start != found.first_lba * per ||
	    h->sectors != (found.last_lba - found.first_lba + 1) * per) {
		SAY("%s: the kernel has it at sectors %" PRIu64 "+%" PRIu64
		    ", the GPT says LBA %" PRIu64 "..%" PRIu64, h->part, h->start, h->sectors,
		    found.first_lba, found.last_lba);
		return -EINVAL;
	}
	return ho_block_node(env->dev, h->part, h->major, h->minor, h->node, sizeof(h->node), err,
			     errlen);
}

int ho_find_host(const struct ho_env *env, const uint8_t guid[16], unsigned timeout_s,
		 struct ho_host *h, char *err, size_t errlen)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int r = ho_find_host_once(env, guid, h, err, errlen);
		if (r != -ENOENT)
			return r;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t ms = (int64_t)(now.tv_sec - start.tv_sec) * 1000 +
			     (now.tv_nsec - start.tv_nsec) / 1000000;
		if (ms >= (int64_t)timeout_s * 1000) {
			char g[37];
			ho_guid_format(guid, g);
			SAY("no partition with PARTUUID=%s appeared within %u s", g, timeout_s);
			return -ENOENT;
		}
		struct timespec pause = { 0, 200 * 1000 * 1000 };
		nanosleep(&pause, NULL);
	}
}
