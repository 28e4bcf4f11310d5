/* SPDX-License-Identifier: MIT */
/* vhdtool check: exit 0 clean, 1 incomplete, 2 corruption, 3 only leaks. */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "vhdtool.h"

enum { CHECK_CLEAN = 0, CHECK_INCOMPLETE = 1, CHECK_CORRUPT = 2, CHECK_LEAKS = 3 };

static const char *kind_name(enum vhd_finding_kind k)
{
	switch (k) {
	case VHD_FINDING_CORRUPTION:
		return "corruption";
	case VHD_FINDING_LEAK:
		return "leak";
	case VHD_FINDING_WARNING:
		return "warning";
	case VHD_FINDING_REPAIR:
		return "repair";
	}
	return "?";
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		VT_OUTPUT_OPTIONS,
		{ "repair", no_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, repair = false, dry = false;
	int c;
	while ((c = getopt_long(argc, argv, "rn", opts, NULL)) != -1) {
		if (c == 'r')
			repair = true;
		else if (c == 'n')
			dry = true;
		else if (vt_output_option(c, optarg, &json) != 1)
			return vt_usage("check");
	}
	if (argc - optind != 1)
		return vt_usage("check");
	const char *file = argv[optind];
	struct vhd_check_report rep;
	struct vhd_error err;

	if (dry && !repair) {
		vt_error("--dry-run goes with --repair");
		return CHECK_INCOMPLETE;
	}
	if (repair) {
		/* The plan or the actions first; the verdict below is the image's
		 * state afterwards, as qemu-img check -r reports it. */
		if (vhd_repair(file, dry ? VHD_REPAIR_DRY_RUN : 0, &rep, &err) < 0) {
			vt_error("%s", err.message);
			vhd_check_report_free(&rep);
			return CHECK_INCOMPLETE;
		}
		for (size_t i = 0; i < rep.count; i++)
			fprintf(json ? stderr : stdout, "%s: %s at offset %" PRIu64 " (0x%" PRIx64 "): %s\n",
				rep.findings[i].field, rep.findings[i].structure, rep.findings[i].offset,
				rep.findings[i].offset, rep.findings[i].message);
		if (!rep.count)
			fprintf(json ? stderr : stdout, "%s\n",
				rep.complete ? "Nothing to repair." : "Nothing trustworthy to repair from.");
		vhd_check_report_free(&rep);
	}
	if (vhd_check(file, &rep, &err) < 0) {
		vt_error("%s", err.message);
		return CHECK_INCOMPLETE;
	}
	int status = rep.corruptions ? CHECK_CORRUPT
		   : !rep.complete   ? CHECK_INCOMPLETE
		   : rep.leaks       ? CHECK_LEAKS
				     : CHECK_CLEAN;
	if (json) {
		printf("{\n  \"filename\": ");
		json_string(stdout, file);
		printf(",\n  \"format\": \"vpc\",\n  \"vhd-type\": \"%s\"",
		       rep.type ? vhd_type_name(rep.type) : "unknown");
		printf(",\n  \"check-errors\": %d", rep.complete ? 0 : 1);
		printf(",\n  \"corruptions\": %u,\n  \"leaks\": %u,\n  \"leaked-bytes\": %" PRIu64
		       ",\n  \"warnings\": %u",
		       rep.corruptions, rep.leaks, rep.leaked_bytes, rep.warnings);
		printf(",\n  \"complete\": %s,\n  \"exit-code\": %d,\n  \"findings\": [",
		       rep.complete ? "true" : "false", status);
		for (size_t i = 0; i < rep.count; i++) {
			const struct vhd_finding *f = &rep.findings[i];
			printf("%s\n    {\"kind\": \"%s\", \"structure\": ", i ? "," : "", kind_name(f->kind));
			json_string(stdout, f->structure);
			printf(", \"field\": ");
			json_string(stdout, f->field);
			printf(", \"offset\": %" PRIu64 ", \"message\": ", f->offset);
			json_string(stdout, f->message);
			printf("}");
		}
		printf("%s]\n}\n", rep.count ? "\n  " : "");
	} else {
		for (size_t i = 0; i < rep.count; i++) {
			const struct vhd_finding *f = &rep.findings[i];
			printf("%s: %s.%s at offset %" PRIu64 " (0x%" PRIx64 "): %s\n", kind_name(f->kind),
			       f->structure, f->field, f->offset, f->offset, f->message);
		}
		if (rep.dropped)
			printf("(%zu more findings not shown)\n", rep.dropped);
		if (status == CHECK_CLEAN)
			printf("No errors were found on the image.\n");
		else if (status == CHECK_LEAKS)
			printf("%" PRIu64 " bytes of leaked space were found; the data is intact.\n",
			       rep.leaked_bytes);
		else if (status == CHECK_CORRUPT)
			printf("%u corruption(s) found on the image.\n", rep.corruptions);
		else
			printf("The check could not complete (see above).\n");
	}
	vhd_check_report_free(&rep);
	return status;
}
