/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the libFuzzer targets: exact-size heap copies (so that
 * AddressSanitizer sees any read past a slice), a read-only view backend
 * over the fuzzer's bytes with hole reporting and parent lookup, a
 * "borrowing" wrapper whose close leaves the inner backend alive, and a
 * few built-in parent images for differencing inputs.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "fuzz_check.h"
#include "internal.h"
#include "libvhd.h"

/* A heap copy of exactly len bytes (malloc(0) avoided). */
static inline uint8_t *fz_dup(const uint8_t *data, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	if (!p)
		abort();
	if (len)
		memcpy(p, data, len);
	return p;
}

/* Is s[0..len) a NUL-terminated string inside its buffer? */
static inline bool fz_terminated(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

/* ---- a read-only view over const bytes -------------------------------- */

enum fz_sibling {
	FZ_SIB_NONE = 0,        /* open_sibling is NULL */
	FZ_SIB_BUILTIN = 1,     /* built-in parents (and the image itself) */
};

struct fz_view {
	struct vhd_io base;
	const uint8_t *data;
	size_t len;
	unsigned sibling;
	const uint8_t *self;    /* the bytes offered as "the image itself" */
	size_t self_len;
};

static inline struct fz_view *fz_v(struct vhd_io *io)
{
	return (struct fz_view *)io;
}

static inline int fz_view_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	struct fz_view *v = fz_v(io);
	if (!vhd_range_ok(off, len, v->len))
		return -EIO;
	if (len)
		memcpy(buf, v->data + off, len);
	return 0;
}

static inline int fz_view_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	(void)io, (void)buf, (void)len, (void)off;
	return -EROFS;
}

static inline int fz_view_flush(struct vhd_io *io)
{
	(void)io;
	return 0;
}

static inline int fz_view_size(struct vhd_io *io, uint64_t *size)
{
	*size = fz_v(io)->len;
	return 0;
}

static inline int fz_view_truncate(struct vhd_io *io, uint64_t size)
{
	(void)io, (void)size;
	return -EROFS;
}

/* Harness helpers that scan bytes are left out of coverage: their
 * comparisons would only slow the fuzzer down and steer it nowhere. */
#define FZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))

FZ_NO_COVERAGE static inline bool fz_all_zero(const uint8_t *p, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w)
			return false;
	}
	for (; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static inline bool fz_page_zero(const uint8_t *p, size_t n)
{
	return fz_all_zero(p, n);
}

/*
 * Whole 4 KiB pages of zeros are "holes", as a sparse file's would be.  An
 * answer covers at most 64 KiB so that callers looping over it stay cheap.
 */
FZ_NO_COVERAGE static inline int fz_view_data_extent(struct vhd_io *io, uint64_t off, uint64_t *len,
				      bool *is_data)
{
	struct fz_view *v = fz_v(io);
	const uint64_t page = 4096, max = 64u << 10;
	if (off >= v->len)
		return -ENXIO;
	uint64_t p = off / page * page;
	bool first = true, hole = false;
	uint64_t end = off;
	while (end < v->len && end - off < max) {
		uint64_t pend = vhd_min_u64(p + page, v->len);
		bool h = pend - p == page && fz_page_zero(v->data + p, page);
		if (first)
			hole = h;
		else if (h != hole)
			break;
		first = false;
		end = pend;
		p = pend;
	}
	*len = vhd_min_u64(end, off + max) - off;
	*is_data = !hole;
	return 0;
}

static int fz_view_open_sibling(struct vhd_io *io, const char *path, struct vhd_io **out);

static inline void fz_view_close(struct vhd_io *io)
{
	free(io);
}

static const struct vhd_io_ops fz_view_ops = {
	.pread = fz_view_pread,
	.pwrite = fz_view_pwrite,
	.flush = fz_view_flush,
	.size = fz_view_size,
	.truncate = fz_view_truncate,
	.data_extent = fz_view_data_extent,
	.open_sibling = fz_view_open_sibling,
	.close = fz_view_close,
};

static const struct vhd_io_ops fz_view_plain_ops = {
	.pread = fz_view_pread,
	.pwrite = fz_view_pwrite,
	.flush = fz_view_flush,
	.size = fz_view_size,
	.truncate = fz_view_truncate,
	.close = fz_view_close,
};

static inline struct vhd_io *fz_view_open(const uint8_t *data, size_t len, unsigned sibling,
					  const uint8_t *self, size_t self_len)
{
	struct fz_view *v = calloc(1, sizeof(*v));
	if (!v)
		abort();
	v->base.ops = sibling ? &fz_view_ops : &fz_view_plain_ops;
	v->base.name = "(fuzz view)";
	v->data = data;
	v->len = len;
	v->sibling = sibling;
	v->self = self;
	v->self_len = self_len;
	return &v->base;
}

/* ---- a wrapper that does not close its inner backend ------------------- */

struct fz_borrow {
	struct vhd_io base;
	struct vhd_io *inner;
	const uint8_t *self;    /* see fz_view */
	size_t self_len;
};

static inline struct vhd_io *fz_in(struct vhd_io *io)
{
	return ((struct fz_borrow *)io)->inner;
}

static inline int fz_b_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	return fz_in(io)->ops->pread(fz_in(io), buf, len, off);
}

static inline int fz_b_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	return fz_in(io)->ops->pwrite(fz_in(io), buf, len, off);
}

static inline int fz_b_flush(struct vhd_io *io)
{
	return fz_in(io)->ops->flush(fz_in(io));
}

static inline int fz_b_size(struct vhd_io *io, uint64_t *size)
{
	return fz_in(io)->ops->size(fz_in(io), size);
}

static inline int fz_b_truncate(struct vhd_io *io, uint64_t size)
{
	return fz_in(io)->ops->truncate(fz_in(io), size);
}

static inline int fz_b_discard(struct vhd_io *io, uint64_t off, uint64_t len)
{
	return fz_in(io)->ops->discard(fz_in(io), off, len);
}

static int fz_b_open_sibling(struct vhd_io *io, const char *path, struct vhd_io **out);

static inline void fz_b_close(struct vhd_io *io)
{
	free(io);
}

static const struct vhd_io_ops fz_borrow_ops = {
	.pread = fz_b_pread,
	.pwrite = fz_b_pwrite,
	.flush = fz_b_flush,
	.size = fz_b_size,
	.truncate = fz_b_truncate,
	.discard = fz_b_discard,
	.open_sibling = fz_b_open_sibling,
	.close = fz_b_close,
};

static inline struct vhd_io *fz_borrow_open(struct vhd_io *inner, const uint8_t *self,
					    size_t self_len)
{
	struct fz_borrow *b = calloc(1, sizeof(*b));
	if (!b)
		abort();
	b->base.ops = &fz_borrow_ops;
	b->base.name = "(fuzz memory)";
	b->inner = inner;
	b->self = self;
	b->self_len = self_len;
	return &b->base;
}

/* ---- built-in parents --------------------------------------------------- */

/* Fixed UUID and timestamp so that runs are reproducible. */
static const uint8_t fz_parent_uuid[16] = { 0x5f, 0xa2, 0x1a, 0x55, 0xf3, 0x94, 0xaa, 0x4d,
					    0x99, 0x58, 0x19, 0x51, 0xa6, 0x7d, 0x55, 0x40 };

struct fz_blob {
	uint8_t *data;
	size_t len;
};

static struct fz_blob fz_parents[2];

/* Give the image in blob fixed identity; rewrite both footers. */
static inline void fz_pin_identity(struct fz_blob *b)
{
	struct vhd_footer f;
	uint8_t raw[VHD_FOOTER_SIZE];
	if (b->len < VHD_FOOTER_SIZE ||
	    !vhd_footer_decode(b->data + b->len - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE, &f))
		abort();
	memcpy(f.uuid, fz_parent_uuid, 16);
	f.timestamp = 0x2a000000u;
	vhd_footer_encode(&f, raw);
	memcpy(b->data + b->len - VHD_FOOTER_SIZE, raw, VHD_FOOTER_SIZE);
	if (f.disk_type != VHD_TYPE_FIXED)
		memcpy(b->data, raw, VHD_FOOTER_SIZE);
}

/* Create an image in memory, write a pattern, and keep its bytes. */
static inline void fz_make_parent(struct fz_blob *b, enum vhd_type type, uint64_t size)
{
	struct vhd_io *mem, *io;
	struct vhd_image *img;
	struct vhd_create_params p = { .type = type, .size = size, .block_size = 512u << 10 };
	uint8_t pat[8192];

	if (vhd_io_mem_open(NULL, 0, &mem) < 0)
		abort();
	io = fz_borrow_open(mem, NULL, 0);
	if (vhd_create_io(io, &p, NULL, &img, NULL) < 0)
		abort();
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + 1);
	/* A few sectors in the first block, one page straddling blocks 0 and 1. */
	uint64_t second = vhd_min_u64((512u << 10) - 4096, size - sizeof(pat));
	if (vhd_pwrite(img, pat, 1024, 4096) < 0 ||
	    vhd_pwrite(img, pat, sizeof(pat), second) < 0 ||
	    vhd_close(img) < 0)
		abort();
	size_t len;
	const uint8_t *d = vhd_io_mem_data(mem, &len);
	b->data = fz_dup(d, len);
	b->len = len;
	vhd_io_close(mem);
	fz_pin_identity(b);
}

static inline void fz_init_parents(void)
{
	if (fz_parents[0].data)
		return;
	fz_make_parent(&fz_parents[0], VHD_TYPE_FIXED, 96u << 10);
	fz_make_parent(&fz_parents[1], VHD_TYPE_DYNAMIC, 1u << 20);
}

/*
 * Which parent a path names: chosen by the path's length, so the fuzzer
 * steers it through the locators.  Kind 2 is the image itself, which the
 * library must refuse as a cycle (the same UUID).
 */
static inline int fz_open_named(const char *path, const uint8_t *self, size_t self_len,
				struct vhd_io **out)
{
	size_t n = strlen(path);     /* also proves the path is terminated */
	fz_init_parents();
	switch (n % 4) {
	case 0:
	case 1:
		*out = fz_view_open(fz_parents[n % 4].data, fz_parents[n % 4].len, FZ_SIB_BUILTIN,
				    self, self_len);
		return 0;
	case 2:
		if (!self)
			return -ENOENT;
		*out = fz_view_open(self, self_len, FZ_SIB_BUILTIN, self, self_len);
		return 0;
	default:
		return -ENOENT;
	}
}

static int fz_view_open_sibling(struct vhd_io *io, const char *path, struct vhd_io **out)
{
	return fz_open_named(path, fz_v(io)->self, fz_v(io)->self_len, out);
}

static int fz_b_open_sibling(struct vhd_io *io, const char *path, struct vhd_io **out)
{
	struct fz_borrow *b = (struct fz_borrow *)io;
	return fz_open_named(path, b->self, b->self_len, out);
}

#endif
