/* SPDX-License-Identifier: MIT */
/* The fault-injecting backend (see io_fault.h). */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "io_fault.h"

enum pending_kind { PENDING_WRITE, PENDING_DISCARD, PENDING_TRUNCATE };

/* A write since the last flush (reorder mode), with what it replaced. */
struct pending {
	enum pending_kind kind;
	uint64_t off, len;      /* whole sectors (a truncate: off is the new size) */
	uint8_t *data;          /* those sectors as they read after the write */
	uint64_t old_size;      /* the file's size before */
	uint64_t undo_off, undo_len;
	uint8_t *undo;          /* the bytes at undo_off before */
};

struct fault_io {
	struct vhd_io base;
	struct vhd_io *inner;
	uint64_t limit, writes;
	bool tripped;
	bool reorder;
	uint64_t rng;
	struct vhd_mutex *lock; /* the counters and the pending list */
	struct pending *pending;
	size_t npending, cap;
	uint64_t kept, lost;
};

static struct fault_io *fio(struct vhd_io *io)
{
	return (struct fault_io *)io;
}

/* splitmix64: the same choices for the same seed. */
static uint64_t next_rand(struct fault_io *f)
{
	uint64_t z = (f->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void drop_pending(struct fault_io *f)
{
	for (size_t i = 0; i < f->npending; i++) {
		vhd_free(f->pending[i].data);
		vhd_free(f->pending[i].undo);
	}
	f->npending = 0;
}

static int grow_list(struct fault_io *f)
{
	if (f->npending < f->cap)
		return 0;
	size_t cap = f->cap ? 2 * f->cap : 64;
	struct pending *p = vhd_malloc(cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (f->npending)
		memcpy(p, f->pending, f->npending * sizeof(*p));
	vhd_free(f->pending);
	f->pending = p;
	f->cap = cap;
	return 0;
}

/* Save what [from, to) holds now as e's undo bytes. */
static int save_undo(struct fault_io *f, struct pending *e, uint64_t from, uint64_t to)
{
	if (from >= to)
		return 0;
	e->undo = vhd_malloc((size_t)(to - from));
	if (!e->undo)
		return -ENOMEM;
	e->undo_off = from;
	e->undo_len = to - from;
	return f->inner->ops->pread(f->inner, e->undo, (size_t)e->undo_len, from);
}

/*
 * Remember a write before it reaches the inner backend (reorder mode).  A
 * disk takes whole sectors, and a partial one reaches it as the cache holds
 * it after the write (earlier unflushed bytes included): so the pending
 * entry is the whole sectors the write touches, as they will read after it.
 * A discard is kept the same way, as zeros.
 */
static int record(struct fault_io *f, enum pending_kind kind, const void *data, uint64_t off,
		  uint64_t len)
{
	struct vhd_io *in = f->inner;
	int r = grow_list(f);
	if (r < 0)
		return r;
	struct pending *e = &f->pending[f->npending];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	r = in->ops->size(in, &e->old_size);
	if (r == 0 && kind == PENDING_TRUNCATE) {
		e->off = off;
		r = save_undo(f, e, off, e->old_size);
	} else if (r == 0) {
		uint64_t end = off + len;
		uint64_t new_size = e->old_size > end ? e->old_size : end;
		uint64_t lo = off / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
		uint64_t hi = vhd_min_u64((end + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE,
					  new_size);
		uint64_t have = e->old_size > lo ? vhd_min_u64(hi, e->old_size) - lo : 0;
		e->off = lo;
		e->len = hi - lo;
		e->data = vhd_calloc(1, e->len ? (size_t)e->len : 1);
		r = e->data ? save_undo(f, e, lo, lo + have) : -ENOMEM;
		if (r == 0) {
			if (have)
				memcpy(e->data, e->undo, (size_t)have);
			if (data)
				memcpy(e->data + (off - lo), data, (size_t)len);
			else
				memset(e->data + (off - lo), 0, (size_t)len);
		}
	}
	if (r < 0) {
		vhd_free(e->data);
		vhd_free(e->undo);
		return r;
	}
	f->npending++;
	return 0;
}

/* The inner backend refused the write just recorded: forget it. */
static void unrecord(struct fault_io *f)
{
	struct pending *e = &f->pending[--f->npending];
	vhd_free(e->data);
	vhd_free(e->undo);
}

static bool keep(struct fault_io *f, unsigned odds)
{
	bool k = next_rand(f) % 4 < odds;
	if (k)
		f->kept++;
	else
		f->lost++;
	return k;
}

/* Apply the sectors of pending write or discard e that the dice keep. */
static void replay_sectors(struct fault_io *f, const struct pending *e, unsigned odds)
{
	struct vhd_io *in = f->inner;
	for (uint64_t at = 0; at < e->len; at += VHD_SECTOR_SIZE) {
		size_t n = (size_t)vhd_min_u64(VHD_SECTOR_SIZE, e->len - at);
		if (keep(f, odds))
			in->ops->pwrite(in, e->data + at, n, e->off + at);
	}
}

/* The power goes (lock held): roll back to the last flush, replay a part. */
static void cut_locked(struct fault_io *f)
{
	struct vhd_io *in = f->inner;
	if (f->tripped)
		return;
	f->tripped = true;
	if (!f->reorder)
		return;
	for (size_t i = f->npending; i-- > 0;) {
		const struct pending *e = &f->pending[i];
		in->ops->truncate(in, e->old_size);
		if (e->undo_len)
			in->ops->pwrite(in, e->undo, (size_t)e->undo_len, e->undo_off);
	}
	unsigned odds = (unsigned)(next_rand(f) % 5);  /* keep odds/4 of them */
	for (size_t i = 0; i < f->npending; i++) {
		const struct pending *e = &f->pending[i];
		if (e->kind != PENDING_TRUNCATE)
			replay_sectors(f, e, odds);
		else if (keep(f, odds))
			in->ops->truncate(in, e->off);
	}
	drop_pending(f);
}

static bool allow(struct fault_io *f)
{
	if (f->writes >= f->limit) {
		cut_locked(f);
		return false;
	}
	f->writes++;
	return true;
}

/*
 * One write of any kind: counted against the limit, recorded in reorder
 * mode, then passed on.  data is the payload of a pwrite, NULL otherwise.
 */
static int do_write(struct fault_io *f, enum pending_kind kind, const void *data, uint64_t off,
		    uint64_t len)
{
	struct vhd_io *in = f->inner;
	vhd_mutex_lock(f->lock);
	int r = -EIO;
	if (f->tripped || !allow(f))
		goto out;
	if (f->reorder && (r = record(f, kind, data, off, len)) < 0)
		goto out;
	r = kind == PENDING_WRITE ? in->ops->pwrite(in, data, (size_t)len, off)
	  : kind == PENDING_DISCARD ? in->ops->discard(in, off, len)
				    : in->ops->truncate(in, off);
	if (r < 0 && f->reorder)
		unrecord(f);
out:
	vhd_mutex_unlock(f->lock);
	return r;
}

static int f_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	return fio(io)->inner->ops->pread(fio(io)->inner, buf, len, off);
}

static int f_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	return do_write(fio(io), PENDING_WRITE, buf, off, len);
}

static int f_flush(struct vhd_io *io)
{
	struct fault_io *f = fio(io);
	vhd_mutex_lock(f->lock);
	int r = f->tripped ? -EIO : f->inner->ops->flush(f->inner);
	if (r == 0)
		drop_pending(f);        /* durable now */
	vhd_mutex_unlock(f->lock);
	return r;
}

static int f_size(struct vhd_io *io, uint64_t *size)
{
	return fio(io)->inner->ops->size(fio(io)->inner, size);
}

static int f_truncate(struct vhd_io *io, uint64_t size)
{
	return do_write(fio(io), PENDING_TRUNCATE, NULL, size, 0);
}

static int f_discard(struct vhd_io *io, uint64_t off, uint64_t len)
{
	if (!fio(io)->inner->ops->discard)
		return -EOPNOTSUPP;
	return do_write(fio(io), PENDING_DISCARD, NULL, off, len);
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
	struct fault_io *f = fio(io);
	drop_pending(f);
	vhd_free(f->pending);
	vhd_mutex_free(f->lock);
	vhd_free(f);
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
	f->lock = vhd_mutex_new();
	if (!f->lock) {
		vhd_free(f);
		return -ENOMEM;
	}
	f->base.ops = &fault_ops;
	f->base.name = inner->name;
	f->inner = inner;
	f->limit = limit;
	*out = &f->base;
	return 0;
}

int vhd_io_fault_open_reorder(struct vhd_io *inner, uint64_t limit, uint64_t seed,
			      struct vhd_io **out)
{
	int r = vhd_io_fault_open(inner, limit, out);
	if (r == 0) {
		fio(*out)->reorder = true;
		fio(*out)->rng = seed;
	}
	return r;
}

void vhd_io_fault_cut(struct vhd_io *io)
{
	struct fault_io *f = fio(io);
	vhd_mutex_lock(f->lock);
	cut_locked(f);
	vhd_mutex_unlock(f->lock);
}

void vhd_io_fault_cut_counts(struct vhd_io *io, uint64_t *kept, uint64_t *lost)
{
	*kept = fio(io)->kept;
	*lost = fio(io)->lost;
}

uint64_t vhd_io_fault_writes(struct vhd_io *io)
{
	return fio(io)->writes;
}

bool vhd_io_fault_tripped(struct vhd_io *io)
{
	return fio(io)->tripped;
}
