/* SPDX-License-Identifier: MIT */
/*
 * vhdtool boot-check: would vhdboot.efi boot this VHD?  The checks the
 * firmware and the loader make, done from the host: a protective MBR and a
 * valid GPT (the backup header when the primary is broken, as EDK2 does),
 * an ESP with a FAT file system, and on it the program the loader would
 * start, searched in the loader's order (efiboot/efi_main.c).  The ESP is
 * read with the loader's own FAT/exFAT code (efiboot/fsmap.c, fsdir.c)
 * through the virtual disk, so a differencing chain reads as it boots.
 * With --dest: can the file system the VHD will sit on hold it?
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bootcheck.h"
#include "fsdir.h"
#include "fsmap.h"
#include "handoff.h"
#include "vhdtool.h"

#define EXIT_NOT_BOOTABLE 1
#define EXIT_ERROR        2
/* The VHD's sector: the logical block of the GPT inside it. */
#define GPT_SECTOR        512u
#define PROGRAM_MAX       1024
/* \EFI folders tried for shimx64.efi / grubx64.efi: more is hostile. */
#define EFI_DIRS_MAX      1024

static const char default_program[] = "\\EFI\\BOOT\\BOOTX64.EFI";
static const char *const efi_dir_programs[] = { "shimx64.efi", "grubx64.efi" };

struct part_report {
	struct ho_gpt_part p;
	bool esp;
	bool inside;                /* within the usable LBAs */
	enum vb_fs_type fs;         /* 0: no FAT/exFAT file system (ESPs only) */
	bool has_program;
	char program[PROGRAM_MAX];
	char problem[768];          /* why this ESP cannot boot */
};

struct report {
	struct vhd_image *img;
	struct vhd_info info;
	uint64_t sectors;
	bool pmbr;
	bool gpt;
	const char *gpt_from;       /* "primary" or "backup" */
	struct ho_gpt_header hdr;
	struct part_report *parts;
	size_t nparts;
	long chosen;                /* index into parts, -1: none */
	bool bootable;
	char reason[1024];
	const char *dest_path;
	struct bc_dest dest;
	struct bc_notes notes;
};

/* ---- reading the virtual disk ---- */

struct part_io {
	struct vhd_image *img;
	uint64_t base;
	int error;                  /* the first read error: not the disk's content */
};

static int part_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct part_io *p = ctx;
	int rc = vhd_pread(p->img, buf, len, p->base + off);
	if (rc < 0 && !p->error)
		p->error = rc;
	return rc;
}

static int read_disk(struct vhd_image *img, uint64_t off, void *buf, size_t len)
{
	int rc = vhd_pread(img, buf, len, off);
	if (rc < 0)
		vt_error("%s: cannot read the virtual disk at byte %" PRIu64 ": %s", vhd_filename(img), off,
			 vhd_errmsg(img));
	return rc;
}

/* ---- GPT ---- */

/* Validate a header and its array; 0 and *array (malloc'd), 1 when not
 * valid (why says why), -errno on a read error. */
static int load_gpt(struct vhd_image *img, uint64_t lba, uint64_t sectors, struct ho_gpt_header *h,
		    uint8_t **array, char *why, size_t whylen)
{
	uint8_t sector[GPT_SECTOR];
	int rc = read_disk(img, lba * GPT_SECTOR, sector, sizeof(sector));
	if (rc < 0)
		return rc;
	if (ho_gpt_header_parse(sector, GPT_SECTOR, lba, sectors, h, why, whylen) < 0)
		return 1;
	uint8_t *a = malloc(ho_gpt_array_bytes(h));
	if (!a) {
		vt_error("out of memory");
		return -ENOMEM;
	}
	rc = read_disk(img, h->entries_lba * GPT_SECTOR, a, ho_gpt_array_bytes(h));
	if (rc < 0) {
		free(a);
		return rc;
	}
	if (ho_gpt_array_check(h, a, why, whylen) < 0) {
		free(a);
		return 1;
	}
	*array = a;
	return 0;
}

/* The backup header: where the primary says, and at the disk's last LBA.
 * A disk grown after partitioning (qemu-img rounds VHD sizes up to a CHS
 * geometry) has it elsewhere: firmware then finds no valid backup. */
static int check_backup(struct report *r)
{
	uint64_t last = r->sectors - 1;
	struct ho_gpt_header b;
	uint8_t *array = NULL;
	char why[256];

	if (r->hdr.alternate_lba != last) {
		bc_note(&r->notes, "the primary GPT header puts the backup header at LBA %" PRIu64
			", but the disk's last LBA is %" PRIu64 " (was the disk resized, or its size "
			"rounded as qemu-img rounds VHD sizes?): firmware finds no backup GPT; "
			"'sgdisk -e' moves it to the end", r->hdr.alternate_lba, last);
		return 0;
	}
	int rc = load_gpt(r->img, last, r->sectors, &b, &array, why, sizeof(why));
	if (rc < 0)
		return rc;
	free(array);
	if (rc == 1)
		bc_note(&r->notes, "the backup GPT header at LBA %" PRIu64 " is not valid: %s", last, why);
	return 0;
}

static int read_gpt(struct report *r, uint8_t **array)
{
	uint8_t mbr[GPT_SECTOR];
	char why[256], bwhy[256];
	int rc;

	if (r->sectors < 3 + 2 * 32) {
		snprintf(r->reason, sizeof(r->reason), "no GPT: a disk of %" PRIu64 " sectors is too small "
			 "for one", r->sectors);
		return 1;
	}
	rc = read_disk(r->img, 0, mbr, sizeof(mbr));
	if (rc < 0)
		return rc;
	r->pmbr = ho_gpt_protective_mbr(mbr);
	rc = load_gpt(r->img, 1, r->sectors, &r->hdr, array, why, sizeof(why));
	if (rc < 0)
		return rc;
	if (rc == 0) {
		r->gpt_from = "primary";
		rc = check_backup(r);
		if (rc < 0)
			return rc;
	} else {
		/* EDK2 boots from the backup when the primary is broken. */
		rc = load_gpt(r->img, r->sectors - 1, r->sectors, &r->hdr, array, bwhy, sizeof(bwhy));
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (strstr(why, "signature") && strstr(bwhy, "signature"))
				snprintf(r->reason, sizeof(r->reason), "no GPT: no 'EFI PART' header at LBA 1");
			else
				snprintf(r->reason, sizeof(r->reason), "no valid GPT: primary header: %s; "
					 "backup header at LBA %" PRIu64 ": %s", why, r->sectors - 1, bwhy);
			return 1;
		}
		r->gpt_from = "backup";
		bc_note(&r->notes, "the primary GPT is not valid (%s): firmware uses the backup at LBA %"
			PRIu64 "; 'sgdisk -e' or any partitioning tool rewrites the primary", why,
			r->sectors - 1);
	}
	r->gpt = true;
	if (!r->pmbr) {
		snprintf(r->reason, sizeof(r->reason), "no protective MBR (a partition of type 0xEE "
			 "starting at LBA 1): UEFI firmware ignores the GPT without one");
		return 1;
	}
	return 0;
}

/* ---- the ESP ---- */

struct name_list {
	char **v;
	size_t n;
};

static int collect_dir(void *ctx, const struct vb_dir_entry *e)
{
	struct name_list *l = ctx;
	/* As the loader: folders only, none starting with '.'. */
	if (!e->is_dir || e->name[0] == '.')
		return 0;
	if (l->n == EFI_DIRS_MAX)
		return 1;
	char *copy = strdup(e->name);
	if (!copy)
		return -ENOMEM;
	l->v[l->n++] = copy;
	return 0;
}

/* Is path on the ESP?  0 found (*map), 1 missing, -EIO/-EINVAL: the file
 * system is broken (problem says how). */
static int try_program(const struct vb_disk *disk, const char *path, struct vb_file_map *map,
		       struct part_report *pr)
{
	char err[512];
	int rc = vb_file_map_open(disk, path, map, err, sizeof(err));
	if (rc == 0) {
		snprintf(pr->program, sizeof(pr->program), "%s", path);
		return 0;
	}
	if (rc == -ENOENT)
		return 1;
	snprintf(pr->problem, sizeof(pr->problem), "%s: %s", path, err);
	return rc;
}

/* The loader's search (efi_main.c find_program): program= as given; else
 * \EFI\BOOT\BOOTX64.EFI, then shimx64.efi, then grubx64.efi in the first
 * folder of \EFI (in directory order) that holds it. */
static int search_program(const struct vb_disk *disk, const char *want, struct vb_file_map *map,
			  struct part_report *pr)
{
	struct name_list dirs = { NULL, 0 };
	char err[512], path[PROGRAM_MAX];
	int rc;

	if (want) {
		rc = try_program(disk, want, map, pr);
		if (rc == 1)
			snprintf(pr->problem, sizeof(pr->problem), "program not found: %s", want);
		return rc;
	}
	rc = try_program(disk, default_program, map, pr);
	if (rc <= 0)
		return rc;
	dirs.v = calloc(EFI_DIRS_MAX, sizeof(*dirs.v));
	if (!dirs.v)
		return -ENOMEM;
	rc = vb_dir_list(disk, "\\EFI", collect_dir, &dirs, err, sizeof(err));
	if (rc == -ENOENT) {
		rc = 1;
	} else if (rc < 0) {
		snprintf(pr->problem, sizeof(pr->problem), "\\EFI: %s", err);
	} else {
		rc = 1;
		for (size_t p = 0; rc == 1 && p < sizeof(efi_dir_programs) / sizeof(*efi_dir_programs); p++)
			for (size_t d = 0; rc == 1 && d < dirs.n; d++) {
				snprintf(path, sizeof(path), "\\EFI\\%s\\%s", dirs.v[d], efi_dir_programs[p]);
				rc = try_program(disk, path, map, pr);
			}
	}
	for (size_t d = 0; d < dirs.n; d++)
		free(dirs.v[d]);
	free(dirs.v);
	if (rc == 1)
		snprintf(pr->problem, sizeof(pr->problem), "program not found: no %s, "
			 "\\EFI\\*\\shimx64.efi or \\EFI\\*\\grubx64.efi", default_program);
	return rc;
}

/* The first bytes of a found program: an EFI program is a PE image ("MZ"). */
static int check_program_head(struct part_io *io, const struct vb_file_map *map,
			      const struct part_report *pr, struct bc_notes *notes)
{
	uint8_t head[2] = { 0, 0 };
	if (map->size < sizeof(head)) {
		bc_note(notes, "partition %u: %s is %" PRIu64 " bytes long, too short for an EFI program",
			pr->p.number, pr->program, map->size);
		return 0;
	}
	if (map->valid_length >= sizeof(head) && map->count > 0) {
		/* The first extent starts at file offset 0 and is at least a cluster or the file. */
		uint64_t at = map->extents[0].disk_offset;
		int rc = part_read(io, at, head, map->extents[0].length >= 2 ? 2 : 1);
		if (rc < 0)
			return rc;
	}
	if (head[0] != 'M' || head[1] != 'Z')
		bc_note(notes, "partition %u: %s does not start with 'MZ': it is not an EFI program",
			pr->p.number, pr->program);
	return 0;
}

static int check_esp(struct report *r, struct part_report *pr, const char *want)
{
	struct part_io io = { r->img, pr->p.first_lba * GPT_SECTOR, 0 };
	struct vb_disk disk = { part_read, &io, (pr->p.last_lba - pr->p.first_lba + 1) * GPT_SECTOR };
	struct vb_file_map map;
	char err[512];
	int rc;

	rc = vb_fs_probe(&disk, &pr->fs, err, sizeof(err));
	if (io.error)
		goto read_error;
	if (rc < 0) {
		pr->fs = 0;
		snprintf(pr->problem, sizeof(pr->problem), "the ESP holds no FAT file system: %s", err);
		return 0;
	}
	if (pr->fs == VB_FS_EXFAT) {
		snprintf(pr->problem, sizeof(pr->problem), "the ESP holds exFAT, which UEFI firmware does "
			 "not read: an ESP must be FAT12, FAT16 or FAT32");
		return 0;
	}
	rc = search_program(&disk, want, &map, pr);
	if (io.error)
		goto read_error;
	if (rc == -ENOMEM) {
		vt_error("out of memory");
		return rc;
	}
	if (rc != 0)
		return 0;
	pr->has_program = true;
	rc = check_program_head(&io, &map, pr, &r->notes);
	vb_file_map_free(&map);
	if (io.error)
		goto read_error;
	return rc;

read_error:
	vt_error("%s: cannot read partition %u of the virtual disk: %s", vhd_filename(r->img),
		 pr->p.number, vhd_errmsg(r->img));
	return io.error;
}

static int check_partitions(struct report *r, const uint8_t *array, const char *want)
{
	struct ho_gpt_part *used;
	size_t n;
	if (ho_gpt_used_entries(&r->hdr, array, &used, &n) < 0 ||
	    !(r->parts = calloc(n ? n : 1, sizeof(*r->parts)))) {
		free(used);
		vt_error("out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct part_report *pr = &r->parts[r->nparts++];
		pr->p = used[i];
		pr->esp = memcmp(pr->p.type, ho_gpt_type_esp, 16) == 0;
		pr->inside = pr->p.first_lba <= pr->p.last_lba &&
			     pr->p.first_lba >= r->hdr.first_usable &&
			     pr->p.last_lba <= r->hdr.last_usable;
		if (!pr->inside) {
			bc_note(&r->notes, "partition %u (LBA %" PRIu64 "..%" PRIu64 ") is not inside the "
				"usable LBAs %" PRIu64 "..%" PRIu64, pr->p.number, pr->p.first_lba,
				pr->p.last_lba, r->hdr.first_usable, r->hdr.last_usable);
			if (pr->esp)
				snprintf(pr->problem, sizeof(pr->problem), "the ESP lies outside the disk's "
					 "usable sectors");
			continue;
		}
		if (!pr->esp)
			continue;
		int rc = check_esp(r, pr, want);
		if (rc < 0) {
			free(used);
			return rc;
		}
		if (pr->has_program && r->chosen < 0)
			r->chosen = (long)(pr - r->parts);
	}
	free(used);
	if (r->chosen >= 0) {
		r->bootable = true;
		return 0;
	}
	for (size_t i = 0; i < r->nparts; i++)
		if (r->parts[i].esp) {
			snprintf(r->reason, sizeof(r->reason), "partition %u (ESP): %s", r->parts[i].p.number,
				 r->parts[i].problem);
			return 0;
		}
	snprintf(r->reason, sizeof(r->reason), "no ESP: no partition of type "
		 "C12A7328-F81F-11D2-BA4B-00A0C93EC93B in the GPT");
	return 0;
}

/* ---- output ---- */

/* As sgdisk and the UEFI specification print GUIDs: upper case. */
static void guid_text(const uint8_t guid[16], char out[37])
{
	ho_guid_format(guid, out);
	for (char *c = out; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
}

static void json_nullable(FILE *f, const char *s)
{
	if (s)
		json_string(f, s);
	else
		fputs("null", f);
}

static void print_json(const struct report *r)
{
	char guid[37];
	FILE *f = stdout;

	fprintf(f, "{\n  \"filename\": ");
	json_string(f, vhd_filename(r->img));
	fprintf(f, ",\n  \"vhd-type\": \"%s\",\n  \"virtual-size\": %" PRIu64, vhd_type_name(r->info.type),
		r->info.virtual_size);
	fprintf(f, ",\n  \"bootable\": %s,\n  \"reason\": ", r->bootable ? "true" : "false");
	json_nullable(f, r->bootable ? NULL : r->reason);
	fprintf(f, ",\n  \"protective-mbr\": %s,\n  \"gpt\": ", r->pmbr ? "true" : "false");
	if (r->gpt) {
		guid_text(r->hdr.disk_guid, guid);
		fprintf(f, "{\"header\": \"%s\", \"disk-guid\": \"%s\", \"first-usable-lba\": %" PRIu64
			", \"last-usable-lba\": %" PRIu64 ", \"backup-lba\": %" PRIu64
			", \"backup-at-end\": %s, \"entries\": %u}", r->gpt_from, guid,
			r->hdr.first_usable, r->hdr.last_usable, r->hdr.alternate_lba,
			r->hdr.alternate_lba == r->sectors - 1 ? "true" : "false", r->hdr.n_entries);
	} else {
		fputs("null", f);
	}
	fprintf(f, ",\n  \"partitions\": [");
	for (size_t i = 0; i < r->nparts; i++) {
		const struct part_report *pr = &r->parts[i];
		fprintf(f, "%s\n    {\"number\": %u, \"type\": ", i ? "," : "", pr->p.number);
		guid_text(pr->p.type, guid);
		json_string(f, guid);
		fprintf(f, ", \"type-name\": ");
		json_nullable(f, ho_gpt_type_name(pr->p.type));
		guid_text(pr->p.unique, guid);
		fprintf(f, ", \"guid\": \"%s\", \"name\": ", guid);
		json_string(f, pr->p.name);
		fprintf(f, ", \"first-lba\": %" PRIu64 ", \"last-lba\": %" PRIu64 ", \"offset\": %" PRIu64
			", \"size\": %" PRIu64 ", \"esp\": %s", pr->p.first_lba, pr->p.last_lba,
			pr->p.first_lba * GPT_SECTOR,
			pr->inside ? (pr->p.last_lba - pr->p.first_lba + 1) * GPT_SECTOR : 0,
			pr->esp ? "true" : "false");
		if (pr->esp) {
			fprintf(f, ", \"filesystem\": ");
			json_nullable(f, pr->fs ? vb_fs_type_name(pr->fs) : NULL);
			fprintf(f, ", \"program\": ");
			json_nullable(f, pr->has_program ? pr->program : NULL);
			fprintf(f, ", \"problem\": ");
			json_nullable(f, pr->has_program ? NULL : pr->problem);
		}
		fputc('}', f);
	}
	fprintf(f, "%s],\n  \"esp\": ", r->nparts ? "\n  " : "");
	if (r->chosen >= 0)
		fprintf(f, "%u", r->parts[r->chosen].p.number);
	else
		fputs("null", f);
	fprintf(f, ",\n  \"program\": ");
	json_nullable(f, r->chosen >= 0 ? r->parts[r->chosen].program : NULL);
	fprintf(f, ",\n  \"dest\": ");
	if (r->dest_path) {
		fprintf(f, "{\"path\": ");
		json_string(f, r->dest_path);
		fprintf(f, ", \"filesystem\": ");
		json_string(f, r->dest.fstype);
		fprintf(f, ", \"fat\": %s}", r->dest.fat ? "true" : "false");
	} else {
		fputs("null", f);
	}
	fprintf(f, ",\n  \"warnings\": [");
	for (size_t i = 0; i < r->notes.count; i++) {
		fprintf(f, "%s\n    ", i ? "," : "");
		json_string(f, r->notes.text[i]);
	}
	fprintf(f, "%s]\n}\n", r->notes.count ? "\n  " : "");
}

static void print_text(const struct report *r)
{
	char size[32], guid[37];
	vt_format_size(r->info.virtual_size, size, sizeof(size));
	printf("%s: %s VHD, %s (%" PRIu64 " bytes)\n", vhd_filename(r->img), vhd_type_name(r->info.type),
	       size, r->info.virtual_size);
	if (r->gpt) {
		guid_text(r->hdr.disk_guid, guid);
		printf("GPT %s (%s header): %u entries, usable LBAs %" PRIu64 "..%" PRIu64
		       ", backup header at LBA %" PRIu64 "\n", guid, r->gpt_from, r->hdr.n_entries,
		       r->hdr.first_usable, r->hdr.last_usable, r->hdr.alternate_lba);
		for (size_t i = 0; i < r->nparts; i++) {
			const struct part_report *pr = &r->parts[i];
			const char *tn = ho_gpt_type_name(pr->p.type);
			guid_text(pr->p.type, guid);
			vt_format_size(pr->inside ? (pr->p.last_lba - pr->p.first_lba + 1) * GPT_SECTOR : 0,
				       size, sizeof(size));
			printf("  %3u  LBA %" PRIu64 "..%" PRIu64 "  %-10s %-22s \"%s\"\n", pr->p.number,
			       pr->p.first_lba, pr->p.last_lba, size, tn ? tn : guid, pr->p.name);
			if (!pr->esp)
				continue;
			if (pr->has_program)
				printf("       %s, holds %s\n", vb_fs_type_name(pr->fs), pr->program);
			else
				printf("       %s\n", pr->problem);
		}
	}
	if (r->dest_path)
		printf("destination %s: %s%s\n", r->dest_path, r->dest.fstype,
		       r->dest.fat ? " (FAT: files up to 4 GiB - 1 byte)" : "");
	if (r->bootable)
		printf("bootable: vhdboot.efi would start %s from partition %u (%s)\n",
		       r->parts[r->chosen].program, r->parts[r->chosen].p.number,
		       vb_fs_type_name(r->parts[r->chosen].fs));
	else
		printf("not bootable: %s\n", r->reason);
}

/* ---- the command ---- */

static int run_checks(struct report *r, const char *want)
{
	uint8_t *array = NULL;
	r->sectors = r->info.virtual_size / GPT_SECTOR;
	int rc = read_gpt(r, &array);
	if (rc == 0)
		rc = check_partitions(r, array, want);
	free(array);
	return rc < 0 ? rc : 0;
}

int cmd_boot_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "program", required_argument, NULL, 'P' },
		{ "dest", required_argument, NULL, 'd' },
		VT_OUTPUT_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	const char *want = NULL;
	struct report *r;
	struct vhd_error err;
	bool json = false;
	int c, status;

	r = calloc(1, sizeof(*r));
	if (!r) {
		vt_error("out of memory");
		return EXIT_ERROR;
	}
	r->chosen = -1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'P') {
			want = optarg;
		} else if (c == 'd') {
			r->dest_path = optarg;
		} else if (vt_output_option(c, optarg, &json) != 1) {
			free(r);
			vt_usage("boot-check");
			return EXIT_ERROR;
		}
	}
	if (argc - optind != 1 || (want && (!want[0] || strlen(want) >= PROGRAM_MAX))) {
		free(r);
		vt_usage("boot-check");
		return EXIT_ERROR;
	}
	if (r->dest_path) {
		char why[512];
		if (bc_dest_probe(r->dest_path, &r->dest, why, sizeof(why)) < 0) {
			vt_error("--dest %s", why);
			free(r);
			return EXIT_ERROR;
		}
	}
	if (vhd_open(argv[optind], 0, &r->img, &err) < 0) {
		vt_error("%s", err.message);
		free(r);
		return EXIT_ERROR;
	}
	vhd_get_info(r->img, &r->info);
	if (!json)
		vt_print_warnings(r->img);
	if (run_checks(r, want) < 0) {
		status = EXIT_ERROR;
	} else {
		if (r->dest_path)
			bc_dest_check(r->img, &r->dest, &r->notes);
		if (json) {
			print_json(r);
		} else {
			print_text(r);
			for (size_t i = 0; i < r->notes.count; i++)
				vt_warn("%s", r->notes.text[i]);
		}
		if (!r->bootable)
			vt_error("not bootable: %s", r->reason);
		status = r->bootable ? EXIT_OK : EXIT_NOT_BOOTABLE;
	}
	free(r->parts);
	vhd_close(r->img);
	free(r);
	return status;
}
