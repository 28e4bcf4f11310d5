/* SPDX-License-Identifier: MIT */
/*
 * struct vhd_io over a file mapped on the outer partition.  Every byte goes
 * through DiskIo at the file's extents: the firmware's file system driver
 * is never entered again once the file is mapped (entering it from BlockIo
 * callbacks leaves the TPL raised; docs/vhdboot.md).
 */
#include "bootconf.h"
#include "efi_glue.h"

struct file_io {
	struct vhd_io base;
	struct vb_volume *vol;
	struct vb_file_map map;
	bool writable;
	char path[VB_PATH_MAX];
};

static struct file_io *fio(struct vhd_io *io)
{
	return (struct file_io *)io;
}

/* Walk [off, off + len) of the file extent by extent. */
static int file_rw(struct file_io *f, void *buf, size_t len, uint64_t off, bool write)
{
	uint8_t *p = buf;
	if (off > f->map.size || len > f->map.size - off)
		return -EIO;
	while (len) {
		const struct vb_extent *e = vb_file_map_find(&f->map, off);
		if (!e)
			return -EIO;
		uint64_t in = off - e->file_offset;
		size_t n = (size_t)(e->length - in < len ? e->length - in : len);
		if (off >= f->map.valid_length) {
			/* exFAT: past the valid data length the file reads as zeros;
			 * writing there would need the directory entry updated. */
			if (write)
				return -EROFS;
			if (n > f->map.size - off)
				n = (size_t)(f->map.size - off);
			memset(p, 0, n);
		} else {
			if (n > f->map.valid_length - off)
				n = (size_t)(f->map.valid_length - off);
			EFI_DISK_IO *d = f->vol->disk_io;
			EFI_STATUS st = write ? d->WriteDisk(d, f->vol->media_id, e->disk_offset + in, n, p)
					      : d->ReadDisk(d, f->vol->media_id, e->disk_offset + in, n, p);
			if (st != EFI_SUCCESS)
				return -EIO;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int file_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	return file_rw(fio(io), buf, len, off, false);
}

static int file_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off)
{
	if (!fio(io)->writable)
		return -EROFS;
	return file_rw(fio(io), (void *)buf, len, off, true);
}

static int file_flush(struct vhd_io *io)
{
	if (!fio(io)->writable)
		return 0;
	EFI_BLOCK_IO *b = fio(io)->vol->block_io;
	return b->FlushBlocks(b) == EFI_SUCCESS ? 0 : -EIO;
}

static int file_size(struct vhd_io *io, uint64_t *size)
{
	*size = fio(io)->map.size;
	return 0;
}

static int file_truncate(struct vhd_io *io, uint64_t size)
{
	(void)io;
	(void)size;
	return -EROFS; /* the loader never grows or cuts the file */
}

static int file_open_sibling(struct vhd_io *io, const char *path, struct vhd_io **out)
{
	char full[VB_PATH_MAX];
	char err[160];
	if (path[0] == '/' || path[0] == '\\') {
		if (vhd_format(full, sizeof(full), "%s", path) >= (int)sizeof(full))
			return -ENAMETOOLONG;
	} else {
		/* Relative to the folder of this file. */
		const char *me = fio(io)->path;
		size_t dir = 0;
		for (size_t i = 0; me[i]; i++)
			if (me[i] == '\\' || me[i] == '/')
				dir = i + 1;
		if (dir + strlen(path) + 1 > sizeof(full))
			return -ENAMETOOLONG;
		memcpy(full, me, dir);
		memcpy(full + dir, path, strlen(path) + 1);
	}
	return vb_file_io_open(fio(io)->vol, full, false, out, err, sizeof(err));
}

static void file_close(struct vhd_io *io)
{
	vb_file_map_free(&fio(io)->map);
	vhd_free(io);
}

static const struct vhd_io_ops file_ops = {
	.pread = file_pread,
	.pwrite = file_pwrite,
	.flush = file_flush,
	.size = file_size,
	.truncate = file_truncate,
	.open_sibling = file_open_sibling,
	.close = file_close,
};

int vb_file_io_open(struct vb_volume *vol, const char *path, bool writable, struct vhd_io **out,
		    char *err, size_t errlen)
{
	struct file_io *f = vhd_calloc(1, sizeof(*f));
	if (!f) {
		vhd_format(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (vhd_format(f->path, sizeof(f->path), "%s", path) >= (int)sizeof(f->path)) {
		vhd_free(f);
		vhd_format(err, errlen, "path too long: %s", path);
		return -ENAMETOOLONG;
	}
	for (char *c = f->path; *c; c++)
		if (*c == '/')
			*c = '\\';
	char why[160] = "";
	int r = vb_file_map_open(&vol->disk, f->path, &f->map, why, sizeof(why));
	if (r < 0) {
		vhd_format(err, errlen, "%s: %s", f->path, why[0] ? why : "cannot map the file");
		vhd_free(f);
		return r;
	}
	f->base.ops = &file_ops;
	f->base.name = f->path;
	f->vol = vol;
	f->writable = writable;
	*out = &f->base;
	return 0;
}

const struct vb_file_map *vb_file_io_map(struct vhd_io *io)
{
	return &fio(io)->map;
}
