/* SPDX-License-Identifier: MIT */
/*
 * vhdboot.conf and LoadOptions (efiboot/bootconf.c).
 *
 * Input: one flags byte, then the text of vhdboot.conf, then optionally
 * "\n--options--\n" and the LoadOptions bytes.  Flags: bit 0 turns the
 * options into UCS-2LE first (as efibootmgr -u does), bit 1 puts a UCS-2
 * byte order mark in front, bits 2-7 pick a small output buffer for the
 * decoder (0: a large one).
 *
 * Oracles: results are 0 or the documented errors; every string field is
 * terminated inside its buffer; a failed parse keeps no entry and explains
 * itself with a line number; a parsed configuration written back out as
 * vhdboot.conf parses to the same configuration; a decode that fits a
 * small buffer gives the same text in a large one; finish succeeds only
 * on a configuration that can boot.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "bootconf.h"

#define OPTIONS_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vb_config cfg, again;
static char text_out[VB_MAX_ENTRIES * (VB_CMDLINE_MAX + 3 * VB_PATH_MAX + 256) + 4096];

static bool terminated(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

static bool is_abs_path(const char *p)
{
	return p[0] == '\\' && strchr(p, '/') == NULL;
}

static bool same_name(const char *a, const char *b)
{
	if (strlen(a) != strlen(b))
		return false;
	for (; *a; a++, b++) {
		char x = *a, y = *b;
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

static void check_config(const struct vb_config *c)
{
	FZ_CHECK(terminated(c->error, sizeof(c->error)));
	FZ_CHECK(c->n_entries <= VB_MAX_ENTRIES);
	FZ_CHECK(c->timeout >= -1 && c->timeout <= 3600);
	FZ_CHECK(c->default_entry < c->n_entries || (c->n_entries == 0 && c->default_entry == 0));
	for (size_t i = 0; i < c->n_entries; i++) {
		const struct vb_entry *e = &c->entries[i];
		FZ_CHECK(terminated(e->name, sizeof(e->name)));
		FZ_CHECK(terminated(e->vhd, sizeof(e->vhd)));
		FZ_CHECK(terminated(e->program, sizeof(e->program)));
		FZ_CHECK(terminated(e->cmdline, sizeof(e->cmdline)));
		FZ_CHECK(e->vhd[0] == '\0' || is_abs_path(e->vhd));
		FZ_CHECK(e->program[0] == '\0' || is_abs_path(e->program));
		FZ_CHECK(!e->vhd_on_partuuid || e->vhd[0] == '\\');
		FZ_CHECK(e->handoff >= VB_HANDOFF_NONE && e->handoff <= VB_HANDOFF_NBD);
		FZ_CHECK(strcmp(vb_handoff_name(e->handoff), "unknown") != 0);
		/* Only the single entry of a file without [entry] has no name. */
		FZ_CHECK(e->name[0] != '\0' || c->n_entries == 1);
		for (size_t k = 0; k < i; k++)
			FZ_CHECK(!same_name(c->entries[k].name, e->name));
	}
}

static void check_failure(const struct vb_config *c, int r, bool options)
{
	FZ_CHECK(r == -EINVAL);
	FZ_CHECK(terminated(c->error, sizeof(c->error)));
	FZ_CHECK(c->error[0] != '\0');
	if (options) {
		FZ_CHECK(c->error_line == 0);
		FZ_CHECK(strncmp(c->error, "LoadOptions: ", 13) == 0);
	} else {
		FZ_CHECK(c->error_line >= 1);
		FZ_CHECK(strncmp(c->error, "line ", 5) == 0);
	}
}

static size_t put(size_t o, const char *s)
{
	size_t n = strlen(s);
	FZ_CHECK(o + n < sizeof(text_out));
	memcpy(text_out + o, s, n);
	return o + n;
}

static size_t put_entry_keys(size_t o, const struct vb_entry *e)
{
	if (e->vhd[0]) {
		o = put(o, "vhd=");
		if (e->vhd_on_partuuid) {
			/* EFI_GUID memory order back to text. */
			static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
							   8, 9, 10, 11, 12, 13, 14, 15 };
			char g[40];
			size_t k = 0;
			for (size_t i = 0; i < 16; i++) {
				if (i == 4 || i == 6 || i == 8 || i == 10)
					g[k++] = '-';
				k += (size_t)snprintf(g + k, sizeof(g) - k, "%02x",
						      e->partuuid[order[i]]);
			}
			g[k] = '\0';
			o = put(o, "PARTUUID=");
			o = put(o, g);
			o = put(o, ":");
		}
		o = put(o, e->vhd);
		o = put(o, "\n");
	}
	if (e->program[0]) {
		o = put(o, "program=");
		o = put(o, e->program);
		o = put(o, "\n");
	}
	o = put(o, "cmdline=");
	o = put(o, e->cmdline);
	o = put(o, "\r\nwritable=");
	o = put(o, e->writable ? "yes" : "no");
	o = put(o, "\nhandoff=");
	o = put(o, vb_handoff_name(e->handoff));
	return put(o, "\n");
}

static bool same_entry(const struct vb_entry *a, const struct vb_entry *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->vhd, b->vhd) == 0 &&
	       a->vhd_on_partuuid == b->vhd_on_partuuid &&
	       (!a->vhd_on_partuuid || memcmp(a->partuuid, b->partuuid, 16) == 0) &&
	       strcmp(a->program, b->program) == 0 && strcmp(a->cmdline, b->cmdline) == 0 &&
	       a->writable == b->writable && a->handoff == b->handoff;
}

/* A parsed configuration, written back as vhdboot.conf, parses the same. */
static void round_trip(const struct vb_config *c)
{
	char num[16];
	size_t o = put(0, "\xEF\xBB\xBF# written back\n");
	snprintf(num, sizeof(num), "%d", c->timeout);
	o = put(o, "timeout=");
	o = put(o, num);
	o = put(o, "\n");
	if (c->n_entries) {
		const char *name = c->entries[c->default_entry].name;
		o = put(o, "default=");
		o = put(o, name[0] ? name : "1");
		o = put(o, "\n");
	}
	if (c->n_entries == 1 && c->entries[0].name[0] == '\0') {
		o = put_entry_keys(o, &c->entries[0]);
	} else {
		for (size_t i = 0; i < c->n_entries; i++) {
			o = put(o, "\n[entry ");
			o = put(o, c->entries[i].name);
			o = put(o, "]\n");
			o = put_entry_keys(o, &c->entries[i]);
		}
	}
	int r = vb_config_parse(&again, text_out, o);
	if (r != 0)
		fprintf(stderr, "round trip: %s\n--\n%.*s\n", again.error, (int)o, text_out);
	FZ_CHECK(r == 0);
	FZ_CHECK(again.n_entries == c->n_entries);
	FZ_CHECK(again.default_entry == c->default_entry);
	FZ_CHECK(again.timeout == c->timeout);
	for (size_t i = 0; i < c->n_entries; i++)
		FZ_CHECK(same_entry(&again.entries[i], &c->entries[i]));
}

static void finish(struct vb_config *c)
{
	int r = vb_config_finish(c);
	FZ_CHECK(terminated(c->error, sizeof(c->error)));
	if (r == 0) {
		FZ_CHECK(c->n_entries >= 1 && c->n_entries <= VB_MAX_ENTRIES);
		FZ_CHECK(c->default_entry < c->n_entries);
		for (size_t i = 0; i < c->n_entries; i++)
			FZ_CHECK(is_abs_path(c->entries[i].vhd));
		FZ_CHECK(c->error[0] == '\0');
	} else {
		FZ_CHECK(r == -EINVAL && c->error[0] != '\0' && c->error_line == 0);
	}
}

/* Decode the options with a big and a small buffer; the decoded text or NULL. */
static const char *decode(const uint8_t *opt, size_t len, size_t small)
{
	static char big[4 * OPTIONS_MAX + 16];
	static char tiny[256];
	memset(big, 'x', sizeof(big));
	int r = vb_load_options_decode(opt, len, big, sizeof(big));
	FZ_CHECK(r == 0 || r == -EINVAL);  /* 3 bytes per 2 input bytes always fit */
	FZ_CHECK(terminated(big, sizeof(big)));
	if (r < 0)
		FZ_CHECK(big[0] == '\0');
	else
		FZ_CHECK(strlen(big) <= len + len / 2);

	if (small) {
		memset(tiny, 'x', sizeof(tiny));
		int s = vb_load_options_decode(opt, len, tiny, small);
		FZ_CHECK(s == 0 || s == -EINVAL || s == -E2BIG);
		FZ_CHECK(terminated(tiny, small));
		if (s == 0) {
			FZ_CHECK(r == 0 && strcmp(tiny, big) == 0);
		} else {
			FZ_CHECK(tiny[0] == '\0');
			/* A clean refusal: nothing written past the buffer. */
			FZ_CHECK(tiny[small] == 'x');
			if (s == -EINVAL)
				FZ_CHECK(r == -EINVAL);
		}
	}
	return r == 0 ? big : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n--options--\n";
	static uint8_t opt[2 * OPTIONS_MAX + 2];
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	const uint8_t *conf = data + 1;
	size_t conf_len = size - 1, opt_len = 0;
	const uint8_t *raw_opt = NULL;
	for (size_t i = 0; i + sizeof(sep) - 1 <= conf_len; i++) {
		if (memcmp(conf + i, sep, sizeof(sep) - 1) == 0) {
			raw_opt = conf + i + sizeof(sep) - 1;
			opt_len = conf_len - i - (sizeof(sep) - 1);
			conf_len = i;
			break;
		}
	}
	if (opt_len > OPTIONS_MAX)
		opt_len = OPTIONS_MAX;

	/* An exact-size heap copy, so ASan sees any read past the text. */
	char *text = malloc(conf_len ? conf_len : 1);
	if (!text)
		abort();
	if (conf_len)
		memcpy(text, conf, conf_len);
	int r = vb_config_parse(&cfg, text, conf_len);
	free(text);
	if (r == 0) {
		FZ_CHECK(cfg.error[0] == '\0');
		check_config(&cfg);
		round_trip(&cfg);
	} else {
		check_failure(&cfg, r, false);
		FZ_CHECK(cfg.n_entries == 0 && cfg.timeout == 5 && cfg.default_entry == 0);
		vb_config_init(&cfg);
	}

	/* The options: raw bytes, or made UCS-2LE (optionally with a BOM). */
	size_t n = 0;
	if (raw_opt && (flags & 1)) {
		if (flags & 2) {
			opt[n++] = 0xFF;
			opt[n++] = 0xFE;
		}
		for (size_t i = 0; i < opt_len; i++) {
			opt[n++] = raw_opt[i];
			opt[n++] = 0;
		}
	} else if (raw_opt) {
		memcpy(opt, raw_opt, opt_len);
		n = opt_len;
	}
	uint8_t *heap_opt = malloc(n ? n : 1);
	if (!heap_opt)
		abort();
	if (n)
		memcpy(heap_opt, opt, n);
	const char *decoded = decode(heap_opt, n, (size_t)(flags >> 2) * 4);
	free(heap_opt);

	if (decoded) {
		bool had_entries = cfg.n_entries > 0;
		r = vb_config_apply_options(&cfg, decoded);
		if (r == 0) {
			check_config(&cfg);
			FZ_CHECK(!had_entries || cfg.n_entries > 0);
		} else {
			check_failure(&cfg, r, true);
		}
		check_config(&cfg);
	}
	finish(&cfg);
	return 0;
}
