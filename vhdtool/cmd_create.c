/* SPDX-License-Identifier: MIT */
/* vhdtool create */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "vhdtool.h"

int vt_parse_type(const char *s, enum vhd_type *t)
{
	if (strcmp(s, "fixed") == 0)
		*t = VHD_TYPE_FIXED;
	else if (strcmp(s, "dynamic") == 0)
		*t = VHD_TYPE_DYNAMIC;
	else if (strcmp(s, "differencing") == 0 || strcmp(s, "diff") == 0)
		*t = VHD_TYPE_DIFFERENCING;
	else
		return -1;
	return 0;
}

int vt_parse_block_size(const char *s, uint32_t *out)
{
	uint64_t v;
	if (vt_parse_size(s, &v) < 0 || v > UINT32_MAX) {
		vt_error("invalid block size '%s'", s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* Azure wants whole MiB: round up, then let the library judge the range. */
uint64_t vt_azure_round(uint64_t size)
{
	const uint64_t mib = 1u << 20;
	return size > UINT64_MAX - mib ? size : (size + mib - 1) / mib * mib;
}

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "parent", required_argument, NULL, 'b' },
		{ "block-size", required_argument, NULL, 'B' },
		{ "azure", no_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_create_params p = { .type = VHD_TYPE_DYNAMIC };
	bool type_given = false;
	int c;

	while ((c = getopt_long(argc, argv, "t:b:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (vt_parse_type(optarg, &p.type) < 0) {
				vt_error("unknown image type '%s' (fixed, dynamic or differencing)", optarg);
				return EXIT_FAIL;
			}
			type_given = true;
			break;
		case 'b':
			p.parent = optarg;
			break;
		case 'B':
			if (vt_parse_block_size(optarg, &p.block_size) < 0)
				return EXIT_FAIL;
			break;
		case 'A':
			p.flags |= VHD_CREATE_AZURE;
			break;
		default:
			return vt_usage("create");
		}
	}
	if (p.parent) {
		if (type_given && p.type != VHD_TYPE_DIFFERENCING) {
			vt_error("-b makes a differencing image; it cannot be combined with -t %s",
				 p.type == VHD_TYPE_FIXED ? "fixed" : "dynamic");
			return EXIT_FAIL;
		}
		p.type = VHD_TYPE_DIFFERENCING;
	}
	if (p.flags & VHD_CREATE_AZURE) {
		if (type_given && p.type != VHD_TYPE_FIXED) {
			vt_error("--azure makes a fixed image");
			return EXIT_FAIL;
		}
		p.type = VHD_TYPE_FIXED;
	}
	if (p.type == VHD_TYPE_DIFFERENCING && !p.parent) {
		vt_error("a differencing image needs a parent (-b PARENT)");
		return EXIT_FAIL;
	}
	int rest = argc - optind;
	if (rest < 1 || rest > 2 || (p.type == VHD_TYPE_DIFFERENCING ? rest > 2 : rest != 2))
		return vt_usage("create");
	const char *file = argv[optind];
	if (rest == 2) {
		if (vt_parse_size(argv[optind + 1], &p.size) < 0) {
			vt_error("invalid size '%s'", argv[optind + 1]);
			return EXIT_FAIL;
		}
	}
	if (p.type == VHD_TYPE_DIFFERENCING && rest == 2) {
		vt_error("a differencing image takes its size from the parent; drop SIZE");
		return EXIT_FAIL;
	}
	if (p.flags & VHD_CREATE_AZURE)
		p.size = vt_azure_round(p.size);
	if (p.type == VHD_TYPE_FIXED && p.size > VHD_MAX_DYNAMIC_SIZE)
		vt_warn("fixed images over 2040 GiB are valid (Azure takes up to 32 TiB), but qemu-img refuses to open them");

	struct vhd_error err;
	struct vhd_image *img;
	if (vhd_create(file, &p, &img, &err) < 0) {
		vt_error("%s", err.message);
		return EXIT_FAIL;
	}
	vt_print_warnings(img);
	char sz[32];
	vt_format_size(vhd_virtual_size(img), sz, sizeof(sz));
	printf("Formatting '%s', fmt=vpc subformat=%s size=%llu (%s)\n", file,
	       p.type == VHD_TYPE_FIXED ? "fixed" : p.type == VHD_TYPE_DYNAMIC ? "dynamic" : "differencing",
	       (unsigned long long)vhd_virtual_size(img), sz);
	if (vhd_close(img) < 0) {
		vt_error("%s: flush failed", file);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
