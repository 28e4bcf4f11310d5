/* SPDX-License-Identifier: MIT */
/*
 * The dynamic disk header: decode, validate, checksum, an encode/decode
 * round trip, each locator's reserved space, and the locator path decoder
 * (every known platform code) over slices of the input.  The first 1024
 * bytes are the header; the rest is locator data.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t codes[] = { VHD_PLAT_W2RU, VHD_PLAT_W2KU, VHD_PLAT_MACX,
				  VHD_PLAT_WI2R, VHD_PLAT_WI2K, VHD_PLAT_MAC, 0 };

static bool same_header(const struct vhd_header *a, const struct vhd_header *b)
{
	if (a->data_offset != b->data_offset || a->table_offset != b->table_offset ||
	    a->header_version != b->header_version || a->max_table_entries != b->max_table_entries ||
	    a->block_size != b->block_size || memcmp(a->parent_uuid, b->parent_uuid, 16) != 0 ||
	    a->parent_timestamp != b->parent_timestamp ||
	    memcmp(a->parent_name, b->parent_name, sizeof(a->parent_name)) != 0)
		return false;
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
		if (a->loc[i].code != b->loc[i].code || a->loc[i].data_space != b->loc[i].data_space ||
		    a->loc[i].data_length != b->loc[i].data_length ||
		    a->loc[i].data_offset != b->loc[i].data_offset)
			return false;
	return true;
}

/* Decode slice [off, off + len) of the input (an exact heap copy). */
static void decode_slice(uint32_t code, const uint8_t *data, size_t len, size_t out_len)
{
	uint8_t *in = malloc(len ? len : 1);
	char *out = malloc(out_len ? out_len : 1);
	if (!in || !out)
		abort();
	if (len)
		memcpy(in, data, len);
	memset(out, 'x', out_len ? out_len : 1);
	int r = vhd_locator_decode_path(code, in, len, out, out_len);
	FZ_CHECK(r == 0 || r == -EINVAL);
	if (r == 0) {
		FZ_CHECK(out_len > 0 && memchr(out, '\0', out_len) != NULL);
		FZ_CHECK(strlen(out) > 0);
		if (code == VHD_PLAT_MACX)
			FZ_CHECK(strlen(out) <= len);
		else
			FZ_CHECK(code == VHD_PLAT_W2RU || code == VHD_PLAT_W2KU);
	}
	free(in);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	if (size)
		memcpy(buf, data, size);

	struct vhd_header h, h2;
	bool ok = vhd_header_decode(buf, size, &h);
	FZ_CHECK(ok == (size >= VHD_HEADER_SIZE && memcmp(buf, "cxsparse", 8) == 0));

	/* Slices of whatever follows the header (or of the whole input). */
	const uint8_t *tail = size > VHD_HEADER_SIZE ? data + VHD_HEADER_SIZE : data;
	size_t tail_len = size > VHD_HEADER_SIZE ? size - VHD_HEADER_SIZE : size;

	if (ok) {
		char why[160];
		int verdict = vhd_header_validate(&h, why, sizeof(why));
		FZ_CHECK(verdict == 0 || verdict == -EINVAL);
		if (verdict < 0)
			FZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL);
		char small[9];
		FZ_CHECK(vhd_header_validate(&h, small, sizeof(small)) == verdict);
		FZ_CHECK(vhd_header_validate(&h, small, 1) == verdict);
		if (verdict == 0)
			FZ_CHECK(h.block_size >= 512 && (h.block_size & (h.block_size - 1)) == 0);
		bool sum_ok = vhd_header_checksum_ok(buf);

		uint8_t enc[VHD_HEADER_SIZE], enc2[VHD_HEADER_SIZE];
		vhd_header_encode(&h, enc);
		FZ_CHECK(vhd_header_checksum_ok(enc));
		FZ_CHECK(vhd_header_decode(enc, sizeof(enc), &h2));
		FZ_CHECK(same_header(&h, &h2));
		FZ_CHECK(vhd_header_validate(&h2, why, sizeof(why)) == verdict);
		vhd_header_encode(&h2, enc2);
		FZ_CHECK(memcmp(enc, enc2, sizeof(enc)) == 0);
		/* Fields are bytes 0..767 less the checksum and reserved 60..63
		 * and the reserved 4 bytes of each locator entry. */
		FZ_CHECK(memcmp(enc, buf, 36) == 0);
		FZ_CHECK(memcmp(enc + 40, buf + 40, 20) == 0);
		FZ_CHECK(memcmp(enc + 64, buf + 64, 512) == 0);
		for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
			const uint8_t *a = enc + 576 + 24 * i, *b = buf + 576 + 24 * i;
			FZ_CHECK(memcmp(a, b, 12) == 0 && memcmp(a + 16, b + 16, 8) == 0);
		}
		(void)sum_ok;

		/* The parent name, as info.c and chain.c decode it. */
		char name[VHD_LOCATOR_MAX_PATH];
		int n = vhd_utf16_to_utf8(h.parent_name, sizeof(h.parent_name), true, name, sizeof(name));
		if (n >= 0)
			FZ_CHECK((size_t)n == strlen(name));

		/* The seeds carry each used locator's data after the header, in
		 * entry order (make-seeds.sh); slices follow that layout. */
		size_t at = 0;
		for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
			const struct vhd_locator_entry *l = &h.loc[i];
			uint64_t space = vhd_locator_space_bytes(l);
			FZ_CHECK(space >= l->data_space);
			if (l->data_space < VHD_SECTOR_SIZE)
				FZ_CHECK(space == (uint64_t)l->data_space * VHD_SECTOR_SIZE);
			if (!tail_len)
				continue;
			size_t off = at % tail_len;
			size_t len = l->data_length % 2100;
			if (l->code && l->data_length)
				at += l->data_length;
			if (len > tail_len - off)
				len = tail_len - off;
			decode_slice(l->code, tail + off, len, VHD_LOCATOR_MAX_PATH);
			decode_slice(l->code, tail + off, len, 1 + l->data_space % 64);
		}
	}

	/* Every known code over a few slices of the input itself. */
	size_t step = size / 3 + 1;
	for (size_t c = 0; c < sizeof(codes) / sizeof(codes[0]); c++) {
		for (size_t off = 0; off < size; off += step) {
			size_t len = size - off < 2048 ? size - off : 2048;
			decode_slice(codes[c], data + off, len, VHD_LOCATOR_MAX_PATH);
			decode_slice(codes[c], data + off, len, 1 + (size_t)data[off] % 48);
		}
	}
	decode_slice(VHD_PLAT_W2RU, data, 0, 16);
	decode_slice(VHD_PLAT_MACX, data, 0, 16);
	decode_slice(VHD_PLAT_MACX, data, 0, 0);
	decode_slice(VHD_PLAT_W2KU, data, 0, 0);
	free(buf);
	return 0;
}
