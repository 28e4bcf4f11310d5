/* SPDX-License-Identifier: MIT */
/* One-line messages on the firmware console (OVMF mirrors it on serial). */
#include <stdarg.h>

#include "efi_glue.h"

static void say(const char *prefix, const char *fmt, va_list ap)
{
	char line[400];
	vhd_vformat(line, sizeof(line), fmt, ap);
	Print(L"vhdboot: %a%a\r\n", prefix, line);
}

void vb_say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say("", fmt, ap);
	va_end(ap);
}

void vb_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say("error: ", fmt, ap);
	va_end(ap);
}
