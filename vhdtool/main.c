/* SPDX-License-Identifier: MIT */
/* vhdtool: create, inspect, check and convert VHD images. */
#include <stdio.h>
#include <string.h>

#include "vhdtool.h"

const char *vhdtool_prog = "vhdtool";

const struct command vhdtool_commands[] = {
	{ "create", cmd_create,
	  "[-t fixed|dynamic|differencing] [-b PARENT] [--block-size N] [--azure] FILE [SIZE]",
	  "Create an image of exactly SIZE bytes (K, M, G, T suffixes are binary).\n"
	  "  -t, --type TYPE      fixed, dynamic (default) or differencing\n"
	  "  -b, --parent PARENT  make a differencing child of PARENT (size from PARENT)\n"
	  "      --block-size N   block size of a dynamic or differencing image, a power of two\n"
	  "                       from 512K to 256M (default 2M)\n"
	  "      --azure          fixed image for Azure: size rounded up to whole MiB, 20 MiB to 32 TiB" },
	{ "info", cmd_info, "[--json] FILE",
	  "Show an image's type, sizes, identity, checksums and its whole parent chain.\n"
	  "      --json           machine-readable output (qemu-img's key names)" },
	{ "check", cmd_check, "[--json] [--repair [--dry-run]] FILE",
	  "Check an image's structure. Exit status: 0 clean, 1 the check could not complete,\n"
	  "2 corruption found, 3 only leaked space (after --repair: the image as repaired).\n"
	  "      --json           machine-readable output\n"
	  "  -r, --repair         fix what can be proven wrong: a damaged footer from its copy,\n"
	  "                       checksums of otherwise valid structures, BAT entries outside\n"
	  "                       the data area, leaked space; never data it cannot prove wrong\n"
	  "  -n, --dry-run        with --repair: show the plan, change nothing" },
	{ "convert", cmd_convert,
	  "[-f raw|vhd] [-O raw|fixed|dynamic] [-B PARENT] [--block-size N] [--azure] [--size N] [-p] [--overwrite] [--sync] SRC DST",
	  "Copy a raw image, gzip data or any VHD (a differencing chain reads through its parents)\n"
	  "into a raw, fixed or dynamic image. Zero runs stay holes or unallocated.\n"
	  "SRC or DST '-' is standard input or output. A name ending in .gz is gzip data (a gzip\n"
	  "source is also recognized by its content); gzip output is compressed at level 6.\n"
	  "Output to '-' or .gz is raw data, or with -O fixed a fixed VHD (its footer comes last).\n"
	  "  -f FMT               source format (default: detected; -f raw takes the bytes as they\n"
	  "                       are, unless the name ends in .gz)\n"
	  "  -O FMT               output format: raw, fixed or dynamic (default dynamic; raw for '-'\n"
	  "                       and .gz)\n"
	  "  -B PARENT            write a differencing child of PARENT holding only what differs\n"
	  "      --block-size N   block size of a dynamic or differencing output\n"
	  "      --azure          fixed output for Azure (whole MiB, 20 MiB to 32 TiB)\n"
	  "      --size N         the size of a pipe or gzip source, stated up front; the data must\n"
	  "                       be exactly that long (default: learned at its end)\n"
	  "  -p, --progress       show progress (bytes copied when the size is not known)\n"
	  "      --overwrite      replace DST if it exists\n"
	  "      --sync           make DST durable before exiting (default: leave it to the OS, as cp\n"
	  "                       and qemu-img convert do)" },
	{ "map", cmd_map, "[--json] FILE",
	  "List the extents of the virtual disk: where data lives (which layer of a chain)\n"
	  "and which ranges read as zeros.\n"
	  "      --json           machine-readable output (qemu-img map's key names)" },
	{ "compact", cmd_compact, "[--dry-run] [--json] [-p] FILE",
	  "Reclaim space in place: free blocks that read as zeros (in a differencing image:\n"
	  "blocks and sectors equal to the parent), move the last blocks into the gaps and\n"
	  "cut the file; fixed images get holes punched. Crash-safe.\n"
	  "  -n, --dry-run        report what would be reclaimed, change nothing\n"
	  "      --json           machine-readable result\n"
	  "  -p, --progress       show progress" },
	{ "preallocate", cmd_preallocate, "[-p] FILE",
	  "Allocate every block of a dynamic image, every sector bit set, writing zeros where\n"
	  "nothing was: the virtual disk then lies at fixed places in the file (what vhdboot's\n"
	  "handoff=linear needs). The contents do not change.\n"
	  "  -p, --progress       show progress" },
	{ "resize", cmd_resize, "[--shrink [--force]] FILE [+|-]SIZE",
	  "Change the virtual size (any type). Growing a dynamic image may move its first\n"
	  "blocks to make room for a larger BAT. Shrinking must be asked for, and is refused\n"
	  "when blocks past the new end hold data unless --force.\n"
	  "      --shrink         allow a smaller size\n"
	  "      --force          with --shrink: drop the data past the new end" },
	{ "merge", cmd_merge, "[--into ANCESTOR] [--remove] [-p] CHILD",
	  "Write a differencing image's sectors into its parent (or the named ancestor).\n"
	  "Crash-safe and restartable: running it again after a cut finishes the job.\n"
	  "      --into ANCESTOR  merge every layer above ANCESTOR into it\n"
	  "      --remove         delete CHILD afterwards\n"
	  "  -p, --progress       show progress" },
	{ "set-parent", cmd_set_parent, "[--ignore-id-mismatch] CHILD NEWPARENT",
	  "Point a differencing image at its parent's new place (new W2ru and MacX locators).\n"
	  "      --ignore-id-mismatch  accept a parent with another UUID (and record it)" },
	{ "boot-check", cmd_boot_check, "[--program PATH] [--dest DIR|FILE] [--json] FILE",
	  "Check that vhdboot.efi can boot the image (any type; a chain reads through its\n"
	  "parents): a protective MBR and a valid GPT (the backup header if the primary is\n"
	  "broken, as firmware does), an ESP with a FAT file system, and on it the program the\n"
	  "loader starts: \\EFI\\BOOT\\BOOTX64.EFI, else \\EFI\\*\\shimx64.efi, else\n"
	  "\\EFI\\*\\grubx64.efi. Warns when the backup GPT header is not at the last LBA.\n"
	  "Exit status: 0 bootable, 1 not bootable (the reason on stderr), 2 error.\n"
	  "      --program PATH   the loader's program= (a path on the ESP)\n"
	  "      --dest DIR|FILE  where the VHD will sit: warn when that file system is FAT,\n"
	  "                       which holds files up to 4 GiB - 1 byte (or a dynamic image\n"
	  "                       could grow past that)\n"
	  "      --json           machine-readable output" },
	{ NULL, NULL, NULL, NULL },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: %s COMMAND [OPTIONS] ...\n\nCommands:\n", vhdtool_prog);
	for (const struct command *c = vhdtool_commands; c->name; c++)
		fprintf(f, "  %s %s\n", c->name, c->usage);
	fprintf(f, "\nSizes take binary suffixes K, M, G, T. '%s COMMAND --help' shows details.\n",
		vhdtool_prog);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_FAIL;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("vhdtool %s\n", LIBVHD_VERSION_STRING);
		return EXIT_OK;
	}
	for (const struct command *c = vhdtool_commands; c->name; c++) {
		if (strcmp(c->name, argv[1]) != 0)
			continue;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--") == 0)
				break;
			if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
				vt_command_help(c->name);
				return EXIT_OK;
			}
		}
		/* getopt names the program by argv[0]: say "vhdtool create". */
		char name[64];
		snprintf(name, sizeof(name), "%s %s", vhdtool_prog, c->name);
		argv[1] = name;
		return c->run(argc - 1, argv + 1);
	}
	vt_error("unknown command '%s'", argv[1]);
	usage(stderr);
	return EXIT_FAIL;
}
