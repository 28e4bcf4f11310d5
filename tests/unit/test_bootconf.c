/* SPDX-License-Identifier: MIT */
/* bootconf.c: vhdboot.conf parsing, LoadOptions decoding and overrides. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bootconf.h"

/* 50 KiB each: kept off the stack. */
static struct vb_config cfg;

static void parse_ok(const char *text)
{
	int r = vb_config_parse(&cfg, text, strlen(text));
	cr_assert_eq(r, 0, "parse failed (%d): %s\n--\n%s", r, cfg.error, text);
}

/* Parse must fail on `line` with a message holding `what`, and keep nothing. */
static void parse_err_len(const char *text, size_t len, unsigned line, const char *what)
{
	int r = vb_config_parse(&cfg, text, len);
	cr_assert_eq(r, -EINVAL, "parse should fail (%d)\n--\n%.*s", r, (int)len, text);
	cr_assert_eq(cfg.error_line, line, "line %u, not %u: %s", cfg.error_line, line, cfg.error);
	char head[32];
	snprintf(head, sizeof(head), "line %u: ", line);
	cr_assert(strncmp(cfg.error, head, strlen(head)) == 0, "message lacks '%s': %s", head,
		  cfg.error);
	cr_assert(strstr(cfg.error, what) != NULL, "message lacks '%s': %s", what, cfg.error);
	cr_assert_lt(strlen(cfg.error), sizeof(cfg.error));
	cr_assert_eq(cfg.n_entries, 0, "a failed parse keeps no entries");
	cr_assert_eq(cfg.timeout, 5);
}

static void parse_err(const char *text, unsigned line, const char *what)
{
	parse_err_len(text, strlen(text), line, what);
}

static void apply_err(const char *options, const char *what)
{
	int r = vb_config_apply_options(&cfg, options);
	cr_assert_eq(r, -EINVAL, "apply '%s' should fail (%d)", options, r);
	cr_assert_eq(cfg.error_line, 0);
	cr_assert(strncmp(cfg.error, "LoadOptions: ", 13) == 0, "%s", cfg.error);
	cr_assert(strstr(cfg.error, what) != NULL, "message lacks '%s': %s", what, cfg.error);
}

/* ASCII/UTF-8 text as UCS-2LE (BMP only), with the terminating NUL unit. */
static size_t to_ucs2(const char *s, uint8_t *out, size_t outsz)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s;; p++) {
		cr_assert(*p < 0x80, "to_ucs2 takes ASCII");
		cr_assert(o + 2 <= outsz);
		out[o++] = *p;
		out[o++] = 0;
		if (!*p)
			break;
	}
	return o;
}

static const struct vb_entry *entry(size_t i)
{
	cr_assert_lt(i, cfg.n_entries);
	return &cfg.entries[i];
}

/* ---- valid files -------------------------------------------------------- */

Test(bootconf, init_is_empty_with_timeout_5)
{
	memset(&cfg, 0xA5, sizeof(cfg));
	vb_config_init(&cfg);
	cr_assert_eq(cfg.n_entries, 0);
	cr_assert_eq(cfg.default_entry, 0);
	cr_assert_eq(cfg.timeout, 5);
	cr_assert_str_eq(cfg.error, "");
	cr_assert_eq(cfg.entries[3].vhd[0], '\0');
}

Test(bootconf, minimal_file_is_one_unnamed_entry)
{
	parse_ok("vhd=\\vhd\\disk.vhd\n");
	cr_assert_eq(cfg.n_entries, 1);
	const struct vb_entry *e = entry(0);
	cr_assert_str_eq(e->name, "");
	cr_assert_str_eq(e->vhd, "\\vhd\\disk.vhd");
	cr_assert_not(e->vhd_on_partuuid);
	cr_assert_str_eq(e->program, "");
	cr_assert_str_eq(e->cmdline, "");
	cr_assert_not(e->writable);
	cr_assert_eq(e->handoff, VB_HANDOFF_NONE);
	cr_assert_eq(cfg.timeout, 5);
	cr_assert_eq(vb_config_finish(&cfg), 0, "%s", cfg.error);
}

Test(bootconf, crlf_bom_comments_blanks_and_slashes)
{
	parse_ok("\xEF\xBB\xBF# vhdboot.conf\r\n"
		 "\r\n"
		 "   # indented comment\r\n"
		 "\t vhd \t=\t /vhd/Debian 12.vhd \t\r\n"
		 "program = /EFI/debian/grubx64.efi\r\n"
		 "writable = YES\r\n"
		 "handoff = Linear\r\n"
		 "timeout = 0\r\n");
	cr_assert_eq(cfg.n_entries, 1);
	const struct vb_entry *e = entry(0);
	cr_assert_str_eq(e->vhd, "\\vhd\\Debian 12.vhd");
	cr_assert_str_eq(e->program, "\\EFI\\debian\\grubx64.efi");
	cr_assert(e->writable);
	cr_assert_eq(e->handoff, VB_HANDOFF_LINEAR);
	cr_assert_eq(cfg.timeout, 0);
}

Test(bootconf, last_line_without_newline_and_lone_cr_at_end)
{
	parse_ok("vhd=\\a.vhd\ncmdline=quiet");
	cr_assert_str_eq(entry(0)->cmdline, "quiet");
	parse_ok("vhd=\\a.vhd\ncmdline=quiet\r");
	cr_assert_str_eq(entry(0)->cmdline, "quiet");
}

Test(bootconf, cmdline_is_the_rest_of_the_line_verbatim)
{
	parse_ok("vhd=\\a.vhd\r\n"
		 "cmdline =   root=/dev/sda2 console=\"ttyS0,115200\" # not a comment  \r\n");
	cr_assert_str_eq(entry(0)->cmdline,
			 "root=/dev/sda2 console=\"ttyS0,115200\" # not a comment  ");
	parse_ok("vhd=\\a.vhd\ncmdline=\n");
	cr_assert_str_eq(entry(0)->cmdline, "");
}

Test(bootconf, empty_and_comment_only_files_have_no_entry)
{
	parse_ok("");
	cr_assert_eq(cfg.n_entries, 0);
	parse_ok("# nothing\n\n   \n");
	cr_assert_eq(cfg.n_entries, 0);
	parse_ok("timeout=3\n");
	cr_assert_eq(cfg.n_entries, 0);
	cr_assert_eq(cfg.timeout, 3);
	cr_assert_eq(vb_config_finish(&cfg), -EINVAL);
	cr_assert(strstr(cfg.error, "nothing to boot") != NULL, "%s", cfg.error);
	cr_assert_eq(cfg.error_line, 0);
}

Test(bootconf, entries_inherit_the_top_level_keys)
{
	parse_ok("vhd=\\vhd\\base.vhd\n"
		 "program=\\EFI\\debian\\shimx64.efi\n"
		 "cmdline=root=/dev/sda2\n"
		 "handoff=ramdisk\n"
		 "default=Rescue\n"
		 "timeout=10\n"
		 "\n"
		 "[entry Debian]\n"
		 "cmdline=root=/dev/sda2 quiet\n"
		 "\n"
		 "[ entry   Rescue  ]\n"
		 "vhd=/vhd/rescue.vhd\n"
		 "writable=on\n"
		 "handoff=none\n"
		 "[entry Third one]\n");
	cr_assert_eq(cfg.n_entries, 3, "the top-level keys make no entry of their own");
	cr_assert_str_eq(entry(0)->name, "Debian");
	cr_assert_str_eq(entry(0)->vhd, "\\vhd\\base.vhd");
	cr_assert_str_eq(entry(0)->program, "\\EFI\\debian\\shimx64.efi");
	cr_assert_str_eq(entry(0)->cmdline, "root=/dev/sda2 quiet");
	cr_assert_not(entry(0)->writable);
	cr_assert_eq(entry(0)->handoff, VB_HANDOFF_RAMDISK);

	cr_assert_str_eq(entry(1)->name, "Rescue");
	cr_assert_str_eq(entry(1)->vhd, "\\vhd\\rescue.vhd");
	cr_assert_str_eq(entry(1)->program, "\\EFI\\debian\\shimx64.efi");
	cr_assert_str_eq(entry(1)->cmdline, "root=/dev/sda2");
	cr_assert(entry(1)->writable);
	cr_assert_eq(entry(1)->handoff, VB_HANDOFF_NONE);

	cr_assert_str_eq(entry(2)->name, "Third one");
	cr_assert_str_eq(entry(2)->vhd, "\\vhd\\base.vhd");
	cr_assert_str_eq(entry(2)->cmdline, "root=/dev/sda2");

	cr_assert_eq(cfg.default_entry, 1);
	cr_assert_eq(cfg.timeout, 10);
	cr_assert_eq(vb_config_finish(&cfg), 0, "%s", cfg.error);
}

Test(bootconf, default_by_name_any_case_or_by_1_based_number)
{
	const char *base = "vhd=\\a.vhd\n%s\n[entry one]\n[entry two]\n[entry 2]\n";
	char text[256];
	snprintf(text, sizeof(text), base, "default=TWO");
	parse_ok(text);
	cr_assert_eq(cfg.default_entry, 1);
	snprintf(text, sizeof(text), base, "default=1");
	parse_ok(text);
	cr_assert_eq(cfg.default_entry, 0);
	snprintf(text, sizeof(text), base, "default=3");
	parse_ok(text);
	cr_assert_eq(cfg.default_entry, 2);
	/* A name wins over a number: the entry called "2" is the third. */
	snprintf(text, sizeof(text), base, "default=2");
	parse_ok(text);
	cr_assert_eq(cfg.default_entry, 2);
	/* No [entry]: the one unnamed entry is number 1. */
	parse_ok("default=1\nvhd=\\a.vhd\n");
	cr_assert_eq(cfg.default_entry, 0);
}

Test(bootconf, partuuid_in_efi_guid_byte_order)
{
	/* The Linux data partition type GUID, as GPT stores it on disk. */
	static const uint8_t want[16] = { 0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47,
					  0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4 };
	parse_ok("vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4:\\disks\\a.vhd\n");
	cr_assert(entry(0)->vhd_on_partuuid);
	cr_assert_arr_eq(entry(0)->partuuid, want, 16);
	cr_assert_str_eq(entry(0)->vhd, "\\disks\\a.vhd");
	parse_ok("vhd = partuuid=0fc63daf-8483-4772-8e79-3d69d8477de4:/disks/a.vhd\n");
	cr_assert(entry(0)->vhd_on_partuuid);
	cr_assert_arr_eq(entry(0)->partuuid, want, 16);
	cr_assert_str_eq(entry(0)->vhd, "\\disks\\a.vhd");
	/* An entry's plain vhd= clears the inherited PARTUUID. */
	parse_ok("vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4:\\a.vhd\n"
		 "[entry local]\nvhd=\\b.vhd\n[entry other]\n");
	cr_assert_not(entry(0)->vhd_on_partuuid);
	static const uint8_t zero[16] = { 0 };
	cr_assert_arr_eq(entry(0)->partuuid, zero, 16);
	cr_assert(entry(1)->vhd_on_partuuid);
	cr_assert_str_eq(entry(1)->vhd, "\\a.vhd");
}

Test(bootconf, booleans_handoffs_and_timeouts)
{
	static const char *const yes[] = { "yes", "Yes", "TRUE", "on", "1" };
	static const char *const no[] = { "no", "False", "OFF", "0" };
	char text[128];
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), "vhd=\\a.vhd\nwritable=%s\n", yes[i]);
		parse_ok(text);
		cr_assert(entry(0)->writable, "%s", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(text, sizeof(text), "vhd=\\a.vhd\nwritable=%s\n", no[i]);
		parse_ok(text);
		cr_assert_not(entry(0)->writable, "%s", no[i]);
	}
	static const struct {
		const char *text;
		enum vb_handoff h;
	} handoffs[] = { { "none", VB_HANDOFF_NONE },
			 { "linear", VB_HANDOFF_LINEAR },
			 { "RAMDISK", VB_HANDOFF_RAMDISK },
			 { "nbd", VB_HANDOFF_NBD } };
	for (size_t i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "vhd=\\a.vhd\nhandoff=%s\n", handoffs[i].text);
		parse_ok(text);
		cr_assert_eq(entry(0)->handoff, handoffs[i].h, "%s", handoffs[i].text);
	}
	static const int timeouts[] = { -1, 0, 1, 3600 };
	for (size_t i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "timeout=%d\nvhd=\\a.vhd\n", timeouts[i]);
		parse_ok(text);
		cr_assert_eq(cfg.timeout, timeouts[i]);
	}
}

Test(bootconf, handoff_names)
{
	cr_assert_str_eq(vb_handoff_name(VB_HANDOFF_NONE), "none");
	cr_assert_str_eq(vb_handoff_name(VB_HANDOFF_LINEAR), "linear");
	cr_assert_str_eq(vb_handoff_name(VB_HANDOFF_RAMDISK), "ramdisk");
	cr_assert_str_eq(vb_handoff_name(VB_HANDOFF_NBD), "nbd");
	cr_assert_str_eq(vb_handoff_name((enum vb_handoff)42), "unknown");
}

/* Each buffer's last byte is the NUL: one byte less than its size fits. */
Test(bootconf, longest_values_that_fit)
{
	static char text[8192];
	char path[VB_PATH_MAX], cmd[VB_CMDLINE_MAX], name[VB_NAME_MAX];
	memset(path, 'p', sizeof(path));
	path[0] = '\\';
	path[VB_PATH_MAX - 1] = '\0';
	memset(cmd, 'c', sizeof(cmd));
	cmd[VB_CMDLINE_MAX - 1] = '\0';
	memset(name, 'n', sizeof(name));
	name[VB_NAME_MAX - 1] = '\0';
	snprintf(text, sizeof(text), "vhd=%s\nprogram=%s\ncmdline=%s\ndefault=%s\n[entry %s]\n",
		 path, path, cmd, name, name);
	parse_ok(text);
	cr_assert_eq(strlen(entry(0)->vhd), VB_PATH_MAX - 1);
	cr_assert_eq(strlen(entry(0)->program), VB_PATH_MAX - 1);
	cr_assert_eq(strlen(entry(0)->cmdline), VB_CMDLINE_MAX - 1);
	cr_assert_str_eq(entry(0)->name, name);
}

Test(bootconf, sixteen_entries_fit)
{
	static char text[4096];
	size_t o = (size_t)snprintf(text, sizeof(text), "vhd=\\a.vhd\ndefault=16\n");
	for (int i = 0; i < VB_MAX_ENTRIES; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "[entry e%d]\n", i);
	parse_ok(text);
	cr_assert_eq(cfg.n_entries, VB_MAX_ENTRIES);
	cr_assert_eq(cfg.default_entry, VB_MAX_ENTRIES - 1);
	cr_assert_str_eq(entry(15)->name, "e15");
	cr_assert_eq(vb_config_finish(&cfg), 0);
}

/* ---- broken files: one defect each -------------------------------------- */

Test(bootconf, errors_name_the_problem_and_the_line)
{
	static const struct {
		const char *text;
		unsigned line;
		const char *what;
	} cases[] = {
		{ "vhd=\\a.vhd\nvhdd=\\b.vhd\n", 2, "unknown key 'vhdd'" },
		{ "vhd=\\a.vhd\nentry=x\n", 2, "unknown key 'entry'" },
		{ "vhd=\\a.vhd\njust words\n", 2, "expected key=value" },
		{ "vhd=\\a.vhd\n = x\n", 2, "missing key" },
		{ "vhd=a.vhd\n", 1, "vhd= path must be absolute" },
		{ "vhd=\n", 1, "vhd= needs a path" },
		{ "vhd=C:\\a.vhd\n", 1, "must be absolute" },
		{ "vhd=\\dir\\\n", 1, "ends in \\" },
		{ "vhd=\\dir\\\\a.vhd\n", 1, "empty component" },
		{ "vhd=\\dir\\..\\a.vhd\n", 1, ". or .. components" },
		{ "vhd=\\.\\a.vhd\n", 1, ". or .. components" },
		{ "vhd=\\a*.vhd\n", 1, "holds '*'" },
		{ "vhd=\\a:b.vhd\n", 1, "holds ':'" },
		{ "vhd=\\a.vhd\nprogram=EFI\\x.efi\n", 2, "program= path must be absolute" },
		{ "vhd=\\a.vhd\nwritable=maybe\n", 2, "writable= must be yes or no" },
		{ "vhd=\\a.vhd\nwritable=\n", 2, "writable= must be yes or no" },
		{ "vhd=\\a.vhd\nhandoff=kexec\n", 2, "handoff= must be none, linear, ramdisk or nbd" },
		{ "vhd=\\a.vhd\nhandoff=\n", 2, "handoff=" },
		{ "timeout=3601\n", 1, "timeout= must be -1" },
		{ "timeout=-2\n", 1, "timeout= must be -1" },
		{ "timeout=+5\n", 1, "timeout= must be -1" },
		{ "timeout=5s\n", 1, "timeout= must be -1" },
		{ "timeout=\n", 1, "timeout= must be -1" },
		{ "timeout=99999999999999999999\n", 1, "timeout= must be -1" },
		{ "vhd=\\a.vhd\nvhd=\\b.vhd\n", 2, "vhd= given twice" },
		{ "vhd=\\a.vhd\n[entry a]\ncmdline=x\ncmdline=y\n", 4, "cmdline= given twice" },
		{ "vhd=\\a.vhd\n[entry a]\ntimeout=3\n", 3, "timeout= is a menu key" },
		{ "vhd=\\a.vhd\n[entry a]\ndefault=a\n", 3, "default= is a menu key" },
		{ "default=\nvhd=\\a.vhd\n", 1, "default= needs an entry name" },
		{ "vhd=\\a.vhd\ndefault=nope\n[entry a]\n", 2, "default=nope: no entry with that name" },
		{ "vhd=\\a.vhd\ndefault=0\n[entry a]\n", 2, "no entry with that number" },
		{ "vhd=\\a.vhd\ndefault=3\n[entry a]\n[entry b]\n", 2, "no entry with that number" },
		{ "default=a\n", 1, "no entry with that name" },
		{ "[entry a]\nvhd=\\a.vhd\n[entry A]\n", 3, "duplicate entry name 'A'" },
		{ "vhd=\\a.vhd\n[menu]\n", 2, "unknown section '[menu]'" },
		{ "vhd=\\a.vhd\n[entry]\n", 2, "[entry] needs a name" },
		{ "vhd=\\a.vhd\n[entry   ]\n", 2, "[entry] needs a name" },
		{ "vhd=\\a.vhd\n[entry a\n", 2, "must end with ']'" },
		{ "vhd=\\a.vhd\n[entryx]\n", 2, "unknown section" },
		{ "vhd=\\a.vhd\n[entry a]b]\n", 2, "must not contain" },
		{ "vhd=\\a.vhd\n[entry \"a\"]\n", 2, "must not contain" },
		{ "vhd=\\a.vhd\ncmdline=a\rb\n", 2, "carriage return" },
		{ "vhd=\\a.vhd\ncmdline=a\x01" "b\n", 2, "control character" },
		{ "vhd=\\a.vhd\ncmdline=a\x7f\n", 2, "control character" },
		{ "vhd=\\a.vhd\n\ncmdline=caf\xe9\n", 3, "invalid UTF-8" },
		{ "vhd=\\a.vhd\ncmdline=\xc0\xaf\n", 2, "invalid UTF-8" },
		{ "vhd=\\a.vhd\ncmdline=\xed\xa0\x80\n", 2, "invalid UTF-8" },
		{ "vhd=\\a.vhd\ncmdline=\xe2\x82\n", 2, "invalid UTF-8" },
		{ "\xFF\xFEv\0h\0d\0", 1, "UTF-16" },
		{ "vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE:\\a.vhd\n", 1, "8-4-4-4-12" },
		{ "vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4F:\\a.vhd\n", 1, "8-4-4-4-12" },
		{ "vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DG4:\\a.vhd\n", 1, "8-4-4-4-12" },
		{ "vhd=PARTUUID=0FC63DAF+8483-4772-8E79-3D69D8477DE4:\\a.vhd\n", 1, "8-4-4-4-12" },
		{ "vhd=PARTUUID=0FC63DAF-84834-772-8E79-3D69D8477DE4:\\a.vhd\n", 1, "8-4-4-4-12" },
		{ "vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4\\a.vhd\n", 1, "needs ':'" },
		{ "vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4:a.vhd\n", 1, "must be absolute" },
		{ "vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4:\n", 1, "needs a path" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_err(cases[i].text, cases[i].line, cases[i].what);
}

Test(bootconf, nul_byte_is_an_error_on_its_line)
{
	static const char text[] = "vhd=\\a.vhd\n# ok\ncmdline=a\0b\n";
	parse_err_len(text, sizeof(text) - 1, 3, "NUL byte");
}

Test(bootconf, values_too_long_for_their_buffer)
{
	static char text[8192];
	char big[VB_CMDLINE_MAX + 1];

	memset(big, 'p', VB_PATH_MAX);
	big[0] = '\\';
	big[VB_PATH_MAX] = '\0';
	snprintf(text, sizeof(text), "# x\nvhd=%s\n", big);
	parse_err(text, 2, "vhd= path is longer than 511 bytes");
	snprintf(text, sizeof(text), "vhd=\\a.vhd\nprogram=%s\n", big);
	parse_err(text, 2, "program= path is longer than 511 bytes");
	snprintf(text, sizeof(text), "vhd=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4:%s\n", big);
	parse_err(text, 1, "vhd= path is longer than 511 bytes");

	memset(big, 'c', VB_CMDLINE_MAX);
	big[VB_CMDLINE_MAX] = '\0';
	snprintf(text, sizeof(text), "vhd=\\a.vhd\ncmdline=%s\n", big);
	parse_err(text, 2, "cmdline= is longer than 2047 bytes");

	memset(big, 'n', VB_NAME_MAX);
	big[VB_NAME_MAX] = '\0';
	snprintf(text, sizeof(text), "vhd=\\a.vhd\n[entry %s]\n", big);
	parse_err(text, 2, "entry name is longer than 63 bytes");
	snprintf(text, sizeof(text), "vhd=\\a.vhd\ndefault=%s\n", big);
	parse_err(text, 2, "default= is longer than 63 bytes");
}

Test(bootconf, seventeen_entries_are_too_many)
{
	static char text[4096];
	size_t o = (size_t)snprintf(text, sizeof(text), "vhd=\\a.vhd\n");
	for (int i = 0; i <= VB_MAX_ENTRIES; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "[entry e%d]\n", i);
	parse_err(text, VB_MAX_ENTRIES + 2, "more than 16 entries");
}

Test(bootconf, long_user_text_is_cut_in_messages)
{
	static char text[1024];
	char key[300];
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(text, sizeof(text), "%s=1\n", key);
	parse_err(text, 1, "unknown key 'kkkk");
	cr_assert(strstr(cfg.error, "...'") != NULL, "%s", cfg.error);
	cr_assert_lt(strlen(cfg.error), 80);
}

Test(bootconf, finish_wants_a_vhd_in_every_entry)
{
	parse_ok("[entry good]\nvhd=\\a.vhd\n[entry bad one]\ncmdline=x\n");
	cr_assert_eq(vb_config_finish(&cfg), -EINVAL);
	cr_assert_str_eq(cfg.error, "entry 'bad one' has no vhd=");
	cr_assert_eq(cfg.error_line, 0);

	parse_ok("cmdline=quiet\n");
	cr_assert_eq(cfg.n_entries, 1);
	cr_assert_eq(vb_config_finish(&cfg), -EINVAL);
	cr_assert_str_eq(cfg.error, "vhd= is required");
	/* LoadOptions can supply the missing vhd=. */
	cr_assert_eq(vb_config_apply_options(&cfg, "vhd=\\x.vhd"), 0);
	cr_assert_eq(vb_config_finish(&cfg), 0, "%s", cfg.error);
	cr_assert_str_eq(entry(0)->cmdline, "quiet");
}

Test(bootconf, finish_checks_default_and_timeout_ranges)
{
	parse_ok("vhd=\\a.vhd\n");
	cfg.default_entry = 1;
	cr_assert_eq(vb_config_finish(&cfg), -EINVAL);
	cr_assert(strstr(cfg.error, "default") != NULL);
	cfg.default_entry = 0;
	cfg.timeout = 3601;
	cr_assert_eq(vb_config_finish(&cfg), -EINVAL);
	cr_assert(strstr(cfg.error, "timeout") != NULL);
	cfg.timeout = -1;
	cr_assert_eq(vb_config_finish(&cfg), 0);
	cr_assert_str_eq(cfg.error, "");
}

/* ---- LoadOptions decoding ----------------------------------------------- */

Test(bootconf, decode_ascii_with_and_without_nul)
{
	char out[64];
	static const char with_nul[] = "vhd=\\a.vhd cmdline=quiet";
	cr_assert_eq(vb_load_options_decode(with_nul, sizeof(with_nul), out, sizeof(out)), 0);
	cr_assert_str_eq(out, "vhd=\\a.vhd cmdline=quiet");
	cr_assert_eq(vb_load_options_decode(with_nul, 10, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "vhd=\\a.vhd");
	/* Bytes after the first NUL are not options. */
	static const char after[] = "vhd=\\a.vhd\0junk";
	cr_assert_eq(vb_load_options_decode(after, sizeof(after), out, sizeof(out)), 0);
	cr_assert_str_eq(out, "vhd=\\a.vhd");
	/* Empty options. */
	cr_assert_eq(vb_load_options_decode(NULL, 0, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(vb_load_options_decode("", 1, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(vb_load_options_decode("x", 1, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "x");
	/* UTF-8 passes through; anything else is refused. */
	cr_assert_eq(vb_load_options_decode("cmdline=caf\xc3\xa9", 14, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "cmdline=caf\xc3\xa9");
	memset(out, 'x', sizeof(out));
	cr_assert_eq(vb_load_options_decode("cmdline=caf\xe9", 12, out, sizeof(out)), -EINVAL);
	cr_assert_eq(out[0], '\0');
}

Test(bootconf, decode_ucs2_as_efibootmgr_u_passes_it)
{
	uint8_t u[256];
	char out[128];
	size_t n = to_ucs2("vhd=\\vhd\\disk.vhd cmdline=root=/dev/sda2", u, sizeof(u));
	cr_assert_eq(vb_load_options_decode(u, n, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "vhd=\\vhd\\disk.vhd cmdline=root=/dev/sda2");
	/* Without the NUL unit. */
	cr_assert_eq(vb_load_options_decode(u, n - 2, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "vhd=\\vhd\\disk.vhd cmdline=root=/dev/sda2");
	/* An odd size: the half unit at the end is dropped. */
	cr_assert_eq(vb_load_options_decode(u, 9, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "vhd=");
	/* With a byte order mark. */
	uint8_t bom[260] = { 0xFF, 0xFE };
	memcpy(bom + 2, u, n);
	cr_assert_eq(vb_load_options_decode(bom, n + 2, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "vhd=\\vhd\\disk.vhd cmdline=root=/dev/sda2");
	/* Big-endian UCS-2 is not what UEFI passes. */
	static const uint8_t be[] = { 0xFE, 0xFF, 0, 'v', 0, 0 };
	cr_assert_eq(vb_load_options_decode(be, sizeof(be), out, sizeof(out)), -EINVAL);
}

Test(bootconf, decode_ucs2_beyond_ascii_and_surrogates)
{
	char out[64];
	/* "c=é日💾" : U+00E9, U+65E5, U+1F4BE (D83D DCBE) */
	static const uint8_t u[] = { 'c', 0, '=', 0, 0xE9, 0x00, 0xE5, 0x65,
				     0x3D, 0xD8, 0xBE, 0xDC, 0, 0 };
	cr_assert_eq(vb_load_options_decode(u, sizeof(u), out, sizeof(out)), 0);
	cr_assert_str_eq(out, "c=\xc3\xa9\xe6\x97\xa5\xf0\x9f\x92\xbe");
	/* Exactly enough room (12 bytes + NUL), then one byte short. */
	cr_assert_eq(vb_load_options_decode(u, sizeof(u), out, 12), 0);
	cr_assert_eq(vb_load_options_decode(u, sizeof(u), out, 11), -E2BIG);
	cr_assert_eq(out[0], '\0');

	static const uint8_t lone_high[] = { 'c', 0, 0x3D, 0xD8, 'x', 0 };
	cr_assert_eq(vb_load_options_decode(lone_high, sizeof(lone_high), out, sizeof(out)),
		     -EINVAL);
	static const uint8_t high_at_end[] = { 'c', 0, 0x3D, 0xD8 };
	cr_assert_eq(vb_load_options_decode(high_at_end, sizeof(high_at_end), out, sizeof(out)),
		     -EINVAL);
	static const uint8_t lone_low[] = { 'c', 0, 0xBE, 0xDC };
	cr_assert_eq(vb_load_options_decode(lone_low, sizeof(lone_low), out, sizeof(out)),
		     -EINVAL);
	cr_assert_eq(out[0], '\0');
}

Test(bootconf, decode_refuses_a_small_buffer)
{
	char out[16];
	static const char opts[] = "vhd=\\a.vhd";   /* 10 bytes */
	cr_assert_eq(vb_load_options_decode(opts, sizeof(opts), out, 11), 0);
	cr_assert_str_eq(out, opts);
	memset(out, 'x', sizeof(out));
	cr_assert_eq(vb_load_options_decode(opts, sizeof(opts), out, 10), -E2BIG);
	cr_assert_eq(out[0], '\0');
	cr_assert_eq(vb_load_options_decode(opts, sizeof(opts), out, 0), -E2BIG);
	cr_assert_eq(out[0], '\0', "outsz 0: nothing written");

	uint8_t u[64];
	size_t n = to_ucs2(opts, u, sizeof(u));
	cr_assert_eq(vb_load_options_decode(u, n, out, 11), 0);
	cr_assert_str_eq(out, opts);
	cr_assert_eq(vb_load_options_decode(u, n, out, 10), -E2BIG);
	cr_assert_eq(out[0], '\0');
}

Test(bootconf, decode_drops_the_loader_own_path)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "vhdboot.efi vhd=\\a.vhd", "vhd=\\a.vhd" },
		{ "  FS0:\\EFI\\VHDBOOT\\VHDBOOT.EFI   vhd=\\a.vhd timeout=0", "vhd=\\a.vhd timeout=0" },
		{ "\\EFI\\vhdboot\\vhdboot.Efi", "" },
		{ "\"fs0:\\my dir\\vhdboot.efi\" vhd=\\a.vhd", "vhd=\\a.vhd" },
		/* Our own keys are never argv[0], even when they end in .efi. */
		{ "program=\\EFI\\x\\grubx64.efi vhd=\\a.vhd", "program=\\EFI\\x\\grubx64.efi vhd=\\a.vhd" },
		{ "PROGRAM=\\x.efi", "PROGRAM=\\x.efi" },
		/* Only the first token, and only when it ends in .efi. */
		{ "vhd=\\a.vhd program=\\b.efi", "vhd=\\a.vhd program=\\b.efi" },
		{ "vhdboot vhd=\\a.vhd", "vhdboot vhd=\\a.vhd" },
		{ "efi vhd=\\a.vhd", "efi vhd=\\a.vhd" },
		{ "\"a.efi\"x vhd=\\a.vhd", "\"a.efi\"x vhd=\\a.vhd" },
	};
	char out[128];
	uint8_t u[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(vb_load_options_decode(cases[i].in, strlen(cases[i].in) + 1, out,
						    sizeof(out)), 0);
		cr_assert_str_eq(out, cases[i].out, "ASCII '%s'", cases[i].in);
		size_t n = to_ucs2(cases[i].in, u, sizeof(u));
		cr_assert_eq(vb_load_options_decode(u, n, out, sizeof(out)), 0);
		cr_assert_str_eq(out, cases[i].out, "UCS-2 '%s'", cases[i].in);
	}
}

/* ---- LoadOptions over a file -------------------------------------------- */

Test(bootconf, options_override_every_entry)
{
	parse_ok("vhd=\\a.vhd\ncmdline=quiet\ndefault=two\n[entry one]\n[entry two]\nwritable=yes\n");
	cr_assert_eq(vb_config_apply_options(&cfg, "  vhd=/other/b.vhd\thandoff=nbd "
						    "program=\"\\EFI\\my dir\\grubx64.efi\""), 0,
		     "%s", cfg.error);
	for (size_t i = 0; i < 2; i++) {
		cr_assert_str_eq(entry(i)->vhd, "\\other\\b.vhd");
		cr_assert_str_eq(entry(i)->program, "\\EFI\\my dir\\grubx64.efi");
		cr_assert_eq(entry(i)->handoff, VB_HANDOFF_NBD);
		cr_assert_str_eq(entry(i)->cmdline, "quiet");
	}
	cr_assert_not(entry(0)->writable);
	cr_assert(entry(1)->writable);
	cr_assert_eq(cfg.default_entry, 1);

	cr_assert_eq(vb_config_apply_options(&cfg, "writable=no program= default=1 timeout=-1"),
		     0, "%s", cfg.error);
	cr_assert_not(entry(1)->writable);
	cr_assert_str_eq(entry(0)->program, "");
	cr_assert_eq(cfg.default_entry, 0);
	cr_assert_eq(cfg.timeout, -1);
	cr_assert_eq(vb_config_finish(&cfg), 0);
}

Test(bootconf, options_alone_make_the_entry)
{
	vb_config_init(&cfg);
	cr_assert_eq(vb_config_apply_options(&cfg, ""), 0);
	cr_assert_eq(vb_config_apply_options(&cfg, "timeout=7"), 0);
	cr_assert_eq(cfg.n_entries, 0, "menu keys make no entry");
	cr_assert_eq(cfg.timeout, 7);
	cr_assert_eq(vb_config_apply_options(
			     &cfg, "vhd=PARTUUID=0fc63daf-8483-4772-8e79-3d69d8477de4:\\d.vhd"), 0);
	cr_assert_eq(cfg.n_entries, 1);
	cr_assert_str_eq(entry(0)->name, "");
	cr_assert(entry(0)->vhd_on_partuuid);
	cr_assert_eq(entry(0)->partuuid[0], 0xAF);
	cr_assert_eq(entry(0)->partuuid[15], 0xE4);
	cr_assert_eq(vb_config_finish(&cfg), 0);
}

Test(bootconf, options_cmdline_takes_the_rest_verbatim)
{
	vb_config_init(&cfg);
	cr_assert_eq(vb_config_apply_options(&cfg, "vhd=\\a.vhd cmdline=   root=/dev/sda2 "
						    "console=\"ttyS0\" writable=yes "),
		     0, "%s", cfg.error);
	cr_assert_str_eq(entry(0)->cmdline, "root=/dev/sda2 console=\"ttyS0\" writable=yes ");
	cr_assert_not(entry(0)->writable, "writable=yes was part of cmdline");
	cr_assert_eq(vb_config_apply_options(&cfg, "cmdline="), 0);
	cr_assert_str_eq(entry(0)->cmdline, "");
	cr_assert_eq(vb_config_apply_options(&cfg, "cmdline=\"quoted\""), 0);
	cr_assert_str_eq(entry(0)->cmdline, "\"quoted\"");
}

Test(bootconf, options_entry_picks_and_skips_the_menu)
{
	parse_ok("vhd=\\a.vhd\ntimeout=30\n[entry Debian]\n[entry Rescue mode]\n");
	cr_assert_eq(vb_config_apply_options(&cfg, "entry=\"rescue MODE\""), 0, "%s", cfg.error);
	cr_assert_eq(cfg.default_entry, 1);
	cr_assert_eq(cfg.timeout, 0);
	cr_assert_eq(vb_config_apply_options(&cfg, "default=1 timeout=4"), 0);
	cr_assert_eq(cfg.default_entry, 0);
	cr_assert_eq(cfg.timeout, 4);
	/* The last pick wins. */
	cr_assert_eq(vb_config_apply_options(&cfg, "default=2 default=Debian"), 0);
	cr_assert_eq(cfg.default_entry, 0);
}

Test(bootconf, options_errors)
{
	parse_ok("vhd=\\a.vhd\n[entry one]\n");
	apply_err("vhd=\\b.vhd bogus", "expected key=value, got 'bogus'");
	apply_err("colour=red", "unknown key 'colour'");
	apply_err("=x", "unknown key ''");
	apply_err("writable=perhaps", "writable= must be yes or no");
	apply_err("handoff=", "handoff= must be");
	apply_err("timeout=abc", "timeout= must be -1");
	apply_err("vhd=relative.vhd", "vhd= path must be absolute");
	apply_err("vhd=PARTUUID=nope:\\a.vhd", "8-4-4-4-12");
	apply_err("program=\"\\EFI\\x.efi", "program= has no closing quote");
	apply_err("program=\"\\EFI\\x.efi\"x", "text right after its closing quote");
	apply_err("program=\\EFI\\\"x.efi", "quote inside its value");
	apply_err("default=two", "default=two: no entry with that name");
	apply_err("entry=5", "entry=5: no entry with that number");
	apply_err("default=", "default= needs an entry name");
	apply_err("cmdline=a\x01", "control character");
	apply_err("cmdline=\xff", "invalid UTF-8");
	apply_err("cmdline=a\rb", "carriage return");

	static char big[VB_CMDLINE_MAX + 16];
	memcpy(big, "cmdline=", 8);
	memset(big + 8, 'c', VB_CMDLINE_MAX);
	big[8 + VB_CMDLINE_MAX] = '\0';
	apply_err(big, "cmdline= is longer than 2047 bytes");
	memcpy(big, "entry=", 6);
	memset(big + 6, 'n', VB_NAME_MAX);
	big[6 + VB_NAME_MAX] = '\0';
	apply_err(big, "entry= is longer than 63 bytes");
	/* NULL options: nothing to apply. */
	cr_assert_eq(vb_config_apply_options(&cfg, NULL), 0);
}

/* The recipe in docs/vhdboot.conf.5, end to end. */
Test(bootconf, efibootmgr_recipe_end_to_end)
{
	uint8_t u[256];
	char opts[256];
	size_t n = to_ucs2("vhd=\\vhd\\disk.vhd cmdline=root=/dev/sda2", u, sizeof(u));
	cr_assert_eq(vb_load_options_decode(u, n, opts, sizeof(opts)), 0);
	cr_assert_eq(vb_config_parse(&cfg, "", 0), 0);
	cr_assert_eq(vb_config_apply_options(&cfg, opts), 0, "%s", cfg.error);
	cr_assert_eq(vb_config_finish(&cfg), 0, "%s", cfg.error);
	cr_assert_eq(cfg.n_entries, 1);
	cr_assert_str_eq(entry(0)->vhd, "\\vhd\\disk.vhd");
	cr_assert_str_eq(entry(0)->cmdline, "root=/dev/sda2");
	cr_assert_str_eq(entry(0)->program, "");
}

/* The menu example of docs/vhdboot.conf.5, as printed there. */
Test(bootconf, man_page_menu_example)
{
	parse_ok("vhd=/vhd/debian.vhd\n"
		 "program=\\EFI\\debian\\shimx64.efi\n"
		 "cmdline=root=/dev/sda2 quiet\n"
		 "default=Debian\n"
		 "timeout=10\n"
		 "\n"
		 "[entry Debian]\n"
		 "\n"
		 "[entry Debian on the data disk]\n"
		 "vhd=PARTUUID=0fc63daf-8483-4772-8e79-3d69d8477de4:\\disks\\debian.vhd\n"
		 "\n"
		 "[entry Rescue]\n"
		 "cmdline=root=/dev/sda2 single\n"
		 "writable=yes\n");
	cr_assert_eq(cfg.n_entries, 3);
	cr_assert_eq(cfg.default_entry, 0);
	cr_assert_str_eq(entry(1)->name, "Debian on the data disk");
	cr_assert(entry(1)->vhd_on_partuuid);
	cr_assert_str_eq(entry(1)->vhd, "\\disks\\debian.vhd");
	cr_assert_str_eq(entry(1)->program, "\\EFI\\debian\\shimx64.efi");
	cr_assert_str_eq(entry(2)->cmdline, "root=/dev/sda2 single");
	cr_assert(entry(2)->writable);
	/* The man page's "entry=Rescue" boot entry over that file. */
	cr_assert_eq(vb_config_apply_options(&cfg, "entry=Rescue"), 0);
	cr_assert_eq(cfg.default_entry, 2);
	cr_assert_eq(cfg.timeout, 0);
	cr_assert_eq(vb_config_finish(&cfg), 0, "%s", cfg.error);
}
