/* SPDX-License-Identifier: MIT */
/* Internal interfaces of libvhd: decoded on-disk structures and helpers. */
#ifndef VHD_INTERNAL_H
#define VHD_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvhd.h"
#include "platform.h"
#include "utf.h"

#define VHD_FOOTER_SIZE 512u
#define VHD_LEGACY_FOOTER_SIZE 511u
#define VHD_HEADER_SIZE 1024u
#define VHD_LOCATOR_COUNT 8
#define VHD_BAT_FREE 0xFFFFFFFFu
#define VHD_NO_OFFSET 0xFFFFFFFFFFFFFFFFull
#define VHD_FILE_FORMAT_VERSION 0x00010000u
#define VHD_HEADER_VERSION 0x00010000u
#define VHD_FEATURES_RESERVED 0x00000002u
/* Seconds between the Unix epoch and 2000-01-01 00:00:00 UTC. */
#define VHD_EPOCH_OFFSET 946684800
/* Sectors in the largest CHS geometry, 65535 * 16 * 255. */
#define VHD_MAX_CHS_SECTORS (65535ull * 16 * 255)
/* BAT entries we are willing to hold in memory (64 MiB). */
#define VHD_MAX_BAT_ENTRIES (1u << 24)
/* The locator codes the spec defines. */
#define VHD_PLAT_W2RU 0x57327275u
#define VHD_PLAT_W2KU 0x57326B75u
#define VHD_PLAT_MACX 0x4D616358u
#define VHD_PLAT_WI2R 0x57693272u
#define VHD_PLAT_WI2K 0x5769326Bu
#define VHD_PLAT_MAC  0x4D616320u

_Static_assert(VHD_FOOTER_SIZE == 512, "footer is one sector");

/* ---- footer.c --------------------------------------------------------- */

struct vhd_footer {
	uint32_t features;
	uint32_t format_version;
	uint64_t data_offset;
	uint32_t timestamp;
	uint8_t creator_app[4];
	uint32_t creator_version;
	uint32_t creator_host_os;
	uint64_t original_size;
	uint64_t current_size;
	struct vhd_geometry geometry;
	uint32_t disk_type;
	uint32_t checksum;
	uint8_t uuid[16];
	uint8_t saved_state;
};

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t checksum_off);
/* Decode without judging; returns false when the cookie is missing. */
bool vhd_footer_decode(const uint8_t *buf, size_t len, struct vhd_footer *f);
/* Structural validation (not the checksum); fills why on failure. */
int vhd_footer_validate(const struct vhd_footer *f, char *why, size_t why_len);
bool vhd_footer_checksum_ok(const uint8_t *buf, size_t len);
void vhd_footer_encode(const struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE]);
/* Encode the fields over buf, keeping its reserved bytes (85 on). */
void vhd_footer_encode_into(const struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE]);
struct vhd_geometry vhd_geometry_for_size(uint64_t size);
uint64_t vhd_geometry_size(struct vhd_geometry g);
/* The size readers see: current_size or the CHS size (vpc/qemu rule). */
uint64_t vhd_footer_virtual_size(const struct vhd_footer *f, bool *from_geometry);

/* ---- header.c --------------------------------------------------------- */

struct vhd_locator_entry {
	uint32_t code;
	uint32_t data_space;
	uint32_t data_length;
	uint64_t data_offset;
};

struct vhd_header {
	uint64_t data_offset;
	uint64_t table_offset;
	uint32_t header_version;
	uint32_t max_table_entries;
	uint32_t block_size;
	uint32_t checksum;
	uint8_t parent_uuid[16];
	uint32_t parent_timestamp;
	uint8_t parent_name[512];   /* UTF-16BE as stored */
	struct vhd_locator_entry loc[VHD_LOCATOR_COUNT];
};

bool vhd_header_decode(const uint8_t *buf, size_t len, struct vhd_header *h);
int vhd_header_validate(const struct vhd_header *h, char *why, size_t why_len);
bool vhd_header_checksum_ok(const uint8_t *buf);
void vhd_header_encode(const struct vhd_header *h, uint8_t buf[VHD_HEADER_SIZE]);
/* Bytes a locator reserves: data_space is in sectors per the spec, in
 * bytes as Virtual PC and Hyper-V write it; a value under 512 is sectors. */
uint64_t vhd_locator_space_bytes(const struct vhd_locator_entry *l);
/* One of the platform codes the specification defines? */
bool vhd_locator_known(uint32_t code);
/* Decode a locator's data into a '/'-free-form UTF-8 string as stored
 * (Windows paths keep their backslashes).  Returns 0 or -EINVAL. */
int vhd_locator_decode_path(uint32_t code, const uint8_t *data, size_t len, char *out,
			    size_t out_len);

/* ---- utf.c: see utf.h -------------------------------------------------- */

/* ---- format.c --------------------------------------------------------- */

/* snprintf for the subset %s %c %d %u %x %X (with l, ll, z, width, 0). */
int vhd_vformat(char *buf, size_t len, const char *fmt, va_list ap);
int vhd_format(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void vhd_set_error(struct vhd_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
size_t vhd_strlcpy(char *dst, const char *src, size_t len);
/* A short text for a (negative or positive) errno value. */
const char *vhd_strerror(int code);

/* ---- bitmap.c --------------------------------------------------------- */

static inline bool vhd_bitmap_test(const uint8_t *bm, uint32_t bit)
{
	return (bm[bit >> 3] >> (7 - (bit & 7))) & 1;
}

void vhd_bitmap_set_range(uint8_t *bm, uint32_t first, uint32_t count);
/* Length of the run of equal bits starting at first, at most max. */
uint32_t vhd_bitmap_run(const uint8_t *bm, uint32_t first, uint32_t max, bool *value);
bool vhd_bitmap_all_set(const uint8_t *bm, uint32_t bits);

/* ---- bitmap_cache.c: bitmaps changed since the last flush ------------- */

struct vhd_image;

struct vhd_dirty_bitmap {
	uint32_t blk;
	uint32_t first, last;   /* the bitmap's sectors that changed */
};

/* Block blk's sector bitmap as this handle sees it (the copy held since the
 * last flush, else the file's); sets the block's state from it. */
int vhd_bitmap_load(struct vhd_image *img, uint32_t blk, uint8_t *bits);
/* Hold bits as blk's bitmap until the next flush; bits first_bit..last_bit
 * changed (meta_lock held).  When the table is full, the data is synced
 * and every held bitmap written first. */
int vhd_bitmap_store(struct vhd_image *img, uint32_t blk, const uint8_t *bits, uint32_t first_bit,
		     uint32_t last_bit);
/* Write every held bitmap, to be called after the data is synced
 * (meta_lock held); the table is empty afterwards. */
int vhd_bitmap_write_dirty(struct vhd_image *img);
bool vhd_bitmap_any_dirty(const struct vhd_image *img);
/* Drop blk's held bitmap: the block is being freed (meta_lock held). */
void vhd_bitmap_forget(struct vhd_image *img, uint32_t blk);
void vhd_bitmap_cache_free(struct vhd_image *img);

/* ---- bat.c ------------------------------------------------------------ */

/* Entries the virtual size needs (ceil(size / block_size)). */
uint64_t vhd_bat_entries_needed(uint64_t virtual_size, uint32_t block_size);
/* Bytes the BAT takes on disk for n entries (whole sectors). */
uint64_t vhd_bat_bytes(uint64_t entries);
/* Bytes of a block's sector bitmap (whole sectors). */
uint32_t vhd_bitmap_bytes(uint32_t block_size);
/* The first block position at or after from whose data starts on a 4 KiB
 * boundary, as Hyper-V lays blocks out (page-aligned data reads faster). */
uint64_t vhd_block_slot(uint64_t from, uint32_t bitmap_bytes);
/* Heapsort (no libc qsort in the core): in place, O(n log n). */
void vhd_sort(void *base, size_t n, size_t size, bool (*less)(const void *a, const void *b));
void vhd_sort_u32(uint32_t *v, size_t n);

/* ---- io_util.c --------------------------------------------------------- */

/* Does [off, off + len) of io read as zeros?  1 yes, 0 no, or a negative
 * errno (-EFBIG when more than max_scan bytes of data would be read). */
int vhd_io_reads_zero(struct vhd_io *io, uint64_t off, uint64_t len, uint64_t max_scan);

/* ---- image.c ---------------------------------------------------------- */

enum vhd_block_state {
	VHD_BLOCK_UNKNOWN = 0,  /* bitmap not read yet */
	VHD_BLOCK_FULL = 1,     /* every bitmap bit set */
	VHD_BLOCK_PARTIAL = 2,
};

struct vhd_image {
	struct vhd_io *io;
	bool io_borrowed;           /* check.c: io belongs to the caller */
	bool read_only;
	unsigned open_flags;
	struct vhd_footer footer;
	uint8_t footer_raw[VHD_FOOTER_SIZE];  /* as read: reserved bytes kept */
	struct vhd_header header;
	unsigned footer_size;
	bool footer_from_copy;
	bool footer_checksum_ok;
	bool header_checksum_ok;
	bool size_from_geometry;
	uint64_t virtual_size;
	uint64_t file_size;         /* at open */
	uint64_t footer_offset;     /* where the end footer lives */
	uint64_t next_block;        /* file offset for the next new block */
	uint64_t used_end;          /* at open: the slot after the last block or metadata */
	uint64_t *moved;            /* resize.c: old offsets of blocks moved for a larger BAT */
	size_t moved_count;

	uint32_t *bat;              /* native-endian copy, bat_entries long */
	uint32_t bat_entries;       /* entries the virtual size uses */
	uint8_t *block_state;       /* enum vhd_block_state per block */
	uint8_t *bat_dirty;         /* BAT sectors to write at the next flush */
	bool bat_is_dirty;
	uint32_t block_size;
	uint32_t bitmap_bytes;
	uint32_t sectors_per_block;
	unsigned block_shift;       /* log2(block_size) */

	struct vhd_image *parent;
	char *parent_path;
	char *parent_error;

	/* Sector bitmaps changed since the last flush (bitmap_cache.c). */
	struct vhd_mutex *bitmap_lock;  /* guards the table; readers take it alone */
	struct vhd_dirty_bitmap *dirty_bitmaps;
	uint8_t *dirty_bits;        /* dirty_cap bitmaps of bitmap_bytes each */
	uint32_t dirty_count, dirty_cap;

	struct vhd_mutex *meta_lock;    /* allocation, bitmaps, footer */
	struct vhd_mutex *err_lock;
	char errmsg[512];
	char warnings[1024];
};

int vhd_img_error(struct vhd_image *img, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Take over the parent's last error (thread-safe). */
int vhd_img_parent_error(struct vhd_image *img, int code);
void vhd_img_warn(struct vhd_image *img, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Allocate the handle and its locks; owns io. */
struct vhd_image *vhd_image_alloc(struct vhd_io *io);
void vhd_image_free(struct vhd_image *img);
/* Fill the derived block geometry from the header (block size, bitmap). */
void vhd_image_set_block_size(struct vhd_image *img, uint32_t block_size);

/* ---- rw.c: shared with zero.c ------------------------------------------ */

static inline uint32_t vhd_bat_get(const struct vhd_image *img, uint32_t blk)
{
	return __atomic_load_n(&img->bat[blk], __ATOMIC_ACQUIRE);
}

static inline uint8_t vhd_state_get(const struct vhd_image *img, uint32_t blk)
{
	return __atomic_load_n(&img->block_state[blk], __ATOMIC_RELAXED);
}

static inline void vhd_state_set(struct vhd_image *img, uint32_t blk, uint8_t st)
{
	__atomic_store_n(&img->block_state[blk], st, __ATOMIC_RELAXED);
}

static inline uint64_t vhd_block_offset(const struct vhd_image *img, uint32_t blk)
{
	return (uint64_t)vhd_bat_get(img, blk) * VHD_SECTOR_SIZE;
}

int vhd_write_file(struct vhd_image *img, const void *buf, size_t len, uint64_t off);
/* What [off, off + len) reads as below this layer (zeros, or the parent). */
int vhd_read_below(struct vhd_image *img, void *buf, size_t len, uint64_t off);
/* Make room for len bytes of new blocks at once: one flush, not one per
 * growth step (meta_lock not held). */
int vhd_reserve_room(struct vhd_image *img, uint64_t len);
/* Claim len bytes of new file space at the end (meta_lock held). */
int vhd_claim_space(struct vhd_image *img, uint64_t len, uint64_t *off);
/* Rewrite the end footer and the copy at 0 from img->footer, then flush. */
int vhd_write_footers(struct vhd_image *img);
int vhd_copy_file_range(struct vhd_image *img, uint64_t from, uint64_t to, uint64_t len);
/* A flush barrier (nothing when opened with VHD_OPEN_NO_SYNC). */
int vhd_sync(struct vhd_image *img);
void vhd_mark_bat_dirty(struct vhd_image *img, uint32_t blk);
/*
 * Allocate block blk (meta_lock held, the block free) and write
 * [in_off, in_off + len) of it from buf.  With buf NULL the block is made
 * of zeros with every bitmap bit set, and no data is written.
 */
int vhd_allocate_block(struct vhd_image *img, uint32_t blk, uint32_t in_off, const uint8_t *buf,
		       size_t len, uint64_t voff);

/* ---- create.c ---------------------------------------------------------- */

/*
 * Fill h's parent fields (UUID, timestamp, name) and W2ru/MacX locators
 * whose data goes to loc_data and is to be written from file offset
 * first_loc_off on; *end gets the offset after the last.
 */
int vhd_fill_parent(struct vhd_header *h, const struct vhd_parent_ref *parent,
		    uint8_t (*loc_data)[2 * VHD_LOCATOR_MAX_PATH], uint64_t first_loc_off,
		    uint64_t *end, struct vhd_error *err);

/* ---- chain.c ---------------------------------------------------------- */

/* Decode parent locator entry i; false when unused or unreadable. */
bool vhd_read_locator(struct vhd_image *img, int i, struct vhd_locator *out);
/* Is uuid one of the first n entries of chain? */
bool vhd_chain_has_uuid(const uint8_t (*chain)[16], int n, const uint8_t *uuid);

int vhd_chain_open_parent(struct vhd_image *img, unsigned flags, int depth,
			  const uint8_t (*seen)[16], struct vhd_error *err);
int vhd_open_io_depth(struct vhd_io *io, unsigned flags, int depth,
		      const uint8_t (*seen)[16], struct vhd_image **out, struct vhd_error *err);

/* ---- checked arithmetic ------------------------------------------------ */

/* true when off + len fits and ends at or before limit */
static inline bool vhd_range_ok(uint64_t off, uint64_t len, uint64_t limit)
{
	return off <= limit && len <= limit - off;
}

static inline uint64_t vhd_min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

#endif
