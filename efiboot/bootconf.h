/* SPDX-License-Identifier: MIT */
/*
 * vhdboot.conf and the loader's LoadOptions: what to boot and how.
 *
 * Pure C with no allocation and no C library beyond the string functions,
 * so the same code runs in vhdboot.efi, in the host unit tests and under
 * the fuzzer.  Every input is hostile: over-long values, bad keys and
 * malformed sections are errors with a line number, never truncations.
 */
#ifndef VHDBOOT_BOOTCONF_H
#define VHDBOOT_BOOTCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VB_MAX_ENTRIES 16
#define VB_NAME_MAX    64    /* bytes, NUL included */
#define VB_PATH_MAX    512
#define VB_CMDLINE_MAX 2048

enum vb_handoff {
	VB_HANDOFF_NONE = 0,
	VB_HANDOFF_LINEAR,
	VB_HANDOFF_RAMDISK,
	VB_HANDOFF_NBD,
};

struct vb_entry {
	char name[VB_NAME_MAX];     /* "" for the entry made of the top-level keys */
	char vhd[VB_PATH_MAX];      /* "\dir\disk.vhd" ('/' turned into '\'), never "" once finished */
	bool vhd_on_partuuid;       /* vhd=PARTUUID=<guid>:\path given */
	uint8_t partuuid[16];       /* that GUID in EFI_GUID (GPT on-disk) byte order */
	char program[VB_PATH_MAX];  /* "" = search the defaults */
	char cmdline[VB_CMDLINE_MAX];
	bool writable;
	enum vb_handoff handoff;
};

struct vb_config {
	struct vb_entry entries[VB_MAX_ENTRIES];
	size_t n_entries;
	size_t default_entry;       /* index into entries */
	int timeout;                /* menu timeout in seconds; -1 waits for a key */
	char error[192];            /* one line, set when a call fails */
	unsigned error_line;        /* 1-based line of vhdboot.conf, 0 for LoadOptions */
};

/* Empty configuration: no entries, default 0, timeout 5. */
void vb_config_init(struct vb_config *cfg);

/* Parse the text of vhdboot.conf (UTF-8, optional BOM, LF or CRLF).
 * Returns 0 or -EINVAL with cfg->error and cfg->error_line set. */
int vb_config_parse(struct vb_config *cfg, const char *text, size_t len);

/* Turn raw LoadOptions (UCS-2LE or ASCII/UTF-8, as efibootmgr or the UEFI
 * shell pass them) into a NUL-terminated UTF-8 string, dropping a leading
 * argument that names the loader itself (ends in ".efi", any case).
 * Returns 0, or -EINVAL / -E2BIG (out too small) with nothing usable. */
int vb_load_options_decode(const void *data, size_t size, char *out, size_t outsz);

/* Apply decoded LoadOptions: space-separated key=value (double quotes
 * group a value with spaces; cmdline= takes the rest of the string).
 * Each key overrides that key in every entry (vhd=, program=, cmdline=,
 * writable=, handoff=) or in the menu (default=, timeout=); with no entry
 * yet, they make one.  Returns 0 or -EINVAL with cfg->error set. */
int vb_config_apply_options(struct vb_config *cfg, const char *options);

/* Check the result once everything is applied: at least one entry, each
 * with a vhd, default in range.  Returns 0 or -EINVAL with cfg->error. */
int vb_config_finish(struct vb_config *cfg);

const char *vb_handoff_name(enum vb_handoff h);

#endif
