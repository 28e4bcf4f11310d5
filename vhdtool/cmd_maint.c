/* SPDX-License-Identifier: MIT */
/* vhdtool compact, resize, merge and set-parent. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdtool.h"

static void on_progress(void *opaque, uint64_t done, uint64_t total)
{
	struct progress *p = opaque;
	p->total = total ? total : 1;
	progress_update(p, done);
}

static int open_or_say(const char *path, unsigned flags, struct vhd_image **img)
{
	struct vhd_error err;
	if (vhd_open(path, flags, img, &err) < 0) {
		vt_error("%s", err.message);
		return -1;
	}
	vt_print_warnings(*img);
	return 0;
}

static int close_or_say(struct vhd_image *img, const char *path)
{
	int r = vhd_close(img);
	if (r < 0) {
		vt_error("%s: closing failed: %s", path, strerror(-r));
		return -1;
	}
	return 0;
}

/* ---- compact ------------------------------------------------------------------ */

int cmd_compact(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "progress", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	bool dry = false, json = false, prog_on = false;
	int c;
	while ((c = getopt_long(argc, argv, "np", opts, NULL)) != -1) {
		if (c == 'n')
			dry = true;
		else if (c == 'j')
			json = true;
		else if (c == 'p')
			prog_on = true;
		else
			return vt_usage("compact");
	}
	if (argc - optind != 1)
		return vt_usage("compact");
	const char *path = argv[optind];
	struct vhd_image *img;
	if (open_or_say(path, dry ? 0 : VHD_OPEN_RDWR, &img) < 0)
		return EXIT_FAIL;
	struct progress prog;
	struct vhd_compact_result res;
	progress_init(&prog, prog_on, vhd_virtual_size(img));
	int r = vhd_compact(img, dry ? VHD_COMPACT_DRY_RUN : 0, on_progress, &prog, &res);
	if (r < 0) {
		vt_error("%s", vhd_errmsg(img));
		vhd_close(img);
		return EXIT_FAIL;
	}
	progress_done(&prog);
	if (close_or_say(img, path) < 0)
		return EXIT_FAIL;
	if (json) {
		printf("{\"filename\": ");
		json_string(stdout, path);
		printf(", \"dry-run\": %s, \"blocks-freed\": %" PRIu64 ", \"sectors-released\": %" PRIu64
		       ", \"blocks-moved\": %" PRIu64 ", \"file-size-before\": %" PRIu64
		       ", \"file-size-after\": %" PRIu64 "}\n",
		       dry ? "true" : "false", res.blocks_freed, res.sectors_released, res.blocks_moved,
		       res.file_size_before, res.file_size_after);
	} else {
		char a[32], b[32];
		vt_format_size(res.file_size_before, a, sizeof(a));
		vt_format_size(res.file_size_after, b, sizeof(b));
		printf("%s%" PRIu64 " blocks freed, %" PRIu64 " sectors released, %" PRIu64
		       " blocks moved; file %s -> %s\n",
		       dry ? "would be: " : "", res.blocks_freed, res.sectors_released, res.blocks_moved,
		       a, b);
	}
	return EXIT_OK;
}

/* ---- resize -------------------------------------------------------------------- */

/* A disk with a GPT keeps its backup header at the old last sector. */
static bool has_gpt(struct vhd_image *img)
{
	char sig[8];
	return vhd_virtual_size(img) >= 1024 && vhd_pread(img, sig, 8, 512) == 0 &&
	       memcmp(sig, "EFI PART", 8) == 0;
}

int cmd_resize(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "shrink", no_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = 0;
	int c;
	/* "-5G" is a size, not an option (as qemu-img resize reads it). */
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] >= '0' && argv[i][1] <= '9')
			argv[i][0] = '~';
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			flags |= VHD_RESIZE_SHRINK;
		else if (c == 'f')
			flags |= VHD_RESIZE_FORCE;
		else
			return vt_usage("resize");
	}
	if (argc - optind != 2)
		return vt_usage("resize");
	const char *path = argv[optind], *arg = argv[optind + 1];
	int sign = arg[0] == '+' ? 1 : arg[0] == '~' ? -1 : 0;
	uint64_t amount;
	if (vt_parse_size(arg + (sign != 0), &amount) < 0) {
		vt_error("invalid size '%s'", arg);
		return EXIT_FAIL;
	}
	struct vhd_image *img;
	if (open_or_say(path, VHD_OPEN_RDWR, &img) < 0)
		return EXIT_FAIL;
	uint64_t old = vhd_virtual_size(img), size = amount;
	if (sign > 0)
		size = old + amount < old ? UINT64_MAX : old + amount;
	else if (sign < 0)
		size = amount > old ? 0 : old - amount;
	if ((flags & VHD_RESIZE_FORCE) && !(flags & VHD_RESIZE_SHRINK)) {
		vt_error("--force only applies with --shrink");
		vhd_close(img);
		return EXIT_FAIL;
	}
	if (vhd_resize(img, size, flags) < 0) {
		vt_error("%s", vhd_errmsg(img));
		vhd_close(img);
		return EXIT_FAIL;
	}
	bool gpt = has_gpt(img);
	if (close_or_say(img, path) < 0)
		return EXIT_FAIL;
	char a[32], b[32];
	vt_format_size(old, a, sizeof(a));
	vt_format_size(size, b, sizeof(b));
	printf("%s: %s -> %s (%" PRIu64 " bytes)\n", path, a, b, size);
	if (gpt && size != old)
		vt_warn("the disk holds a GPT: its backup header is still at the old last sector; "
			"fix it inside the guest (sgdisk -e, or parted's fix prompt) before %s",
			size < old ? "relying on the disk" : "using the new space");
	return EXIT_OK;
}

/* ---- merge ---------------------------------------------------------------------- */

static bool same_file(const char *a, const char *b)
{
	char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
	bool same = ra && rb && strcmp(ra, rb) == 0;
	free(ra);
	free(rb);
	return same;
}

/* Other children of target in its folder see the merged data: name them. */
static void warn_other_children(const char *target, const uint8_t uuid[16], const char *child)
{
	char *dir = strdup(target);
	if (!dir)
		return;
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	const char *d = slash ? (*dir ? dir : "/") : ".";
	DIR *dh = opendir(d);
	struct dirent *ent;
	while (dh && (ent = readdir(dh))) {
		size_t n = strlen(ent->d_name);
		if (n < 4 || strcasecmp(ent->d_name + n - 4, ".vhd") != 0)
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", d, ent->d_name);
		if (same_file(path, child) || same_file(path, target))
			continue;
		struct vhd_image *img;
		if (vhd_open(path, VHD_OPEN_NO_PARENT, &img, NULL) < 0)
			continue;
		struct vhd_info in;
		vhd_get_info(img, &in);
		if (in.type == VHD_TYPE_DIFFERENCING && memcmp(in.parent_uuid, uuid, 16) == 0)
			vt_warn("%s is another child of %s: what it reads has changed", path, target);
		vhd_close(img);
	}
	if (dh)
		closedir(dh);
	free(dir);
}

int cmd_merge(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "into", required_argument, NULL, 'i' },
		{ "remove", no_argument, NULL, 'r' },
		{ "progress", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *into = NULL;
	bool remove_child = false, prog_on = false;
	int c;
	while ((c = getopt_long(argc, argv, "p", opts, NULL)) != -1) {
		if (c == 'i')
			into = optarg;
		else if (c == 'r')
			remove_child = true;
		else if (c == 'p')
			prog_on = true;
		else
			return vt_usage("merge");
	}
	if (argc - optind != 1)
		return vt_usage("merge");
	const char *path = argv[optind];
	struct vhd_image *img, *target = NULL;
	if (open_or_say(path, 0, &img) < 0)
		return EXIT_FAIL;
	if (vhd_get_type(img) != VHD_TYPE_DIFFERENCING) {
		vt_error("%s is not a differencing image: it has no parent to merge into", path);
		vhd_close(img);
		return EXIT_FAIL;
	}
	/* The target: the parent, or the named ancestor. */
	struct vhd_image *layer = vhd_parent(img);
	if (into) {
		while (layer && !same_file(vhd_filename(layer), into))
			layer = vhd_parent(layer);
		if (!layer) {
			vt_error("%s is not in the parent chain of %s", into, path);
			vhd_close(img);
			return EXIT_FAIL;
		}
	}
	char target_path[PATH_MAX];
	snprintf(target_path, sizeof(target_path), "%s", vhd_filename(layer));
	if (open_or_say(target_path, VHD_OPEN_RDWR, &target) < 0) {
		vhd_close(img);
		return EXIT_FAIL;
	}
	struct vhd_info tinfo;
	vhd_get_info(target, &tinfo);
	struct progress prog;
	uint64_t merged = 0;
	progress_init(&prog, prog_on, vhd_virtual_size(img));
	int r = vhd_merge(img, target, on_progress, &prog, &merged);
	if (r < 0)
		vt_error("%s", vhd_errmsg(img));
	else
		progress_done(&prog);
	if (close_or_say(target, target_path) < 0)
		r = -1;
	vhd_close(img);
	if (r < 0)
		return EXIT_FAIL;
	char m[32];
	vt_format_size(merged, m, sizeof(m));
	printf("merged %s of %s into %s\n", m, path, target_path);
	if (remove_child) {
		if (unlink(path) < 0) {
			vt_error("%s: cannot remove: %s", path, strerror(errno));
			return EXIT_FAIL;
		}
		printf("removed %s\n", path);
	}
	warn_other_children(target_path, tinfo.uuid, path);
	return EXIT_OK;
}

/* ---- set-parent ---------------------------------------------------------------- */

int cmd_set_parent(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ignore-id-mismatch", no_argument, NULL, 'I' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'I')
			flags |= VHD_SET_PARENT_IGNORE_ID;
		else
			return vt_usage("set-parent");
	}
	if (argc - optind != 2)
		return vt_usage("set-parent");
	const char *path = argv[optind], *parent = argv[optind + 1];
	struct vhd_image *img;
	struct vhd_error err;
	if (open_or_say(path, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT, &img) < 0)
		return EXIT_FAIL;
	if (vhd_get_type(img) != VHD_TYPE_DIFFERENCING) {
		vt_error("%s is not a differencing image", path);
		vhd_close(img);
		return EXIT_FAIL;
	}
	if (vhd_set_parent_path(img, parent, flags, &err) < 0) {
		vt_error("%s", err.message);
		vhd_close(img);
		return EXIT_FAIL;
	}
	if (close_or_say(img, path) < 0)
		return EXIT_FAIL;
	/* Prove the new link by opening the chain. */
	if (open_or_say(path, 0, &img) < 0)
		return EXIT_FAIL;
	printf("%s now reads through %s\n", path, vhd_filename(vhd_parent(img)));
	vhd_close(img);
	return EXIT_OK;
}
