/* SPDX-License-Identifier: MIT */
/*
 * UTF-16 <-> UTF-8 (utf.c).  Pure C over byte buffers, with no other
 * libvhd dependency, so that vhd-handoff (static, no libvhd) and efiboot
 * can build utf.c in as it is.
 */
#ifndef VHD_UTF_H
#define VHD_UTF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* vhd_utf16_decode's `replacement` when a lone surrogate is an error. */
#define VHD_UTF16_STRICT 0u

/* Convert UTF-16 (big- or little-endian) to UTF-8; stops at a NUL unit and
 * ignores an odd last byte.  A lone surrogate becomes `replacement` (a code
 * point), or with VHD_UTF16_STRICT fails with -EINVAL.  Returns the length
 * written (always NUL-terminated), or -E2BIG when out (NUL included) is too
 * small; on failure out holds "" when out_len > 0. */
int vhd_utf16_decode(const uint8_t *in, size_t in_len, bool big_endian, uint32_t replacement,
		     char *out, size_t out_len);
/* vhd_utf16_decode, strict, with -EINVAL for malformed input or no room. */
int vhd_utf16_to_utf8(const uint8_t *in, size_t in_len, bool big_endian, char *out,
		      size_t out_len);
/* Is s[0..len) well-formed UTF-8 (no overlong forms or surrogates)? */
bool vhd_utf8_valid(const uint8_t *s, size_t len);
/* Convert UTF-8 to UTF-16; returns bytes written or -EINVAL. */
int vhd_utf8_to_utf16(const char *in, bool big_endian, uint8_t *out, size_t out_len);

#endif
