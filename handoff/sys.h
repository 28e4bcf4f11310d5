/* SPDX-License-Identifier: MIT */
/* The parts of vhd-handoff that talk to the kernel. */
#ifndef VHD_HANDOFF_SYS_H
#define VHD_HANDOFF_SYS_H

#include <limits.h>
#include <sys/types.h>

#include "handoff.h"

/* Where the kernel's views live; tests point them at fake trees. */
struct ho_env {
	const char *sysfs;  /* "/sys" */
	const char *dev;    /* "/dev" */
	const char *efivars; /* NULL: /sys/firmware/efi/efivars, mounted if need be */
	const char *run;    /* "/run/vhdboot": temporary mount points */
	int no_fiemap;      /* force the FIBMAP path (tests) */
	int verbose;
};

/* The host partition, as found on the disks. */
struct ho_host {
	char disk[NAME_MAX + 1], part[NAME_MAX + 1];
	unsigned major, minor; /* of the partition */
	uint32_t number;
	uint64_t start, sectors; /* 512-byte sectors, from sysfs */
	char node[PATH_MAX];     /* its /dev node */
};

/* sysblock.c */
int ho_read_text(const char *path, char *buf, size_t len);
int ho_read_file(const char *path, uint8_t **data, size_t *len, size_t max);
/* Make sure dir/name is a block node for major:minor (mknod if missing). */
int ho_block_node(const char *dir, const char *name, unsigned major, unsigned minor, char *out,
		  size_t outlen, char *err, size_t errlen);
/* One scan of every whole disk: 0, -ENOENT (not there yet), or another
 * error with `err` set (two disks claim the GUID, sysfs disagrees). */
int ho_find_host_once(const struct ho_env *env, const uint8_t guid[16], struct ho_host *h,
		      char *err, size_t errlen);
int ho_find_host(const struct ho_env *env, const uint8_t guid[16], unsigned timeout_s,
		 struct ho_host *h, char *err, size_t errlen);
/* A GPT from an open file or block device. */
int ho_gpt_read_fd(int fd, uint32_t lba_size, uint64_t bytes, struct ho_gpt *g, char *err,
		   size_t errlen);
int ho_device_geometry(int fd, uint32_t *lba_size, uint64_t *bytes);

/* filemap.c: the file's extents in 512-byte sectors of its file system's device. */
int ho_file_extents(int fd, int no_fiemap, struct ho_extent_list *out, char *err, size_t errlen);
/* Mount `node` read-only on a new folder under env->run, trying the file
 * systems the kernel offers; `mnt` gets the folder. */
int ho_mount_ro(const struct ho_env *env, const char *node, char *mnt, size_t mntlen, char *err,
		size_t errlen);
void ho_unmount(const char *mnt);
/* Open dir-relative `path` ("/a/b.vhd") without following symbolic links. */
int ho_open_beneath(const char *dir, const char *path, char *err, size_t errlen);

/* dm.c */
int ho_dm_open_control(const struct ho_env *env, char *err, size_t errlen);
int ho_dm_create(int ctl, const char *name, const char *uuid, const struct ho_dm_target *t,
		 size_t n, dev_t *dev, char *err, size_t errlen);
int ho_dm_remove(int ctl, const char *name);

/* shutdown.c */
int ho_shutdown_main(int argc, char **argv);
int ho_nbd_disconnect(const char *node, char *err, size_t errlen);

#endif
