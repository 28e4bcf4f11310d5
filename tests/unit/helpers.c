/* SPDX-License-Identifier: MIT */
/* Shared helpers for the libvhd unit tests (see helpers.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

uint64_t t_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void t_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t st = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = t_rand(&st) | 0x0101010101010101ull; /* no zero bytes */
		size_t n = len - i < 8 ? len - i : 8;
		memcpy(p + i, &v, n);
	}
}

bool t_all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static struct vhd_image *create_on(struct vhd_io *io, enum vhd_type type, uint64_t size,
				   uint32_t block_size)
{
	struct vhd_image *img = NULL;
	struct vhd_error err = { 0 };
	struct vhd_create_params p = { .type = type, .size = size, .block_size = block_size };
	int r = vhd_create_io(io, &p, NULL, &img, &err);
	cr_assert_eq(r, 0, "create type %d size %llu block %u: %d %s", (int)type,
		     (unsigned long long)size, block_size, r, err.message);
	cr_assert_not_null(img);
	return img;
}

struct vhd_image *t_create_mem(enum vhd_type type, uint64_t size, uint32_t block_size)
{
	struct vhd_io *io;
	cr_assert_eq(vhd_io_mem_open(NULL, 0, &io), 0);
	return create_on(io, type, size, block_size);
}

struct vhd_image *t_create_mem_keep(enum vhd_type type, uint64_t size, uint32_t block_size,
				    struct vhd_io **keep)
{
	cr_assert_eq(vhd_io_mem_open(NULL, 0, keep), 0);
	return create_on(t_wrap_io(*keep, NULL, false), type, size, block_size);
}

uint8_t *t_mem_copy(struct vhd_io *mem, size_t *len)
{
	size_t n;
	const uint8_t *d = vhd_io_mem_data(mem, &n);
	uint8_t *copy = malloc(n ? n : 1);
	cr_assert_not_null(copy);
	if (n)
		memcpy(copy, d, n);
	*len = n;
	return copy;
}

/* The memory backend under img's backend (through one wrapper at most). */
static struct vhd_io *mem_of(struct vhd_image *img);

const uint8_t *t_mem_data(struct vhd_image *img, size_t *len)
{
	return vhd_io_mem_data(mem_of(img), len);
}

uint8_t *t_image_bytes(struct vhd_image *img, size_t *len)
{
	if (!img->read_only)
		cr_assert_eq(vhd_flush(img), 0, "flush: %s", vhd_errmsg(img));
	return t_mem_copy(mem_of(img), len);
}

uint8_t *t_close_bytes(struct vhd_image *img, struct vhd_io *keep, size_t *len)
{
	int r = vhd_close(img);
	cr_assert_eq(r, 0, "close: %d", r);
	uint8_t *b = t_mem_copy(keep, len);
	vhd_io_close(keep);
	return b;
}

uint8_t *t_create_bytes(enum vhd_type type, uint64_t size, uint32_t block_size, size_t *len)
{
	struct vhd_io *keep;
	struct vhd_image *img = t_create_mem_keep(type, size, block_size, &keep);
	return t_close_bytes(img, keep, len);
}

int t_open_bytes(const uint8_t *data, size_t len, unsigned flags, struct vhd_image **out,
		 struct vhd_error *err)
{
	struct vhd_io *io;
	cr_assert_eq(vhd_io_mem_open(data, len, &io), 0);
	return vhd_open_io(io, flags, out, err);
}

int t_open_bytes_keep(const uint8_t *data, size_t len, unsigned flags, struct vhd_image **out,
		      struct vhd_error *err, struct vhd_io **keep)
{
	cr_assert_eq(vhd_io_mem_open(data, len, keep), 0);
	return vhd_open_io(t_wrap_io(*keep, NULL, false), flags, out, err);
}

int t_check_bytes(const uint8_t *data, size_t len, struct vhd_check_report *rep)
{
	struct vhd_io *io;
	cr_assert_eq(vhd_io_mem_open(data, len, &io), 0);
	int r = vhd_check_io(io, false, rep);
	vhd_io_close(io);
	return r;
}

const char *t_report_text(const struct vhd_check_report *rep)
{
	static char text[4096];
	size_t o = 0;
	text[0] = '\0';
	for (size_t i = 0; i < rep->count && o < sizeof(text); i++) {
		const struct vhd_finding *f = &rep->findings[i];
		int n = snprintf(text + o, sizeof(text) - o, "[%d %s.%s@%llu: %s] ", (int)f->kind,
				 f->structure, f->field, (unsigned long long)f->offset, f->message);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	return text;
}

void t_fix_footer(uint8_t *footer)
{
	vhd_put_be32(footer + T_F_CHECKSUM, vhd_checksum(footer, VHD_FOOTER_SIZE, T_F_CHECKSUM));
}

void t_fix_header(uint8_t *header)
{
	vhd_put_be32(header + T_H_CHECKSUM, vhd_checksum(header, VHD_HEADER_SIZE, T_H_CHECKSUM));
}

static void patch_footers(uint8_t *file, size_t len, size_t field, uint64_t v, int bytes)
{
	uint8_t *footers[2] = { file + len - VHD_FOOTER_SIZE, NULL };
	if (len >= 2 * VHD_FOOTER_SIZE && memcmp(file, "conectix", 8) == 0)
		footers[1] = file;
	for (int i = 0; i < 2; i++) {
		if (!footers[i])
			continue;
		if (bytes == 8)
			vhd_put_be64(footers[i] + field, v);
		else
			vhd_put_be32(footers[i] + field, (uint32_t)v);
		t_fix_footer(footers[i]);
	}
}

void t_patch_footers_be64(uint8_t *file, size_t len, size_t field, uint64_t v)
{
	patch_footers(file, len, field, v, 8);
}

void t_patch_footers_be32(uint8_t *file, size_t len, size_t field, uint32_t v)
{
	patch_footers(file, len, field, v, 4);
}

/* ---- a pass-through backend ----------------------------------------- */

struct wrap_io {
	struct vhd_io base;
	struct vhd_io *inner;
	char *dir;
	bool own_inner;
};

static const struct vhd_io_ops wrap_ops;

static struct vhd_io *wrap_inner(struct vhd_io *io)
{
	return ((struct wrap_io *)io)->inner;
}

static struct vhd_io *mem_of(struct vhd_image *img)
{
	return img->io->ops == &wrap_ops ? wrap_inner(img->io) : img->io;
}

static int wrap_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	return wrap_inner(io)->ops->pread(wrap_inner(io), buf, len, off);
}

static int wrap_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	return wrap_inner(io)->ops->pwrite(wrap_inner(io), buf, len, off);
}

static int wrap_flush(struct vhd_io *io)
{
	return wrap_inner(io)->ops->flush(wrap_inner(io));
}

static int wrap_size(struct vhd_io *io, uint64_t *size)
{
	return wrap_inner(io)->ops->size(wrap_inner(io), size);
}

static int wrap_truncate(struct vhd_io *io, uint64_t size)
{
	return wrap_inner(io)->ops->truncate(wrap_inner(io), size);
}

static int wrap_discard(struct vhd_io *io, uint64_t off, uint64_t len)
{
	struct vhd_io *in = wrap_inner(io);
	return in->ops->discard ? in->ops->discard(in, off, len) : -EOPNOTSUPP;
}

static int wrap_data_extent(struct vhd_io *io, uint64_t off, uint64_t *len, bool *is_data)
{
	struct vhd_io *in = wrap_inner(io);
	return in->ops->data_extent ? in->ops->data_extent(in, off, len, is_data) : -EOPNOTSUPP;
}

static int wrap_open_sibling(struct vhd_io *io, const char *path, struct vhd_io **out)
{
	struct wrap_io *w = (struct wrap_io *)io;
	char full[4096];
	if (!w->dir)
		return -ENOENT;
	if (path[0] == '/')
		snprintf(full, sizeof(full), "%s", path);
	else
		snprintf(full, sizeof(full), "%s/%s", w->dir, path);
	return vhd_io_posix_open(full, 0, out, NULL);
}

static void wrap_close(struct vhd_io *io)
{
	struct wrap_io *w = (struct wrap_io *)io;
	if (w->own_inner)
		vhd_io_close(w->inner);
	free(w->dir);
	free(w);
}

static const struct vhd_io_ops wrap_ops = {
	.pread = wrap_pread,
	.pwrite = wrap_pwrite,
	.flush = wrap_flush,
	.size = wrap_size,
	.truncate = wrap_truncate,
	.discard = wrap_discard,
	.data_extent = wrap_data_extent,
	.open_sibling = wrap_open_sibling,
	.close = wrap_close,
};

struct vhd_io *t_wrap_io(struct vhd_io *inner, const char *dir, bool own_inner)
{
	struct wrap_io *w = calloc(1, sizeof(*w));
	cr_assert_not_null(w);
	w->dir = dir ? strdup(dir) : NULL;
	w->base.ops = &wrap_ops;
	w->base.name = dir ? "(memory, parents on disk)" : "(memory, wrapped)";
	w->inner = inner;
	w->own_inner = own_inner;
	return &w->base;
}

/* ---- files ------------------------------------------------------------ */

char *t_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof(tmpl), "%s/libvhd-unit-XXXXXX", base && *base ? base : "/tmp");
	char *d = mkdtemp(tmpl);
	cr_assert_not_null(d, "mkdtemp: %s", strerror(errno));
	return strdup(d);
}

void t_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	char path[4096];
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			t_rmtree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

uint8_t *t_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	cr_assert(n >= 0);
	rewind(f);
	uint8_t *buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

void t_write_file(const char *path, const uint8_t *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* ---- a hand-built image -------------------------------------------------- */

/* See helpers.h. */
uint8_t *t_tiny_image(enum vhd_type type, size_t *len)
{
	const uint32_t allocated[] = { 0, 3, 5, 15 };
	uint64_t base = type == VHD_TYPE_DIFFERENCING ? 3072 : 2048;
	size_t size = base + 4 * (512 + TINY_BS) + 512;
	uint8_t *b = calloc(1, size);
	cr_assert_not_null(b);

	struct vhd_footer f;
	memset(&f, 0, sizeof(f));
	f.features = VHD_FEATURES_RESERVED;
	f.format_version = VHD_FILE_FORMAT_VERSION;
	f.data_offset = 512;
	memcpy(f.creator_app, "qem2", 4);
	f.current_size = f.original_size = TINY_VSIZE;
	f.geometry = vhd_geometry_for_size(TINY_VSIZE);
	f.disk_type = type;
	for (int i = 0; i < 16; i++)
		f.uuid[i] = (uint8_t)(i * 17 + 3);
	vhd_footer_encode(&f, b);
	memcpy(b + size - 512, b, 512);

	struct vhd_header h;
	memset(&h, 0, sizeof(h));
	h.data_offset = VHD_NO_OFFSET;
	h.table_offset = 1536;
	h.header_version = VHD_HEADER_VERSION;
	h.max_table_entries = TINY_ENTRIES;
	h.block_size = TINY_BS;
	if (type == VHD_TYPE_DIFFERENCING) {
		cr_assert(vhd_utf8_to_utf16("p.vhd", true, h.parent_name, sizeof(h.parent_name)) > 0);
		int n = vhd_utf8_to_utf16(".\\p.vhd", false, b + 2048, 512);
		cr_assert(n > 0);
		h.loc[0] = (struct vhd_locator_entry){ VHD_PLAT_W2RU, 512, (uint32_t)n, 2048 };
		const char *url = "file:///images/p.vhd";
		memcpy(b + 2560, url, strlen(url));
		h.loc[1] = (struct vhd_locator_entry){ VHD_PLAT_MACX, 1, (uint32_t)strlen(url), 2560 };
	}
	vhd_header_encode(&h, b + 512);

	memset(b + 1536, 0xFF, 512);
	for (uint32_t k = 0; k < 4; k++) {
		uint64_t off = base + k * (512 + TINY_BS);
		vhd_put_be32(b + 1536 + 4 * allocated[k], (uint32_t)(off / 512));
		uint8_t *bm = b + off;
		if (allocated[k] == 3) {
			vhd_bitmap_set_range(bm, 0, 3);
			vhd_bitmap_set_range(bm, 5, 1);
			t_fill(bm + 512, 3 * 512, 300 + k);
			t_fill(bm + 512 + 5 * 512, 512, 400 + k);
		} else {
			vhd_bitmap_set_range(bm, 0, TINY_BS / 512);
			t_fill(bm + 512, TINY_BS, 500 + k);
		}
	}
	*len = size;
	return b;
}


void t_diff_pair(const char *dir, uint64_t vsize, uint32_t bs, char *child, size_t childlen)
{
	char parent[4200];
	struct vhd_error err;
	struct vhd_image *img;
	uint8_t sec[1024];

	snprintf(parent, sizeof(parent), "%s/parent.vhd", dir);
	snprintf(child, childlen, "%s/child.vhd", dir);
	struct vhd_create_params pp = { .type = VHD_TYPE_DYNAMIC, .size = vsize, .block_size = bs };
	cr_assert_eq(vhd_create(parent, &pp, &img, &err), 0, "%s", err.message);
	uint8_t *data = malloc(vsize);
	cr_assert_not_null(data);
	t_fill(data, vsize, 3);
	cr_assert_eq(vhd_pwrite(img, data, vsize, 0), 0);
	cr_assert_eq(vhd_close(img), 0);
	free(data);

	struct vhd_create_params cp = { .type = VHD_TYPE_DIFFERENCING, .parent = parent,
					.block_size = bs };
	cr_assert_eq(vhd_create(child, &cp, &img, &err), 0, "%s", err.message);
	t_fill(sec, sizeof(sec), 4);
	cr_assert_eq(vhd_pwrite(img, sec, 1024, 4096), 0);
	cr_assert_eq(vhd_pwrite(img, sec, 700, 2 * (uint64_t)bs + 50), 0);
	cr_assert_eq(vhd_close(img), 0);
}
