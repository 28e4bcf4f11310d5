/* SPDX-License-Identifier: MIT */
/* handoff/params.c: the vhd.* words of the kernel command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "handoff.h"

static struct ho_params p;
static char err[HO_ERR_MAX];

static void ok(const char *text)
{
	ho_params_free(&p);
	int r = ho_params_parse(&p, text, strlen(text), err, sizeof(err));
	cr_assert_eq(r, 0, "'%s': %d %s", text, r, err);
}

static void bad(const char *text, const char *what)
{
	ho_params_free(&p);
	int r = ho_params_parse(&p, text, strlen(text), err, sizeof(err));
	cr_assert_lt(r, 0, "'%s' should fail", text);
	cr_assert(strstr(err, what) != NULL, "'%s': message lacks '%s': %s", text, what, err);
	cr_assert_null(p.fext.v);
	cr_assert_null(p.dm.v);
}

static void teardown(void)
{
	ho_params_free(&p);
}

TestSuite(handoff_params, .fini = teardown);

Test(handoff_params, crc32_check_value)
{
	cr_assert_eq(ho_crc32(0, "123456789", 9), 0xCBF43926u);
	cr_assert_eq(ho_crc32(0, "", 0), 0u);
	/* Incremental equals one-shot. */
	cr_assert_eq(ho_crc32(ho_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

Test(handoff_params, guid_round_trip_and_byte_order)
{
	uint8_t g[16];
	char text[37];
	cr_assert_eq(ho_guid_parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", 36, g), 0);
	/* ESP type GUID in on-disk order. */
	static const uint8_t esp[16] = { 0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
					 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B };
	cr_assert_arr_eq(g, esp, 16);
	ho_guid_format(g, text);
	cr_assert_str_eq(text, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
	cr_assert_lt(ho_guid_parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93", 35, g), 0);
	cr_assert_lt(ho_guid_parse("c12a7328+f81f-11d2-ba4b-00a0c93ec93b", 36, g), 0);
	cr_assert_lt(ho_guid_parse("g12a7328-f81f-11d2-ba4b-00a0c93ec93b", 36, g), 0);
}

Test(handoff_params, full_linear_line)
{
	ok("BOOT_IMAGE=/vmlinuz root=/dev/mapper/vhdboot2 ro quiet vhd.handoff=linear "
	   "vhd.host=PARTUUID=11111111-2222-3333-4444-555555555555 vhd.path=/vhd/disk.vhd "
	   "vhd.size=1049088 vhd.fext=0:1024:2048,1024:1025:8192 vhd.dm=0:2048:2048\n");
	cr_assert_eq(p.handoff, HO_HANDOFF_LINEAR);
	cr_assert(p.has_host && p.has_path && p.has_size && p.has_fext && p.has_dm);
	char g[37];
	ho_guid_format(p.host_guid, g);
	cr_assert_str_eq(g, "11111111-2222-3333-4444-555555555555");
	cr_assert_str_eq(p.path, "/vhd/disk.vhd");
	cr_assert_eq(p.size, 1049088);
	cr_assert_eq(p.fext.n, 2);
	cr_assert_eq(p.fext.v[1].start, 1024);
	cr_assert_eq(p.fext.v[1].sectors, 1025);
	cr_assert_eq(p.fext.v[1].host, 8192);
	cr_assert_eq(p.dm.n, 1);
	cr_assert_not(p.fext_efivar);
}

Test(handoff_params, quotes_and_foreign_words)
{
	ok("vhd.handoff=nbd \"vhd.path=/my dir/a.vhd\" vhd.other=1 xvhd.path=/no vhd.size=\"512\"");
	cr_assert_eq(p.handoff, HO_HANDOFF_NBD);
	cr_assert_str_eq(p.path, "/my dir/a.vhd");
	cr_assert_eq(p.size, 512);
	cr_assert_not(p.has_host);
}

Test(handoff_params, nothing_of_ours)
{
	ok("root=/dev/sda1 ro");
	cr_assert_eq(p.handoff, HO_HANDOFF_NONE);
	ok("");
	cr_assert_eq(p.handoff, HO_HANDOFF_NONE);
}

Test(handoff_params, hostile_words)
{
	bad("vhd.handoff=kexec", "must be linear, ramdisk or nbd");
	bad("vhd.handoff=linear vhd.handoff=nbd", "given twice");
	bad("vhd.handoff", "has no value");
	bad("vhd.host=11111111-2222-3333-4444-555555555555", "PARTUUID=");
	bad("vhd.host=PARTUUID=11111111-2222-3333-4444-55555555555", "PARTUUID=");
	bad("vhd.path=disk.vhd", "absolute path");
	bad("vhd.path=/a/../etc/shadow", "absolute path");
	bad("vhd.path=/a//b", "absolute path");
	bad("vhd.path=/a/./b", "absolute path");
	bad("vhd.path=/a/", "absolute path");
	bad("vhd.path=\\a.vhd", "absolute path");
	bad("vhd.size=0", "positive decimal");
	bad("vhd.size=-1", "positive decimal");
	bad("vhd.size=18446744073709551616", "positive decimal");
	bad("vhd.size=12k", "positive decimal");
	bad("vhd.fext=", "empty extent list");
	bad("vhd.fext=0:1", "extent 1 is not");
	bad("vhd.fext=0:1:2,", "extent 2 is not");
	bad("vhd.fext=0:1:2:3", "junk after");
	bad("vhd.fext=0:0:2", "extent 1 is empty");
	bad("vhd.fext=18446744073709551615:2:0", "overflows");
	bad("vhd.dm=0:1:18446744073709551615", "overflows");
	bad("vhd.dm=0:+1:2", "extent 1 is not");
	bad("vhd.dm=0:1:2 vhd.dm=efivar", "given twice");
}

Test(handoff_params, too_many_extents)
{
	size_t n = HO_MAX_EXTENTS + 1;
	char *s = malloc(n * 6 + 16), *o = s;
	o += sprintf(o, "vhd.fext=");
	for (size_t i = 0; i < n; i++)
		o += sprintf(o, "%s1:1:1", i ? "," : "");
	bad(s, "more than 65536");
	free(s);
}

Test(handoff_params, efivar_lists)
{
	static const char var[] = "vhd.fext=0:8:100 vhd.dm=0:7:100\n";
	ok("vhd.handoff=linear vhd.fext=efivar vhd.dm=efivar");
	cr_assert(p.fext_efivar && p.dm_efivar);
	cr_assert_null(p.fext.v);
	cr_assert_eq(ho_params_merge_efivar(&p, (const uint8_t *)var, sizeof(var), err,
					    sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(p.fext.n, 1);
	cr_assert_eq(p.dm.v[0].sectors, 7);
}

static void efivar_bad(const char *line, const char *var, const char *what)
{
	ok(line);
	int r = ho_params_merge_efivar(&p, (const uint8_t *)var, strlen(var), err, sizeof(err));
	cr_assert_lt(r, 0, "'%s' should fail", var);
	cr_assert(strstr(err, what) != NULL, "message lacks '%s': %s", what, err);
	ho_params_free(&p);
}

Test(handoff_params, efivar_hostile)
{
	const char *line = "vhd.fext=efivar vhd.dm=efivar";
	efivar_bad(line, "vhd.fext=0:8:100", "lacks");
	efivar_bad(line, "vhd.fext=0:8:100 vhd.dm=0:8:100 vhd.path=/x", "may not set vhd.path");
	efivar_bad(line, "vhd.fext=0:8:100 vhd.fext=0:8:100 vhd.dm=0:8:100", "given twice");
	efivar_bad(line, "vhd.fext=efivar vhd.dm=0:8:100", "lacks");
	efivar_bad("vhd.fext=0:8:100 vhd.dm=efivar", "vhd.fext=0:8:100 vhd.dm=0:8:100",
		   "on the command line and in VhdbootHandoff");
	ok(line);
	static const uint8_t nul[] = "vhd.fext=0:8:100\0vhd.dm=0:8:100";
	cr_assert_lt(ho_params_merge_efivar(&p, nul, sizeof(nul) - 1, err, sizeof(err)), 0);
	cr_assert(strstr(err, "NUL") != NULL, "%s", err);
}

Test(handoff_params, path_display)
{
	char out[32];
	ho_path_display("/vhd/disk.vhd", out, sizeof(out));
	cr_assert_str_eq(out, "\\vhd\\disk.vhd");
	ho_path_display("/abcdefgh", out, 5);
	cr_assert_str_eq(out, "\\abc");
}
