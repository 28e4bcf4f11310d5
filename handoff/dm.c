/* SPDX-License-Identifier: MIT */
/* Device-mapper through its ioctls (no libdevmapper, no dmsetup in the
 * initramfs): create, load a linear table, resume; remove on failure. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/dm-ioctl.h>

#include "sys.h"

#define SAY(...)                                             \
	do {                                                 \
		if (err && errlen)                           \
			snprintf(err, errlen, __VA_ARGS__);  \
	} while (0)

int ho_dm_open_control(const struct ho_env *env, char *err, size_t errlen)
{
	char path[PATH_MAX], text[64];
	unsigned maj, min;
	struct stat st;

	snprintf(path, sizeof(path), "%s/mapper", env->dev);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		SAY("cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	/* The control node is a misc device whose minor the kernel picks. */
	snprintf(path, sizeof(path), "%s/class/misc/device-mapper/dev", env->sysfs);
	int r = ho_read_text(path, text, sizeof(text));
	if (r || sscanf(text, "%u:%u", &maj, &min) != 2) {
		SAY("no device-mapper in this kernel (%s unreadable): is dm-mod loaded?", path);
		return r ? r : -ENODEV;
	}
	snprintf(path, sizeof(path), "%s/mapper/control", env->dev);
	if (stat(path, &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(maj, min)) {
		unlink(path);
		if (mknod(path, S_IFCHR | 0600, makedev(maj, min)) != 0) {
			SAY("cannot create %s: %s", path, strerror(errno));
			return -errno;
		}
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		SAY("%s: %s", path, strerror(errno));
		return -errno;
	}
	return fd;
}

static void header(struct dm_ioctl *io, size_t size, const char *name)
{
	memset(io, 0, size);
	io->version[0] = DM_VERSION_MAJOR; /* 4.0.0: see dmtable.c */
	io->data_size = (uint32_t)size;
	io->data_start = sizeof(*io);
	snprintf(io->name, sizeof(io->name), "%s", name);
}

int ho_dm_remove(int ctl, const char *name)
{
	struct dm_ioctl io;

	header(&io, sizeof(io), name);
	return ioctl(ctl, DM_DEV_REMOVE, &io) == 0 ? 0 : -errno;
}

int ho_dm_create(int ctl, const char *name, const char *uuid, const struct ho_dm_target *t,
		 size_t n, dev_t *dev, char *err, size_t errlen)
{
	struct dm_ioctl io;
	void *table;
	size_t len;

	int r = ho_dm_table_build(name, t, n, &table, &len);
	if (r) {
		SAY("cannot build the table of %s: %s", name, strerror(-r));
		return r;
	}
	header(&io, sizeof(io), name);
	if (uuid)
		snprintf(io.uuid, sizeof(io.uuid), "%s", uuid);
	if (ioctl(ctl, DM_DEV_CREATE, &io) != 0) {
		r = -errno;
		SAY("cannot create device-mapper device %s: %s", name,
		    r == -EBUSY ? "one of that name or uuid exists" : strerror(-r));
		free(table);
		return r;
	}
	*dev = (dev_t)io.dev;
	if (ioctl(ctl, DM_TABLE_LOAD, table) != 0) {
		r = -errno;
		SAY("cannot load the table of %s (%zu segments): %s", name, n, strerror(-r));
	}
	free(table);
	if (!r) {
		header(&io, sizeof(io), name);
		if (ioctl(ctl, DM_DEV_SUSPEND, &io) != 0) { /* no DM_SUSPEND_FLAG: resume */
			r = -errno;
			SAY("cannot resume %s: %s", name, strerror(-r));
		}
	}
	if (r)
		ho_dm_remove(ctl, name);
	return r;
}
