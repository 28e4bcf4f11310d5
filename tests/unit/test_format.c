/* SPDX-License-Identifier: MIT */
/* format.c: the freestanding snprintf subset, errors and strlcpy. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <criterion/criterion.h>

#include "helpers.h"

/* vhd_format must agree with the C library for the subset it supports. */
#define SAME(...)                                                                           \
	do {                                                                                \
		char a_[256], b_[256];                                                      \
		int na_ = vhd_format(a_, sizeof(a_), __VA_ARGS__);                          \
		int nb_ = snprintf(b_, sizeof(b_), __VA_ARGS__);                            \
		cr_assert_str_eq(a_, b_, "%s: '%s', printf gives '%s'", #__VA_ARGS__, a_, b_); \
		cr_assert_eq(na_, nb_, "length for %s", #__VA_ARGS__);                      \
	} while (0)

Test(format, strings_and_chars)
{
	SAME("plain text");
	SAME("%s", "");
	SAME("[%s]", "abc");
	SAME("[%5s]", "abc");
	SAME("[%2s]", "abcdef");
	SAME("%s/%s", "dir", "file.vhd");
	SAME("%c%c%c", 'v', 'h', 'd');
	SAME("100%%");
	SAME("%%d");
	char buf[32];
	const char *volatile nothing = NULL; /* hidden from the format checker */
	vhd_format(buf, sizeof(buf), "%s", nothing);
	cr_assert_str_eq(buf, "(null)");
}

Test(format, signed_integers)
{
	SAME("%d", 0);
	SAME("%d", 42);
	SAME("%d", -42);
	SAME("%d", INT_MAX);
	SAME("%d", INT_MIN);
	SAME("%i", -7);
	SAME("%ld", LONG_MIN);
	SAME("%ld", LONG_MAX);
	SAME("%lld", LLONG_MIN);
	SAME("%lld", LLONG_MAX);
	SAME("%lld", -1LL);
	SAME("%zd", (ssize_t)-5);
	SAME("[%5d]", 42);
	SAME("[%5d]", -42);
	SAME("[%05d]", 42);
	SAME("[%1d]", 12345);
	SAME("[%03lld]", 7LL);
}

/*
 * BUG: format.c put_num writes the padding before the sign, so a negative
 * number with zero padding comes out as "000-5" where printf (and every
 * reader) expects "-0005".  Only zero padding is affected: space padding
 * before the sign is right.
 */
Test(format, zero_padded_negative)
{
	SAME("[%05d]", -5);
	SAME("[%08lld]", -123LL);
}

Test(format, unsigned_and_hex)
{
	SAME("%u", 0u);
	SAME("%u", UINT_MAX);
	SAME("%lu", ULONG_MAX);
	SAME("%llu", 0ull);
	SAME("%llu", ULLONG_MAX);
	SAME("%llu", 2040ull << 30);
	SAME("%zu", (size_t)0);
	SAME("%zu", SIZE_MAX);
	SAME("%x", 0u);
	SAME("%x", 0xdeadbeefu);
	SAME("%X", 0xdeadbeefu);
	SAME("0x%08x", 0x1234u);
	SAME("0x%08x", 0xFFFFFFFFu);
	SAME("0x%016llx", 0x1ull);
	SAME("0x%llx", ULLONG_MAX);
	SAME("%zx", (size_t)0xabc);
	SAME("[%10u]", 1234u);
	SAME("[%010llu]", 99ull);
	SAME("%u %d %s %x", 1u, -2, "three", 4u);
	SAME("block %u (at offset 0x%llx) points to 0x%llx", 7u, 0x600ull, 0x20000000000ull);
}

Test(format, truncation_keeps_nul_and_returns_full_length)
{
	char buf[8];
	memset(buf, 'Z', sizeof(buf));
	cr_assert_eq(vhd_format(buf, 5, "hello world"), 11);
	cr_assert_str_eq(buf, "hell");
	cr_assert_eq(buf[5], 'Z', "nothing written past len");

	memset(buf, 'Z', sizeof(buf));
	cr_assert_eq(vhd_format(buf, 1, "abc%d", 12345), 8);
	cr_assert_eq(buf[0], '\0');
	cr_assert_eq(buf[1], 'Z');

	memset(buf, 'Z', sizeof(buf));
	cr_assert_eq(vhd_format(buf, 0, "abc"), 3);
	cr_assert_eq(buf[0], 'Z', "len 0 writes nothing");
	cr_assert_eq(vhd_format(NULL, 0, "%s=%llu", "size", 1ull << 40), 18);

	/* Exactly fits, and one short. */
	cr_assert_eq(vhd_format(buf, 8, "%07d", 1234567), 7);
	cr_assert_str_eq(buf, "1234567");
	cr_assert_eq(vhd_format(buf, 8, "%08x", 0xabcdu), 8);
	cr_assert_str_eq(buf, "0000abc");

	/* Truncation inside a number and inside a padded string. */
	cr_assert_eq(vhd_format(buf, 4, "%llu", 9876543210ull), 10);
	cr_assert_str_eq(buf, "987");
	cr_assert_eq(vhd_format(buf, 4, "%6s", "ab"), 6);
	cr_assert_str_eq(buf, "   ");

	/* The sizes match snprintf for every buffer length. */
	char ref[64];
	int want = snprintf(ref, sizeof(ref), "%s:%d:%08x:%llu", "field", -17, 0xbeefu, 12345678901ull);
	for (size_t len = 0; len < sizeof(ref); len++) {
		char a[64], b[64];
		memset(a, 'Q', sizeof(a));
		memset(b, 'Q', sizeof(b));
		int n = vhd_format(a, len, "%s:%d:%08x:%llu", "field", -17, 0xbeefu, 12345678901ull);
		snprintf(b, len, "%s:%d:%08x:%llu", "field", -17, 0xbeefu, 12345678901ull);
		cr_assert_eq(n, want);
		cr_assert_eq(memcmp(a, b, sizeof(a)), 0, "len %zu: '%.64s' vs '%.64s'", len, a, b);
	}
}

static int vformat_wrapper(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vhd_vformat(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

Test(format, odd_format_strings_do_not_crash)
{
	char buf[32];
	/* A trailing '%' ends the output. */
	cr_assert_eq(vformat_wrapper(buf, sizeof(buf), "abc%"), 3);
	cr_assert_str_eq(buf, "abc");
	/* An unknown conversion is copied as text. */
	cr_assert_eq(vformat_wrapper(buf, sizeof(buf), "a%qb"), 4);
	cr_assert_str_eq(buf, "a%qb");
	cr_assert_eq(vformat_wrapper(buf, sizeof(buf), ""), 0);
	cr_assert_str_eq(buf, "");
}

Test(format, set_error_fills_code_and_message)
{
	struct vhd_error err = { 0 };
	vhd_set_error(&err, -22, "size %llu is not a multiple of %u", 1000ull, 512u);
	cr_assert_eq(err.code, -22);
	cr_assert_str_eq(err.message, "size 1000 is not a multiple of 512");
	vhd_set_error(NULL, -1, "ignored %d", 1);

	/* A long message is cut to the buffer and NUL-terminated. */
	char big[2000];
	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vhd_set_error(&err, -5, "%s", big);
	cr_assert_eq(strlen(err.message), sizeof(err.message) - 1);
}

Test(format, strlcpy_truncates_and_returns_source_length)
{
	char buf[6];
	cr_assert_eq(vhd_strlcpy(buf, "abc", sizeof(buf)), 3u);
	cr_assert_str_eq(buf, "abc");
	cr_assert_eq(vhd_strlcpy(buf, "abcdefgh", sizeof(buf)), 8u);
	cr_assert_str_eq(buf, "abcde");
	cr_assert_eq(vhd_strlcpy(buf, "", sizeof(buf)), 0u);
	cr_assert_str_eq(buf, "");
	buf[0] = 'X';
	cr_assert_eq(vhd_strlcpy(buf, "abc", 0), 3u);
	cr_assert_eq(buf[0], 'X');
}

Test(format, uuid_text_and_timestamps)
{
	const uint8_t u[16] = { 0x5f, 0xa2, 0x1a, 0x55, 0xf3, 0x94, 0xaa, 0x4d,
				0x99, 0x58, 0x19, 0x51, 0xa6, 0x7d, 0x55, 0x40 };
	char text[37];
	vhd_uuid_text(u, text);
	cr_assert_str_eq(text, "5fa21a55-f394-aa4d-9958-1951a67d5540");
	cr_assert_eq(vhd_timestamp_to_unix(0), 946684800);
	cr_assert_eq(vhd_timestamp_to_unix(UINT32_MAX), 946684800ll + UINT32_MAX);
}

Test(format, strerror_texts)
{
	cr_assert_str_eq(vhd_strerror(-ENOSPC), "no space left on device");
	cr_assert_str_eq(vhd_strerror(ENOSPC), "no space left on device");
	cr_assert_str_eq(vhd_strerror(-EIO), "input/output error");
	cr_assert_str_eq(vhd_strerror(-ENOENT), "not found");
	cr_assert_str_eq(vhd_strerror(-EROFS), "read-only file system");
	cr_assert_str_eq(vhd_strerror(-EPERM), vhd_strerror(-EACCES));
	cr_assert_str_eq(vhd_strerror(0), "error");
	cr_assert_str_eq(vhd_strerror(-99999), "error");
	cr_assert_str_eq(vhd_strerror(INT_MIN + 1), "error");
}
