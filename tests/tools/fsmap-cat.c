/* SPDX-License-Identifier: MIT */
/*
 * fsmap-cat: read a file out of a FAT12/16/32 or exFAT image through
 * efiboot's extent map (efiboot/fsmap.c), as vhdboot.efi will.
 *   fsmap-cat [--offset BYTES] IMAGE PATH [--extents]
 * Prints the file's bytes (zeros at and past exFAT's ValidDataLength), or
 * with --extents one header line and one "FILE_OFFSET DISK_OFFSET LENGTH"
 * line per extent.  On failure: the error line on stderr, exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsmap.h"

struct image {
	int fd;
	uint64_t base;
};

static int image_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct image *im = ctx;
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(im->fd, p, len, (off_t)(im->base + off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: fsmap-cat [--offset BYTES] IMAGE PATH [--extents]\n");
	return 2;
}

static int write_all(const uint8_t *p, size_t n)
{
	return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

/* Every byte of the file through vb_file_map_find, as a BlockIo read would. */
static int cat(struct image *im, const struct vb_file_map *map)
{
	static uint8_t buf[1 << 20];
	uint64_t off = 0;
	while (off < map->size) {
		const struct vb_extent *e = vb_file_map_find(map, off);
		if (!e) {
			fprintf(stderr, "fsmap-cat: no extent holds file byte %" PRIu64 "\n", off);
			return 1;
		}
		uint64_t in = off - e->file_offset;
		size_t n = sizeof(buf);
		if (n > e->length - in)
			n = (size_t)(e->length - in);
		if (off >= map->valid_length) {
			memset(buf, 0, n);
		} else {
			int rc = image_read(im, e->disk_offset + in, buf, n);
			if (rc < 0) {
				fprintf(stderr, "fsmap-cat: read: %s\n", strerror(-rc));
				return 1;
			}
			if (map->valid_length - off < n)
				memset(buf + (map->valid_length - off), 0, n - (size_t)(map->valid_length - off));
		}
		if (write_all(buf, n) < 0) {
			perror("fsmap-cat: write");
			return 1;
		}
		off += n;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	uint64_t base = 0;
	int extents = 0, i = 1;
	const char *image = NULL, *path = NULL;

	for (; i < argc; i++) {
		if (strcmp(argv[i], "--offset") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			base = strtoull(argv[++i], &end, 0);
			if (errno || *end)
				return usage();
		} else if (strcmp(argv[i], "--extents") == 0) {
			extents = 1;
		} else if (!image) {
			image = argv[i];
		} else if (!path) {
			path = argv[i];
		} else {
			return usage();
		}
	}
	if (!image || !path)
		return usage();

	struct image im = { open(image, O_RDONLY), base };
	struct stat st;
	if (im.fd < 0 || fstat(im.fd, &st) < 0) {
		fprintf(stderr, "fsmap-cat: %s: %s\n", image, strerror(errno));
		return 1;
	}
	if ((uint64_t)st.st_size < base) {
		fprintf(stderr, "fsmap-cat: offset past the end of %s\n", image);
		return 1;
	}
	struct vb_disk disk = { image_read, &im, (uint64_t)st.st_size - base };
	struct vb_file_map map;
	char err[200];
	int rc = vb_file_map_open(&disk, path, &map, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "fsmap-cat: %s (%s)\n", err[0] ? err : "no message", strerror(-rc));
		close(im.fd);
		return 1;
	}
	int status = 0;
	if (extents) {
		printf("%s size %" PRIu64 " valid %" PRIu64 " cluster %" PRIu32 " extents %zu\n",
		       vb_fs_type_name(map.fs), map.size, map.valid_length, map.cluster_size, map.count);
		for (size_t k = 0; k < map.count; k++)
			printf("%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", map.extents[k].file_offset,
			       map.extents[k].disk_offset, map.extents[k].length);
	} else {
		status = cat(&im, &map);
	}
	vb_file_map_free(&map);
	close(im.fd);
	return status;
}
