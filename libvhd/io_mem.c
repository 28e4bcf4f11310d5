/* SPDX-License-Identifier: MIT */
/*
 * A growable in-memory file: for tests, fuzzers and scratch images.  A
 * write may move the buffer, so every call holds the backend's lock.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

struct mem_io {
	struct vhd_io base;
	struct vhd_mutex *lock;
	uint8_t *data;
	size_t len, cap;
};

static struct mem_io *mem(struct vhd_io *io)
{
	return (struct mem_io *)io;
}

static int pread_locked(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	struct mem_io *m = mem(io);
	if (!vhd_range_ok(off, len, m->len))
		return -EIO;
	memcpy(buf, m->data + off, len);
	return 0;
}

/* A memory file serves tests and fuzzers: past this it is an error, not
 * an allocation that would take the process down. */
#define MEM_IO_MAX (1ull << 30)

static int mem_reserve(struct mem_io *m, uint64_t size)
{
	if (size > MEM_IO_MAX || size > SIZE_MAX / 2)
		return -EFBIG;
	if (size <= m->cap)
		return 0;
	size_t cap = m->cap ? m->cap : 4096;
	while (cap < size)
		cap *= 2;
	uint8_t *p = vhd_malloc(cap);
	if (!p)
		return -ENOMEM;
	if (m->len)
		memcpy(p, m->data, m->len);
	vhd_free(m->data);
	m->data = p;
	m->cap = cap;
	return 0;
}

static int truncate_locked(struct vhd_io *io, uint64_t size)
{
	struct mem_io *m = mem(io);
	int r = mem_reserve(m, size);
	if (r < 0)
		return r;
	if (size > m->len)
		memset(m->data + m->len, 0, (size_t)size - m->len);
	m->len = (size_t)size;
	return 0;
}

static int pwrite_locked(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	struct mem_io *m = mem(io);
	if (off > SIZE_MAX / 2 || len > SIZE_MAX / 2)
		return -EFBIG;
	if (off + len > m->len) {
		int r = truncate_locked(io, off + len);
		if (r < 0)
			return r;
	}
	memcpy(m->data + off, buf, len);
	return 0;
}

static int mem_flush(struct vhd_io *io)
{
	(void)io;
	return 0;
}

static int size_locked(struct vhd_io *io, uint64_t *size)
{
	*size = mem(io)->len;
	return 0;
}


static int discard_locked(struct vhd_io *io, uint64_t off, uint64_t len)
{
	struct mem_io *m = mem(io);
	if (!vhd_range_ok(off, len, m->len))
		return -EINVAL;
	memset(m->data + off, 0, (size_t)len);
	return 0;
}

#define LOCKED(call)                                  \
	do {                                          \
		vhd_mutex_lock(mem(io)->lock);        \
		int r_ = (call);                      \
		vhd_mutex_unlock(mem(io)->lock);      \
		return r_;                            \
	} while (0)

static int mem_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	LOCKED(pread_locked(io, buf, len, off));
}

static int mem_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	LOCKED(pwrite_locked(io, buf, len, off));
}

static int mem_truncate(struct vhd_io *io, uint64_t size)
{
	LOCKED(truncate_locked(io, size));
}

static int mem_discard(struct vhd_io *io, uint64_t off, uint64_t len)
{
	LOCKED(discard_locked(io, off, len));
}

static int mem_size(struct vhd_io *io, uint64_t *size)
{
	LOCKED(size_locked(io, size));
}

static void mem_close(struct vhd_io *io)
{
	vhd_mutex_free(mem(io)->lock);
	vhd_free(mem(io)->data);
	vhd_free(io);
}

static const struct vhd_io_ops mem_ops = {
	.pread = mem_pread,
	.pwrite = mem_pwrite,
	.flush = mem_flush,
	.size = mem_size,
	.truncate = mem_truncate,
	.discard = mem_discard,
	.close = mem_close,
};

int vhd_io_mem_open(const void *data, size_t len, struct vhd_io **out)
{
	struct mem_io *m = vhd_calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->base.ops = &mem_ops;
	m->base.name = "(memory)";
	m->lock = vhd_mutex_new();
	if (!m->lock || (len && mem_reserve(m, len) < 0)) {
		if (m->lock)
			vhd_mutex_free(m->lock);
		vhd_free(m);
		return -ENOMEM;
	}
	if (len)
		memcpy(m->data, data, len);
	m->len = len;
	*out = &m->base;
	return 0;
}

const uint8_t *vhd_io_mem_data(struct vhd_io *io, size_t *len)
{
	*len = mem(io)->len;
	return mem(io)->data;
}

void vhd_io_close(struct vhd_io *io)
{
	if (io)
		io->ops->close(io);
}
