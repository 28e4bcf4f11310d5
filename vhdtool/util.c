/* SPDX-License-Identifier: MIT */
/* Messages, sizes, JSON strings and progress for the commands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdtool.h"

void vt_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", vhdtool_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void vt_warn(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: warning: ", vhdtool_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void vt_print_warnings(struct vhd_image *img)
{
	for (struct vhd_image *i = img; i; i = vhd_parent(i)) {
		const char *w = vhd_warnings(i);
		while (*w) {
			const char *nl = strchr(w, '\n');
			int n = nl ? (int)(nl - w) : (int)strlen(w);
			fprintf(stderr, "%s: warning: %s: %.*s\n", vhdtool_prog, vhd_filename(i), n, w);
			w += n + (nl != NULL);
		}
	}
}

static const struct command *find(const char *name)
{
	for (const struct command *c = vhdtool_commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int vt_usage(const char *command)
{
	const struct command *c = find(command);
	if (c)
		fprintf(stderr, "usage: %s %s %s\nTry '%s %s --help'.\n", vhdtool_prog, c->name,
			c->usage, vhdtool_prog, c->name);
	return EXIT_FAIL;
}

void vt_command_help(const char *command)
{
	const struct command *c = find(command);
	if (c)
		printf("usage: %s %s %s\n\n%s\n", vhdtool_prog, c->name, c->usage, c->summary);
}

int vt_parse_size(const char *text, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*text || *text == '-')
		return -EINVAL;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case '\0':
		break;
	case 'b': case 'B':
		end++;
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		end++;
		if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
			end += strlen(end);
	}
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

void vt_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned u = 0;
	double v = (double)bytes;
	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
	else
		snprintf(buf, len, "%.3g %s", v, units[u]);
}

int vt_output_option(int c, const char *arg, bool *json)
{
	if (c == 'j') {
		*json = true;
		return 1;
	}
	if (c != 'o')
		return 0;
	if (strcmp(arg, "json") && strcmp(arg, "human"))
		return -1;
	*json = strcmp(arg, "json") == 0;
	return 1;
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/*
 * On a terminal the line is redrawn each 0.1%; elsewhere (a log) a line is
 * written each 10%, so -p never floods a file.
 */
void progress_init(struct progress *p, bool enabled, uint64_t total)
{
	p->enabled = enabled;
	p->tty = enabled && isatty(STDERR_FILENO);
	p->total = total ? total : 1;
	p->last = -1;
	progress_update(p, 0);
}

void progress_update(struct progress *p, uint64_t done)
{
	if (!p->enabled)
		return;
	int permille = (int)(done * 1000 / p->total);
	int step = p->tty ? permille : permille / 100 * 100;
	if (step == p->last)
		return;
	p->last = step;
	if (p->tty)
		fprintf(stderr, "\r    (%d.%d/100%%)", step / 10, step % 10);
	else
		fprintf(stderr, "    (%d/100%%)\n", step / 10);
	fflush(stderr);
}

void progress_done(struct progress *p)
{
	if (!p->enabled)
		return;
	progress_update(p, p->total);
	if (p->tty)
		fputc('\n', stderr);
}
