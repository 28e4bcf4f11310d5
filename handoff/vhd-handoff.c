/* SPDX-License-Identifier: MIT */
/* vhd-handoff: the initramfs side of vhdboot's OS handoff (docs/handoff.md). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sys.h"

#define EFIVARS_DIR "/sys/firmware/efi/efivars"
#define EFIVAR_NAME "VhdbootHandoff-5d1a7e3c-9b0f-4c55-8e07-1f0a6b2d8c41"
#define EFIVARFS_MAGIC_NUMBER 0xde5e81e4
#define DEFAULT_TIMEOUT 10

struct opts {
	struct ho_env env;
	const char *cmdline;  /* NULL: /proc/cmdline */
	const char *partuuid; /* find-host --partuuid */
	const char *name;     /* linear --name */
	unsigned timeout;
	char **args; /* what follows the options */
	int nargs;
};

static void usage(FILE *to);

static int die(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "vhd-handoff: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 1;
}

/* Options may come before or after the arguments; argv is compacted so
 * that the arguments end up first, in order. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	int i, npos = 0;

	for (i = 0; i < argc; i++) {
		char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-' || a[1] == '\0') {
			argv[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			while (++i < argc)
				argv[npos++] = argv[i];
			break;
		}
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			o->env.verbose = 1;
			continue;
		}
		if (!strcmp(a, "--no-fiemap")) {
			o->env.no_fiemap = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "vhd-handoff: %s needs a value\n", a);
			return -1;
		}
		if (!strcmp(a, "--cmdline"))
			o->cmdline = v;
		else if (!strcmp(a, "--partuuid"))
			o->partuuid = v;
		else if (!strcmp(a, "--name"))
			o->name = v;
		else if (!strcmp(a, "--sysfs"))
			o->env.sysfs = v;
		else if (!strcmp(a, "--dev"))
			o->env.dev = v;
		else if (!strcmp(a, "--efivars"))
			o->env.efivars = v;
		else if (!strcmp(a, "--run"))
			o->env.run = v;
		else if (!strcmp(a, "--timeout")) {
			char *end;
			unsigned long t = strtoul(v, &end, 10);
			if (*end || end == v || t > 3600 || v[0] == '-') {
				fprintf(stderr, "vhd-handoff: --timeout takes 0..3600 seconds\n");
				return -1;
			}
			o->timeout = (unsigned)t;
		} else {
			fprintf(stderr, "vhd-handoff: unknown option %s\n", a);
			return -1;
		}
		i++;
	}
	o->args = argv;
	o->nargs = npos;
	return 0;
}

/* The vhd.* parameters from --cmdline or /proc/cmdline. */
static int load_params(const struct opts *o, struct ho_params *p)
{
	char err[HO_ERR_MAX];
	uint8_t *text = NULL;
	size_t len;
	int r;

	/* The callers free *p whatever happens, also when the file is unreadable. */
	memset(p, 0, sizeof(*p));
	if (o->cmdline) {
		r = ho_params_parse(p, o->cmdline, strlen(o->cmdline), err, sizeof(err));
	} else {
		r = ho_read_file("/proc/cmdline", &text, &len, 1 << 20);
		if (r)
			return die("cannot read /proc/cmdline: %s%s", strerror(-r), "");
		r = ho_params_parse(p, (const char *)text, len, err, sizeof(err));
		free(text);
	}
	if (r)
		return die("kernel command line: %s%s", err, "");
	return 0;
}

static int cmd_find_host(struct opts *o)
{
	struct ho_params p;
	uint8_t guid[16];
	struct ho_host h;
	char err[HO_ERR_MAX];

	if (o->nargs)
		return die("find-host takes no argument ('%s')%s", o->args[0], ""), 2;
	if (o->partuuid) {
		if (ho_guid_parse(o->partuuid, strlen(o->partuuid), guid))
			return die("--partuuid '%s' is not a GUID%s", o->partuuid, ""), 2;
	} else {
		if (load_params(o, &p))
			return 1;
		int has = p.has_host;
		memcpy(guid, p.host_guid, 16);
		ho_params_free(&p);
		if (!has)
			return die("no vhd.host=PARTUUID=... on the kernel command line%s%s", "", "");
	}
	if (ho_find_host(&o->env, guid, o->timeout, &h, err, sizeof(err)))
		return die("%s%s", err, "");
	printf("%s\n", h.node);
	return 0;
}

/* One vhd.* value, for the shell scripts (which cannot parse quotes). */
static int cmd_param(struct opts *o)
{
	struct ho_params p;
	char g[37];
	int r = 0;

	if (o->nargs != 1)
		return die("usage: vhd-handoff param handoff|host|path|size%s%s", "", ""), 2;
	if (load_params(o, &p))
		return 1;
	const char *k = o->args[0];
	if (!strcmp(k, "handoff") && p.handoff != HO_HANDOFF_NONE)
		printf("%s\n", ho_handoff_name(p.handoff));
	else if (!strcmp(k, "host") && p.has_host)
		ho_guid_format(p.host_guid, g), printf("PARTUUID=%s\n", g);
	else if (!strcmp(k, "path") && p.has_path)
		printf("%s\n", p.path);
	else if (!strcmp(k, "size") && p.has_size)
		printf("%" PRIu64 "\n", p.size);
	else if (strcmp(k, "handoff") && strcmp(k, "host") && strcmp(k, "path") && strcmp(k, "size"))
		r = (die("param: unknown name '%s'%s", k, ""), 2);
	else
		r = die("no vhd.%s= on the kernel command line%s", k, "");
	ho_params_free(&p);
	return r;
}

static int cmd_gpt(struct opts *o)
{
	struct ho_gpt g;
	char err[HO_ERR_MAX], a[37], b[37];
	uint32_t lba;
	uint64_t bytes;

	if (o->nargs != 1)
		return die("usage: vhd-handoff gpt DEVICE%s%s", "", ""), 2;
	int fd = open(o->args[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return die("%s: %s", o->args[0], strerror(errno));
	int r = ho_device_geometry(fd, &lba, &bytes);
	if (!r)
		r = ho_gpt_read_fd(fd, lba, bytes, &g, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "%s", strerror(-r));
	close(fd);
	if (r)
		return die("%s: %s", o->args[0], err);
	ho_guid_format(g.hdr.disk_guid, a);
	printf("disk %s lba-size %" PRIu32 " lbas %" PRIu64 " usable %" PRIu64 "-%" PRIu64
	       " entries %" PRIu32 "\n",
	       a, g.lba_size, g.disk_lbas, g.hdr.first_usable, g.hdr.last_usable, g.hdr.n_entries);
	for (size_t i = 0; i < g.n_parts; i++) {
		const struct ho_gpt_part *q = &g.parts[i];
		ho_guid_format(q->type, a);
		ho_guid_format(q->unique, b);
		printf("%" PRIu32 " %" PRIu64 " %" PRIu64 " %s %s%s%s\n", q->number, q->first_lba,
		       q->last_lba, a, b, q->name[0] ? " " : "", q->name);
	}
	ho_gpt_free(&g);
	return 0;
}

/* vhd.fext/vhd.dm from the VhdbootHandoff EFI variable. */
static int load_efivar(const struct opts *o, struct ho_params *p)
{
	const char *dir = o->env.efivars ? o->env.efivars : EFIVARS_DIR;
	char path[PATH_MAX], err[HO_ERR_MAX];
	struct statfs sf;
	uint8_t *data;
	size_t len;

	if (!o->env.efivars && (statfs(dir, &sf) != 0 || sf.f_type != EFIVARFS_MAGIC_NUMBER) &&
	    mount("efivarfs", dir, "efivarfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) != 0)
		return die("vhd.fext=efivar, but efivarfs cannot be mounted on " EFIVARS_DIR
			   " (%s)%s", strerror(errno), "");
	snprintf(path, sizeof(path), "%s/%s", dir, EFIVAR_NAME);
	int r = ho_read_file(path, &data, &len, 1 << 20);
	if (r)
		return die("vhd.fext=efivar, but %s is unreadable: %s", path, strerror(-r));
	if (len < 4)
		r = -EINVAL, snprintf(err, sizeof(err), "shorter than its attributes");
	else
		r = ho_params_merge_efivar(p, data + 4, len - 4, err, sizeof(err));
	free(data);
	if (r)
		return die("VhdbootHandoff variable: %s%s", err, "");
	return 0;
}

static int refuse(const char *path, const char *why)
{
	char shown[HO_PATH_MAX + 1];
	ho_path_display(path, shown, sizeof(shown));
	fprintf(stderr,
		"vhd-handoff: %s has moved or changed size since the loader mapped it (%s); "
		"refusing to map it\n",
		shown, why);
	return 1;
}

/* Everything `linear` does before it touches device-mapper: the command
 * line, the host partition, and the file as its file system sees it now. */
static int linear_check(struct opts *o, struct ho_params *p, struct ho_host *h,
			uint64_t *virtual_sectors)
{
	char err[HO_ERR_MAX], mnt[PATH_MAX], why[HO_ERR_MAX];
	struct ho_extent_list now;
	struct stat st;

	if (load_params(o, p))
		return 1;
	if (p->handoff != HO_HANDOFF_LINEAR)
		return die("vhd.handoff=linear is not on the kernel command line (it says %s)",
			   ho_handoff_name(p->handoff), "");
	if (!p->has_host || !p->has_path || !p->has_size || !p->has_fext || !p->has_dm)
		return die("the linear handoff needs vhd.host, vhd.path, vhd.size, vhd.fext and "
			   "vhd.dm on the kernel command line%s%s", "", "");
	if ((p->fext_efivar || p->dm_efivar) && load_efivar(o, p))
		return 1;
	if (ho_find_host(&o->env, p->host_guid, o->timeout, h, err, sizeof(err)))
		return die("%s%s", err, "");
	if (ho_fext_validate(&p->fext, p->size, h->sectors, err, sizeof(err)) ||
	    ho_dm_validate(&p->dm, &p->fext, p->size, virtual_sectors, err, sizeof(err)))
		return die("kernel command line: %s%s", err, "");

	if (ho_mount_ro(&o->env, h->node, mnt, sizeof(mnt), err, sizeof(err)))
		return die("%s; refusing to map the VHD%s", err, "");
	int r = 0;
	int fd = ho_open_beneath(mnt, p->path, why, sizeof(why));
	if (fd < 0) {
		r = refuse(p->path, why);
	} else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		r = refuse(p->path, "it is not a regular file now");
	} else if ((uint64_t)st.st_size != p->size) {
		snprintf(why, sizeof(why), "%" PRIu64 " bytes now, the loader saw %" PRIu64,
			 (uint64_t)st.st_size, p->size);
		r = refuse(p->path, why);
	} else if ((r = ho_file_extents(fd, o->env.no_fiemap, &now, why, sizeof(why))) != 0) {
		if (r == -ESTALE)
			r = refuse(p->path, why);
		else
			r = die("cannot list the extents of the VHD file: %s%s",
				why[0] ? why : strerror(-r), "");
	} else {
		if (ho_fext_compare(&p->fext, &now, p->size, why, sizeof(why)))
			r = refuse(p->path, why);
		ho_extents_free(&now);
	}
	if (fd >= 0)
		close(fd);
	ho_unmount(mnt);
	return r;
}

static int cmd_check(struct opts *o)
{
	struct ho_params p;
	struct ho_host h;
	uint64_t vs = 0;
	char shown[HO_PATH_MAX + 1];

	int r = linear_check(o, &p, &h, &vs);
	if (!r) {
		ho_path_display(p.path, shown, sizeof(shown));
		printf("vhd-handoff: %s on %s is where the loader mapped it (%zu extents, "
		       "%" PRIu64 " virtual sectors)\n",
		       shown, h.node, p.fext.n, vs);
	}
	ho_params_free(&p);
	return r;
}

/* /dev/mapper/NAME for the dm device `dev`. */
static int mapper_node(const struct opts *o, const char *name, dev_t dev, char *out, size_t len)
{
	char dir[PATH_MAX], err[HO_ERR_MAX];
	snprintf(dir, sizeof(dir), "%s/mapper", o->env.dev);
	if (ho_block_node(dir, name, major(dev), minor(dev), out, len, err, sizeof(err)))
		return die("%s%s", err, "");
	return 0;
}

/* /dev/mapper/NAME<N> over each partition of the inner GPT. */
static int map_partitions(const struct opts *o, int ctl, const char *name, const char *node,
			  dev_t dev, const char *uuid)
{
	struct ho_gpt g;
	char err[HO_ERR_MAX], pname[128], puuid[96], pnode[PATH_MAX];
	uint32_t lba;
	uint64_t bytes;

	int fd = open(node, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return die("%s: %s", node, strerror(errno));
	int r = ho_device_geometry(fd, &lba, &bytes);
	/* The VHD's disk has 512-byte sectors whatever the host's are. */
	if (!r)
		r = ho_gpt_read_fd(fd, HO_SECTOR, bytes, &g, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "%s", strerror(-r));
	close(fd);
	if (r) {
		printf("vhd-handoff: %s: no usable GPT inside (%s): no partition devices\n", node,
		       err);
		return 0;
	}
	for (size_t i = 0; i < g.n_parts && !r; i++) {
		const struct ho_gpt_part *q = &g.parts[i];
		struct ho_dm_target t = { 0, q->last_lba - q->first_lba + 1, major(dev), minor(dev),
					  q->first_lba };
		dev_t pdev;
		snprintf(pname, sizeof(pname), "%s%" PRIu32, name, q->number);
		snprintf(puuid, sizeof(puuid), "part%" PRIu32 "-%s", q->number, uuid);
		r = ho_dm_create(ctl, pname, puuid, &t, 1, &pdev, err, sizeof(err));
		if (r)
			return ho_gpt_free(&g), die("%s%s", err, "");
		r = mapper_node(o, pname, pdev, pnode, sizeof(pnode));
		if (!r)
			printf("vhd-handoff: %s: partition %" PRIu32 ", sectors %" PRIu64 "-%" PRIu64
			       "\n",
			       pnode, q->number, q->first_lba, q->last_lba);
	}
	ho_gpt_free(&g);
	return r;
}

static int cmd_linear(struct opts *o)
{
	struct ho_params p;
	struct ho_host h;
	uint64_t vs = 0;
	char err[HO_ERR_MAX], node[PATH_MAX], uuid[64], g[37];
	const char *name = o->name ? o->name : "vhdboot";

	if (!ho_dm_name_valid(name) || strlen(name) > 100)
		return die("--name '%s' must be up to 100 letters, digits, '-', '_' or '.'%s", name,
			   ""), 2;
	int r = linear_check(o, &p, &h, &vs);
	if (r) {
		ho_params_free(&p);
		return r;
	}
	struct ho_dm_target *t = calloc(p.dm.n, sizeof(*t));
	if (!t) {
		ho_params_free(&p);
		return die("out of memory%s%s", "", "");
	}
	for (size_t i = 0; i < p.dm.n; i++)
		t[i] = (struct ho_dm_target){ p.dm.v[i].start, p.dm.v[i].sectors, h.major, h.minor,
					      p.dm.v[i].host };
	ho_guid_format(p.host_guid, g);
	snprintf(uuid, sizeof(uuid), "VHDBOOT-%s", g);
	int ctl = ho_dm_open_control(&o->env, err, sizeof(err));
	dev_t dev;
	if (ctl < 0)
		r = die("%s%s", err, "");
	else if (ho_dm_create(ctl, name, uuid, t, p.dm.n, &dev, err, sizeof(err)))
		r = die("%s%s", err, "");
	else if (!(r = mapper_node(o, name, dev, node, sizeof(node)))) {
		char shown[HO_PATH_MAX + 1];
		ho_path_display(p.path, shown, sizeof(shown));
		printf("vhd-handoff: %s: %s on %s, %" PRIu64 " sectors in %zu segments\n", node,
		       shown, h.node, vs, p.dm.n);
		r = map_partitions(o, ctl, name, node, dev, uuid);
	}
	if (ctl >= 0)
		close(ctl);
	free(t);
	ho_params_free(&p);
	return r;
}

static int cmd_exec_as(struct opts *o)
{
	if (o->nargs < 2)
		return die("usage: vhd-handoff exec-as ARGV0 PROGRAM [ARG...]%s%s", "", ""), 2;
	char *program = o->args[1];
	o->args[1] = o->args[0];
	execv(program, o->args + 1);
	return die("cannot run %s: %s", program, strerror(errno));
}

static int cmd_nbd_detach(struct opts *o)
{
	char err[HO_ERR_MAX];
	if (o->nargs != 1)
		return die("usage: vhd-handoff nbd-detach DEVICE%s%s", "", ""), 2;
	if (ho_nbd_disconnect(o->args[0], err, sizeof(err)))
		return die("%s%s", err, "");
	return 0;
}

static int cmd_shutdown(struct opts *o)
{
	char *argv[3] = { "shutdown", o->nargs ? o->args[0] : NULL, NULL };
	return ho_shutdown_main(o->nargs ? 2 : 1, argv);
}

static const struct command {
	const char *name;
	int (*fn)(struct opts *o);
	const char *summary;
} commands[] = {
	{ "find-host", cmd_find_host,
	  "[--partuuid GUID] print the /dev node of the vhd.host= partition" },
	{ "linear", cmd_linear,
	  "[--name vhdboot] check the VHD file, then map it with device-mapper" },
	{ "check", cmd_check, "the checks of 'linear' alone: map nothing" },
	{ "param", cmd_param, "handoff|host|path|size  print one vhd.* value" },
	{ "gpt", cmd_gpt, "DEVICE  list the partitions of a GPT disk or image" },
	{ "exec-as", cmd_exec_as, "ARGV0 PROGRAM [ARG...]  run PROGRAM with argv[0] = ARGV0" },
	{ "nbd-detach", cmd_nbd_detach, "DEVICE  disconnect an NBD device" },
	{ "shutdown", cmd_shutdown,
	  "reboot|poweroff|halt|kexec  the nbd handoff's /run/initramfs/shutdown" },
};

static void usage(FILE *to)
{
	fprintf(to, "usage: vhd-handoff COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(to, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(to, "\noptions:\n"
		    "  --cmdline TEXT   read vhd.* from TEXT, not /proc/cmdline\n"
		    "  --timeout S      wait up to S seconds for the host partition (10)\n"
		    "  --sysfs DIR      sysfs root (/sys); --dev DIR: device nodes (/dev)\n"
		    "  --efivars DIR    read VhdbootHandoff here, mount nothing\n"
		    "  --run DIR        temporary mount points (/run/vhdboot)\n"
		    "  --no-fiemap      list extents with FIBMAP only\n"
		    "  -v, --verbose    say why disks were skipped\n");
}

int main(int argc, char **argv)
{
	struct opts o = { .env = { .sysfs = "/sys", .dev = "/dev", .run = "/run/vhdboot" },
			  .timeout = DEFAULT_TIMEOUT };
	const char *base = strrchr(argv[0], '/');

	base = base ? base + 1 : argv[0];
	/* systemd-shutdown runs /run/initramfs/shutdown: a copy of us. */
	if (!strcmp(base, "shutdown"))
		return ho_shutdown_main(argc, argv);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		if (commands[i].fn == cmd_exec_as) {
			o.args = argv + 2;
			o.nargs = argc - 2;
		} else if (parse_opts(argc - 2, argv + 2, &o)) {
			return 2;
		}
		return commands[i].fn(&o);
	}
	fprintf(stderr, "vhd-handoff: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
