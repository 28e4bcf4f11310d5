/* SPDX-License-Identifier: MIT */
/*
 * vhdboot.conf and LoadOptions: text in, struct vb_config out.
 *
 * Freestanding: no allocation, no stdio, no locale, no recursion, and only
 * the string functions of libvhd/freestanding/string.h.  The file format is
 * described in docs/vhdboot.conf.5; keep the two in step.
 *
 * Every problem is an error that names the key and the line: a boot loader
 * that guesses what a broken file meant boots the wrong disk.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bootconf.h"
#include "utf.h"

/* Longest piece of user text quoted back in an error message. */
#define QUOTE_MAX 40

enum key_id {
	KEY_VHD,
	KEY_PROGRAM,
	KEY_CMDLINE,
	KEY_WRITABLE,
	KEY_HANDOFF,
	KEY_DEFAULT,
	KEY_TIMEOUT,
	KEY_ENTRY,
	KEY_UNKNOWN,
};

struct key_info {
	const char *name;
	bool per_entry;     /* belongs to an entry (else to the menu) */
	bool in_file;       /* allowed in vhdboot.conf (entry= is LoadOptions only) */
};

static const struct key_info key_table[KEY_UNKNOWN] = {
	[KEY_VHD] = { "vhd", true, true },
	[KEY_PROGRAM] = { "program", true, true },
	[KEY_CMDLINE] = { "cmdline", true, true },
	[KEY_WRITABLE] = { "writable", true, true },
	[KEY_HANDOFF] = { "handoff", true, true },
	[KEY_DEFAULT] = { "default", false, true },
	[KEY_TIMEOUT] = { "timeout", false, true },
	[KEY_ENTRY] = { "entry", false, false },
};

/* ---- small character helpers (no <ctype.h>: no locale) ---------------- */

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = ascii_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* ASCII case-insensitive: does s[0..n) equal the NUL-terminated word? */
static bool equals_word(const char *s, size_t n, const char *word)
{
	size_t i;
	for (i = 0; i < n; i++) {
		if (word[i] == '\0' || ascii_lower(s[i]) != ascii_lower(word[i]))
			return false;
	}
	return word[i] == '\0';
}

static bool has_prefix_nocase(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && equals_word(s, k, prefix);
}

/* memchr is not among the string functions the EFI build provides. */
static const char *find_char(const char *s, size_t n, char c)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == c)
			return s + i;
	}
	return NULL;
}

static enum key_id lookup_key(const char *s, size_t n)
{
	for (int k = 0; k < KEY_UNKNOWN; k++) {
		if (equals_word(s, n, key_table[k].name))
			return (enum key_id)k;
	}
	return KEY_UNKNOWN;
}

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (strict: no
 * overlongs, no surrogates, nothing past U+10FFFF), or 0 when malformed.
 */
static size_t utf8_seq_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	size_t extra;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		extra = 1, cp = c & 0x1Fu, min = 0x80;
	else if ((c & 0xF0) == 0xE0)
		extra = 2, cp = c & 0x0Fu, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		extra = 3, cp = c & 0x07u, min = 0x10000;
	else
		return 0;
	if (n - 1 < extra)
		return 0;
	for (size_t k = 1; k <= extra; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
		return 0;
	return 1 + extra;
}

/* ---- error messages ---------------------------------------------------- */

static void err_add(struct vb_config *cfg, const char *s)
{
	size_t pos = strlen(cfg->error);
	while (*s && pos + 1 < sizeof(cfg->error))
		cfg->error[pos++] = *s++;
	cfg->error[pos] = '\0';
}

static void err_add_num(struct vb_config *cfg, unsigned long v)
{
	char digits[24];
	size_t n = sizeof(digits) - 1;
	digits[n] = '\0';
	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n);
	err_add(cfg, digits + n);
}

/* User text, quoted back safely: printable ASCII only, at most QUOTE_MAX. */
static void err_add_text(struct vb_config *cfg, const char *s, size_t n)
{
	char buf[QUOTE_MAX + 4];
	size_t k, take = n > QUOTE_MAX ? QUOTE_MAX : n;
	for (k = 0; k < take; k++)
		buf[k] = (s[k] >= 0x20 && s[k] < 0x7F) ? s[k] : '?';
	if (take < n) {
		memcpy(buf + k, "...", 3);
		k += 3;
	}
	buf[k] = '\0';
	err_add(cfg, buf);
}

/* Start a message: "line N: " for vhdboot.conf, "LoadOptions: " for line 0. */
static void err_begin(struct vb_config *cfg, unsigned line)
{
	cfg->error[0] = '\0';
	cfg->error_line = line;
	if (line) {
		err_add(cfg, "line ");
		err_add_num(cfg, line);
		err_add(cfg, ": ");
	} else {
		err_add(cfg, "LoadOptions: ");
	}
}

/* "<head><text><tail>", -EINVAL. */
static int fail(struct vb_config *cfg, unsigned line, const char *head, const char *text,
		size_t text_len, const char *tail)
{
	err_begin(cfg, line);
	err_add(cfg, head);
	if (text)
		err_add_text(cfg, text, text_len);
	err_add(cfg, tail);
	return -EINVAL;
}

/* "<key>=<what>", -EINVAL. */
static int fail_key(struct vb_config *cfg, unsigned line, enum key_id key, const char *what)
{
	err_begin(cfg, line);
	err_add(cfg, key_table[key].name);
	err_add(cfg, "=");
	err_add(cfg, what);
	return -EINVAL;
}

/* ---- values ------------------------------------------------------------ */

static int parse_bool(struct vb_config *cfg, unsigned line, enum key_id key, const char *v,
		      size_t n, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (equals_word(v, n, yes[i])) {
			*out = true;
			return 0;
		}
		if (equals_word(v, n, no[i])) {
			*out = false;
			return 0;
		}
	}
	fail_key(cfg, line, key, " must be yes or no (also true/false, on/off, 1/0), not '");
	err_add_text(cfg, v, n);
	err_add(cfg, "'");
	return -EINVAL;
}

static int parse_handoff(struct vb_config *cfg, unsigned line, const char *v, size_t n,
			 enum vb_handoff *out)
{
	static const enum vb_handoff all[] = { VB_HANDOFF_NONE, VB_HANDOFF_LINEAR,
					       VB_HANDOFF_RAMDISK, VB_HANDOFF_NBD };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (equals_word(v, n, vb_handoff_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	fail_key(cfg, line, KEY_HANDOFF, " must be none, linear, ramdisk or nbd, not '");
	err_add_text(cfg, v, n);
	err_add(cfg, "'");
	return -EINVAL;
}

/* -1, or 0..3600 seconds. */
static int parse_timeout(struct vb_config *cfg, unsigned line, const char *v, size_t n)
{
	if (n == 2 && v[0] == '-' && v[1] == '1') {
		cfg->timeout = -1;
		return 0;
	}
	int value = 0;
	bool ok = n > 0 && n <= 4;
	for (size_t i = 0; ok && i < n; i++) {
		if (!is_digit(v[i]))
			ok = false;
		else
			value = value * 10 + (v[i] - '0');
	}
	if (!ok || value > 3600)
		return fail_key(cfg, line, KEY_TIMEOUT,
				" must be -1 (wait for a key) or 0 to 3600 seconds");
	cfg->timeout = value;
	return 0;
}

/*
 * 8-4-4-4-12 hex digits, any case, into EFI_GUID memory order: the first
 * three groups little-endian, the last two as written (GPT's on-disk
 * UniquePartitionGUID).
 */
static bool parse_guid(const char *s, size_t n, uint8_t out[16])
{
	uint8_t raw[16];
	size_t b = 0;
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
			i++;
			continue;
		}
		int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		raw[b++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	for (size_t i = 0; i < 16; i++)
		out[i] = raw[order[i]];
	return true;
}

/*
 * An absolute path on a FAT/exFAT volume: '/' becomes '\', it starts with
 * '\', and no component is empty, "." or "..", nor holds a character FAT
 * forbids in a name.  Written to dst only when valid.
 */
static int set_path(struct vb_config *cfg, unsigned line, enum key_id key, char *dst,
		    const char *v, size_t n)
{
	char path[VB_PATH_MAX];
	if (n == 0)
		return fail_key(cfg, line, key, " needs a path");
	if (n >= VB_PATH_MAX)
		return fail_key(cfg, line, key, " path is longer than 511 bytes");
	for (size_t i = 0; i < n; i++)
		path[i] = v[i] == '/' ? '\\' : v[i];
	path[n] = '\0';
	if (path[0] != '\\')
		return fail_key(cfg, line, key, " path must be absolute (start with \\ or /)");
	for (size_t i = 0; i < n; i++) {
		char c = path[i];
		if (c == '"' || c == '*' || c == ':' || c == '<' || c == '>' || c == '?' ||
		    c == '|') {
			char one[2] = { c, '\0' };
			fail_key(cfg, line, key, " path holds '");
			err_add(cfg, one);
			err_add(cfg, "', which FAT does not allow in a name");
			return -EINVAL;
		}
	}
	/* Components: each run between backslashes, after the leading one. */
	for (size_t start = 1; start <= n;) {
		size_t end = start;
		while (end < n && path[end] != '\\')
			end++;
		size_t len = end - start;
		if (len == 0)
			return fail_key(cfg, line, key,
					end == n ? " path ends in \\ (it must name a file)"
						 : " path has an empty component (\\\\)");
		if ((len == 1 && path[start] == '.') ||
		    (len == 2 && path[start] == '.' && path[start + 1] == '.'))
			return fail_key(cfg, line, key, " path must not contain . or .. components");
		start = end + 1;
	}
	memcpy(dst, path, n + 1);
	return 0;
}

/* vhd=\path or vhd=PARTUUID=<guid>:\path */
static int set_vhd(struct vb_config *cfg, unsigned line, struct vb_entry *e, const char *v,
		   size_t n)
{
	static const char prefix[] = "PARTUUID=";
	const size_t plen = sizeof(prefix) - 1;
	uint8_t guid[16];
	bool on_partuuid = false;
	if (has_prefix_nocase(v, n, prefix)) {
		const char *colon = NULL;
		for (size_t i = plen; i < n; i++) {
			if (v[i] == ':') {
				colon = v + i;
				break;
			}
		}
		if (!colon)
			return fail_key(cfg, line, KEY_VHD,
					"PARTUUID= needs ':' and a path after the GUID");
		if (!parse_guid(v + plen, (size_t)(colon - v) - plen, guid))
			return fail_key(cfg, line, KEY_VHD,
					"PARTUUID= GUID must be 8-4-4-4-12 hex digits");
		n -= (size_t)(colon + 1 - v);
		v = colon + 1;
		on_partuuid = true;
	}
	int r = set_path(cfg, line, KEY_VHD, e->vhd, v, n);
	if (r < 0)
		return r;
	e->vhd_on_partuuid = on_partuuid;
	if (on_partuuid)
		memcpy(e->partuuid, guid, sizeof(guid));
	else
		memset(e->partuuid, 0, sizeof(e->partuuid));
	return 0;
}

static int set_entry_key(struct vb_config *cfg, unsigned line, struct vb_entry *e,
			 enum key_id key, const char *v, size_t n)
{
	switch (key) {
	case KEY_VHD:
		return set_vhd(cfg, line, e, v, n);
	case KEY_PROGRAM:
		/* Empty: back to searching the defaults (useful as an override). */
		if (n == 0) {
			e->program[0] = '\0';
			return 0;
		}
		return set_path(cfg, line, KEY_PROGRAM, e->program, v, n);
	case KEY_CMDLINE:
		if (n >= VB_CMDLINE_MAX)
			return fail_key(cfg, line, KEY_CMDLINE, " is longer than 2047 bytes");
		memcpy(e->cmdline, v, n);
		e->cmdline[n] = '\0';
		return 0;
	case KEY_WRITABLE:
		return parse_bool(cfg, line, KEY_WRITABLE, v, n, &e->writable);
	case KEY_HANDOFF:
		return parse_handoff(cfg, line, v, n, &e->handoff);
	default:
		return fail_key(cfg, line, key, " is not an entry key");
	}
}

static bool name_equals(const char *name, const char *s, size_t n)
{
	return strlen(name) == n && equals_word(s, n, name);
}

/*
 * default= (or entry=): an entry name first (ASCII case-insensitive), else
 * a decimal 1-based index.
 */
static int resolve_default(struct vb_config *cfg, unsigned line, enum key_id key,
			   const char *v, size_t n)
{
	size_t i, index = 0;
	for (i = 0; i < cfg->n_entries; i++) {
		if (name_equals(cfg->entries[i].name, v, n)) {
			cfg->default_entry = i;
			return 0;
		}
	}
	bool number = n > 0 && n <= 3;
	for (i = 0; number && i < n; i++) {
		if (!is_digit(v[i]))
			number = false;
		else
			index = index * 10 + (size_t)(v[i] - '0');
	}
	if (number && index >= 1 && index <= cfg->n_entries) {
		cfg->default_entry = index - 1;
		return 0;
	}
	fail_key(cfg, line, key, "");
	err_add_text(cfg, v, n);
	err_add(cfg, number ? ": no entry with that number (they count from 1)"
			    : ": no entry with that name");
	return -EINVAL;
}

/*
 * Text vhdboot.conf and LoadOptions share: no NUL, no control character
 * but TAB, well-formed UTF-8.  Returns NULL or what is wrong.
 */
static const char *check_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = (uint8_t)s[i];
		if (c == 0)
			return "NUL byte";
		if (c == '\r')
			return "carriage return inside a line";
		if ((c < 0x20 && c != '\t') || c == 0x7F)
			return "control character";
		size_t k = utf8_seq_len((const uint8_t *)s + i, n - i);
		if (k == 0)
			return "invalid UTF-8";
		i += k;
	}
	return NULL;
}

/* ---- vhdboot.conf ------------------------------------------------------- */

void vb_config_init(struct vb_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout = 5;
}

struct parse_state {
	struct vb_entry defaults;   /* the top-level keys, inherited by every entry */
	bool top_keys;              /* some entry key was set at top level */
	bool sections;              /* some [entry] seen */
	struct vb_entry *cur;       /* where entry keys go now */
	unsigned seen;              /* keys given in the current section (bit per key) */
	char default_name[VB_NAME_MAX];
	size_t default_len;
	unsigned default_line;      /* 0: no default= */
};

static int parse_section(struct vb_config *cfg, struct parse_state *st, unsigned line,
			 const char *s, size_t n)
{
	if (n < 2 || s[n - 1] != ']')
		return fail(cfg, line, "section header must end with ']'", NULL, 0, "");
	s++;
	n -= 2;
	while (n && is_blank(*s))
		s++, n--;
	while (n && is_blank(s[n - 1]))
		n--;
	if (!(n > 5 && has_prefix_nocase(s, n, "entry") && is_blank(s[5]))) {
		if (equals_word(s, n, "entry"))
			return fail(cfg, line, "[entry] needs a name: [entry NAME]", NULL, 0, "");
		return fail(cfg, line, "unknown section '[", s, n, "]' (only [entry NAME])");
	}
	const char *name = s + 5;
	size_t len = n - 5;
	while (len && is_blank(*name))
		name++, len--;
	if (len >= VB_NAME_MAX)
		return fail(cfg, line, "entry name is longer than 63 bytes", NULL, 0, "");
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '[' || name[i] == ']' || name[i] == '"')
			return fail(cfg, line, "entry name must not contain [, ] or \"", NULL, 0,
				    "");
	}
	for (size_t i = 0; i < cfg->n_entries; i++) {
		if (name_equals(cfg->entries[i].name, name, len))
			return fail(cfg, line, "duplicate entry name '", name, len, "'");
	}
	if (cfg->n_entries >= VB_MAX_ENTRIES)
		return fail(cfg, line, "more than 16 entries", NULL, 0, "");
	struct vb_entry *e = &cfg->entries[cfg->n_entries++];
	*e = st->defaults;
	memcpy(e->name, name, len);
	e->name[len] = '\0';
	st->cur = e;
	st->seen = 0;
	st->sections = true;
	return 0;
}

/* line: s[0..n) trimmed; raw_end is n before trimming trailing blanks. */
static int parse_assignment(struct vb_config *cfg, struct parse_state *st, unsigned line,
			    const char *s, size_t n, size_t raw_end)
{
	const char *eq = find_char(s, n, '=');
	if (!eq)
		return fail(cfg, line, "expected key=value or [entry NAME], got '", s, n, "'");
	size_t klen = (size_t)(eq - s);
	while (klen && is_blank(s[klen - 1]))
		klen--;
	if (klen == 0)
		return fail(cfg, line, "missing key before '='", NULL, 0, "");
	enum key_id key = lookup_key(s, klen);
	if (key == KEY_UNKNOWN || !key_table[key].in_file)
		return fail(cfg, line, "unknown key '", s, klen, "'");

	/* The value: trimmed both sides; cmdline= keeps its trailing blanks. */
	size_t vstart = (size_t)(eq - s) + 1;
	size_t vend = key == KEY_CMDLINE ? raw_end : n;
	while (vstart < vend && is_blank(s[vstart]))
		vstart++;
	const char *v = s + vstart;
	size_t vlen = vend - vstart;

	if (st->seen & (1u << key))
		return fail_key(cfg, line, key, " given twice in this section");
	st->seen |= 1u << key;

	if (key_table[key].per_entry) {
		if (!st->sections)
			st->top_keys = true;
		return set_entry_key(cfg, line, st->cur, key, v, vlen);
	}
	if (st->sections)
		return fail_key(cfg, line, key,
				" is a menu key: put it before the first [entry] section");
	if (key == KEY_TIMEOUT)
		return parse_timeout(cfg, line, v, vlen);
	/* default=: resolved once every entry is known. */
	if (vlen == 0)
		return fail_key(cfg, line, key, " needs an entry name or number");
	if (vlen >= VB_NAME_MAX)
		return fail_key(cfg, line, key, " is longer than 63 bytes");
	memcpy(st->default_name, v, vlen);
	st->default_len = vlen;
	st->default_line = line;
	return 0;
}

static int parse_text(struct vb_config *cfg, struct parse_state *st, const char *text, size_t len)
{
	size_t pos = 0;
	unsigned line = 0;
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	else if (len >= 2 && (memcmp(text, "\xFF\xFE", 2) == 0 || memcmp(text, "\xFE\xFF", 2) == 0))
		return fail(cfg, 1, "the file is UTF-16: save it as UTF-8 or ASCII", NULL, 0, "");

	while (pos < len) {
		if (line == 0xFFFFFFFFu)
			return fail(cfg, line, "too many lines", NULL, 0, "");
		line++;
		const char *nl = find_char(text + pos, len - pos, '\n');
		size_t eol = nl ? (size_t)(nl - text) : len;
		size_t next = nl ? eol + 1 : len;
		const char *s = text + pos;
		size_t n = eol - pos;
		pos = next;
		if (n && s[n - 1] == '\r')
			n--;
		const char *bad = check_text(s, n);
		if (bad)
			return fail(cfg, line, bad, NULL, 0, "");
		while (n && is_blank(*s))
			s++, n--;
		size_t raw_end = n;
		while (n && is_blank(s[n - 1]))
			n--;
		if (n == 0 || s[0] == '#')
			continue;
		int r = s[0] == '[' ? parse_section(cfg, st, line, s, n)
				    : parse_assignment(cfg, st, line, s, n, raw_end);
		if (r < 0)
			return r;
	}

	if (!st->sections && st->top_keys) {
		cfg->entries[0] = st->defaults;
		cfg->n_entries = 1;
	}
	if (st->default_line)
		return resolve_default(cfg, st->default_line, KEY_DEFAULT, st->default_name,
				       st->default_len);
	return 0;
}

int vb_config_parse(struct vb_config *cfg, const char *text, size_t len)
{
	struct parse_state st;
	vb_config_init(cfg);
	memset(&st, 0, sizeof(st));
	st.cur = &st.defaults;
	if (!text && len)
		return fail(cfg, 1, "no text", NULL, 0, "");
	int r = parse_text(cfg, &st, text, len);
	if (r < 0) {
		/* Nothing half-parsed survives: only the message. */
		char error[sizeof(cfg->error)];
		unsigned line = cfg->error_line;
		memcpy(error, cfg->error, sizeof(error));
		vb_config_init(cfg);
		memcpy(cfg->error, error, sizeof(error));
		cfg->error_line = line;
	}
	return r;
}

/* ---- LoadOptions -------------------------------------------------------- */

/* UCS-2LE (surrogate pairs allowed) stops at a NUL; a lone surrogate is
 * -EINVAL and a result too long for out -E2BIG. */
static int decode_ucs2(const uint8_t *b, size_t size, char *out, size_t outsz)
{
	int n = vhd_utf16_decode(b, size, false, VHD_UTF16_STRICT, out, outsz);
	return n < 0 ? n : 0;
}

static int decode_8bit(const uint8_t *b, size_t size, char *out, size_t outsz)
{
	size_t n = 0;
	while (n < size && b[n] != 0)
		n++;
	if (n >= outsz)
		return -E2BIG;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq_len(b + i, n - i);
		if (k == 0)
			return -EINVAL;
		i += k;
	}
	if (n)
		memcpy(out, b, n);
	out[n] = '\0';
	return 0;
}

/*
 * The UEFI shell puts the program's own path first ("fs0:\EFI\vhdboot\
 * vhdboot.efi vhd=..."): drop a first token ending in ".efi" unless it is
 * one of our keys (program=\EFI\x.efi is an option, not argv[0]).
 */
static void drop_loader_argument(char *s)
{
	char *p = s;
	while (is_blank(*p))
		p++;
	const char *tok = p, *end;
	size_t len;
	if (*p == '"') {
		tok = p + 1;
		const char *q = strchr(tok, '"');
		if (!q || (q[1] && !is_blank(q[1])))
			return;
		len = (size_t)(q - tok);
		end = q + 1;
	} else {
		while (*p && !is_blank(*p))
			p++;
		len = (size_t)(p - tok);
		end = p;
	}
	if (len < 4 || !equals_word(tok + len - 4, 4, ".efi"))
		return;
	const char *eq = find_char(tok, len, '=');
	if (eq && lookup_key(tok, (size_t)(eq - tok)) != KEY_UNKNOWN)
		return;
	while (is_blank(*end))
		end++;
	memmove(s, end, strlen(end) + 1);
}

int vb_load_options_decode(const void *data, size_t size, char *out, size_t outsz)
{
	const uint8_t *b = data;
	int r;
	if (!out || outsz == 0)
		return -E2BIG;
	out[0] = '\0';
	if (!b && size)
		return -EINVAL;
	/*
	 * UCS-2LE (efibootmgr -u, the UEFI shell) when it says so with a BOM,
	 * or when the first character is ASCII with a zero high byte: options
	 * start with a key or a path, never with a non-ASCII letter.
	 */
	if (size >= 2 && b[0] == 0xFF && b[1] == 0xFE)
		r = decode_ucs2(b + 2, size - 2, out, outsz);
	else if (size >= 2 && b[0] == 0xFE && b[1] == 0xFF)
		r = -EINVAL; /* UCS-2BE: UEFI is little-endian; nobody passes this */
	else if (size >= 2 && b[0] != 0 && b[0] < 0x80 && b[1] == 0)
		r = decode_ucs2(b, size, out, outsz);
	else
		r = decode_8bit(b, size, out, outsz);
	if (r < 0) {
		out[0] = '\0';
		return r;
	}
	drop_loader_argument(out);
	return 0;
}

/* One value of LoadOptions: quoted ("a b") or up to the next blank. */
static int options_value(struct vb_config *cfg, enum key_id key, const char **pp,
			 const char **v, size_t *n)
{
	const char *p = *pp;
	if (key == KEY_CMDLINE) {
		/* The rest of the string, verbatim (quotes included). */
		while (is_blank(*p))
			p++;
		*v = p;
		*n = strlen(p);
		*pp = p + *n;
		return 0;
	}
	if (*p == '"') {
		const char *q = strchr(p + 1, '"');
		if (!q)
			return fail_key(cfg, 0, key, " has no closing quote");
		if (q[1] && !is_blank(q[1]))
			return fail_key(cfg, 0, key, " has text right after its closing quote");
		*v = p + 1;
		*n = (size_t)(q - p - 1);
		*pp = q + 1;
		return 0;
	}
	const char *start = p;
	while (*p && !is_blank(*p)) {
		if (*p == '"')
			return fail_key(cfg, 0, key,
					" has a quote inside its value (quote the whole value)");
		p++;
	}
	*v = start;
	*n = (size_t)(p - start);
	*pp = p;
	return 0;
}

int vb_config_apply_options(struct vb_config *cfg, const char *options)
{
	char pick[VB_NAME_MAX];
	size_t pick_len = 0;
	enum key_id pick_key = KEY_DEFAULT;
	bool picked = false;
	if (!options)
		return 0;
	const char *bad = check_text(options, strlen(options));
	if (bad)
		return fail(cfg, 0, bad, NULL, 0, "");

	const char *p = options;
	for (;;) {
		while (is_blank(*p))
			p++;
		if (!*p)
			break;
		const char *tok = p;
		while (*p && *p != '=' && !is_blank(*p))
			p++;
		if (*p != '=')
			return fail(cfg, 0, "expected key=value, got '", tok, (size_t)(p - tok),
				    "'");
		enum key_id key = lookup_key(tok, (size_t)(p - tok));
		if (key == KEY_UNKNOWN)
			return fail(cfg, 0, "unknown key '", tok, (size_t)(p - tok), "'");
		p++;
		const char *v = NULL;
		size_t n = 0;
		int r = options_value(cfg, key, &p, &v, &n);
		if (r < 0)
			return r;

		if (key_table[key].per_entry) {
			if (cfg->n_entries == 0) {
				memset(&cfg->entries[0], 0, sizeof(cfg->entries[0]));
				cfg->n_entries = 1;
			}
			for (size_t i = 0; i < cfg->n_entries; i++) {
				r = set_entry_key(cfg, 0, &cfg->entries[i], key, v, n);
				if (r < 0)
					return r;
			}
		} else if (key == KEY_TIMEOUT) {
			r = parse_timeout(cfg, 0, v, n);
			if (r < 0)
				return r;
		} else {
			/* default= / entry=: resolved after every override is in. */
			if (n == 0)
				return fail_key(cfg, 0, key, " needs an entry name or number");
			if (n >= VB_NAME_MAX)
				return fail_key(cfg, 0, key, " is longer than 63 bytes");
			memcpy(pick, v, n);
			pick_len = n;
			pick_key = key;
			picked = true;
		}
	}
	if (picked) {
		int r = resolve_default(cfg, 0, pick_key, pick, pick_len);
		if (r < 0)
			return r;
		if (pick_key == KEY_ENTRY)
			cfg->timeout = 0; /* entry=NAME boots it without the menu */
	}
	return 0;
}

/* ---- the result --------------------------------------------------------- */

int vb_config_finish(struct vb_config *cfg)
{
	cfg->error[0] = '\0';
	cfg->error_line = 0;
	if (cfg->n_entries == 0 || cfg->n_entries > VB_MAX_ENTRIES) {
		err_add(cfg, cfg->n_entries ? "too many entries"
					    : "nothing to boot: no vhd= in vhdboot.conf or "
					      "LoadOptions");
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->n_entries; i++) {
		const struct vb_entry *e = &cfg->entries[i];
		if (e->vhd[0] != '\0')
			continue;
		if (e->name[0]) {
			err_add(cfg, "entry '");
			err_add_text(cfg, e->name, strlen(e->name));
			err_add(cfg, "' has no vhd=");
		} else {
			err_add(cfg, "vhd= is required");
		}
		return -EINVAL;
	}
	if (cfg->default_entry >= cfg->n_entries) {
		err_add(cfg, "default entry out of range");
		return -EINVAL;
	}
	if (cfg->timeout < -1 || cfg->timeout > 3600) {
		err_add(cfg, "timeout out of range");
		return -EINVAL;
	}
	return 0;
}

const char *vb_handoff_name(enum vb_handoff h)
{
	switch (h) {
	case VB_HANDOFF_NONE:
		return "none";
	case VB_HANDOFF_LINEAR:
		return "linear";
	case VB_HANDOFF_RAMDISK:
		return "ramdisk";
	case VB_HANDOFF_NBD:
		return "nbd";
	}
	return "unknown";
}
