/* SPDX-License-Identifier: MIT */
/*
 * A fault-injecting backend for tests: it passes reads through to an inner
 * backend and lets the first `limit` writes (pwrite, truncate, discard)
 * through; every write after that fails with -EIO and changes nothing, as
 * if the power had been cut.  The inner backend stays the caller's.
 */
#ifndef VHD_IO_FAULT_H
#define VHD_IO_FAULT_H

#include "libvhd.h"

int vhd_io_fault_open(struct vhd_io *inner, uint64_t limit, struct vhd_io **out);
/* Writes let through so far (counts up to limit). */
uint64_t vhd_io_fault_writes(struct vhd_io *io);
/* True once a write was refused. */
bool vhd_io_fault_tripped(struct vhd_io *io);

#endif
