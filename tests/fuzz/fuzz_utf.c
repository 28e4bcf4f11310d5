/* SPDX-License-Identifier: MIT */
/*
 * UTF-16 <-> UTF-8.  The first input byte picks the byte order and a small
 * output buffer size; the rest is the text.  Each direction is compared
 * with a reference conversion written here, and text that converts must
 * convert back to the same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t unit(const uint8_t *p, bool be)
{
	return be ? (uint32_t)(p[0] << 8 | p[1]) : (uint32_t)(p[1] << 8 | p[0]);
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xC0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xE0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (uint8_t)(0xF0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

/*
 * Reference UTF-16 -> UTF-8: stops at a NUL unit or the last whole unit.
 * Returns the UTF-8 length (-1 when malformed); *used = bytes of input.
 */
static long ref16to8(const uint8_t *in, size_t len, bool be, uint8_t *out, size_t *used)
{
	size_t n = len / 2, o = 0, k;
	for (k = 0; k < n; k++) {
		uint32_t u = unit(in + 2 * k, be);
		if (u == 0)
			break;
		if (u >= 0xD800 && u < 0xDC00) {
			if (k + 1 >= n)
				return -1;
			uint32_t lo = unit(in + 2 * k + 2, be);
			if (lo < 0xDC00 || lo >= 0xE000)
				return -1;
			u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
			k++;
		} else if (u >= 0xDC00 && u < 0xE000) {
			return -1;
		}
		o += put_utf8(out + o, u);
	}
	*used = 2 * k;
	return (long)o;
}

/* Strict UTF-8 -> UTF-16 (no overlongs, no surrogates); -1 when invalid. */
static long ref8to16(const uint8_t *s, size_t len, bool be, uint8_t *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		uint32_t cp, min;
		size_t extra;
		uint8_t c = s[i];
		if (c < 0x80)
			cp = c, extra = 0, min = 0;
		else if (c >= 0xC2 && c <= 0xDF)
			cp = c & 0x1F, extra = 1, min = 0x80;
		else if ((c & 0xF0) == 0xE0)
			cp = c & 0x0F, extra = 2, min = 0x800;
		else if (c >= 0xF0 && c <= 0xF4)
			cp = c & 0x07, extra = 3, min = 0x10000;
		else
			return -1;
		if (len - i - 1 < extra)
			return -1;
		for (size_t k = 1; k <= extra; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return -1;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
			return -1;
		i += 1 + extra;
		uint32_t units[2];
		size_t nu = 1;
		if (cp >= 0x10000) {
			units[0] = 0xD800 + ((cp - 0x10000) >> 10);
			units[1] = 0xDC00 + ((cp - 0x10000) & 0x3FF);
			nu = 2;
		} else {
			units[0] = cp;
		}
		for (size_t k = 0; k < nu; k++) {
			out[o + (be ? 0 : 1)] = (uint8_t)(units[k] >> 8);
			out[o + (be ? 1 : 0)] = (uint8_t)units[k];
			o += 2;
		}
	}
	return (long)o;
}

static void utf16_direction(const uint8_t *text, size_t len, bool be, size_t small)
{
	uint8_t *in = malloc(len ? len : 1);
	size_t units = len / 2;
	size_t full = 3 * units + 1;
	char *out = malloc(full);
	uint8_t *ref = malloc(full);
	if (!in || !out || !ref)
		abort();
	if (len)
		memcpy(in, text, len);

	size_t used = 0;
	long want = ref16to8(in, len, be, ref, &used);
	int r = vhd_utf16_to_utf8(in, len, be, out, full);
	if (want < 0) {
		FZ_CHECK(r == -EINVAL && out[0] == '\0');
	} else {
		FZ_CHECK(r == want);
		FZ_CHECK(out[r] == '\0' && memcmp(out, ref, (size_t)r) == 0);
		/* ... and back, to the same units. */
		uint8_t *back = malloc(used ? used : 1);
		if (!back)
			abort();
		int b = vhd_utf8_to_utf16(out, be, back, used);
		FZ_CHECK(b == (int)used && memcmp(back, in, used) == 0);
		if (used) {
			/* One byte short of room fails cleanly. */
			FZ_CHECK(vhd_utf8_to_utf16(out, be, back, used - 1) == -EINVAL);
		}
		free(back);
	}

	/* A small buffer: the whole answer or a clean refusal. */
	char *tiny = malloc(small);
	if (!tiny)
		abort();
	memset(tiny, 'x', small);
	r = vhd_utf16_to_utf8(in, len, be, tiny, small);
	if (small == 0) {
		FZ_CHECK(r == -EINVAL);
	} else if (want >= 0 && (size_t)want < small) {
		FZ_CHECK(r == want && tiny[r] == '\0' && memcmp(tiny, ref, (size_t)r) == 0);
	} else {
		FZ_CHECK(r == -EINVAL && tiny[0] == '\0');
	}
	free(tiny);
	free(in);
	free(out);
	free(ref);
}

static void utf8_direction(const uint8_t *text, size_t len, bool be, size_t small)
{
	char *s = malloc(len + 1);
	if (!s)
		abort();
	if (len)
		memcpy(s, text, len);
	s[len] = '\0';
	size_t slen = strlen(s);
	size_t full = 2 * slen;
	uint8_t *out = malloc(full ? full : 1);
	uint8_t *ref = malloc(full ? full : 1);
	if (!out || !ref)
		abort();

	long want = ref8to16((const uint8_t *)s, slen, be, ref);
	int r = vhd_utf8_to_utf16(s, be, out, full);
	FZ_CHECK(r == -EINVAL || (r >= 0 && (size_t)r <= full && r % 2 == 0));
	if (want >= 0) {
		/* Valid UTF-8 converts exactly, and back to the same text. */
		FZ_CHECK(r == want && memcmp(out, ref, (size_t)r) == 0);
		char *back = malloc(slen + 1);
		if (!back)
			abort();
		int b = vhd_utf16_to_utf8(out, (size_t)r, be, back, slen + 1);
		FZ_CHECK(b == (int)slen && memcmp(back, s, slen + 1) == 0);
		/* No room for the terminator: refused. */
		if (slen)
			FZ_CHECK(vhd_utf16_to_utf8(out, (size_t)r, be, back, slen) == -EINVAL);
		free(back);
	} else if (r >= 0) {
		/* Accepted although not strict UTF-8 (an overlong form): the
		 * result must still be well-formed UTF-16 of no more room. */
		char *back = malloc(2 * (size_t)r + 1);
		if (!back)
			abort();
		int b = vhd_utf16_to_utf8(out, (size_t)r, be, back, 2 * (size_t)r + 1);
		FZ_CHECK(b >= 0);
		free(back);
	}

	uint8_t *tiny = malloc(small ? small : 1);
	if (!tiny)
		abort();
	r = vhd_utf8_to_utf16(s, be, tiny, small);
	FZ_CHECK(r == -EINVAL || (r >= 0 && (size_t)r <= small));
	if (want >= 0 && (size_t)want <= small)
		FZ_CHECK(r == want && memcmp(tiny, ref, (size_t)r) == 0);
	free(tiny);
	free(out);
	free(ref);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	bool be = data[0] & 1;
	size_t small = (data[0] >> 1) % 24;
	const uint8_t *text = data + 1;
	size_t len = size - 1;

	utf16_direction(text, len, be, small);
	utf16_direction(text, len, !be, small + 3);
	utf8_direction(text, len, be, small);
	/* An odd start: the units straddle the bytes differently. */
	if (len > 1)
		utf16_direction(text + 1, len - 1, be, small);
	return 0;
}
