/* SPDX-License-Identifier: MIT */
/* utf.c: UTF-16 (both byte orders) <-> UTF-8. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"

static void round_trip(const char *s, bool be)
{
	uint8_t u16[1024];
	char back[1024];
	int n = vhd_utf8_to_utf16(s, be, u16, sizeof(u16));
	cr_assert(n >= 0, "encode '%s': %d", s, n);
	cr_assert_eq(n % 2, 0);
	int m = vhd_utf16_to_utf8(u16, (size_t)n, be, back, sizeof(back));
	cr_assert_eq(m, (int)strlen(s), "decode length");
	cr_assert_str_eq(back, s);
}

Test(utf, round_trips_both_byte_orders)
{
	const char *samples[] = {
		"",
		"parent.vhd",
		".\\dir with space\\p.vhd",
		"caf\xc3\xa9",                    /* U+00E9: 2 bytes */
		"\xe6\x97\xa5\xe6\x9c\xac.vhd",   /* U+65E5 U+672C: 3 bytes */
		"\xf0\x9f\x92\xbe disk",          /* U+1F4BE: 4 bytes, a surrogate pair */
		"\xf4\x8f\xbf\xbf",               /* U+10FFFF, the last code point */
		"\xef\xbf\xbf\xee\x80\x80",       /* U+FFFF and U+E000 (just past surrogates) */
		"\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80", /* boundaries of 1, 2, 3-byte forms */
	};
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		round_trip(samples[i], true);
		round_trip(samples[i], false);
	}
}

Test(utf, byte_order_of_encoding)
{
	uint8_t out[8];
	cr_assert_eq(vhd_utf8_to_utf16("A\xc3\xa9", true, out, sizeof(out)), 4);
	cr_assert(out[0] == 0x00 && out[1] == 0x41 && out[2] == 0x00 && out[3] == 0xE9);
	cr_assert_eq(vhd_utf8_to_utf16("A\xc3\xa9", false, out, sizeof(out)), 4);
	cr_assert(out[0] == 0x41 && out[1] == 0x00 && out[2] == 0xE9 && out[3] == 0x00);
}

Test(utf, surrogate_pairs)
{
	/* U+1F600 = D83D DE00 */
	uint8_t out[8];
	cr_assert_eq(vhd_utf8_to_utf16("\xf0\x9f\x98\x80", true, out, sizeof(out)), 4);
	cr_assert(out[0] == 0xD8 && out[1] == 0x3D && out[2] == 0xDE && out[3] == 0x00);
	cr_assert_eq(vhd_utf8_to_utf16("\xf0\x9f\x98\x80", false, out, sizeof(out)), 4);
	cr_assert(out[0] == 0x3D && out[1] == 0xD8 && out[2] == 0x00 && out[3] == 0xDE);

	char s[16];
	const uint8_t be[] = { 0xD8, 0x3D, 0xDE, 0x00, 0x00, 'x' };
	cr_assert_eq(vhd_utf16_to_utf8(be, sizeof(be), true, s, sizeof(s)), 5);
	cr_assert_str_eq(s, "\xf0\x9f\x98\x80x");
	/* U+10000 = D800 DC00, U+10FFFF = DBFF DFFF */
	const uint8_t lo[] = { 0xD8, 0x00, 0xDC, 0x00, 0xDB, 0xFF, 0xDF, 0xFF };
	cr_assert_eq(vhd_utf16_to_utf8(lo, sizeof(lo), true, s, sizeof(s)), 8);
	cr_assert_str_eq(s, "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
}

Test(utf, lone_surrogates_rejected)
{
	char s[16];
	/* high surrogate at the end */
	const uint8_t a[] = { 0, 'a', 0xD8, 0x00 };
	/* high surrogate followed by a non-surrogate */
	const uint8_t b[] = { 0xD8, 0x00, 0x00, 'a' };
	/* low surrogate alone */
	const uint8_t c[] = { 0xDC, 0x00, 0x00, 'a' };
	/* two high surrogates */
	const uint8_t d[] = { 0xD8, 0x00, 0xD8, 0x00 };
	/* high surrogate, then a half code unit */
	const uint8_t e[] = { 0xD8, 0x00, 0xDC };
	const uint8_t *in[] = { a, b, c, d, e };
	size_t len[] = { sizeof(a), sizeof(b), sizeof(c), sizeof(d), sizeof(e) };
	for (size_t i = 0; i < 5; i++) {
		memset(s, 'Z', sizeof(s));
		cr_assert_eq(vhd_utf16_to_utf8(in[i], len[i], true, s, sizeof(s)), -EINVAL, "case %zu", i);
		cr_assert_eq(s[0], '\0', "output emptied on error");
	}
	/* The same in little-endian order. */
	const uint8_t le[] = { 0x00, 0xDC, 'a', 0x00 };
	cr_assert_eq(vhd_utf16_to_utf8(le, sizeof(le), false, s, sizeof(s)), -EINVAL);

	/* UTF-8 encodings of surrogates (CESU style) are not UTF-8. */
	uint8_t out[16];
	cr_assert_eq(vhd_utf8_to_utf16("\xed\xa0\x80", true, out, sizeof(out)), -EINVAL);
	cr_assert_eq(vhd_utf8_to_utf16("\xed\xbf\xbf", false, out, sizeof(out)), -EINVAL);
}

Test(utf, malformed_utf8_rejected)
{
	uint8_t out[64];
	const char *bad[] = {
		"\x80",             /* continuation byte first */
		"a\xc3",            /* truncated 2-byte */
		"\xe6\x97",         /* truncated 3-byte */
		"\xf0\x9f\x98",     /* truncated 4-byte */
		"\xc3x",            /* bad continuation */
		"\xf8\x88\x80\x80\x80", /* 5-byte form */
		"\xff",
		"\xf4\x90\x80\x80", /* U+110000 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(vhd_utf8_to_utf16(bad[i], true, out, sizeof(out)), -EINVAL, "case %zu", i);
}

/*
 * BUG: utf.c vhd_utf8_to_utf16 decodes overlong forms: "\xC0\xAF" becomes
 * '/', "\xE0\x80\xAE" becomes '.', and "\xC0\x80" becomes an embedded
 * U+0000 in the UTF-16 output.  RFC 3629 forbids decoding them (a path
 * check on the UTF-8 text can be bypassed); they must give -EINVAL.
 */
Test(utf, overlong_utf8_rejected)
{
	uint8_t out[64];
	cr_expect_eq(vhd_utf8_to_utf16("\xc0\xaf", true, out, sizeof(out)), -EINVAL);
	cr_expect_eq(vhd_utf8_to_utf16("\xe0\x80\xae", true, out, sizeof(out)), -EINVAL);
	cr_expect_eq(vhd_utf8_to_utf16("a\xc0\x80" "b", true, out, sizeof(out)), -EINVAL);
	cr_expect_eq(vhd_utf8_to_utf16("\xf0\x80\x80\xaf", true, out, sizeof(out)), -EINVAL);
}

Test(utf, output_too_small_rejected)
{
	/* utf16 -> utf8 needs room for the NUL */
	const uint8_t in[] = { 0, 'a', 0, 'b', 0, 'c' };
	char s[4];
	cr_assert_eq(vhd_utf16_to_utf8(in, sizeof(in), true, s, 4), 3);
	cr_assert_str_eq(s, "abc");
	cr_assert_eq(vhd_utf16_to_utf8(in, sizeof(in), true, s, 3), -EINVAL);
	cr_assert_eq(s[0], '\0');
	cr_assert_eq(vhd_utf16_to_utf8(in, sizeof(in), true, s, 1), -EINVAL);
	cr_assert_eq(vhd_utf16_to_utf8(in, sizeof(in), true, s, 0), -EINVAL);
	/* A multi-byte character that would straddle the end. */
	const uint8_t e9[] = { 0, 'a', 0x00, 0xE9 };
	cr_assert_eq(vhd_utf16_to_utf8(e9, sizeof(e9), true, s, 3), -EINVAL);
	cr_assert_eq(vhd_utf16_to_utf8(e9, sizeof(e9), true, s, 4), 3);

	/* utf8 -> utf16: no NUL is written, exactly the bytes fit */
	uint8_t out[6];
	cr_assert_eq(vhd_utf8_to_utf16("abc", true, out, 6), 6);
	cr_assert_eq(vhd_utf8_to_utf16("abcd", true, out, 6), -EINVAL);
	cr_assert_eq(vhd_utf8_to_utf16("\xf0\x9f\x98\x80", true, out, 2), -EINVAL, "half a pair");
	cr_assert_eq(vhd_utf8_to_utf16("\xf0\x9f\x98\x80", true, out, 4), 4);
	cr_assert_eq(vhd_utf8_to_utf16("", true, out, 0), 0);
	cr_assert_eq(vhd_utf8_to_utf16("a", true, out, 0), -EINVAL);

	/* A parent name fills at most 512 bytes: 256 UTF-16 units. */
	char name[300];
	memset(name, 'n', 256);
	name[256] = '\0';
	uint8_t pn[512];
	cr_assert_eq(vhd_utf8_to_utf16(name, true, pn, sizeof(pn)), 512);
	name[256] = 'n';
	name[257] = '\0';
	cr_assert_eq(vhd_utf8_to_utf16(name, true, pn, sizeof(pn)), -EINVAL);
}

Test(utf, embedded_nul_stops)
{
	const uint8_t in[] = { 0, 'a', 0, 'b', 0, 0, 0, 'c', 0xDC, 0x00 };
	char s[16];
	cr_assert_eq(vhd_utf16_to_utf8(in, sizeof(in), true, s, sizeof(s)), 2);
	cr_assert_str_eq(s, "ab");
	const uint8_t nul_first[] = { 0, 0, 0, 'x' };
	cr_assert_eq(vhd_utf16_to_utf8(nul_first, sizeof(nul_first), true, s, sizeof(s)), 0);
	cr_assert_str_eq(s, "");
	/* An odd trailing byte is ignored, not read as half a unit. */
	const uint8_t odd[] = { 0, 'a', 0 };
	cr_assert_eq(vhd_utf16_to_utf8(odd, sizeof(odd), true, s, sizeof(s)), 1);
	cr_assert_str_eq(s, "a");
	/* Empty input. */
	cr_assert_eq(vhd_utf16_to_utf8(in, 0, true, s, sizeof(s)), 0);
	cr_assert_str_eq(s, "");
}

Test(utf, every_bmp_code_point_round_trips)
{
	uint8_t u16[2], back16[8];
	char u8[8];
	for (uint32_t cp = 1; cp < 0x10000; cp++) {
		if (cp >= 0xD800 && cp < 0xE000)
			continue;
		u16[0] = (uint8_t)(cp >> 8);
		u16[1] = (uint8_t)cp;
		int n = vhd_utf16_to_utf8(u16, 2, true, u8, sizeof(u8));
		cr_assert(n >= 1 && n <= 3, "U+%04X", cp);
		int m = vhd_utf8_to_utf16(u8, true, back16, sizeof(back16));
		cr_assert_eq(m, 2, "U+%04X", cp);
		cr_assert(back16[0] == u16[0] && back16[1] == u16[1], "U+%04X", cp);
	}
}
