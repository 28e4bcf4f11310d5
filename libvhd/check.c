/* SPDX-License-Identifier: MIT */
/*
 * Consistency check.  Works on the raw file, not through vhd_open, so it
 * can go on past the first problem and name each one.  Never writes.
 */
#include <errno.h>
#include <string.h>

#include "endian.h"
#include "internal.h"

struct checker {
	struct vhd_io *io;
	struct vhd_check_report *rep;
	uint64_t size;
};

__attribute__((format(printf, 6, 7)))
static void finding(struct checker *c, enum vhd_finding_kind kind, const char *structure,
		    const char *field, uint64_t offset, const char *fmt, ...)
{
	struct vhd_check_report *rep = c->rep;
	switch (kind) {
	case VHD_FINDING_CORRUPTION:
		rep->corruptions++;
		break;
	case VHD_FINDING_LEAK:
		rep->leaks++;
		break;
	case VHD_FINDING_WARNING:
	case VHD_FINDING_REPAIR:
		rep->warnings++;
		break;
	}
	if (rep->count >= VHD_CHECK_MAX_FINDINGS || !rep->findings) {
		rep->dropped++;
		return;
	}
	struct vhd_finding *f = &rep->findings[rep->count++];
	f->kind = kind;
	vhd_strlcpy(f->structure, structure, sizeof(f->structure));
	vhd_strlcpy(f->field, field, sizeof(f->field));
	f->offset = offset;
	va_list ap;
	va_start(ap, fmt);
	vhd_vformat(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
}

#define CORRUPT(c, s, fld, off, ...) finding(c, VHD_FINDING_CORRUPTION, s, fld, off, __VA_ARGS__)
#define WARN(c, s, fld, off, ...) finding(c, VHD_FINDING_WARNING, s, fld, off, __VA_ARGS__)

/* Judge one footer position; true when it can be used. */
static bool check_footer(struct checker *c, const char *structure, uint64_t off, unsigned size,
			 struct vhd_footer *f, uint8_t *raw)
{
	char why[160];

	memset(raw, 0, VHD_FOOTER_SIZE);
	if (c->io->ops->pread(c->io, raw, size, off) < 0) {
		CORRUPT(c, structure, "cookie", off, "cannot read %u bytes at offset %llu", size,
			(unsigned long long)off);
		return false;
	}
	if (!vhd_footer_decode(raw, size, f)) {
		CORRUPT(c, structure, "cookie", off, "no 'conectix' cookie");
		return false;
	}
	bool ok = true;
	if (vhd_footer_validate(f, why, sizeof(why)) < 0) {
		CORRUPT(c, structure, "footer", off, "%s", why);
		ok = false;
	}
	uint32_t sum = vhd_checksum(raw, size, 64);
	if (sum != f->checksum)
		CORRUPT(c, structure, "checksum", off + 64,
			"checksum is 0x%08x, the footer's bytes give 0x%08x", f->checksum, sum);
	if (!(f->features & VHD_FEATURES_RESERVED))
		WARN(c, structure, "features", off + 8,
		     "the reserved feature bit (0x2) that the specification requires is clear");
	return ok;
}

/* Gaps below a page are block alignment (Hyper-V aligns block data to
 * 4 KiB, and so do we), not lost space. */
#define LEAK_MIN 4096u

struct region {
	uint64_t start, end;
	const char *what;
	bool is_block;
	uint32_t block;     /* BAT index of a data block */
};

static bool region_less(const void *a, const void *b)
{
	return ((const struct region *)a)->start < ((const struct region *)b)->start;
}

/* Does [off, off + len) read as zeros?  At most 1 GiB of data is read. */
static bool reads_as_zero(struct checker *c, uint64_t off, uint64_t len)
{
	return vhd_io_reads_zero(c->io, off, len, 1ull << 30) == 1;
}

static void check_parent(struct checker *c, const struct vhd_footer *f, const struct vhd_header *h)
{
	struct vhd_image *img = vhd_image_alloc(c->io);
	struct vhd_error err;

	if (!img) {
		c->rep->complete = false;
		return;
	}
	img->io_borrowed = true;
	img->footer = *f;
	img->header = *h;
	img->file_size = c->size;
	int r = vhd_chain_open_parent(img, 0, 0, NULL, &err);
	if (r == -ENOENT || r == -ENODEV || r == -ENOTSUP) {
		/* The file is sound but its chain cannot be checked. */
		WARN(c, "parent", "locator", 0, "%s", err.message);
		c->rep->complete = false;
	} else if (r < 0) {
		CORRUPT(c, "parent", "locator", 0, "%s", err.message);
	}
	/* Warnings (timestamp) become findings, one per line. */
	for (char *w = img->warnings; *w;) {
		char *nl = strchr(w, '\n');
		if (nl)
			*nl = '\0';
		WARN(c, "parent", "timestamp", 512 + 56, "%s", w);
		if (!nl)
			break;
		w = nl + 1;
	}
	vhd_image_free(img);
}

/*
 * A dynamic image's sector with bit 0 reads as zeros per the specification,
 * but qemu ignores the bitmap and reads the stored bytes: where such
 * sectors exist, readers may disagree.  One warning names the first block.
 */
static void check_dynamic_bitmaps(struct checker *c, const struct vhd_header *h,
				  const uint8_t *bat, uint64_t entries, uint64_t footer_off)
{
	uint32_t bytes = vhd_bitmap_bytes(h->block_size);
	uint64_t span = (uint64_t)bytes + h->block_size;
	uint8_t *bits = vhd_malloc(bytes);
	uint64_t partial = 0, first_at = 0;
	uint32_t first = 0;

	if (!bits) {
		c->rep->complete = false;
		return;
	}
	for (uint32_t i = 0; i < entries; i++) {
		uint32_t e = vhd_be32(bat + 4 * (size_t)i);
		uint64_t off = (uint64_t)e * VHD_SECTOR_SIZE;
		if (e == VHD_BAT_FREE || !vhd_range_ok(off, span, footer_off))
			continue;
		if (c->io->ops->pread(c->io, bits, bytes, off) < 0) {
			CORRUPT(c, "bitmap", "bitmap", off, "cannot read the sector bitmap of block %u", i);
			continue;
		}
		if (!vhd_bitmap_all_set(bits, h->block_size / VHD_SECTOR_SIZE) && partial++ == 0) {
			first = i;
			first_at = off;
		}
	}
	if (partial)
		WARN(c, "bitmap", "bits", first_at,
		     "%llu blocks (the first is block %u) mark sectors absent; they read as zeros here, but qemu reads the stored bytes",
		     (unsigned long long)partial, first);
	vhd_free(bits);
}

static void check_dynamic(struct checker *c, const struct vhd_footer *f, uint64_t footer_off,
			  bool check_parent_image)
{
	uint8_t raw[VHD_HEADER_SIZE];
	struct vhd_header h;
	uint64_t hoff = f->data_offset;
	char why[160];

	if (!vhd_range_ok(hoff, VHD_HEADER_SIZE, footer_off)) {
		CORRUPT(c, "footer", "data_offset", footer_off + 16,
			"data offset 0x%llx leaves no room for the dynamic header",
			(unsigned long long)hoff);
		return;
	}
	if (c->io->ops->pread(c->io, raw, VHD_HEADER_SIZE, hoff) < 0) {
		CORRUPT(c, "header", "cookie", hoff, "cannot read the dynamic header");
		return;
	}
	if (!vhd_header_decode(raw, sizeof(raw), &h)) {
		CORRUPT(c, "header", "cookie", hoff, "no 'cxsparse' cookie");
		return;
	}
	uint32_t sum = vhd_checksum(raw, VHD_HEADER_SIZE, 36);
	if (sum != h.checksum)
		CORRUPT(c, "header", "checksum", hoff + 36,
			"checksum is 0x%08x, the header's bytes give 0x%08x", h.checksum, sum);
	if (h.data_offset != VHD_NO_OFFSET)
		WARN(c, "header", "data_offset", hoff + 8,
		     "data offset is 0x%llx; Microsoft tools expect all 64 bits set",
		     (unsigned long long)h.data_offset);
	if (vhd_header_validate(&h, why, sizeof(why)) < 0) {
		CORRUPT(c, "header", "header", hoff, "%s", why);
		return;
	}
	bool from_geometry;
	uint64_t vsize = vhd_footer_virtual_size(f, &from_geometry);
	uint64_t needed = vhd_bat_entries_needed(vsize, h.block_size);
	if (needed > h.max_table_entries) {
		CORRUPT(c, "header", "max_table_entries", hoff + 28,
			"%u entries cannot cover %llu bytes in %u-byte blocks (%llu needed)",
			h.max_table_entries, (unsigned long long)vsize, h.block_size,
			(unsigned long long)needed);
		return;
	}
	if (needed > VHD_MAX_BAT_ENTRIES) {
		CORRUPT(c, "header", "max_table_entries", hoff + 28,
			"%llu BAT entries are more than the %u supported", (unsigned long long)needed,
			VHD_MAX_BAT_ENTRIES);
		c->rep->complete = false;
		return;
	}
	uint64_t declared = vhd_bat_bytes(h.max_table_entries);
	if (!vhd_range_ok(h.table_offset, declared, footer_off))
		CORRUPT(c, "header", "max_table_entries", hoff + 28,
			"a BAT of %u entries at 0x%llx would run past the data area (0x%llx); the disk needs %llu",
			h.max_table_entries, (unsigned long long)h.table_offset,
			(unsigned long long)footer_off, (unsigned long long)needed);
	else if (h.max_table_entries > needed)
		WARN(c, "header", "max_table_entries", hoff + 28,
		     "%u entries for a disk that needs %llu", h.max_table_entries,
		     (unsigned long long)needed);
	if (f->disk_type == VHD_TYPE_DYNAMIC && vsize > VHD_MAX_DYNAMIC_SIZE)
		WARN(c, "footer", "current_size", footer_off + 48,
		     "%llu bytes is more than the 2040 GiB the specification allows",
		     (unsigned long long)vsize);
	uint64_t bat_len = vhd_bat_bytes(needed);
	if (!vhd_range_ok(h.table_offset, bat_len, footer_off)) {
		CORRUPT(c, "header", "table_offset", hoff + 16,
			"the BAT at 0x%llx (%llu bytes) runs past the data area (0x%llx)",
			(unsigned long long)h.table_offset, (unsigned long long)bat_len,
			(unsigned long long)footer_off);
		return;
	}

	uint32_t bitmap = vhd_bitmap_bytes(h.block_size);
	uint64_t span = (uint64_t)bitmap + h.block_size;
	uint8_t *bat = vhd_malloc(needed ? needed * 4 : 4);
	struct region *reg = NULL;
	if (!bat) {
		c->rep->complete = false;
		goto out;
	}
	if (c->io->ops->pread(c->io, bat, needed * 4, h.table_offset) < 0) {
		CORRUPT(c, "bat", "bat", h.table_offset, "cannot read the BAT");
		goto out;
	}
	/* One region per allocated block, plus the metadata. */
	size_t cap = 3 + VHD_LOCATOR_COUNT;
	for (uint32_t i = 0; i < needed; i++)
		cap += vhd_be32(bat + 4 * (size_t)i) != VHD_BAT_FREE;
	reg = vhd_malloc(cap * sizeof(*reg));
	if (!reg) {
		c->rep->complete = false;
		goto out;
	}
	size_t n = 0;
	reg[n++] = (struct region){ 0, VHD_FOOTER_SIZE, "the footer copy", false, 0 };
	reg[n++] = (struct region){ hoff, hoff + VHD_HEADER_SIZE, "the dynamic header", false, 0 };
	/* The BAT as declared, when it fits: blocks must not overlap any of it. */
	uint64_t bat_region = vhd_range_ok(h.table_offset, declared, footer_off) ? declared : bat_len;
	reg[n++] = (struct region){ h.table_offset, h.table_offset + bat_region, "the BAT", false, 0 };
	if (f->disk_type == VHD_TYPE_DIFFERENCING) {
		for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
			const struct vhd_locator_entry *l = &h.loc[i];
			uint64_t at = hoff + 576 + 24 * (uint64_t)i;
			if (!l->code)
				continue;
			uint64_t space = vhd_locator_space_bytes(l);
			if (!vhd_range_ok(l->data_offset, space, footer_off)) {
				CORRUPT(c, "locator", "data_offset", at + 16,
					"locator %d: data at 0x%llx (%llu bytes) lies outside the file",
					i, (unsigned long long)l->data_offset, (unsigned long long)space);
				continue;
			}
			if (l->data_length > space)
				CORRUPT(c, "locator", "data_length", at + 8,
					"locator %d: length %u exceeds its space of %llu bytes", i,
					l->data_length, (unsigned long long)space);
			if (space)
				reg[n++] = (struct region){ l->data_offset, l->data_offset + space,
							    "a parent locator", false, 0 };
		}
	}
	for (uint32_t i = 0; i < needed; i++) {
		uint32_t e = vhd_be32(bat + 4 * (size_t)i);
		if (e == VHD_BAT_FREE)
			continue;
		uint64_t off = (uint64_t)e * VHD_SECTOR_SIZE;
		if (!vhd_range_ok(off, span, footer_off)) {
			CORRUPT(c, "bat", "entry", h.table_offset + 4ull * i,
				"entry %u points to 0x%llx; the block would end past the data area (0x%llx)",
				i, (unsigned long long)off, (unsigned long long)footer_off);
			continue;
		}
		reg[n++] = (struct region){ off, off + span, "a data block", true, i };
	}
	vhd_sort(reg, n, sizeof(*reg), region_less);
	uint64_t covered = 0, unused = 0, leak_at = 0;
	const struct region *prev = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct region *r = &reg[i];
		if (prev && r->start < prev->end) {
			bool rb = r->is_block, pb = prev->is_block;
			uint64_t at = rb ? h.table_offset + 4ull * r->block : r->start;
			if (rb && pb)
				CORRUPT(c, "bat", "entry", at,
					"entries %u and %u point to overlapping blocks (0x%llx and 0x%llx)",
					prev->block, r->block, (unsigned long long)prev->start,
					(unsigned long long)r->start);
			else if (rb || pb)
				CORRUPT(c, "bat", "entry", rb ? at : h.table_offset + 4ull * prev->block,
					"entry %u points to 0x%llx, inside %s", rb ? r->block : prev->block,
					(unsigned long long)(rb ? r->start : prev->start),
					rb ? prev->what : r->what);
			else
				CORRUPT(c, "locator", "data_offset", r->start,
					"%s at 0x%llx overlaps %s", r->what, (unsigned long long)r->start,
					prev->what);
		} else if (r->start > covered && r->start - covered >= LEAK_MIN && r->is_block) {
			/* Freed blocks (TRIM, zeroing) are holes: space to compact,
			 * not lost.  Anything else is leaked. */
			if (reads_as_zero(c, covered, r->start - covered)) {
				unused += r->start - covered;
			} else {
				if (!c->rep->leaked_bytes)
					leak_at = covered;
				c->rep->leaked_bytes += r->start - covered;
			}
		}
		if (r->end > covered)
			covered = r->end;
		if (!prev || r->end > prev->end)
			prev = r;
	}
	if (footer_off > covered && footer_off - covered >= LEAK_MIN) {
		uint64_t tail = footer_off - covered;
		if (reads_as_zero(c, covered, tail))
			WARN(c, "file", "size", covered,
			     "%llu bytes after the last block read as zeros: room reserved for new blocks (the image is open for writing, or was not closed)",
			     (unsigned long long)tail);
		else {
			if (!c->rep->leaked_bytes)
				leak_at = covered;
			c->rep->leaked_bytes += tail;
		}
	}
	if (unused)
		WARN(c, "file", "blocks", 0,
		     "%llu bytes between blocks are unused and read as zeros (freed blocks; compact reclaims them)",
		     (unsigned long long)unused);
	if (c->rep->leaked_bytes)
		finding(c, VHD_FINDING_LEAK, "file", "blocks", leak_at,
			"%llu bytes are not used by any block or metadata (leaked space; the first at this offset)",
			(unsigned long long)c->rep->leaked_bytes);

	if (f->disk_type == VHD_TYPE_DYNAMIC)
		check_dynamic_bitmaps(c, &h, bat, needed, footer_off);
	if (f->disk_type == VHD_TYPE_DIFFERENCING && check_parent_image && c->rep->corruptions == 0)
		check_parent(c, f, &h);
out:
	vhd_free(reg);
	vhd_free(bat);
}

static bool cookie_at(struct checker *c, uint64_t off, const char *cookie)
{
	char buf[8];
	return vhd_range_ok(off, 8, c->size) && c->io->ops->pread(c->io, buf, 8, off) == 0 &&
	       memcmp(buf, cookie, 8) == 0;
}

static bool looks_like_vhd(struct checker *c)
{
	return cookie_at(c, 0, "conectix") || cookie_at(c, VHD_FOOTER_SIZE, "cxsparse") ||
	       (c->size >= VHD_FOOTER_SIZE && cookie_at(c, c->size - VHD_FOOTER_SIZE, "conectix")) ||
	       (c->size >= VHD_LEGACY_FOOTER_SIZE && cookie_at(c, c->size - VHD_LEGACY_FOOTER_SIZE, "conectix"));
}

int vhd_check_io(struct vhd_io *io, bool check_parent_image, struct vhd_check_report *rep)
{
	struct checker c = { io, rep, 0 };
	struct vhd_footer end, copy;
	uint8_t end_raw[VHD_FOOTER_SIZE], copy_raw[VHD_FOOTER_SIZE];

	memset(rep, 0, sizeof(*rep));
	rep->findings = vhd_calloc(VHD_CHECK_MAX_FINDINGS, sizeof(*rep->findings));
	if (!rep->findings)
		return -ENOMEM;
	rep->complete = true;
	int r = io->ops->size(io, &c.size);
	if (r < 0) {
		vhd_check_report_free(rep);
		return r;
	}
	if (!looks_like_vhd(&c)) {
		/* Nothing says this file was ever a VHD: there is nothing to check. */
		WARN(&c, "file", "cookie", 0,
		     "not a VHD image: no 'conectix' footer at the end or at offset 0, no 'cxsparse' header at 512");
		rep->complete = false;
		return 0;
	}
	if (c.size < VHD_LEGACY_FOOTER_SIZE) {
		CORRUPT(&c, "file", "size", 0, "the file has %llu bytes, too few for a VHD footer",
			(unsigned long long)c.size);
		return 0;
	}
	unsigned fsize = VHD_FOOTER_SIZE;
	uint8_t cookie[8];
	if (c.size >= VHD_FOOTER_SIZE && io->ops->pread(io, cookie, 8, c.size - VHD_FOOTER_SIZE) == 0 &&
	    memcmp(cookie, "conectix", 8) != 0 &&
	    io->ops->pread(io, cookie, 8, c.size - VHD_LEGACY_FOOTER_SIZE) == 0 &&
	    memcmp(cookie, "conectix", 8) == 0) {
		fsize = VHD_LEGACY_FOOTER_SIZE;
		WARN(&c, "footer", "size", c.size - fsize,
		     "legacy 511-byte footer (Virtual PC before 2004)");
	}
	if (c.size < fsize)
		fsize = VHD_LEGACY_FOOTER_SIZE;
	uint64_t footer_off = c.size - fsize;
	bool end_ok = check_footer(&c, "footer", footer_off, fsize, &end, end_raw);
	bool have_copy = false, copy_ok = false;
	/* A fixed image has no copy: its sector 0 is disk data, whatever it holds. */
	if (c.size >= 2 * VHD_FOOTER_SIZE && !(end_ok && end.disk_type == VHD_TYPE_FIXED)) {
		uint8_t head[8];
		if (io->ops->pread(io, head, 8, 0) == 0 && memcmp(head, "conectix", 8) == 0) {
			have_copy = true;
			copy_ok = check_footer(&c, "footer-copy", 0, VHD_FOOTER_SIZE, &copy, copy_raw);
		}
	}
	const struct vhd_footer *use = end_ok ? &end : copy_ok ? &copy : NULL;
	if (!use) {
		rep->complete = false;
		return 0;
	}
	rep->type = (enum vhd_type)use->disk_type;
	if (use->disk_type == VHD_TYPE_FIXED) {
		bool g;
		uint64_t vsize = vhd_footer_virtual_size(use, &g);
		if (!end_ok)
			return 0;
		if (vsize > footer_off)
			CORRUPT(&c, "footer", "current_size", footer_off + 48,
				"the disk is %llu bytes but the file holds %llu bytes of data",
				(unsigned long long)vsize, (unsigned long long)footer_off);
		else if (footer_off > vsize)
			WARN(&c, "file", "size", vsize,
			     "the file holds %llu bytes of data after the disk's %llu bytes",
			     (unsigned long long)(footer_off - vsize), (unsigned long long)vsize);
		return 0;
	}
	if (!have_copy)
		CORRUPT(&c, "footer-copy", "cookie", 0, "no copy of the footer at offset 0");
	else if (end_ok && copy_ok && memcmp(end_raw, copy_raw, VHD_LEGACY_FOOTER_SIZE) != 0)
		CORRUPT(&c, "footer-copy", "footer", 0, "the footer copy at offset 0 differs from the end footer");
	check_dynamic(&c, use, end_ok ? footer_off : c.size, check_parent_image);
	return 0;
}

void vhd_check_report_free(struct vhd_check_report *report)
{
	vhd_free(report->findings);
	report->findings = NULL;
}
