/* SPDX-License-Identifier: MIT */
/* The vhd.* words of the kernel command line (docs/handoff.md), parsed as
 * hostile text: the command line can be edited at the boot menu. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handoff.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, const char *a, const char *b)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, a, b);
	return code;
}

const char *ho_handoff_name(enum ho_handoff h)
{
	switch (h) {
	case HO_HANDOFF_NONE:
		return "none";
	case HO_HANDOFF_LINEAR:
		return "linear";
	case HO_HANDOFF_RAMDISK:
		return "ramdisk";
	case HO_HANDOFF_NBD:
		return "nbd";
	}
	return "unknown";
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Text order of the 16 bytes: the first three fields are stored
 * little-endian on disk, the last two as written. */
static const uint8_t guid_text_order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };

int ho_guid_parse(const char *s, size_t len, uint8_t out[16])
{
	size_t pos = 0;

	if (len != 36)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		if (pos == 8 || pos == 13 || pos == 18 || pos == 23) {
			if (s[pos] != '-')
				return -EINVAL;
			pos++;
		}
		int hi = hex_digit(s[pos]), lo = hex_digit(s[pos + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[guid_text_order[i]] = (uint8_t)(hi << 4 | lo);
		pos += 2;
	}
	return 0;
}

void ho_guid_format(const uint8_t g[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[g[guid_text_order[i]] >> 4];
		out[o++] = hex[g[guid_text_order[i]] & 15];
	}
	out[o] = '\0';
}

/* A decimal number without sign, spaces or overflow; *pos moves past it. */
static int parse_u64(const char *s, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	size_t start = *pos;

	while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
		unsigned d = (unsigned)(s[*pos] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		(*pos)++;
		if (*pos - start > 20)
			return -ERANGE;
	}
	if (*pos == start)
		return -EINVAL;
	*out = v;
	return 0;
}

void ho_extents_free(struct ho_extent_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int ho_extents_parse(const char *s, size_t len, struct ho_extent_list *out, char *err,
		     size_t errlen)
{
	size_t count = 1, pos = 0;

	out->v = NULL;
	out->n = 0;
	if (len == 0)
		return fail(err, errlen, -EINVAL, "an empty extent list%s%s", "", "");
	for (size_t i = 0; i < len; i++)
		count += s[i] == ',';
	if (count > HO_MAX_EXTENTS)
		return fail(err, errlen, -E2BIG, "more than 65536 extents%s%s", "", "");
	out->v = calloc(count, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		struct ho_extent *e = &out->v[i];
		char idx[24];
		int r = parse_u64(s, len, &pos, &e->start);
		if (!r)
			r = pos < len && s[pos] == ':' ? 0 : -EINVAL;
		if (!r)
			pos++, r = parse_u64(s, len, &pos, &e->sectors);
		if (!r)
			r = pos < len && s[pos] == ':' ? 0 : -EINVAL;
		if (!r)
			pos++, r = parse_u64(s, len, &pos, &e->host);
		if (!r && i + 1 < count)
			r = pos < len && s[pos] == ',' ? (pos++, 0) : -EINVAL;
		snprintf(idx, sizeof(idx), "%zu", i + 1);
		if (r) {
			ho_extents_free(out);
			return fail(err, errlen, -EINVAL,
				    "extent %s is not <start>:<sectors>:<host sector>%s", idx, "");
		}
		if (e->sectors == 0 || e->start > UINT64_MAX - e->sectors ||
		    e->host > UINT64_MAX - e->sectors) {
			ho_extents_free(out);
			return fail(err, errlen, -EINVAL, "extent %s is empty or overflows%s", idx, "");
		}
	}
	if (pos != len) {
		ho_extents_free(out);
		return fail(err, errlen, -EINVAL, "junk after the last extent%s%s", "", "");
	}
	out->n = count;
	return 0;
}

/* "/dir/disk.vhd": absolute, no empty, "." or ".." component (it is joined
 * to a mount point), no control character or backslash. */
static int path_valid(const char *v, size_t n)
{
	if (n < 2 || n > HO_PATH_MAX || v[0] != '/' || v[n - 1] == '/')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			return 0;
		if (c == '/') {
			size_t j = i + 1;
			while (j < n && v[j] != '/')
				j++;
			size_t clen = j - i - 1;
			if (clen == 0 || (clen == 1 && v[i + 1] == '.') ||
			    (clen == 2 && v[i + 1] == '.' && v[i + 2] == '.'))
				return 0;
		}
	}
	return 1;
}

void ho_params_free(struct ho_params *p)
{
	ho_extents_free(&p->fext);
	ho_extents_free(&p->dm);
}

static int set_list(struct ho_extent_list *l, bool *has, bool *efivar, const char *key,
		    const char *v, size_t n, char *err, size_t errlen)
{
	char sub[HO_ERR_MAX - 32];

	if (n == 6 && memcmp(v, "efivar", 6) == 0) {
		*efivar = true;
		*has = true;
		return 0;
	}
	int r = ho_extents_parse(v, n, l, sub, sizeof(sub));
	if (r)
		return fail(err, errlen, r, "%s: %s", key, sub);
	*has = true;
	return 0;
}

/* One word "key=value" (quotes already removed). `only_lists`: the
 * VhdbootHandoff text, which may carry vhd.fext and vhd.dm only. */
static int take_word(struct ho_params *p, const char *w, size_t n, bool only_lists, char *err,
		     size_t errlen)
{
	static const char *const keys[] = { "vhd.handoff", "vhd.host", "vhd.path",
					     "vhd.size",    "vhd.fext", "vhd.dm" };
	const char *eq = memchr(w, '=', n);
	size_t klen = eq ? (size_t)(eq - w) : n;
	int k = -1;

	if (klen < 4 || memcmp(w, "vhd.", 4) != 0)
		return 0; /* not ours */
	for (int i = 0; i < 6; i++)
		if (strlen(keys[i]) == klen && memcmp(w, keys[i], klen) == 0)
			k = i;
	if (k < 0)
		return 0; /* a vhd.* name for someone else; the contract may grow */
	if (!eq)
		return fail(err, errlen, -EINVAL, "%s has no value%s", keys[k], "");
	if (only_lists && k < 4)
		return fail(err, errlen, -EINVAL, "the VhdbootHandoff variable may not set %s%s",
			    keys[k], "");
	const char *v = eq + 1;
	size_t vn = n - klen - 1;
	bool seen[6] = { p->handoff != HO_HANDOFF_NONE, p->has_host, p->has_path, p->has_size,
			 p->has_fext && !(only_lists && p->fext_efivar && !p->fext.v),
			 p->has_dm && !(only_lists && p->dm_efivar && !p->dm.v) };
	if (only_lists && ((k == 4 && !p->fext_efivar) || (k == 5 && !p->dm_efivar)))
		return fail(err, errlen, -EINVAL, "%s is on the command line and in VhdbootHandoff%s",
			    keys[k], "");
	if (seen[k])
		return fail(err, errlen, -EINVAL, "%s is given twice%s", keys[k], "");
	switch (k) {
	case 0: {
		static const enum ho_handoff all[] = { HO_HANDOFF_LINEAR, HO_HANDOFF_RAMDISK,
						       HO_HANDOFF_NBD };
		for (size_t i = 0; i < 3; i++) {
			const char *name = ho_handoff_name(all[i]);
			if (strlen(name) == vn && memcmp(v, name, vn) == 0)
				p->handoff = all[i];
		}
		if (p->handoff == HO_HANDOFF_NONE)
			return fail(err, errlen, -EINVAL,
				    "vhd.handoff= must be linear, ramdisk or nbd%s%s", "", "");
		return 0;
	}
	case 1:
		if (vn < 9 || memcmp(v, "PARTUUID=", 9) != 0 ||
		    ho_guid_parse(v + 9, vn - 9, p->host_guid))
			return fail(err, errlen, -EINVAL,
				    "vhd.host= must be PARTUUID=<8-4-4-4-12 hex digits>%s%s", "", "");
		p->has_host = true;
		return 0;
	case 2:
		if (!path_valid(v, vn))
			return fail(err, errlen, -EINVAL,
				    "vhd.path= must be an absolute path of at most %s bytes with no "
				    "empty, '.' or '..' part%s",
				    "1024", "");
		memcpy(p->path, v, vn);
		p->path[vn] = '\0';
		p->has_path = true;
		return 0;
	case 3: {
		size_t pos = 0;
		if (parse_u64(v, vn, &pos, &p->size) || pos != vn || p->size == 0)
			return fail(err, errlen, -EINVAL,
				    "vhd.size= must be a positive decimal byte count%s%s", "", "");
		p->has_size = true;
		return 0;
	}
	case 4:
		return set_list(&p->fext, &p->has_fext, &p->fext_efivar, "vhd.fext", v, vn, err,
				errlen);
	default:
		return set_list(&p->dm, &p->has_dm, &p->dm_efivar, "vhd.dm", v, vn, err, errlen);
	}
}

/* Split like the kernel's next_arg(): words end at unquoted white space;
 * double quotes group and are dropped. */
static int parse_words(struct ho_params *p, const char *text, size_t len, bool only_lists,
		       char *err, size_t errlen)
{
	char *word = malloc(len + 1);
	size_t i = 0;
	int r = 0;

	if (!word)
		return -ENOMEM;
	while (!r && i < len) {
		bool quoted = false;
		size_t n = 0;
		while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n'))
			i++;
		if (i >= len || text[i] == '\0')
			break;
		while (i < len && text[i] != '\0' &&
		       (quoted || (text[i] != ' ' && text[i] != '\t' && text[i] != '\n'))) {
			if (text[i] == '"')
				quoted = !quoted;
			else
				word[n++] = text[i];
			i++;
		}
		r = take_word(p, word, n, only_lists, err, errlen);
	}
	free(word);
	return r;
}

int ho_params_parse(struct ho_params *p, const char *text, size_t len, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (err && errlen)
		err[0] = '\0';
	int r = parse_words(p, text, len, false, err, errlen);
	if (r)
		ho_params_free(p);
	return r;
}

int ho_params_merge_efivar(struct ho_params *p, const uint8_t *data, size_t len, char *err,
			   size_t errlen)
{
	/* Firmware and tools may leave a NUL or a newline at the end. */
	while (len && (data[len - 1] == '\0' || data[len - 1] == '\n'))
		len--;
	if (memchr(data, '\0', len))
		return fail(err, errlen, -EINVAL, "the VhdbootHandoff variable holds a NUL byte%s%s",
			    "", "");
	int r = parse_words(p, (const char *)data, len, true, err, errlen);
	if (r)
		return r;
	if ((p->fext_efivar && !p->fext.v) || (p->dm_efivar && !p->dm.v))
		return fail(err, errlen, -EINVAL,
			    "the VhdbootHandoff variable lacks vhd.fext or vhd.dm%s%s", "", "");
	return 0;
}

void ho_path_display(const char *path, char *out, size_t outlen)
{
	size_t o = 0;

	if (!outlen)
		return;
	for (; *path && o + 1 < outlen; path++)
		out[o++] = *path == '/' ? '\\' : *path;
	out[o] = '\0';
}
