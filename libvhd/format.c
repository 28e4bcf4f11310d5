/* SPDX-License-Identifier: MIT */
/*
 * A small snprintf for error messages.  The core must build freestanding
 * (UEFI), where no C library formatter exists.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

struct out {
	char *buf;
	size_t len;
	size_t pos;     /* characters produced, even past len */
};

static void put(struct out *o, char c)
{
	if (o->pos + 1 < o->len)
		o->buf[o->pos] = c;
	o->pos++;
}

static void put_num(struct out *o, unsigned long long v, unsigned base, bool upper,
		    bool negative, unsigned width, char pad)
{
	char tmp[24];
	unsigned n = 0;
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (negative && pad == '0') {
		put(o, '-');    /* "-0005": the sign goes before zero padding */
		width = width ? width - 1 : 0;
	} else if (negative) {
		tmp[n++] = '-';
	}
	for (unsigned i = n; i < width; i++)
		put(o, pad);
	while (n)
		put(o, tmp[--n]);
}

int vhd_vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
	struct out o = { buf, len, 0 };

	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			put(&o, *p);
			continue;
		}
		p++;
		char pad = ' ';
		unsigned width = 0, longs = 0;
		bool size_t_arg = false;
		if (*p == '0') {
			pad = '0';
			p++;
		}
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (unsigned)(*p++ - '0');
		while (*p == 'l') {
			longs++;
			p++;
		}
		if (*p == 'z') {
			size_t_arg = true;
			p++;
		}
		switch (*p) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			size_t sl = strlen(s);
			for (size_t i = sl; i < width; i++)
				put(&o, ' ');
			while (*s)
				put(&o, *s++);
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 'd':
		case 'i': {
			long long v = size_t_arg ? (long long)va_arg(ap, size_t)
				    : longs >= 2 ? va_arg(ap, long long)
				    : longs == 1 ? va_arg(ap, long) : va_arg(ap, int);
			unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v
						       : (unsigned long long)v;
			put_num(&o, mag, 10, false, v < 0, width, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			unsigned long long v = size_t_arg ? va_arg(ap, size_t)
					     : longs >= 2 ? va_arg(ap, unsigned long long)
					     : longs == 1 ? va_arg(ap, unsigned long)
					     : va_arg(ap, unsigned);
			put_num(&o, v, *p == 'u' ? 10 : 16, *p == 'X', false, width, pad);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		case '\0':
			p--;
			break;
		default:
			put(&o, '%');
			put(&o, *p);
			break;
		}
	}
	if (len)
		buf[o.pos < len ? o.pos : len - 1] = '\0';
	return (int)o.pos;
}

int vhd_format(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vhd_vformat(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

void vhd_set_error(struct vhd_error *err, int code, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	err->code = code;
	vhd_vformat(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

size_t vhd_strlcpy(char *dst, const char *src, size_t len)
{
	size_t n = strlen(src);
	if (len) {
		size_t c = n < len - 1 ? n : len - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

/*
 * VHD stores the UUID's bytes in the order they print (as libuuid and
 * qemu-img treat them), so the text is the bytes in order.
 */
void vhd_uuid_text(const uint8_t uuid[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[uuid[i] >> 4];
		out[o++] = hex[uuid[i] & 15];
	}
	out[o] = '\0';
}

/* The C library's strerror is not available freestanding. */
const char *vhd_strerror(int code)
{
	switch (code < 0 ? -code : code) {
	case ENOSPC:
		return "no space left on device";
	case EDQUOT:
		return "disk quota exceeded";
	case EIO:
		return "input/output error";
	case EROFS:
		return "read-only file system";
	case EACCES:
	case EPERM:
		return "permission denied";
	case ENOMEM:
		return "out of memory";
	case EFBIG:
		return "file too large";
	case ENOENT:
		return "not found";
	case EINVAL:
		return "invalid argument";
	case EBUSY:
		return "in use by another writer";
	case EISDIR:
		return "is a folder";
	case ENODEV:
		return "not a regular file";
	case ENOTDIR:
		return "a path component is not a folder";
	case ELOOP:
		return "too many levels of links or parents";
	case ENAMETOOLONG:
		return "name too long";
	case EOPNOTSUPP:
		return "operation not supported";
	}
	return "error";
}
