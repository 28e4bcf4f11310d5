/* SPDX-License-Identifier: MIT */
/* vhdtool map: the extents of the virtual disk and the layer holding each. */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "vhdtool.h"

struct run {
	uint64_t start, length;
	struct vhd_extent ext;
	bool valid;
};

static struct vhd_image *layer(struct vhd_image *img, int depth)
{
	while (depth-- > 0 && vhd_parent(img))
		img = vhd_parent(img);
	return img;
}

static void emit(struct vhd_image *img, const struct run *r, bool json, bool *first)
{
	bool present = r->ext.flags & VHD_EXTENT_DATA;
	bool zero = r->ext.flags & VHD_EXTENT_ZERO;
	const char *file = present ? vhd_filename(layer(img, r->ext.depth)) : "";
	if (json) {
		printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %d, "
		       "\"present\": %s, \"zero\": %s, \"data\": %s",
		       *first ? "[" : ",\n", r->start, r->length, r->ext.depth,
		       present ? "true" : "false", zero ? "true" : "false",
		       present && !zero ? "true" : "false");
		if (present && r->ext.file_offset != UINT64_MAX)
			printf(", \"offset\": %" PRIu64, r->ext.file_offset);
		if (present) {
			printf(", \"filename\": ");
			json_string(stdout, file);
		}
		printf("}");
	} else {
		if (*first)
			printf("%-20s%-20s%-8s%-8s%-20s%s\n", "Offset", "Length", "Depth", "Kind",
			       "Mapped to", "File");
		char mapped[24] = "-";
		if (present && r->ext.file_offset != UINT64_MAX)
			snprintf(mapped, sizeof(mapped), "0x%" PRIx64, r->ext.file_offset);
		printf("0x%-18" PRIx64 "0x%-18" PRIx64 "%-8d%-8s%-20s%s\n", r->start, r->length,
		       r->ext.depth, present ? (zero ? "zero" : "data") : "hole", mapped, file);
	}
	*first = false;
}

int cmd_map(int argc, char **argv)
{
	static const struct option opts[] = {
		VT_OUTPUT_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (vt_output_option(c, optarg, &json) != 1)
			return vt_usage("map");
	if (argc - optind != 1)
		return vt_usage("map");

	struct vhd_image *img;
	struct vhd_error err;
	if (vhd_open(argv[optind], 0, &img, &err) < 0) {
		vt_error("%s", err.message);
		return EXIT_FAIL;
	}
	vt_print_warnings(img);
	uint64_t size = vhd_virtual_size(img), off = 0;
	struct run cur = { 0 };
	bool first = true;
	int status = EXIT_OK;
	while (off < size) {
		struct vhd_extent e;
		if (vhd_block_status(img, off, size - off, &e) < 0) {
			vt_error("%s", vhd_errmsg(img));
			status = EXIT_FAIL;
			break;
		}
		/* Merge with the previous run when nothing a reader cares about differs. */
		bool same = cur.valid && cur.ext.flags == e.flags && cur.ext.depth == e.depth &&
			    (cur.ext.file_offset == UINT64_MAX
				     ? e.file_offset == UINT64_MAX
				     : e.file_offset == cur.ext.file_offset + cur.length);
		if (same) {
			cur.length += e.length;
		} else {
			if (cur.valid)
				emit(img, &cur, json, &first);
			cur = (struct run){ off, e.length, e, true };
		}
		off += e.length;
	}
	if (cur.valid && status == EXIT_OK)
		emit(img, &cur, json, &first);
	if (json && status == EXIT_OK)
		printf("%s]\n", first ? "[" : "");
	vhd_close(img);
	return status;
}
