/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the libvhd unit tests: deterministic data, images built
 * in memory, field patching with checksums recomputed, and a memory backend
 * that can open a parent from a real folder.
 */
#ifndef UNIT_HELPERS_H
#define UNIT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endian.h"
#include "internal.h"
#include "libvhd.h"

/* Byte offsets of on-disk fields (the specification's layout). */
#define T_F_FEATURES 8
#define T_F_VERSION 12
#define T_F_DATA_OFFSET 16
#define T_F_CREATOR_APP 28
#define T_F_CURRENT_SIZE 48
#define T_F_GEOMETRY 56
#define T_F_DISK_TYPE 60
#define T_F_CHECKSUM 64
#define T_H_TABLE_OFFSET 16
#define T_H_MAX_ENTRIES 28
#define T_H_BLOCK_SIZE 32
#define T_H_CHECKSUM 36
#define T_H_LOCATORS 576

#define T_KIB 1024ull
#define T_MIB (1024ull * 1024)
#define T_GIB (1024ull * 1024 * 1024)

/* splitmix64: a small, deterministic generator. */
uint64_t t_rand(uint64_t *state);
/* Fill buf with bytes derived from seed (never all zero). */
void t_fill(void *buf, size_t len, uint64_t seed);
bool t_all_zero(const void *buf, size_t len);

/*
 * Create an image on a fresh memory backend; asserts success.  With keep
 * non-NULL the image gets a pass-through backend and *keep the memory
 * backend behind it, which outlives vhd_close (free it with vhd_io_close):
 * that is how a test sees the file as vhd_close leaves it.
 */
struct vhd_image *t_create_mem(enum vhd_type type, uint64_t size, uint32_t block_size);
struct vhd_image *t_create_mem_keep(enum vhd_type type, uint64_t size, uint32_t block_size,
				    struct vhd_io **keep);
/* Create an image in memory, close it and return a malloc'ed copy of the file. */
uint8_t *t_create_bytes(enum vhd_type type, uint64_t size, uint32_t block_size, size_t *len);
/* A malloc'ed copy of an open memory-backed image's file, as a crash would
 * find it after a flush (flushed first, unless read-only). */
uint8_t *t_image_bytes(struct vhd_image *img, size_t *len);
/* Close img (asserting success) and return a copy of the file it leaves in
 * keep (from t_create_mem_keep or t_open_bytes_keep); keep is closed. */
uint8_t *t_close_bytes(struct vhd_image *img, struct vhd_io *keep, size_t *len);
/* The bytes of the memory backend under an open image (no flush). */
const uint8_t *t_mem_data(struct vhd_image *img, size_t *len);
/* A malloc'ed copy of a memory backend's bytes. */
uint8_t *t_mem_copy(struct vhd_io *mem, size_t *len);
/* Open a copy of data as an image on a memory backend. */
int t_open_bytes(const uint8_t *data, size_t len, unsigned flags, struct vhd_image **out,
		 struct vhd_error *err);
/* The same through a pass-through backend; *keep is the memory backend. */
int t_open_bytes_keep(const uint8_t *data, size_t len, unsigned flags, struct vhd_image **out,
		      struct vhd_error *err, struct vhd_io **keep);
/* Run vhd_check_io over a copy of data; the caller frees the report. */
int t_check_bytes(const uint8_t *data, size_t len, struct vhd_check_report *rep);
/* A one-line summary of a check report's findings (static buffer). */
const char *t_report_text(const struct vhd_check_report *rep);

/* Recompute the checksum of a footer (512 bytes) or dynamic header. */
void t_fix_footer(uint8_t *footer);
void t_fix_header(uint8_t *header);
/* Patch a big-endian field in both footers of a dynamic image (or the one
 * footer of a fixed image) and fix their checksums. */
void t_patch_footers_be64(uint8_t *file, size_t len, size_t field, uint64_t v);
void t_patch_footers_be32(uint8_t *file, size_t len, size_t field, uint32_t v);

/*
 * A pass-through backend over inner.  With dir, open_sibling opens files
 * relative to that real folder through the POSIX backend (a memory copy of
 * a differencing child finds its parent on disk); without, it has none.
 * With own_inner its close also closes inner; otherwise inner stays the
 * caller's and survives vhd_close.
 */
struct vhd_io *t_wrap_io(struct vhd_io *inner, const char *dir, bool own_inner);

/* Make a temporary folder (mkdtemp); remove it with t_rmtree. */
char *t_mkdtemp(void);
void t_rmtree(const char *dir);
/* Read a whole file into a malloc'ed buffer; asserts success. */
uint8_t *t_read_file(const char *path, size_t *len);
/* Write (create or replace) a whole file; asserts success. */
void t_write_file(const char *path, const uint8_t *data, size_t len);
/* In dir: parent.vhd, dynamic, vsize bytes of t_fill(..., 3), so that a
 * sector wrongly read from elsewhere shows; child.vhd, differencing
 * (blocks of bs bytes), already holding a few sectors of blocks 0 and 2
 * (partial blocks, where new bits go into an existing bitmap).  `child`
 * gets the child's path; asserts success. */
void t_diff_pair(const char *dir, uint64_t vsize, uint32_t bs, char *child, size_t childlen);

/*
 * A small hand-built dynamic or differencing image with 4 KiB blocks
 * (legal to read, though we never create them), so that thousands of
 * mutations stay cheap.  TINY_ENTRIES BAT entries; blocks 0, 3, 5 and 15
 * are allocated, block 3 holds only sectors 0-2 and 5.  Data: block k's
 * sectors are t_fill(..., 500 + index) where index is the allocation
 * order (0..3); block 3's held sectors use 301 (sectors 0-2) and 401
 * (sector 5).  A differencing image names parent "p.vhd" (W2ru and MacX
 * locators) that does not exist.
 */
#define TINY_BS 4096u
#define TINY_VSIZE (15u * TINY_BS + 2048u)
#define TINY_ENTRIES 16u
uint8_t *t_tiny_image(enum vhd_type type, size_t *len);

#endif
