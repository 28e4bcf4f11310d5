/* SPDX-License-Identifier: MIT */
/*
 * Repair what can be proven wrong, and nothing else: a damaged footer from
 * its good twin, a checksum when the structure around it validates, BAT
 * entries that point outside the data area or into metadata, leaked space.
 * Works on the raw file (the image may not open).  Order: header and BAT
 * first, flushed; then the footer moves or is rewritten, flushed; then the
 * file is cut.
 */
#include <errno.h>
#include <string.h>

#include "endian.h"
#include "internal.h"

struct repairer {
	struct vhd_io *io;
	struct vhd_check_report *rep;
	bool dry;
	uint64_t size;
};

__attribute__((format(printf, 4, 5)))
static void action(struct repairer *c, const char *structure, uint64_t offset, const char *fmt, ...)
{
	struct vhd_check_report *rep = c->rep;
	if (rep->count >= VHD_CHECK_MAX_FINDINGS) {
		rep->dropped++;
		return;
	}
	struct vhd_finding *f = &rep->findings[rep->count++];
	f->kind = VHD_FINDING_REPAIR;
	vhd_strlcpy(f->structure, structure, sizeof(f->structure));
	vhd_strlcpy(f->field, c->dry ? "would repair" : "repaired", sizeof(f->field));
	f->offset = offset;
	va_list ap;
	va_start(ap, fmt);
	vhd_vformat(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
}

static int put(struct repairer *c, const void *buf, size_t len, uint64_t off)
{
	return c->dry ? 0 : c->io->ops->pwrite(c->io, buf, len, off);
}

static int sync_io(struct repairer *c)
{
	return c->dry ? 0 : c->io->ops->flush(c->io);
}

struct footer_view {
	bool cookie, valid, sum_ok;
	struct vhd_footer f;
	uint8_t raw[VHD_FOOTER_SIZE];
};

static void view_footer(struct repairer *c, uint64_t off, unsigned len, struct footer_view *v)
{
	char why[160];
	memset(v, 0, sizeof(*v));
	if (!vhd_range_ok(off, len, c->size) || c->io->ops->pread(c->io, v->raw, len, off) < 0)
		return;
	v->cookie = vhd_footer_decode(v->raw, len, &v->f);
	v->valid = v->cookie && vhd_footer_validate(&v->f, why, sizeof(why)) == 0;
	v->sum_ok = v->valid && vhd_checksum(v->raw, len, 64) == v->f.checksum;
}


int vhd_repair_io(struct vhd_io *io, unsigned flags, struct vhd_check_report *rep)
{
	struct repairer c = { io, rep, (flags & VHD_REPAIR_DRY_RUN) != 0, 0 };
	struct footer_view end, end511, copy;
	int r;

	memset(rep, 0, sizeof(*rep));
	rep->complete = true;
	rep->findings = vhd_calloc(VHD_CHECK_MAX_FINDINGS, sizeof(*rep->findings));
	if (!rep->findings)
		return -ENOMEM;
	r = io->ops->size(io, &c.size);
	if (r < 0)
		return r;
	view_footer(&c, c.size >= VHD_FOOTER_SIZE ? c.size - VHD_FOOTER_SIZE : 0, VHD_FOOTER_SIZE, &end);
	view_footer(&c, c.size >= VHD_LEGACY_FOOTER_SIZE ? c.size - VHD_LEGACY_FOOTER_SIZE : 0,
		    VHD_LEGACY_FOOTER_SIZE, &end511);
	view_footer(&c, 0, VHD_FOOTER_SIZE, &copy);
	unsigned fsize = VHD_FOOTER_SIZE;
	if (!end.cookie && end511.cookie) {
		end = end511;
		fsize = VHD_LEGACY_FOOTER_SIZE;
	}
	bool copy_usable = copy.valid && copy.f.disk_type != VHD_TYPE_FIXED;

	/* The footer to keep: a sound one, else one whose only fault is its sum. */
	struct footer_view *m = end.sum_ok ? &end : (copy_usable && copy.sum_ok) ? &copy
			      : end.valid ? &end : copy_usable ? &copy : NULL;
	if (!m) {
		rep->complete = false;
		return 0;       /* nothing trustworthy to rebuild from */
	}
	struct vhd_footer f = m->f;
	uint8_t fraw[VHD_FOOTER_SIZE];
	memcpy(fraw, m->raw, sizeof(fraw));
	vhd_footer_encode_into(&f, fraw);      /* checksum recomputed */
	/* Where the data area ends: before a footer-shaped end, else the file's end. */
	uint64_t data_end = end.cookie ? c.size - fsize : c.size;

	if (f.disk_type == VHD_TYPE_FIXED) {
		if (!end.valid) {
			rep->complete = false;
			return 0;
		}
		if (!end.sum_ok) {
			action(&c, "footer", c.size - fsize + 64, "footer checksum recomputed (0x%08x -> 0x%08x); the structure validates",
			       f.checksum, vhd_be32(fraw + 64));
			r = put(&c, fraw, fsize, c.size - fsize);
			if (r == 0)
				r = sync_io(&c);
		}
		return r;
	}

	/* The dynamic header: only a checksum may be fixed, and only when the
	 * rest of it validates. */
	uint8_t hraw[VHD_HEADER_SIZE];
	struct vhd_header h;
	char why[160];
	if (!vhd_range_ok(f.data_offset, VHD_HEADER_SIZE, data_end) ||
	    io->ops->pread(io, hraw, VHD_HEADER_SIZE, f.data_offset) < 0 ||
	    !vhd_header_decode(hraw, sizeof(hraw), &h) || vhd_header_validate(&h, why, sizeof(why)) < 0) {
		rep->complete = false;
		return 0;
	}
	if (!vhd_header_checksum_ok(hraw)) {
		uint8_t fixed[VHD_HEADER_SIZE];
		memcpy(fixed, hraw, sizeof(fixed));
		vhd_put_be32(fixed + 36, vhd_checksum(fixed, VHD_HEADER_SIZE, 36));
		action(&c, "header", f.data_offset + 36, "dynamic header checksum recomputed (0x%08x -> 0x%08x); the structure validates",
		       h.checksum, vhd_be32(fixed + 36));
		r = put(&c, fixed, sizeof(fixed), f.data_offset);
		if (r < 0)
			return r;
	}

	/* BAT entries that point outside the data area or into metadata. */
	bool from_geometry;
	uint64_t vsize = vhd_footer_virtual_size(&f, &from_geometry);
	uint64_t needed = vhd_bat_entries_needed(vsize, h.block_size);
	if (needed > h.max_table_entries || needed > VHD_MAX_BAT_ENTRIES ||
	    !vhd_range_ok(h.table_offset, vhd_bat_bytes(needed), data_end)) {
		rep->complete = false;
		return 0;
	}
	uint32_t bitmap = vhd_bitmap_bytes(h.block_size);
	uint64_t span = (uint64_t)bitmap + h.block_size;
	/* The metadata as regions: a locator may lie before, between or
	 * after the blocks (set-parent and resize put new ones at the end). */
	struct { uint64_t start, end; } meta[3 + VHD_LOCATOR_COUNT];
	size_t nmeta = 0;
	meta[nmeta].start = 0, meta[nmeta++].end = VHD_FOOTER_SIZE;
	meta[nmeta].start = f.data_offset, meta[nmeta++].end = f.data_offset + VHD_HEADER_SIZE;
	meta[nmeta].start = h.table_offset;
	meta[nmeta++].end = h.table_offset + vhd_bat_bytes(h.max_table_entries);
	for (int i = 0; f.disk_type == VHD_TYPE_DIFFERENCING && i < VHD_LOCATOR_COUNT; i++) {
		uint64_t space = vhd_locator_space_bytes(&h.loc[i]);
		if (vhd_locator_known(h.loc[i].code) && space &&
		    vhd_range_ok(h.loc[i].data_offset, space, data_end)) {
			meta[nmeta].start = h.loc[i].data_offset;
			meta[nmeta++].end = h.loc[i].data_offset + space;
		}
	}
	uint64_t meta_end = 0, first_meta_end = 0;
	for (size_t i = 0; i < nmeta; i++) {
		if (meta[i].end > meta_end)
			meta_end = meta[i].end;
		if (i < 3 && meta[i].end > first_meta_end)
			first_meta_end = meta[i].end;   /* footer copy, header, BAT */
	}
	uint8_t sector[VHD_SECTOR_SIZE];
	uint64_t ref_end = meta_end;
	uint32_t *live = vhd_malloc((needed ? needed : 1) * sizeof(*live));
	size_t nlive = 0;
	if (!live)
		return -ENOMEM;
	for (uint64_t s = 0; s < vhd_bat_bytes(needed) / VHD_SECTOR_SIZE; s++) {
		uint64_t at = h.table_offset + s * VHD_SECTOR_SIZE;
		bool changed = false;
		if (io->ops->pread(io, sector, sizeof(sector), at) < 0) {
			rep->complete = false;
			vhd_free(live);
			return 0;
		}
		for (uint32_t k = 0; k < VHD_SECTOR_SIZE / 4 && s * 128 + k < needed; k++) {
			uint64_t blk = s * 128 + k;
			uint32_t e = vhd_be32(sector + 4 * k);
			uint64_t off = (uint64_t)e * VHD_SECTOR_SIZE;
			if (e == VHD_BAT_FREE)
				continue;
			bool outside = !vhd_range_ok(off, span, data_end);
			bool into_meta = false;
			for (size_t mi = 0; mi < nmeta; mi++)
				into_meta |= off < meta[mi].end && meta[mi].start < off + span;
			if (outside || into_meta) {
				action(&c, "bat", at + 4 * k,
				       "entry %llu (-> 0x%llx) dropped: it points %s; virtual bytes %llu-%llu now read as %s",
				       (unsigned long long)blk, (unsigned long long)off,
				       outside ? "past the data area" : "into the metadata",
				       (unsigned long long)(blk * h.block_size),
				       (unsigned long long)vhd_min_u64((blk + 1) * h.block_size, vsize) - 1,
				       f.disk_type == VHD_TYPE_DIFFERENCING ? "the parent's" : "zeros");
				vhd_put_be32(sector + 4 * k, VHD_BAT_FREE);
				changed = true;
				continue;
			}
			if (off + span > ref_end)
				ref_end = off + span;
			live[nlive++] = e;
		}
		if (changed) {
			r = put(&c, sector, sizeof(sector), at);
			if (r < 0) {
				vhd_free(live);
				return r;
			}
		}
	}
	r = sync_io(&c);
	if (r < 0) {
		vhd_free(live);
		return r;
	}
	/* Space between blocks that nothing refers to and that holds data
	 * (blocks a crashed writer never entered): punched, so it holds none. */
	vhd_sort_u32(live, nlive);
	uint64_t at = vhd_block_slot(first_meta_end, bitmap), leaked = 0;
	for (size_t i = 0; i <= nlive; i++) {
		uint64_t next = i < nlive ? (uint64_t)live[i] * VHD_SECTOR_SIZE : ref_end;
		/* The gap [at, next) less the metadata inside it. */
		while (at < next) {
			for (bool moved = true; moved;) {
				moved = false;
				for (size_t mi = 0; mi < nmeta; mi++)
					if (meta[mi].start <= at && at < meta[mi].end)
						at = meta[mi].end, moved = true;
			}
			if (at >= next)
				break;
			uint64_t stop = next;
			for (size_t mi = 0; mi < nmeta; mi++)
				if (meta[mi].start > at && meta[mi].start < stop)
					stop = meta[mi].start;
			if (stop - at >= 4096 && vhd_io_reads_zero(io, at, stop - at, UINT64_MAX) == 0) {
				leaked += stop - at;
				if (!c.dry && io->ops->discard)
					io->ops->discard(io, at, stop - at);
			}
			at = stop;
		}
		if (i < nlive && next + span > at)
			at = next + span;
	}
	vhd_free(live);
	if (leaked)
		action(&c, "file", 0, "%llu bytes of leaked space between blocks punched (they now read as zeros)",
		       (unsigned long long)leaked);

	/*
	 * The footer: after the last thing referenced (space beyond is
	 * leaked), the same at offset 0.  Written first, then the file is cut.
	 */
	uint64_t target = vhd_block_slot(ref_end, bitmap);
	if (target > data_end)
		target = data_end;      /* never past a footer-shaped end */
	bool move = target + VHD_FOOTER_SIZE < c.size || !end.sum_ok;
	if (move) {
		if (target + VHD_FOOTER_SIZE < c.size)
			action(&c, "footer", target, "%llu bytes after the last block released; the footer moves to 0x%llx",
			       (unsigned long long)(c.size - VHD_FOOTER_SIZE - target), (unsigned long long)target);
		if (!end.sum_ok)
			action(&c, "footer", c.size - fsize,
			       end.cookie ? "end footer rewritten (its checksum was wrong; the structure validates)"
					  : "end footer restored from the copy at offset 0");
		r = put(&c, fraw, VHD_FOOTER_SIZE, target);
		if (r == 0)
			r = sync_io(&c);
		if (r == 0 && !c.dry && target + VHD_FOOTER_SIZE < c.size)
			r = io->ops->truncate(io, target + VHD_FOOTER_SIZE);
		if (r < 0)
			return r;
	}
	if (!copy.sum_ok || memcmp(copy.raw, fraw, VHD_FOOTER_SIZE) != 0) {
		action(&c, "footer-copy", 0, "footer copy at offset 0 rewritten from the %s",
		       m == &copy ? "copy itself (checksum)" : "end footer");
		r = put(&c, fraw, VHD_FOOTER_SIZE, 0);
		if (r == 0)
			r = sync_io(&c);
	}
	return r;
}
