/* SPDX-License-Identifier: MIT */
/* The DM_TABLE_LOAD buffer (linux/dm-ioctl.h): a struct dm_ioctl, then one
 * struct dm_target_spec per target, each followed by its NUL-terminated
 * parameters and padded so the next spec starts 8-byte aligned. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/dm-ioctl.h>

#include "handoff.h"

/* Longest "major:minor offset" text, with its NUL. */
#define LINEAR_PARAMS_MAX (10 + 1 + 10 + 1 + 20 + 1)
#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)

/* Names go into /dev/mapper/: letters, digits, '-', '_', '.', not "." or "..". */
int ho_dm_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= DM_NAME_LEN || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

int ho_dm_table_build(const char *name, const struct ho_dm_target *t, size_t n, void **out,
		      size_t *len)
{
	size_t spec = ALIGN8(sizeof(struct dm_target_spec) + LINEAR_PARAMS_MAX);
	size_t head = ALIGN8(sizeof(struct dm_ioctl));

	if (!ho_dm_name_valid(name) || n == 0 || n > HO_MAX_EXTENTS + 256)
		return -EINVAL;
	size_t total = head + n * spec;
	if (total > UINT32_MAX)
		return -E2BIG;
	uint8_t *buf = calloc(1, total);
	if (!buf)
		return -ENOMEM;
	struct dm_ioctl *io = (struct dm_ioctl *)buf;
	/* Ask for 4.0.0: the kernel refuses a minor newer than its own, and a
	 * static binary may meet an older kernel than its headers. */
	io->version[0] = DM_VERSION_MAJOR;
	io->data_size = (uint32_t)total;
	io->data_start = (uint32_t)head;
	io->target_count = (uint32_t)n;
	snprintf(io->name, sizeof(io->name), "%s", name);

	size_t at = head;
	uint64_t next = 0;
	for (size_t i = 0; i < n; i++) {
		struct dm_target_spec *s = (struct dm_target_spec *)(buf + at);
		if (t[i].sectors == 0 || t[i].start != next) {
			free(buf);
			return -EINVAL;
		}
		next = t[i].start + t[i].sectors;
		s->sector_start = t[i].start;
		s->length = t[i].sectors;
		snprintf(s->target_type, sizeof(s->target_type), "linear");
		snprintf((char *)(s + 1), LINEAR_PARAMS_MAX, "%" PRIu32 ":%" PRIu32 " %" PRIu64,
			 t[i].major, t[i].minor, t[i].offset);
		s->next = (uint32_t)spec;
		at += spec;
	}
	*out = buf;
	*len = total;
	return 0;
}
