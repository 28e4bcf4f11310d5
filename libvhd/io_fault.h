/* SPDX-License-Identifier: MIT */
/*
 * A fault-injecting backend for tests: it passes reads through to an inner
 * backend and lets the first `limit` writes (pwrite, truncate, discard)
 * through; every write after that fails with -EIO and changes nothing, as
 * if the power had been cut.  The inner backend stays the caller's.
 *
 * Reorder mode models a disk with a volatile write cache.  Writes since the
 * last successful flush are pending: they reach the inner backend at once
 * (reads see them) but are remembered with the bytes they replaced.  At the
 * cut (the first write past `limit`, or vhd_io_fault_cut) the inner backend
 * is rolled back to its state at the last flush, and then a random part of
 * the pending writes is applied again, in order: each 512-byte file sector
 * of each write (so multi-sector writes tear), each sector of a discard, and
 * each size change (truncate) is kept or lost on its own.  A sector goes to
 * the disk whole, as the cache held it after that write: a partial-sector
 * write carries the unflushed bytes written before it into that sector.  The odds of
 * keeping come from the seed too (from none to all).  Afterwards the inner
 * backend holds what a disk could show after the power came back.
 */
#ifndef VHD_IO_FAULT_H
#define VHD_IO_FAULT_H

#include "libvhd.h"

int vhd_io_fault_open(struct vhd_io *inner, uint64_t limit, struct vhd_io **out);
/* The same in reorder mode; seed drives every keep-or-lose choice. */
int vhd_io_fault_open_reorder(struct vhd_io *inner, uint64_t limit, uint64_t seed,
			      struct vhd_io **out);
/* Writes let through so far (counts up to limit). */
uint64_t vhd_io_fault_writes(struct vhd_io *io);
/* True once a write was refused (or vhd_io_fault_cut was called). */
bool vhd_io_fault_tripped(struct vhd_io *io);
/* Cut the power now: in reorder mode resolve the pending writes as above;
 * every later write or flush fails with -EIO.  A second call does nothing. */
void vhd_io_fault_cut(struct vhd_io *io);
/* Sector writes (and size changes) the cut kept and lost (reorder mode). */
void vhd_io_fault_cut_counts(struct vhd_io *io, uint64_t *kept, uint64_t *lost);

#endif
