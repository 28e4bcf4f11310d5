/* SPDX-License-Identifier: MIT */
/* The fault-injecting backend (see io_fault.h). */
#include <errno.h>

#include "internal.h"
#include "io_fault.h"

struct fault_io {
	struct vhd_io base;
	struct vhd_io *inner;
	uint64_t limit, writes;
	bool tripped;
};

static struct fault_io *fio(struct vhd_io *io)
{
	return (struct fault_io *)io;
}

static bool allow(struct fault_io *f)
{
	if (f->writes >= f->limit) {
		f->tripped = true;
		return false;
	}
	f->writes++;
	return true;
}

static int f_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	return fio(io)->inner->ops->pread(fio(io)->inner, buf, len, off);
}

static int f_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	if (!allow(fio(io)))
		return -EIO;
	return fio(io)->inner->ops->pwrite(fio(io)->inner, buf, len, off);
}

static int f_flush(struct vhd_io *io)
{
	if (fio(io)->tripped)
		return -EIO;
	return fio(io)->inner->ops->flush(fio(io)->inner);
}

static int f_size(struct vhd_io *io, uint64_t *size)
{
	return fio(io)->inner->ops->size(fio(io)->inner, size);
}

static int f_truncate(struct vhd_io *io, uint64_t size)
{
	if (!allow(fio(io)))
		return -EIO;
	return fio(io)->inner->ops->truncate(fio(io)->inner, size);
}

static int f_discard(struct vhd_io *io, uint64_t off, uint64_t len)
{
	struct vhd_io *in = fio(io)->inner;
	if (!in->ops->discard)
		return -EOPNOTSUPP;
	if (!allow(fio(io)))
		return -EIO;
	return in->ops->discard(in, off, len);
}

static int f_data_extent(struct vhd_io *io, uint64_t off, uint64_t *len, bool *is_data)
{
	struct vhd_io *in = fio(io)->inner;
	return in->ops->data_extent ? in->ops->data_extent(in, off, len, is_data) : -EOPNOTSUPP;
}

static int f_open_sibling(struct vhd_io *io, const char *path, struct vhd_io **out)
{
	struct vhd_io *in = fio(io)->inner;
	return in->ops->open_sibling ? in->ops->open_sibling(in, path, out) : -ENOENT;
}

static void f_close(struct vhd_io *io)
{
	vhd_free(io);
}

static const struct vhd_io_ops fault_ops = {
	.pread = f_pread,
	.pwrite = f_pwrite,
	.flush = f_flush,
	.size = f_size,
	.truncate = f_truncate,
	.discard = f_discard,
	.data_extent = f_data_extent,
	.open_sibling = f_open_sibling,
	.close = f_close,
};

int vhd_io_fault_open(struct vhd_io *inner, uint64_t limit, struct vhd_io **out)
{
	struct fault_io *f = vhd_calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->base.ops = &fault_ops;
	f->base.name = inner->name;
	f->inner = inner;
	f->limit = limit;
	*out = &f->base;
	return 0;
}

uint64_t vhd_io_fault_writes(struct vhd_io *io)
{
	return fio(io)->writes;
}

bool vhd_io_fault_tripped(struct vhd_io *io)
{
	return fio(io)->tripped;
}
