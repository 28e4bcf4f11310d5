/* SPDX-License-Identifier: MIT */
/*
 * libvhd: read, write and create Microsoft Virtual Hard Disk (VHD) images.
 *
 * Conventions
 *   - Every function that can fail returns 0 (or a non-negative count) on
 *     success and a negative errno value on failure.  The detail is kept on
 *     the image handle (vhd_errmsg) or, for functions that have no handle yet
 *     (open, create), in a struct vhd_error the caller passes in (may be NULL).
 *   - The library never prints and never calls the C library's I/O: every
 *     byte goes through a struct vhd_io backend.  POSIX-file and memory
 *     backends are provided; others (UEFI) implement struct vhd_io_ops.
 *
 * Threads
 *   One struct vhd_image may be used from several threads at once.  Reads
 *   run concurrently.  Updates of metadata (block allocation, BAT entries,
 *   sector bitmaps, the footer) are serialized inside the library by a lock
 *   per image.  Writes to already-allocated data run concurrently; as on a
 *   real disk, the result of overlapping concurrent writes is one of them.
 *   vhd_flush makes every write that completed before it durable.
 *   vhd_close must not race with any other call on the same image.
 *   The last-error message is per image and guarded by a lock; with several
 *   threads, use vhd_errmsg_copy to read it.
 */
#ifndef LIBVHD_H
#define LIBVHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LIBVHD_BUILDING) && defined(__GNUC__)
#define VHD_API __attribute__((visibility("default")))
#else
#define VHD_API
#endif

#define LIBVHD_VERSION_MAJOR 1
#define LIBVHD_VERSION_MINOR 0
#define LIBVHD_VERSION_STRING "1.0.0"

#define VHD_SECTOR_SIZE 512u
/* Largest dynamic or differencing disk the specification allows. */
#define VHD_MAX_DYNAMIC_SIZE (2040ull << 30)
#define VHD_DEFAULT_BLOCK_SIZE (2u << 20)
#define VHD_MIN_CREATE_BLOCK_SIZE (512u << 10)
#define VHD_MAX_CREATE_BLOCK_SIZE (256u << 20)
/* Parent chains deeper than this are refused. */
#define VHD_MAX_CHAIN_DEPTH 64
/* Azure accepts fixed VHDs of whole MiB from 20 MiB to 32 TiB. */
#define VHD_AZURE_MIN_SIZE (20ull << 20)
#define VHD_AZURE_MAX_SIZE (32ull << 40)

enum vhd_type {
	VHD_TYPE_FIXED = 2,
	VHD_TYPE_DYNAMIC = 3,
	VHD_TYPE_DIFFERENCING = 4,
};

/* ---- Errors ---------------------------------------------------------- */

struct vhd_error {
	int code;               /* negative errno, 0 when no error */
	char message[1024];
};

/* ---- Byte-I/O backends ----------------------------------------------- */

struct vhd_io;

/*
 * A backend.  Offsets and lengths are in bytes.  pread must fill the whole
 * buffer (a read past the end of the file is -EIO); pwrite writes all of it.
 * discard, data_extent and open_sibling may be NULL (unsupported).
 */
struct vhd_io_ops {
	int (*pread)(struct vhd_io *io, void *buf, size_t len, uint64_t off);
	int (*pwrite)(struct vhd_io *io, const void *buf, size_t len, uint64_t off);
	int (*flush)(struct vhd_io *io);
	int (*size)(struct vhd_io *io, uint64_t *size);
	int (*truncate)(struct vhd_io *io, uint64_t size);
	/* Punch a hole: the range then reads as zeros. */
	int (*discard)(struct vhd_io *io, uint64_t off, uint64_t len);
	/* Describe the extent at off: *len bytes from off that are all data
	 * (*is_data = true) or all a hole that reads as zeros. */
	int (*data_extent)(struct vhd_io *io, uint64_t off, uint64_t *len, bool *is_data);
	/* Open, read-only, a regular file named by path: either absolute or
	 * relative to the folder holding this file ('/' separates components).
	 * Anything but a regular file (FIFO, device, folder) is refused.
	 * -EPERM means the host's rules forbid that file (see
	 * vhd_io_posix_confine); the core says so in its message. */
	int (*open_sibling)(struct vhd_io *io, const char *path, struct vhd_io **out);
	void (*close)(struct vhd_io *io);
	/* Copy len bytes inside the file from one place to another that does
	 * not overlap it, without passing them through memory.  May be NULL. */
	int (*copy)(struct vhd_io *io, uint64_t from, uint64_t to, uint64_t len);
};

struct vhd_io {
	const struct vhd_io_ops *ops;
	const char *name;       /* for messages: a path or a label */
};

/* Flags for vhd_io_posix_open. */
#define VHD_IO_RDWR   0x1u  /* open for writing; a regular file gets the writer's lock */
#define VHD_IO_CREATE 0x2u  /* create the file; fail if it exists */
#define VHD_IO_ANY_FILE 0x4u /* accept devices and pipes too */

/*
 * Open a file.  A writer holds an open-file-description lock on the file:
 * a second writer (in this or another process) gets -EBUSY.  Readers take
 * no lock.  Non-regular files are refused unless allow_special is set.
 */
VHD_API int vhd_io_posix_open(const char *path, unsigned flags, struct vhd_io **out,
			      struct vhd_error *err);
/*
 * Confine the parents a POSIX backend opens (open_sibling, so the whole
 * chain above an image opened over io) to the trees of the folders in dirs,
 * a NULL-terminated list (an empty list allows none).  A candidate is
 * resolved first (every symbolic link followed) and must lie inside one of
 * the folders; it is then opened without following a link, must be a
 * regular file, and must not be on a kernel file system (/proc, /sys,
 * ...).  Anything else is refused with -EPERM.  Each folder must exist.
 * Without this call parents may be anywhere (only special files are
 * refused).
 */
VHD_API int vhd_io_posix_confine(struct vhd_io *io, const char *const *dirs,
				 struct vhd_error *err);
/* A growable in-memory file holding a copy of data (data may be NULL). */
VHD_API int vhd_io_mem_open(const void *data, size_t len, struct vhd_io **out);
/* The current contents of a memory backend (valid until the next write). */
VHD_API const uint8_t *vhd_io_mem_data(struct vhd_io *io, size_t *len);
VHD_API void vhd_io_close(struct vhd_io *io);

/* ---- Opening images -------------------------------------------------- */

#define VHD_OPEN_RDWR              0x01u
/* Accept a parent whose UUID differs from the one the child records. */
#define VHD_OPEN_IGNORE_PARENT_ID  0x02u
/* Open a differencing image even when its parent cannot be opened: reads
 * that reach the parent then fail; vhd_parent_error says why. */
#define VHD_OPEN_PARENT_OPTIONAL   0x04u
/* Do not look for the parent at all. */
#define VHD_OPEN_NO_PARENT         0x08u
/* Never ask the backend to sync (qemu's cache=unsafe): for outputs that
 * are thrown away if the job fails, such as a new image being converted
 * into.  Write order is kept; durability is left to the OS. */
#define VHD_OPEN_NO_SYNC           0x10u

struct vhd_image;

/* Open the image at path (POSIX).  Parents are opened read-only. */
VHD_API int vhd_open(const char *path, unsigned flags, struct vhd_image **out,
		     struct vhd_error *err);
/* vhd_open, with the parent chain confined to the trees of parent_dirs
 * (NULL-terminated; NULL: parents may be anywhere), as
 * vhd_io_posix_confine.  For servers that open images others supply. */
VHD_API int vhd_open_confined(const char *path, unsigned flags, const char *const *parent_dirs,
			      struct vhd_image **out, struct vhd_error *err);
/* Open an image over a backend.  The image owns io from then on, also when
 * the call fails. */
VHD_API int vhd_open_io(struct vhd_io *io, unsigned flags, struct vhd_image **out,
			struct vhd_error *err);
/* Flush (if writable), give back the room reserved for new blocks, and
 * close the image and its parents.  Returns the first error of those steps. */
VHD_API int vhd_close(struct vhd_image *img);

/* Last error on this image (not thread-safe, see above). */
VHD_API const char *vhd_errmsg(struct vhd_image *img);
VHD_API void vhd_errmsg_copy(struct vhd_image *img, char *buf, size_t len);
/* Warnings collected while opening (newline-separated, "" when none). */
VHD_API const char *vhd_warnings(struct vhd_image *img);

/* ---- Creating images ------------------------------------------------- */

#define VHD_CREATE_AZURE 0x01u  /* fixed, whole-MiB size, 20 MiB to 32 TiB */
#define VHD_CREATE_NO_SYNC 0x02u /* no flush after creating; opened with VHD_OPEN_NO_SYNC */

struct vhd_create_params {
	enum vhd_type type;
	uint64_t size;          /* bytes, a multiple of 512; ignored for differencing */
	uint32_t block_size;    /* 0 = default (2 MiB) */
	unsigned flags;         /* VHD_CREATE_* */
	const char *parent;     /* differencing: path of the parent image */
};

/*
 * Create a new image at path (which must not exist) and, when out is not
 * NULL, return it open for writing.  A differencing child takes its size
 * from the parent and records the parent's UUID, timestamp, name and
 * W2ru (relative) and MacX (absolute file:// URL) locators.
 */
VHD_API int vhd_create(const char *path, const struct vhd_create_params *params,
		       struct vhd_image **out, struct vhd_error *err);

/* vhd_create, with the parent's own chain and the new child's parent
 * lookups confined to the trees of parent_dirs (see vhd_open_confined). */
VHD_API int vhd_create_confined(const char *path, const struct vhd_create_params *params,
				const char *const *parent_dirs, struct vhd_image **out,
				struct vhd_error *err);

/* Parent identity and paths for vhd_create_io. */
struct vhd_parent_ref {
	struct vhd_image *image;     /* the opened parent */
	const char *relative_path;   /* from the child's folder, '/' separated */
	const char *absolute_path;   /* absolute POSIX path, or NULL */
};

/* Create an image on an empty backend; the new image owns io.  A
 * differencing image returned in out is opened through the backend's
 * open_sibling, which must then exist. */
VHD_API int vhd_create_io(struct vhd_io *io, const struct vhd_create_params *params,
			  const struct vhd_parent_ref *parent, struct vhd_image **out,
			  struct vhd_error *err);

/* Validate creation parameters without creating anything. */
VHD_API int vhd_create_check_params(const struct vhd_create_params *params,
				    struct vhd_error *err);

/* ---- Data ------------------------------------------------------------ */

/* Read or write len bytes at any byte offset inside the virtual disk. */
VHD_API int vhd_pread(struct vhd_image *img, void *buf, size_t len, uint64_t off);
VHD_API int vhd_pwrite(struct vhd_image *img, const void *buf, size_t len, uint64_t off);
/* Make every completed write durable. */
VHD_API int vhd_flush(struct vhd_image *img);

#define VHD_ZERO_MAY_UNMAP 0x1u   /* free blocks / punch holes rather than write */
#define VHD_ZERO_FAST      0x2u   /* fail with -ENOTSUP rather than write zeros */

/*
 * Make [off, off + len) read as zeros.  Whole blocks of a dynamic image are
 * unmapped (BAT entry freed at the next flush, file space punched) with
 * VHD_ZERO_MAY_UNMAP; in a differencing image they get every bitmap bit
 * set over a data area that is a hole, so the parent no longer shows.
 * Partial blocks are written with zeros unless VHD_ZERO_FAST forbids it.
 */
VHD_API int vhd_zero(struct vhd_image *img, uint64_t off, uint64_t len, unsigned flags);
/*
 * Advisory: the range's contents may be dropped.  Whole blocks of a dynamic
 * (not differencing) image are unmapped and fixed images get holes
 * punched; anything else is left as it is.
 */
VHD_API int vhd_discard(struct vhd_image *img, uint64_t off, uint64_t len);

VHD_API uint64_t vhd_virtual_size(const struct vhd_image *img);
VHD_API enum vhd_type vhd_get_type(const struct vhd_image *img);
/* "fixed", "dynamic", "differencing" (or "unknown"). */
VHD_API const char *vhd_type_name(enum vhd_type type);

#define VHD_EXTENT_DATA 0x1u    /* some layer holds the range */
#define VHD_EXTENT_ZERO 0x2u    /* the range is known to read as zeros */

struct vhd_extent {
	uint64_t length;        /* bytes from the queried offset */
	unsigned flags;         /* VHD_EXTENT_* */
	int depth;              /* layer holding the data: 0 = this image,
				   1 = its parent, ...; when no layer holds it,
				   the bottom layer's depth (as qemu-img map) */
	uint64_t file_offset;   /* where the range starts in that layer's
				   file, UINT64_MAX when not stored */
};

/*
 * Describe the range starting at off, from metadata alone (BAT, sector
 * bitmaps, the parent chain, holes of a fixed image's file).  The extent
 * covers at most len bytes and at least one byte.
 */
VHD_API int vhd_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
			     struct vhd_extent *ext);

/* ---- Maintenance ------------------------------------------------------ */

/* Progress of a long operation: done of total units (bytes). */
typedef void (*vhd_progress_fn)(void *opaque, uint64_t done, uint64_t total);

#define VHD_RESIZE_SHRINK 0x1u   /* allow a smaller size */
#define VHD_RESIZE_FORCE  0x2u   /* shrink even where blocks hold data */

/*
 * Change the virtual size (a multiple of 512).  Growing a dynamic or
 * differencing image may move the first data blocks to make room for a
 * larger BAT.  Shrinking needs VHD_RESIZE_SHRINK and is refused when
 * allocated blocks lie past the new end, unless VHD_RESIZE_FORCE.
 * Crash-safe: a cut leaves the old or the new size (at worst footer copies
 * that disagree, which `vhdtool check --repair` settles).
 */
VHD_API int vhd_resize(struct vhd_image *img, uint64_t new_size, unsigned flags);

#define VHD_COMPACT_DRY_RUN 0x1u

struct vhd_compact_result {
	uint64_t blocks_freed;       /* all zero, or (in a child) equal to the parent */
	uint64_t sectors_released;   /* child sectors equal to the parent, bit cleared */
	uint64_t blocks_moved;       /* from the end of the file into freed space */
	uint64_t file_size_before;
	uint64_t file_size_after;    /* (expected, with VHD_COMPACT_DRY_RUN) */
};

/*
 * Reclaim space in place.  Dynamic: blocks that read as zeros are freed;
 * differencing: blocks whose every sector equals the parent's are freed
 * and equal sectors get their bit cleared; then blocks at the end of the
 * file move into the freed space and the file is cut.  Fixed: runs of
 * zeros become holes.  One pass over the data, bounded memory, crash-safe
 * (a cut leaves the image valid with the same contents).  No other call
 * may use the image meanwhile.
 */
VHD_API int vhd_compact(struct vhd_image *img, unsigned flags, vhd_progress_fn progress,
			void *opaque, struct vhd_compact_result *result);

/*
 * Write what img holds above target (an ancestor in img's chain, opened
 * separately for writing) into target: every sector a layer above target
 * holds.  Idempotent, so running it again after a cut finishes the job.
 * *merged (may be NULL) gets the bytes written.
 */
VHD_API int vhd_merge(struct vhd_image *img, struct vhd_image *target, vhd_progress_fn progress,
		      void *opaque, uint64_t *merged);

#define VHD_SET_PARENT_IGNORE_ID 0x1u

/* POSIX: relink the image to the parent at parent_path (see below). */
VHD_API int vhd_set_parent_path(struct vhd_image *img, const char *parent_path, unsigned flags,
				struct vhd_error *err);

/*
 * Point a differencing image (opened for writing, e.g. with
 * VHD_OPEN_NO_PARENT) at a new parent: new W2ru and MacX locators and
 * parent name.  The parent's UUID must be the one recorded, unless
 * VHD_SET_PARENT_IGNORE_ID, which records the new one.
 */
VHD_API int vhd_set_parent(struct vhd_image *img, const struct vhd_parent_ref *parent,
			   unsigned flags);

/* ---- Metadata -------------------------------------------------------- */

struct vhd_geometry {
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
};

struct vhd_info {
	enum vhd_type type;
	uint64_t virtual_size;        /* the size readers see */
	uint64_t current_size;        /* footer fields */
	uint64_t original_size;
	bool size_from_geometry;      /* virtual_size is C*H*S*512 (vpc/qemu rule) */
	uint64_t file_size;
	uint64_t allocated_bytes;     /* data blocks (with bitmaps) or fixed data */
	uint32_t block_size;          /* 0 for fixed images */
	uint32_t max_table_entries;
	uint32_t allocated_blocks;
	uint8_t uuid[16];
	char creator_app[5];
	uint32_t creator_version;
	uint32_t creator_host_os;
	struct vhd_geometry geometry;
	uint32_t timestamp;           /* seconds since 2000-01-01 UTC */
	uint32_t features;
	uint32_t footer_checksum;
	bool footer_checksum_ok;
	bool header_checksum_ok;      /* true for fixed images */
	unsigned footer_size;         /* 512, or 511 for a legacy footer */
	bool footer_from_copy;        /* end footer damaged, copy at 0 in use */
	bool read_only;
	uint64_t table_offset;
	uint8_t parent_uuid[16];
	uint32_t parent_timestamp;
	char parent_name[1024];       /* the header's Unicode name, as UTF-8 */
};

VHD_API int vhd_get_info(struct vhd_image *img, struct vhd_info *info);

/* A UUID as text, bytes in stored order: "5fa21a55-f394-aa4d-...". */
VHD_API void vhd_uuid_text(const uint8_t uuid[16], char out[37]);

/* Seconds since the Unix epoch for a VHD timestamp. */
VHD_API int64_t vhd_timestamp_to_unix(uint32_t ts);

#define VHD_LOCATOR_MAX_PATH 1024

struct vhd_locator {
	char code[5];                 /* "W2ru", "W2ku", "MacX", ... */
	uint32_t data_space;          /* as stored */
	uint32_t data_length;
	uint64_t data_offset;
	char path[VHD_LOCATOR_MAX_PATH]; /* decoded, UTF-8; "" when undecodable */
	bool valid;
};

/* Number of used parent locator entries (0 for non-differencing images). */
VHD_API int vhd_locator_count(struct vhd_image *img);
VHD_API int vhd_get_locator(struct vhd_image *img, int index, struct vhd_locator *loc);

/* The opened parent, or NULL. */
VHD_API struct vhd_image *vhd_parent(struct vhd_image *img);
/* The path the parent was opened by, or NULL. */
VHD_API const char *vhd_parent_path(struct vhd_image *img);
/* Why the parent could not be opened (VHD_OPEN_PARENT_OPTIONAL), or NULL. */
VHD_API const char *vhd_parent_error(struct vhd_image *img);
/* The backend's name for this image's file. */
VHD_API const char *vhd_filename(struct vhd_image *img);

/* ---- Consistency check ------------------------------------------------ */

enum vhd_finding_kind {
	VHD_FINDING_CORRUPTION = 1,
	VHD_FINDING_LEAK = 2,
	VHD_FINDING_WARNING = 3,
	VHD_FINDING_REPAIR = 4,         /* what vhd_repair did (or would do) */
};

struct vhd_finding {
	enum vhd_finding_kind kind;
	char structure[16];     /* "footer", "footer-copy", "header", "bat", ... */
	char field[32];
	uint64_t offset;        /* file offset of the field */
	char message[224];
};

struct vhd_check_report {
	bool complete;          /* false: the check could not finish */
	unsigned corruptions;
	unsigned leaks;
	unsigned warnings;
	uint64_t leaked_bytes;
	enum vhd_type type;     /* 0 when the footer could not be read */
	size_t count;           /* findings stored (at most VHD_CHECK_MAX_FINDINGS) */
	size_t dropped;         /* findings not stored */
	struct vhd_finding *findings;
};

#define VHD_CHECK_MAX_FINDINGS 256

/*
 * Check an image file's structure.  Never writes.  With check_parent, a
 * differencing image's parent is resolved through io's open_sibling and
 * its identity compared.  Returns 0 when the check ran (see the report),
 * a negative errno when it could not run at all.
 */
VHD_API int vhd_check_io(struct vhd_io *io, bool check_parent, struct vhd_check_report *report);
VHD_API int vhd_check(const char *path, struct vhd_check_report *report, struct vhd_error *err);
VHD_API void vhd_check_report_free(struct vhd_check_report *report);

#define VHD_REPAIR_DRY_RUN 0x1u

/*
 * Repair what can be proven wrong: a damaged end footer from the copy at
 * offset 0 (and the other way), a checksum when the structure around it
 * validates, BAT entries that point outside the data area or into the
 * metadata (their virtual ranges are named), leaked space after the last
 * block.  Data it cannot prove wrong is never touched.  The actions (or,
 * with VHD_REPAIR_DRY_RUN, the plan) come back as VHD_FINDING_REPAIR
 * findings; report->complete is false when nothing trustworthy was found to
 * rebuild from.  Run vhd_check afterwards for the verdict.
 */
VHD_API int vhd_repair_io(struct vhd_io *io, unsigned flags, struct vhd_check_report *report);
VHD_API int vhd_repair(const char *path, unsigned flags, struct vhd_check_report *report,
		       struct vhd_error *err);

#ifdef __cplusplus
}
#endif

#endif /* LIBVHD_H */
