/* SPDX-License-Identifier: MIT */
/*
 * vhdtool preallocate: give a dynamic image every block, with every sector
 * bit set, so the virtual disk lies in the file at fixed places (what
 * vhdboot's handoff=linear maps with device-mapper; docs/handoff.md).
 * The virtual contents do not change: unallocated ranges read as zeros and
 * are written as zeros.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vhdtool.h"

#define CHUNK (1u << 20)

static void on_progress(struct progress *p, uint64_t done)
{
	progress_update(p, done);
}

int cmd_preallocate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "progress", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	bool prog_on = false;
	int c;
	while ((c = getopt_long(argc, argv, "p", opts, NULL)) != -1) {
		if (c == 'p')
			prog_on = true;
		else
			return vt_usage("preallocate");
	}
	if (argc - optind != 1)
		return vt_usage("preallocate");
	const char *path = argv[optind];
	struct vhd_error err;
	struct vhd_image *img;
	if (vhd_open(path, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT, &img, &err) < 0) {
		vt_error("%s", err.message);
		return EXIT_FAIL;
	}
	vt_print_warnings(img);
	struct vhd_info info;
	int r = vhd_get_info(img, &info);
	if (r == 0 && info.type != VHD_TYPE_DYNAMIC) {
		vt_error("%s is a %s image: preallocate works on dynamic images (a fixed one already is; "
			 "a differencing child would hide its parent)",
			 path, vhd_type_name(info.type));
		vhd_close(img);
		return EXIT_FAIL;
	}
	uint8_t *zeros = calloc(1, CHUNK);
	struct progress prog;
	uint64_t size = vhd_virtual_size(img), written = 0;
	progress_init(&prog, prog_on, size);
	for (uint64_t off = 0; r == 0 && zeros && off < size;) {
		struct vhd_extent ext;
		r = vhd_block_status(img, off, size - off < CHUNK ? size - off : CHUNK, &ext);
		if (r < 0)
			break;
		/* A hole inside an allocated block is reported as zeros too:
		 * writing it is harmless and makes the file hold every byte. */
		if (!(ext.flags & VHD_EXTENT_DATA) || (ext.flags & VHD_EXTENT_ZERO)) {
			r = vhd_pwrite(img, zeros, (size_t)ext.length, off);
			written += ext.length;
		}
		off += ext.length;
		on_progress(&prog, off);
	}
	if (!zeros)
		r = -1, vt_error("out of memory");
	else if (r < 0)
		vt_error("%s", vhd_errmsg(img));
	free(zeros);
	progress_done(&prog);
	int cr = vhd_close(img);
	if (r < 0)
		return EXIT_FAIL;
	if (cr < 0) {
		vt_error("%s: closing failed: %s", path, strerror(-cr));
		return EXIT_FAIL;
	}
	printf("%s: %" PRIu64 " bytes written as zeros; every block allocated\n", path, written);
	return EXIT_OK;
}
