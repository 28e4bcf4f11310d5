/* SPDX-License-Identifier: MIT */
/* vhdtool info */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vhdtool.h"

static void creator_text(const struct vhd_info *in, char out[16])
{
	/* "tap\0" and friends: show NULs as spaces, keep it printable. */
	for (int i = 0; i < 4; i++) {
		char c = in->creator_app[i];
		out[i] = c >= 0x20 && c < 0x7f ? c : ' ';
	}
	out[4] = '\0';
}

static void os_text(uint32_t os, char out[8])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(os >> (24 - 8 * i));
		out[i] = c >= 0x20 && c < 0x7f ? c : ' ';
	}
	out[4] = '\0';
}

static void time_text(uint32_t ts, char *out, size_t len)
{
	time_t t = (time_t)vhd_timestamp_to_unix(ts);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static uint64_t actual_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static void print_json(FILE *f, struct vhd_image *img, int indent);

static void print_json_locators(FILE *f, struct vhd_image *img, const char *pad)
{
	int n = vhd_locator_count(img);
	fprintf(f, ",\n%s\"parent-locators\": [", pad);
	for (int i = 0; i < n; i++) {
		struct vhd_locator loc;
		vhd_get_locator(img, i, &loc);
		fprintf(f, "%s\n%s  {\"code\": ", i ? "," : "", pad);
		json_string(f, loc.code);
		fprintf(f, ", \"path\": ");
		json_string(f, loc.path);
		fprintf(f, ", \"valid\": %s, \"offset\": %" PRIu64 ", \"length\": %u, \"space\": %u}",
			loc.valid ? "true" : "false", loc.data_offset, loc.data_length, loc.data_space);
	}
	fprintf(f, "%s]", n ? "\n  " : "");
}

static void print_json(FILE *f, struct vhd_image *img, int indent)
{
	struct vhd_info in;
	char pad[64], buf[64];
	int w = indent < 60 ? indent : 60;
	memset(pad, ' ', (size_t)w);
	pad[w] = '\0';
	vhd_get_info(img, &in);

	fprintf(f, "{\n%s  \"filename\": ", pad);
	json_string(f, vhd_filename(img));
	fprintf(f, ",\n%s  \"format\": \"vpc\",\n%s  \"vhd-type\": \"%s\"", pad, pad,
		vhd_type_name(in.type));
	fprintf(f, ",\n%s  \"virtual-size\": %" PRIu64, pad, in.virtual_size);
	fprintf(f, ",\n%s  \"actual-size\": %" PRIu64, pad, actual_size(vhd_filename(img)));
	fprintf(f, ",\n%s  \"file-size\": %" PRIu64, pad, in.file_size);
	fprintf(f, ",\n%s  \"allocated-size\": %" PRIu64, pad, in.allocated_bytes);
	fprintf(f, ",\n%s  \"current-size\": %" PRIu64, pad, in.current_size);
	fprintf(f, ",\n%s  \"original-size\": %" PRIu64, pad, in.original_size);
	fprintf(f, ",\n%s  \"size-source\": \"%s\"", pad,
		in.size_from_geometry ? "geometry" : "current-size");
	if (in.type != VHD_TYPE_FIXED) {
		fprintf(f, ",\n%s  \"cluster-size\": %u", pad, in.block_size);
		fprintf(f, ",\n%s  \"allocated-blocks\": %u", pad, in.allocated_blocks);
		fprintf(f, ",\n%s  \"max-table-entries\": %u", pad, in.max_table_entries);
	}
	vhd_uuid_text(in.uuid, buf);
	fprintf(f, ",\n%s  \"uuid\": \"%s\"", pad, buf);
	creator_text(&in, buf);
	fprintf(f, ",\n%s  \"creator-app\": ", pad);
	json_string(f, buf);
	fprintf(f, ",\n%s  \"creator-version\": \"%u.%u\"", pad, in.creator_version >> 16,
		in.creator_version & 0xffff);
	os_text(in.creator_host_os, buf);
	fprintf(f, ",\n%s  \"creator-host-os\": ", pad);
	json_string(f, buf);
	fprintf(f, ",\n%s  \"geometry\": {\"cylinders\": %u, \"heads\": %u, \"sectors\": %u}", pad,
		in.geometry.cylinders, in.geometry.heads, in.geometry.sectors);
	time_text(in.timestamp, buf, sizeof(buf));
	fprintf(f, ",\n%s  \"timestamp\": %u,\n%s  \"date\": \"%s\"", pad, in.timestamp, pad, buf);
	fprintf(f, ",\n%s  \"footer-checksum\": \"%s\"", pad, in.footer_checksum_ok ? "ok" : "bad");
	if (in.type != VHD_TYPE_FIXED)
		fprintf(f, ",\n%s  \"header-checksum\": \"%s\"", pad,
			in.header_checksum_ok ? "ok" : "bad");
	fprintf(f, ",\n%s  \"footer-source\": \"%s\"", pad,
		in.footer_from_copy ? "copy-at-offset-0" : in.footer_size == 511 ? "end-legacy-511" : "end");
	fprintf(f, ",\n%s  \"warnings\": [", pad);
	const char *wp = vhd_warnings(img);
	bool first = true;
	while (*wp) {
		const char *nl = strchr(wp, '\n');
		size_t n = nl ? (size_t)(nl - wp) : strlen(wp);
		char line[1100];
		snprintf(line, sizeof(line), "%.*s", (int)n, wp);
		fprintf(f, "%s", first ? "" : ", ");
		json_string(f, line);
		first = false;
		wp += n + (nl != NULL);
	}
	fprintf(f, "]");
	if (in.type == VHD_TYPE_DIFFERENCING) {
		fprintf(f, ",\n%s  \"parent-name\": ", pad);
		json_string(f, in.parent_name);
		vhd_uuid_text(in.parent_uuid, buf);
		fprintf(f, ",\n%s  \"parent-uuid\": \"%s\"", pad, buf);
		fprintf(f, ",\n%s  \"parent-timestamp\": %u", pad, in.parent_timestamp);
		char lpad[70];
		snprintf(lpad, sizeof(lpad), "%s  ", pad);
		print_json_locators(f, img, lpad);
		struct vhd_image *parent = vhd_parent(img);
		if (parent) {
			fprintf(f, ",\n%s  \"backing-filename\": ", pad);
			json_string(f, vhd_parent_path(img));
			fprintf(f, ",\n%s  \"full-backing-filename\": ", pad);
			json_string(f, vhd_filename(parent));
			fprintf(f, ",\n%s  \"backing-filename-format\": \"vpc\"", pad);
			fprintf(f, ",\n%s  \"backing-image\": ", pad);
			print_json(f, parent, indent + 2);
		} else {
			fprintf(f, ",\n%s  \"backing-missing\": true,\n%s  \"backing-error\": ", pad, pad);
			json_string(f, vhd_parent_error(img) ? vhd_parent_error(img) : "");
		}
	}
	fprintf(f, "\n%s}", pad);
}

static void print_text(struct vhd_image *img, int level)
{
	struct vhd_info in;
	char buf[64], sz[32];
	vhd_get_info(img, &in);

	if (level)
		printf("\nparent (level %d):\n", level);
	printf("image: %s\n", vhd_filename(img));
	printf("file format: vpc (%s)\n", vhd_type_name(in.type));
	vt_format_size(in.virtual_size, sz, sizeof(sz));
	printf("virtual size: %s (%" PRIu64 " bytes)%s\n", sz, in.virtual_size,
	       in.size_from_geometry ? " [from CHS geometry]" : "");
	vt_format_size(actual_size(vhd_filename(img)), sz, sizeof(sz));
	printf("disk size: %s\n", sz);
	printf("file size: %" PRIu64 " bytes\n", in.file_size);
	if (in.type != VHD_TYPE_FIXED) {
		vt_format_size(in.block_size, sz, sizeof(sz));
		printf("block size: %s\n", sz);
		printf("allocated: %u of %u blocks (%" PRIu64 " bytes)\n", in.allocated_blocks,
		       in.max_table_entries, in.allocated_bytes);
	}
	vhd_uuid_text(in.uuid, buf);
	printf("uuid: %s\n", buf);
	creator_text(&in, buf);
	char os[8];
	os_text(in.creator_host_os, os);
	printf("creator: '%s' version %u.%u on '%s'\n", buf, in.creator_version >> 16,
	       in.creator_version & 0xffff, os);
	printf("geometry: %u/%u/%u (C/H/S)\n", in.geometry.cylinders, in.geometry.heads,
	       in.geometry.sectors);
	time_text(in.timestamp, buf, sizeof(buf));
	printf("timestamp: %s\n", buf);
	printf("current size: %" PRIu64 ", original size: %" PRIu64 "\n", in.current_size,
	       in.original_size);
	printf("footer checksum: %s%s\n", in.footer_checksum_ok ? "ok" : "BAD",
	       in.footer_from_copy ? " (end footer damaged, using the copy at offset 0)" : "");
	if (in.type != VHD_TYPE_FIXED)
		printf("header checksum: %s\n", in.header_checksum_ok ? "ok" : "BAD");
	if (in.type != VHD_TYPE_DIFFERENCING)
		return;
	vhd_uuid_text(in.parent_uuid, buf);
	printf("parent name: %s\nparent uuid: %s\n", in.parent_name, buf);
	for (int i = 0; i < vhd_locator_count(img); i++) {
		struct vhd_locator loc;
		vhd_get_locator(img, i, &loc);
		printf("parent locator %s: %s%s\n", loc.code, loc.valid ? loc.path : "",
		       loc.valid ? "" : "(unreadable)");
	}
	struct vhd_image *parent = vhd_parent(img);
	if (parent) {
		printf("backing file: %s\n", vhd_filename(parent));
		print_text(parent, level + 1);
	} else {
		printf("backing file: MISSING: %s\n", vhd_parent_error(img) ? vhd_parent_error(img) : "");
	}
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		VT_OUTPUT_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (vt_output_option(c, optarg, &json) != 1)
			return vt_usage("info");
	if (argc - optind != 1)
		return vt_usage("info");

	struct vhd_image *img;
	struct vhd_error err;
	if (vhd_open(argv[optind], VHD_OPEN_PARENT_OPTIONAL, &img, &err) < 0) {
		vt_error("%s", err.message);
		return EXIT_FAIL;
	}
	vt_print_warnings(img);
	if (json) {
		print_json(stdout, img, 0);
		fputc('\n', stdout);
	} else {
		print_text(img, 0);
	}
	vhd_close(img);
	return EXIT_OK;
}
