/* SPDX-License-Identifier: MIT */
/*
 * The hard disk footer: decode, validate, checksum, virtual size and CHS
 * geometry over a 512-byte and a 511-byte (legacy) view of the input, and
 * an encode/decode round trip that must keep every field.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_footer(const struct vhd_footer *a, const struct vhd_footer *b)
{
	return a->features == b->features && a->format_version == b->format_version &&
	       a->data_offset == b->data_offset && a->timestamp == b->timestamp &&
	       memcmp(a->creator_app, b->creator_app, 4) == 0 &&
	       a->creator_version == b->creator_version &&
	       a->creator_host_os == b->creator_host_os && a->original_size == b->original_size &&
	       a->current_size == b->current_size &&
	       a->geometry.cylinders == b->geometry.cylinders &&
	       a->geometry.heads == b->geometry.heads && a->geometry.sectors == b->geometry.sectors &&
	       a->disk_type == b->disk_type && memcmp(a->uuid, b->uuid, 16) == 0 &&
	       a->saved_state == b->saved_state;
}

static void check_geometry(uint64_t size)
{
	struct vhd_geometry g = vhd_geometry_for_size(size);
	uint64_t chs = vhd_geometry_size(g);
	/* The CHS size never exceeds the disk (the spec rounds down). */
	FZ_CHECK(chs <= size);
	FZ_CHECK(g.heads <= 16 && g.sectors <= 255);
	FZ_CHECK(g.sectors == 17 || g.sectors == 31 || g.sectors == 63 || g.sectors == 255);
}

static void one_view(const uint8_t *data, size_t size, size_t view)
{
	/* Exactly view bytes on the heap, zero-padded: ASan sees any overread. */
	uint8_t *buf = malloc(view);
	if (!buf)
		abort();
	memset(buf, 0, view);
	memcpy(buf, data, size < view ? size : view);

	struct vhd_footer f, f2;
	bool ok = vhd_footer_decode(buf, view, &f);
	FZ_CHECK(ok == (memcmp(buf, "conectix", 8) == 0));
	if (!ok) {
		free(buf);
		return;
	}
	(void)vhd_footer_checksum_ok(buf, view);
	uint32_t sum = vhd_checksum(buf, view, 64);

	/* Messages are cut to any buffer size and always terminated. */
	char why[160];
	static const size_t why_lens[] = { 160, 33, 1 };
	int verdict = 0;
	for (size_t i = 0; i < sizeof(why_lens) / sizeof(why_lens[0]); i++) {
		memset(why, 'x', sizeof(why));
		int r = vhd_footer_validate(&f, why, why_lens[i]);
		if (i == 0)
			verdict = r;
		FZ_CHECK(r == verdict);
		FZ_CHECK(r == 0 || r < 0);
		if (r < 0)
			FZ_CHECK(memchr(why, '\0', why_lens[i]) != NULL);
	}

	bool from_geometry;
	uint64_t vsize = vhd_footer_virtual_size(&f, &from_geometry);
	if (!from_geometry)
		FZ_CHECK(vsize == f.current_size);
	if (verdict == 0) {
		FZ_CHECK(vsize % VHD_SECTOR_SIZE == 0);
		FZ_CHECK(f.disk_type == VHD_TYPE_FIXED || f.disk_type == VHD_TYPE_DYNAMIC ||
		      f.disk_type == VHD_TYPE_DIFFERENCING);
	}
	check_geometry(f.current_size);
	check_geometry(f.original_size);
	check_geometry(vsize);

	/* Round trip: every field survives, the checksum is made right. */
	uint8_t enc[VHD_FOOTER_SIZE], enc2[VHD_FOOTER_SIZE];
	vhd_footer_encode(&f, enc);
	FZ_CHECK(vhd_footer_decode(enc, sizeof(enc), &f2));
	FZ_CHECK(same_footer(&f, &f2));
	FZ_CHECK(vhd_footer_checksum_ok(enc, sizeof(enc)));
	FZ_CHECK(vhd_footer_validate(&f2, why, sizeof(why)) == verdict);
	bool g2;
	FZ_CHECK(vhd_footer_virtual_size(&f2, &g2) == vsize && g2 == from_geometry);
	vhd_footer_encode(&f2, enc2);
	FZ_CHECK(memcmp(enc, enc2, sizeof(enc)) == 0);
	/* The encoded fields are the input's bytes (reserved bytes are zeroed). */
	FZ_CHECK(memcmp(enc, buf, 64) == 0);
	FZ_CHECK(memcmp(enc + 68, buf + 68, 85 - 68) == 0);
	/* A checksum that matched still matches once the reserved bytes are
	 * gone only if they were zero; it always matches the encoded bytes. */
	if (f.checksum == sum && view == VHD_FOOTER_SIZE) {
		bool reserved_zero = true;
		for (size_t i = 85; i < view; i++)
			reserved_zero = reserved_zero && buf[i] == 0;
		if (reserved_zero)
			FZ_CHECK(memcmp(enc, buf, VHD_FOOTER_SIZE) == 0);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	/* Short inputs: decoding must refuse rather than read past the end. */
	if (size < VHD_LEGACY_FOOTER_SIZE) {
		uint8_t *p = malloc(size ? size : 1);
		if (!p)
			abort();
		memcpy(p, data, size);
		struct vhd_footer f;
		FZ_CHECK(!vhd_footer_decode(p, size, &f));
		free(p);
	}
	one_view(data, size, VHD_FOOTER_SIZE);
	one_view(data, size, VHD_LEGACY_FOOTER_SIZE);
	/* The footer as the last 512 bytes of a longer input, too. */
	if (size > VHD_FOOTER_SIZE)
		one_view(data + size - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE, VHD_FOOTER_SIZE);
	return 0;
}
