/* SPDX-License-Identifier: MIT */
/* UTF-16 <-> UTF-8 for parent names and locators. */
#include <errno.h>
#include <string.h>

#include "utf.h"

static bool emit(char *out, size_t out_len, size_t *o, uint32_t cp)
{
	uint8_t b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xC0 | (cp >> 6));
		b[1] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xE0 | (cp >> 12));
		b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xF0 | (cp >> 18));
		b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (*o + n >= out_len)
		return false;
	for (size_t i = 0; i < n; i++)
		out[(*o)++] = (char)b[i];
	return true;
}

static uint32_t unit_at(const uint8_t *p, bool big_endian)
{
	return big_endian ? (uint32_t)(p[0] << 8 | p[1]) : (uint32_t)(p[1] << 8 | p[0]);
}

int vhd_utf16_decode(const uint8_t *in, size_t in_len, bool big_endian, uint32_t replacement,
		     char *out, size_t out_len)
{
	size_t o = 0;
	int rc = -EINVAL;

	if (!out_len)
		return -E2BIG;
	for (size_t i = 0; i + 1 < in_len; i += 2) {
		uint32_t u = unit_at(in + i, big_endian);
		if (u == 0)
			break;
		if (u >= 0xD800 && u < 0xDC00 && i + 3 < in_len &&
		    unit_at(in + i + 2, big_endian) >= 0xDC00 &&
		    unit_at(in + i + 2, big_endian) < 0xE000) {
			u = 0x10000 + ((u - 0xD800) << 10) + (unit_at(in + i + 2, big_endian) - 0xDC00);
			i += 2;
		} else if (u >= 0xD800 && u < 0xE000) {
			if (replacement == VHD_UTF16_STRICT)
				goto bad;
			u = replacement;
		}
		if (!emit(out, out_len, &o, u)) {
			rc = -E2BIG;
			goto bad;
		}
	}
	out[o] = '\0';
	return (int)o;
bad:
	out[0] = '\0';
	return rc;
}

int vhd_utf16_to_utf8(const uint8_t *in, size_t in_len, bool big_endian, char *out,
		      size_t out_len)
{
	int n = vhd_utf16_decode(in, in_len, big_endian, VHD_UTF16_STRICT, out, out_len);
	return n == -E2BIG ? -EINVAL : n;
}

static bool put16(uint8_t *out, size_t out_len, size_t *o, uint32_t u, bool big_endian)
{
	if (*o + 2 > out_len)
		return false;
	out[*o + (big_endian ? 0 : 1)] = (uint8_t)(u >> 8);
	out[*o + (big_endian ? 1 : 0)] = (uint8_t)u;
	*o += 2;
	return true;
}

/*
 * Decode one UTF-8 sequence of at most len bytes at s: the code point, or
 * -1 for anything malformed (overlong forms, surrogates, past U+10FFFF,
 * truncated).  *used gets the sequence's length.
 */
static int32_t utf8_next(const uint8_t *s, size_t len, size_t *used)
{
	static const uint32_t min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
	uint32_t cp;
	unsigned extra;
	if (s[0] < 0x80) {
		cp = s[0];
		extra = 0;
	} else if ((s[0] & 0xE0) == 0xC0) {
		cp = s[0] & 0x1F;
		extra = 1;
	} else if ((s[0] & 0xF0) == 0xE0) {
		cp = s[0] & 0x0F;
		extra = 2;
	} else if ((s[0] & 0xF8) == 0xF0) {
		cp = s[0] & 0x07;
		extra = 3;
	} else {
		return -1;
	}
	if (extra >= len)
		return -1;
	for (unsigned k = 1; k <= extra; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[k] & 0x3F);
	}
	if (cp < min_cp[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
		return -1;
	*used = extra + 1;
	return (int32_t)cp;
}

bool vhd_utf8_valid(const uint8_t *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if (utf8_next(s + i, len - i, &n) < 0)
			return false;
	return true;
}

int vhd_utf8_to_utf16(const char *in, bool big_endian, uint8_t *out, size_t out_len)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t o = 0, left = strlen(in);

	while (left) {
		size_t used;
		int32_t c = utf8_next(s, left, &used);
		if (c < 0)
			return -EINVAL;
		uint32_t cp = (uint32_t)c;
		s += used;
		left -= used;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			if (!put16(out, out_len, &o, 0xD800 + (cp >> 10), big_endian) ||
			    !put16(out, out_len, &o, 0xDC00 + (cp & 0x3FF), big_endian))
				return -EINVAL;
		} else if (!put16(out, out_len, &o, cp, big_endian)) {
			return -EINVAL;
		}
	}
	return (int)o;
}
