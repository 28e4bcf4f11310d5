/* SPDX-License-Identifier: MIT */
/* Questions asked of any backend's bytes. */
#include <errno.h>

#include "internal.h"

int vhd_io_reads_zero(struct vhd_io *io, uint64_t off, uint64_t len, uint64_t max_scan)
{
	uint8_t buf[4096];
	uint64_t scanned = 0;

	while (len) {
		uint64_t n = len;
		bool is_data = true;
		/* Holes are zeros without reading them. */
		if (!io->ops->data_extent || io->ops->data_extent(io, off, &n, &is_data) < 0 || n == 0) {
			n = len;
			is_data = true;
		}
		n = vhd_min_u64(n, len);
		if (is_data) {
			if (scanned + n > max_scan)
				return -EFBIG;
			scanned += n;
			for (uint64_t done = 0; done < n;) {
				size_t k = (size_t)vhd_min_u64(sizeof(buf), n - done);
				int r = io->ops->pread(io, buf, k, off + done);
				if (r < 0)
					return r;
				for (size_t i = 0; i < k; i++)
					if (buf[i])
						return 0;
				done += k;
			}
		}
		off += n;
		len -= n;
	}
	return 1;
}
