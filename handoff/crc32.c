/* SPDX-License-Identifier: MIT */
/* CRC-32 for GPT headers and entry arrays: the initramfs tool links no zlib. */
#include "handoff.h"

/* Bitwise, table-free: GPT checks a few KiB per disk, so speed is moot and
 * the code stays obviously right. */
uint32_t ho_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}
