/* SPDX-License-Identifier: MIT */
/* Path-based entry points for POSIX hosts: open, create and check by name. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int vhd_open_confined(const char *path, unsigned flags, const char *const *parent_dirs,
		      struct vhd_image **out, struct vhd_error *err)
{
	struct vhd_io *io;
	int r = vhd_io_posix_open(path, (flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR : 0, &io, err);
	if (r == 0 && parent_dirs && (r = vhd_io_posix_confine(io, parent_dirs, err)) < 0)
		io->ops->close(io);
	if (r < 0) {
		*out = NULL;
		return r;
	}
	return vhd_open_io(io, flags, out, err);
}

int vhd_open(const char *path, unsigned flags, struct vhd_image **out, struct vhd_error *err)
{
	return vhd_open_confined(path, flags, NULL, out, err);
}

/* The folder holding path, resolved (path itself need not exist). */
static char *real_dir_of(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return NULL;
	char *slash = strrchr(copy, '/');
	const char *dir = ".";
	if (slash == copy)
		dir = "/";
	else if (slash) {
		*slash = '\0';
		dir = copy;
	}
	char *real = realpath(dir, NULL);
	free(copy);
	return real;
}

/* The path of target relative to folder from (both absolute, resolved). */
static char *relative_path(const char *from, const char *target)
{
	size_t flen = strlen(from);
	char *dir = malloc(flen + 2);
	if (!dir)
		return NULL;
	memcpy(dir, from, flen + 1);
	if (flen == 0 || dir[flen - 1] != '/')
		strcpy(dir + flen, "/");
	/* The shared leading folders end at the last '/' both have. */
	size_t common = 0;
	for (size_t i = 0; dir[i] && dir[i] == target[i]; i++)
		if (dir[i] == '/')
			common = i + 1;
	size_t ups = 0;
	for (const char *p = dir + common; *p; p++)
		ups += *p == '/';
	const char *rest = target + common;
	char *out = malloc(ups * 3 + strlen(rest) + 1);
	if (out) {
		char *o = out;
		for (size_t k = 0; k < ups; k++, o += 3)
			memcpy(o, "../", 3);
		strcpy(o, rest);
	}
	free(dir);
	return out;
}

/*
 * Open the parent at parent_path (read-only) and describe it as seen from
 * the folder that holds (or will hold) child_path.  ref_free undoes it.
 */
static int parent_ref_open(const char *child_path, const char *parent_path,
			   const char *const *parent_dirs, struct vhd_parent_ref *ref,
			   struct vhd_error *err)
{
	char *child_dir = real_dir_of(child_path);
	char *parent_abs = realpath(parent_path, NULL);
	int r = 0;

	memset(ref, 0, sizeof(*ref));
	if (!child_dir || !parent_abs) {
		r = -errno;
		vhd_set_error(err, r, "%s: cannot resolve the folder: %s",
			      parent_abs ? child_path : parent_path, strerror(errno));
	} else if (!(ref->relative_path = relative_path(child_dir, parent_abs))) {
		r = -ENOMEM;
		vhd_set_error(err, r, "out of memory");
	} else {
		r = vhd_open_confined(parent_path, 0, parent_dirs, &ref->image, err);
	}
	free(child_dir);
	if (r < 0) {
		free(parent_abs);
		free((char *)ref->relative_path);
		memset(ref, 0, sizeof(*ref));
		return r;
	}
	ref->absolute_path = parent_abs;
	return 0;
}

static void parent_ref_free(struct vhd_parent_ref *ref)
{
	if (ref->image)
		vhd_close(ref->image);
	free((char *)ref->relative_path);
	free((char *)ref->absolute_path);
	memset(ref, 0, sizeof(*ref));
}

int vhd_create(const char *path, const struct vhd_create_params *params, struct vhd_image **out,
	       struct vhd_error *err)
{
	return vhd_create_confined(path, params, NULL, out, err);
}

int vhd_create_confined(const char *path, const struct vhd_create_params *params,
			const char *const *parent_dirs, struct vhd_image **out, struct vhd_error *err)
{
	struct vhd_parent_ref ref = { 0 };
	struct vhd_io *io = NULL;
	int r;

	if (out)
		*out = NULL;
	if (params->type != VHD_TYPE_DIFFERENCING) {
		r = vhd_create_check_params(params, err);
		if (r < 0)
			return r;
	} else {
		if (!params->parent) {
			vhd_set_error(err, -EINVAL, "a differencing image needs a parent");
			return -EINVAL;
		}
		r = parent_ref_open(path, params->parent, parent_dirs, &ref, err);
		if (r < 0)
			return r;
	}
	r = vhd_io_posix_open(path, VHD_IO_RDWR | VHD_IO_CREATE, &io, err);
	if (r == 0 && parent_dirs && (r = vhd_io_posix_confine(io, parent_dirs, err)) < 0) {
		io->ops->close(io);
		unlink(path);
	}
	if (r == 0) {
		r = vhd_create_io(io, params, ref.image ? &ref : NULL, out, err);
		if (r < 0)
			unlink(path); /* we made it; leave nothing half-written */
	}
	parent_ref_free(&ref);
	return r;
}

int vhd_set_parent_path(struct vhd_image *img, const char *parent_path, unsigned flags,
			struct vhd_error *err)
{
	struct vhd_parent_ref ref;
	int r = parent_ref_open(vhd_filename(img), parent_path, NULL, &ref, err);
	if (r < 0)
		return r;
	r = vhd_set_parent(img, &ref, flags);
	if (r < 0)
		vhd_set_error(err, r, "%s", vhd_errmsg(img));
	parent_ref_free(&ref);
	return r;
}

int vhd_repair(const char *path, unsigned flags, struct vhd_check_report *report,
	       struct vhd_error *err)
{
	struct vhd_io *io;
	report->findings = NULL;
	int r = vhd_io_posix_open(path, (flags & VHD_REPAIR_DRY_RUN) ? 0 : VHD_IO_RDWR, &io, err);
	if (r < 0)
		return r;
	report->findings = NULL;
	r = vhd_repair_io(io, flags, report);
	if (r < 0)
		vhd_set_error(err, r, "%s: repair failed: %s", path, strerror(-r));
	io->ops->close(io);
	return r;
}

int vhd_check(const char *path, struct vhd_check_report *report, struct vhd_error *err)
{
	struct vhd_io *io;
	int r = vhd_io_posix_open(path, 0, &io, err);
	if (r < 0)
		return r;
	r = vhd_check_io(io, true, report);
	if (r < 0)
		vhd_set_error(err, r, "%s: the check could not run", path);
	io->ops->close(io);
	return r;
}
