/* SPDX-License-Identifier: MIT */
/* Shared pieces of the vhdtool commands. */
#ifndef VHDTOOL_H
#define VHDTOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "libvhd.h"

/* Exit codes (check has its own, as qemu-img check). */
#define EXIT_OK 0
#define EXIT_FAIL 1

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *summary;
};

extern const struct command vhdtool_commands[];
extern const char *vhdtool_prog;

void vt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the command's usage line to stderr and return EXIT_FAIL. */
int vt_usage(const char *command);
/* Print the help text of a command to stdout. */
void vt_command_help(const char *command);

/* Sizes: plain bytes or with a binary suffix K, M, G, T (also KiB ...). */
int vt_parse_size(const char *text, uint64_t *out);
/* "1 GiB", "512 KiB", "1.5 MiB"... */
void vt_format_size(uint64_t bytes, char *buf, size_t len);

int vt_parse_type(const char *s, enum vhd_type *t);
int vt_parse_block_size(const char *s, uint32_t *out);
uint64_t vt_azure_round(uint64_t size);

/* --json / --output=json|human, as qemu-img: the long options and the
 * handling, shared by the commands that print results. */
#define VT_OUTPUT_OPTIONS { "json", no_argument, NULL, 'j' }, { "output", required_argument, NULL, 'o' }
/* Handles c if it is one of them: 1 done, -1 a bad --output, 0 not ours. */
int vt_output_option(int c, const char *arg, bool *json);

/* JSON output helpers. */
void json_string(FILE *f, const char *s);

/* Progress on stderr, as qemu-img -p: "(12.3/100%)". */
struct progress {
	bool enabled;
	bool tty;
	uint64_t total;
	int last;
};
void progress_init(struct progress *p, bool enabled, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
void progress_done(struct progress *p);

/* Print the image's collected warnings on stderr. */
void vt_print_warnings(struct vhd_image *img);

int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_preallocate(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_set_parent(int argc, char **argv);
int cmd_boot_check(int argc, char **argv);

#endif
