/* SPDX-License-Identifier: MIT */
/*
 * Handing the disk over to the OS (docs/handoff.md): after ExitBootServices
 * our BlockIo is gone, so the kernel must find the virtual disk again.
 *   linear   the kernel command line (or an EFI variable) carries the
 *            file's extents and the virtual disk's dm-linear table
 *   nbd      the command line names the host partition and the file; the
 *            initramfs serves it with vhd-nbd
 *   ramdisk  the whole disk in reserved memory, registered with
 *            EFI_RAM_DISK_PROTOCOL (Linux: /dev/pmem0)
 */
#include <stdarg.h>

#include "bootconf.h"
#include "efi_glue.h"

#define SECTOR 512u

/* A text buffer that fails once, at the first overflow. */
struct text {
	char *buf;
	size_t len, cap;
	bool full;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	if (t->full)
		return;
	va_start(ap, fmt);
	int n = vhd_vformat(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->cap - t->len) {
		t->full = true;
		t->buf[t->len] = '\0';
		return;
	}
	t->len += (size_t)n;
}

/* The segment list being built: merges a segment into the previous one
 * when both ends continue it. */
struct seg_list {
	struct text *out;
	uint64_t v, n, h;       /* pending segment, sectors */
	bool pending;
	unsigned count;
};

static void seg_emit(struct seg_list *l)
{
	if (l->pending)
		text_add(l->out, "%s%llu:%llu:%llu", l->count++ ? "," : "", (unsigned long long)l->v,
			 (unsigned long long)l->n, (unsigned long long)l->h);
	l->pending = false;
}

static void seg_add(struct seg_list *l, uint64_t v, uint64_t n, uint64_t h)
{
	if (l->pending && l->v + l->n == v && l->h + l->n == h) {
		l->n += n;
		return;
	}
	seg_emit(l);
	l->v = v, l->n = n, l->h = h, l->pending = true;
}

/* Map file bytes [off, off + len) to host sectors, segment by segment. */
static int add_file_range(struct seg_list *l, const struct vb_file_map *map, uint64_t virt,
			  uint64_t off, uint64_t len)
{
	while (len) {
		const struct vb_extent *e = vb_file_map_find(map, off);
		if (!e || (e->disk_offset + (off - e->file_offset)) % SECTOR)
			return -EIO;
		uint64_t n = e->file_offset + e->length - off;
		if (n > len)
			n = len;
		seg_add(l, virt / SECTOR, n / SECTOR, (e->disk_offset + (off - e->file_offset)) / SECTOR);
		virt += n, off += n, len -= n;
	}
	return 0;
}

/* The dm table of the virtual disk: fixed images map straight through;
 * dynamic ones need every block allocated with every sector bit set. */
static int linear_table(struct vhd_image *img, const struct vb_file_map *map, struct text *out,
			char *err, size_t errlen)
{
	struct seg_list l = { .out = out };
	uint64_t vsize = img->virtual_size;
	if (img->footer.disk_type == VHD_TYPE_FIXED)
		return add_file_range(&l, map, 0, 0, vsize) < 0 ? -EIO : (seg_emit(&l), 0);
	if (img->footer.disk_type != VHD_TYPE_DYNAMIC) {
		vhd_format(err, errlen, "handoff=linear needs a fixed (or fully allocated dynamic) VHD, not a differencing one; use handoff=nbd");
		return -EINVAL;
	}
	uint8_t *bits = vhd_malloc(img->bitmap_bytes);
	if (!bits)
		return -ENOMEM;
	int r = 0;
	for (uint32_t b = 0; b < img->bat_entries && r == 0; b++) {
		uint64_t virt = (uint64_t)b * img->block_size;
		uint64_t n = vsize - virt < img->block_size ? vsize - virt : img->block_size;
		if (vhd_bat_get(img, b) == VHD_BAT_FREE) {
			vhd_format(err, errlen, "block %u (at %llu MiB) is not allocated; handoff=linear needs every block (vhdtool convert -O fixed, or vhdtool preallocate)",
				   b, (unsigned long long)(virt >> 20));
			r = -EINVAL;
			break;
		}
		r = vhd_bitmap_load(img, b, bits);
		for (uint64_t s = 0; r == 0 && s < n / SECTOR; s++)
			if (!(bits[s / 8] & (0x80u >> (s % 8)))) {
				vhd_format(err, errlen, "block %u has sectors that read from no data; handoff=linear needs them all allocated (vhdtool preallocate)",
					   b);
				r = -EINVAL;
			}
		if (r == 0)
			r = add_file_range(&l, map, virt, vhd_block_offset(img, b) + img->bitmap_bytes, n);
	}
	vhd_free(bits);
	seg_emit(&l);
	if (r == -EIO)
		vhd_format(err, errlen, "the VHD file's extents are not sector aligned");
	return r;
}

static void partuuid_text(const uint8_t *g, char *out, size_t len)
{
	vhd_format(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		   g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12],
		   g[13], g[14], g[15]);
}

static const CHAR16 handoff_var[] = L"VhdbootHandoff";
#define LISTS_IN_VARIABLE " vhd.fext=efivar vhd.dm=efivar"

/* Does the user's cmdline= plus params_len bytes of ours fit the kernel's
 * line?  Refused here, before anything is stored, rather than cut by the
 * kernel. */
static int kernel_line_fits(const struct vb_entry *e, size_t params_len, char *err, size_t errlen)
{
	size_t n = strlen(e->cmdline) + params_len + 1;
	if (n <= VB_KERNEL_CMDLINE_SIZE)
		return 0;
	vhd_format(err, errlen, "the kernel command line would be %u bytes; the kernel keeps %u",
		   (unsigned)n, VB_KERNEL_CMDLINE_SIZE);
	return -E2BIG;
}

int vb_handoff_params(const struct vb_entry *e, struct vb_volume *vol, struct vhd_image *img,
		      struct vhd_io *io, char *out, size_t outlen, char *err, size_t errlen)
{
	uint8_t guid[16];
	char uuid[40], path[VB_PATH_MAX];
	const struct vb_file_map *map = vb_file_io_map(io);
	struct text t = { out, 0, outlen, false };

	out[0] = '\0';
	if (e->handoff == VB_HANDOFF_NONE)
		return 0;
	if (e->handoff == VB_HANDOFF_RAMDISK) {
		text_add(&t, " vhd.handoff=ramdisk");
		return t.full ? -E2BIG : kernel_line_fits(e, t.len, err, errlen);
	}
	if (vb_volume_partuuid(vol, guid) < 0) {
		vhd_format(err, errlen, "handoff=%s needs the VHD on a GPT partition (the OS finds it by PARTUUID)",
			   vb_handoff_name(e->handoff));
		return -EINVAL;
	}
	partuuid_text(guid, uuid, sizeof(uuid));
	vhd_format(path, sizeof(path), "%s", e->vhd);
	for (char *c = path; *c; c++)
		if (*c == '\\')
			*c = '/';
	/* A path with blanks is quoted, as the kernel's next_arg() and
	 * vhd-handoff split words (bootconf refuses '"' in paths). */
	bool blank = false;
	for (const char *c = path; *c; c++)
		blank |= *c == ' ' || *c == '\t';
	text_add(&t, " vhd.handoff=%s vhd.host=PARTUUID=%s vhd.path=%s%s%s vhd.size=%llu",
		 vb_handoff_name(e->handoff), uuid, blank ? "\"" : "", path, blank ? "\"" : "",
		 (unsigned long long)map->size);
	if (e->handoff == VB_HANDOFF_NBD)
		return t.full ? -E2BIG : kernel_line_fits(e, t.len, err, errlen);
	if (kernel_line_fits(e, t.len + strlen(LISTS_IN_VARIABLE), err, errlen) < 0)
		return -E2BIG;

	if (map->valid_length < map->size) {
		vhd_format(err, errlen, "%s is not fully written on its exFAT volume (valid length %llu of %llu bytes); handoff=linear cannot map it",
			   e->vhd, (unsigned long long)map->valid_length, (unsigned long long)map->size);
		return -EINVAL;
	}
	size_t cap = 256u << 10;
	char *lists = vhd_malloc(cap);
	if (!lists)
		return -ENOMEM;
	struct text l = { lists, 0, cap, false };
	struct seg_list fext = { .out = &l };
	text_add(&l, "vhd.fext=");
	for (size_t i = 0; i < map->count; i++) {
		const struct vb_extent *x = &map->extents[i];
		uint64_t len = (x->length + SECTOR - 1) / SECTOR;
		seg_add(&fext, x->file_offset / SECTOR, len, x->disk_offset / SECTOR);
	}
	seg_emit(&fext);
	text_add(&l, " vhd.dm=");
	int r = linear_table(img, map, &l, err, errlen);
	if (r == 0 && l.full) {
		vhd_format(err, errlen, "%s is too fragmented to hand over (more than %u KiB of extents)",
			   e->vhd, (unsigned)(cap >> 10));
		r = -E2BIG;
	}
	if (r == 0 && strlen(e->cmdline) + t.len + 1 + l.len + 1 <= VB_KERNEL_CMDLINE_SIZE) {
		text_add(&t, " %s", lists);
	} else if (r == 0) {
		EFI_STATUS st = RT->SetVariable((CHAR16 *)handoff_var, &vb_vendor_guid,
						EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS,
						l.len, lists);
		if (st != EFI_SUCCESS) {
			vhd_format(err, errlen, "cannot store the extent list in an EFI variable (status %llx)",
				   (unsigned long long)st);
			r = -EIO;
		} else {
			text_add(&t, LISTS_IN_VARIABLE);
		}
	}
	vhd_free(lists);
	if (r == 0 && t.full)
		r = -E2BIG;
	if (r == -E2BIG && !err[0])
		vhd_format(err, errlen, "the kernel command line is too long");
	return r;
}

/* ---- ramdisk ------------------------------------------------------------ */

static EFI_GUID ram_disk_protocol = { 0xab38a0df, 0x6873, 0x44a9,
				      { 0x87, 0xe6, 0xd4, 0xeb, 0x56, 0x14, 0x84, 0x49 } };
static EFI_GUID virtual_disk_type = { 0x77ab535a, 0x45fc, 0x624b,
				      { 0x55, 0x60, 0xf7, 0xb2, 0x81, 0xd1, 0xf9, 0x6e } };

struct ram_disk_protocol_if {
	EFI_STATUS(EFIAPI *Register)(UINT64 base, UINT64 size, EFI_GUID *type,
				     EFI_DEVICE_PATH *parent, EFI_DEVICE_PATH **path);
	EFI_STATUS(EFIAPI *Unregister)(EFI_DEVICE_PATH *path);
};

static struct ram_disk_protocol_if *ram_disk_protocol_if(void)
{
	struct ram_disk_protocol_if *rd = NULL;
	if (BS->LocateProtocol(&ram_disk_protocol, NULL, (void **)&rd) != EFI_SUCCESS)
		return NULL;
	return rd;
}

/* The handle whose BlockIo sits exactly at path, or NULL. */
static EFI_HANDLE ramdisk_handle(EFI_DEVICE_PATH *path)
{
	EFI_DEVICE_PATH *rest = path;
	EFI_HANDLE h;
	if (BS->LocateDevicePath(&gEfiBlockIoProtocolGuid, &rest, &h) != EFI_SUCCESS ||
	    !IsDevicePathEnd(rest))
		return NULL;
	return h;
}

EFI_STATUS vb_ramdisk_register(struct vhd_image *img, struct vb_ramdisk *disk, char *err,
			       size_t errlen)
{
	struct ram_disk_protocol_if *rd = ram_disk_protocol_if();
	if (!rd) {
		vhd_format(err, errlen, "this firmware has no EFI_RAM_DISK_PROTOCOL; handoff=ramdisk is impossible here");
		return EFI_UNSUPPORTED;
	}
	uint64_t size = vhd_virtual_size(img);
	UINTN pages = (UINTN)((size + 4095) / 4096);
	EFI_PHYSICAL_ADDRESS base = 0;
	/* Reserved memory: edk2 then publishes an ACPI NFIT and Linux shows
	 * the disk as /dev/pmem0. */
	if (BS->AllocatePages(AllocateAnyPages, EfiReservedMemoryType, pages, &base) != EFI_SUCCESS) {
		vhd_format(err, errlen, "not enough memory: the disk needs %llu MiB",
			   (unsigned long long)((size + (1u << 20) - 1) >> 20));
		return EFI_OUT_OF_RESOURCES;
	}
	vb_say("copying the %llu MiB disk into memory", (unsigned long long)(size >> 20));
	uint8_t *mem = (uint8_t *)(uintptr_t)base;
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < (4u << 20) ? (size_t)(size - off) : (4u << 20);
		if (vhd_pread(img, mem + off, n, off) < 0) {
			vhd_format(err, errlen, "reading the VHD into memory failed at %llu: %s",
				   (unsigned long long)off, vhd_errmsg(img));
			BS->FreePages(base, pages);
			return EFI_DEVICE_ERROR;
		}
		off += n;
	}
	EFI_DEVICE_PATH *path = NULL;
	EFI_STATUS st = rd->Register(base, size, &virtual_disk_type, NULL, &path);
	if (st != EFI_SUCCESS) {
		vhd_format(err, errlen, "EFI_RAM_DISK_PROTOCOL refused the disk (status %llx)",
			   (unsigned long long)st);
		BS->FreePages(base, pages);
		return st;
	}
	/* edk2 connects the disk's drivers itself; the spec does not ask it. */
	EFI_HANDLE h = ramdisk_handle(path);
	if (h)
		BS->ConnectController(h, NULL, NULL, TRUE);
	disk->base = base;
	disk->pages = pages;
	disk->path = path;
	return EFI_SUCCESS;
}

/* Left registered, the disk would keep its memory from whatever the boot
 * manager starts next, and an OS would find it as a persistent-memory
 * disk (the NFIT). */
EFI_STATUS vb_ramdisk_unregister(struct vb_ramdisk *disk)
{
	struct ram_disk_protocol_if *rd = ram_disk_protocol_if();
	if (!rd)
		return EFI_UNSUPPORTED;
	/* edk2's Unregister reports success even when a driver on the disk
	 * refused to stop: stop them first, and free the memory only once no
	 * BlockIo answers at the disk's path.  edk2 also frees the path it
	 * returned from Register (the spec leaves it to the caller): look
	 * with a copy, and never free the original. */
	EFI_DEVICE_PATH *copy = DuplicateDevicePath(disk->path);
	if (!copy)
		return EFI_OUT_OF_RESOURCES;
	EFI_HANDLE h = ramdisk_handle(copy);
	EFI_STATUS st = h ? BS->DisconnectController(h, NULL, NULL) : EFI_SUCCESS;
	if (st == EFI_SUCCESS)
		st = rd->Unregister(disk->path);
	if (st == EFI_SUCCESS && ramdisk_handle(copy))
		st = EFI_ACCESS_DENIED;
	FreePool(copy);
	if (st != EFI_SUCCESS)
		return st;
	BS->FreePages(disk->base, disk->pages);
	disk->path = NULL;
	return EFI_SUCCESS;
}
