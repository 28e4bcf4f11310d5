/* SPDX-License-Identifier: MIT */
/* vhdtool convert: raw, gzip or any VHD to raw, fixed or dynamic (or a -B child). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"

enum out_format { OUT_RAW, OUT_FIXED, OUT_DYNAMIC };

struct options {
	const char *src_fmt, *out_fmt, *backing;
	enum out_format fmt;
	uint32_t block_size;
	uint64_t size;          /* --size */
	bool size_given, azure, progress, overwrite, out_given, sync;
};

static bool is_stdio(const char *path)
{
	return strcmp(path, "-") == 0;
}

static bool looks_like_vhd(struct vhd_io *io)
{
	uint64_t size;
	char cookie[8];
	if (io->ops->size(io, &size) < 0 || size < 511)
		return false;
	uint64_t where[3] = { size >= 512 ? size - 512 : 0, size - 511, 0 };
	for (int i = 0; i < 3; i++)
		if (io->ops->pread(io, cookie, 8, where[i]) == 0 && memcmp(cookie, "conectix", 8) == 0)
			return true;
	return false;
}

/* A pipe, a FIFO, a terminal or gzip data: read once, in order. */
static int open_stream_source(const char *path, bool gunzip, struct source *src)
{
	int fd = is_stdio(path) ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		vt_error("%s: %s", path, strerror(errno));
		return -1;
	}
	src->stream = true;
	src->in.fd = fd;
	if (isatty(fd)) {
		vt_error("%s is a terminal; pipe the data in", src->name);
		return -1;
	}
	return instream_open(&src->in, fd, src->name, gunzip);
}

static int open_source(const char *path, const char *fmt, struct source *src)
{
	struct vhd_error err;
	struct vhd_io *io;
	struct stat st;
	bool want_vhd = fmt && strcmp(fmt, "raw") != 0;
	/* -f raw takes the bytes as they are, unless the name says gzip. */
	bool gunzip = !fmt || name_ends_gz(path);

	memset(src, 0, sizeof(*src));
	src->in.fd = -1;
	src->name = is_stdio(path) ? "standard input" : path;
	if (is_stdio(path) || (stat(path, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
							 S_ISCHR(st.st_mode)))) {
		if (want_vhd) {
			vt_error("%s: a VHD source must be a file (reading one needs to seek); a pipe is read as raw data",
				 src->name);
			return -1;
		}
		return open_stream_source(path, gunzip, src);
	}
	if (vhd_io_posix_open(path, VHD_IO_ANY_FILE, &io, &err) < 0) {
		vt_error("%s", err.message);
		return -1;
	}
	bool vhd = fmt ? want_vhd : looks_like_vhd(io);
	if (!vhd) {
		uint8_t m[2];
		bool gz = io->ops->pread(io, m, 2, 0) == 0 && m[0] == 0x1f && m[1] == 0x8b;
		if (gz && gunzip) {
			vhd_io_close(io);
			return open_stream_source(path, true, src);
		}
		if (!gz && !fmt && name_ends_gz(path)) {
			vt_error("%s: not gzip data, though the name ends in .gz (use -f raw to copy it as it is)",
				 path);
			vhd_io_close(io);
			return -1;
		}
		src->raw = io;
		if (io->ops->size(io, &src->size) < 0) {
			vt_error("%s: cannot get the size", path);
			return -1;
		}
		return 0;
	}
	if (vhd_open_io(io, 0, &src->img, &err) < 0) {
		vt_error("%s", err.message);
		return -1;
	}
	vt_print_warnings(src->img);
	src->size = vhd_virtual_size(src->img);
	return 0;
}

static void close_source(struct source *src)
{
	if (src->raw)
		vhd_io_close(src->raw);
	if (src->img)
		vhd_close(src->img);
	if (src->stream)
		instream_close(&src->in);
}

/* Refuse an existing destination unless --overwrite, and never the source. */
static int check_destination(const char *src_path, const char *dst_path, bool overwrite)
{
	struct stat st_src, st_dst;
	bool have_src = is_stdio(src_path) ? fstat(STDIN_FILENO, &st_src) == 0
					   : stat(src_path, &st_src) == 0;
	bool have_dst = is_stdio(dst_path) ? fstat(STDOUT_FILENO, &st_dst) == 0 && S_ISREG(st_dst.st_mode)
					   : stat(dst_path, &st_dst) == 0;
	if (!have_dst)
		return 0;
	if (have_src && st_src.st_dev == st_dst.st_dev && st_src.st_ino == st_dst.st_ino) {
		vt_error("%s: source and destination are the same file", dst_path);
		return -1;
	}
	if (is_stdio(dst_path))
		return 0;
	if (!overwrite) {
		vt_error("%s: file already exists (use --overwrite to replace it)", dst_path);
		return -1;
	}
	if (!S_ISREG(st_dst.st_mode)) {
		vt_error("%s: not a regular file; refusing to replace it", dst_path);
		return -1;
	}
	if (unlink(dst_path) < 0) {
		vt_error("%s: cannot replace: %s", dst_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Standard output or a .gz file: written once, in order. */
static int open_dest_stream(const char *path, struct dest *d, bool *created)
{
	int fd = STDOUT_FILENO;
	if (is_stdio(path)) {
		if (isatty(fd)) {
			vt_error("standard output is a terminal; refusing to write disk data to it (redirect or pipe it)");
			return -1;
		}
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			vt_error("%s: %s", path, strerror(errno));
			return -1;
		}
		*created = true;
	}
	d->stream = true;
	return outstream_open(&d->out, fd, is_stdio(path) ? "standard output" : path, !is_stdio(path));
}

static void odd_size_error(const struct source *src, uint64_t size)
{
	vt_error("%s: %s %" PRIu64 " bytes, not a multiple of 512; a VHD cannot hold it exactly (pad the source, or use --azure to round up to whole MiB)",
		 src->name, src->stream ? "the stream is" : "size", size);
}

/* A fixed output that is written as raw data: its footer goes last. */
static int put_footer(struct dest *d, const uint8_t footer[512], uint64_t data_size,
		      uint64_t vsize)
{
	static const uint8_t zeros[64 << 10];
	if (d->stream) {
		for (uint64_t at = data_size; at < vsize;) {
			size_t n = vsize - at < sizeof(zeros) ? (size_t)(vsize - at) : sizeof(zeros);
			if (outstream_write(&d->out, zeros, n) < 0)
				return -1;
			at += n;
		}
		return outstream_write(&d->out, footer, 512);
	}
	int r = d->raw->ops->truncate(d->raw, vsize);
	if (r == 0)
		r = d->raw->ops->pwrite(d->raw, footer, 512, vsize);
	if (r < 0) {
		vt_error("%s: cannot write the footer at offset %" PRIu64 ": %s", d->path, vsize,
			 strerror(-r));
		return -1;
	}
	return 0;
}

/* What a stream turned out to hold must fit a VHD. */
static int check_stream_size(const struct source *src, uint64_t size, uint64_t vsize)
{
	if (vsize == 0) {
		vt_error("%s: the stream is empty; a VHD cannot be 0 bytes", src->name);
		return -1;
	}
	if (vsize % 512) {
		odd_size_error(src, size);
		return -1;
	}
	return 0;
}

/* A dynamic image made at the largest size for a stream takes its real size. */
static int shrink_image(struct dest *d, const struct source *src, uint64_t size)
{
	if (check_stream_size(src, size, size) < 0)
		return -1;
	if (vhd_resize(d->img, size, VHD_RESIZE_SHRINK) < 0) {
		vt_error("%s", vhd_errmsg(d->img));
		return -1;
	}
	return 0;
}

static int convert(const struct options *o, const char *src_path, const char *dst_path)
{
	struct source src;
	struct dest d = { .path = dst_path, .out = { .fd = -1 } };
	struct vhd_error err;
	uint8_t footer[512];
	bool created = false, have_footer = false;
	int status = EXIT_FAIL;
	enum out_format fmt = o->fmt;

	if (open_source(src_path, o->src_fmt, &src) < 0)
		goto out;
	if (o->size_given && !src.stream && src.size != o->size) {
		vt_error("%s is %" PRIu64 " bytes, not the %" PRIu64 " given by --size", src.name, src.size,
			 o->size);
		goto out;
	}
	if (check_destination(src_path, dst_path, o->overwrite) < 0)
		goto out;

	/* A stream's size is known up front only from --size. */
	bool sized = !src.stream || o->size_given;
	uint64_t size = src.stream ? o->size : src.size;
	uint64_t vsize = o->azure ? vt_azure_round(size) : size;
	bool stream_dst = is_stdio(dst_path) || name_ends_gz(dst_path);
	/* Fixed to a stream, or from one: raw data, then the footer. */
	bool footer_last = fmt == OUT_FIXED && (stream_dst || src.stream);

	if (sized && fmt != OUT_RAW && !o->backing && vsize % 512) {
		odd_size_error(&src, size);
		goto out;
	}
	if (footer_last && sized) {
		if (fixed_footer(vsize, o->azure, footer) < 0)
			goto out;
		have_footer = true;
	}
	if (stream_dst) {
		if (open_dest_stream(dst_path, &d, &created) < 0)
			goto out;
	} else if (fmt == OUT_RAW || footer_last) {
		if (vhd_io_posix_open(dst_path, VHD_IO_RDWR | VHD_IO_CREATE, &d.raw, &err) < 0) {
			vt_error("%s", err.message);
			goto out;
		}
		created = true;
		int r = sized && fmt == OUT_RAW ? d.raw->ops->truncate(d.raw, size) : 0;
		if (r < 0) {
			vt_error("%s: cannot size the file to %" PRIu64 " bytes: %s", dst_path, size,
				 strerror(-r));
			goto out;
		}
	} else {
		struct vhd_create_params p = {
			.type = o->backing ? VHD_TYPE_DIFFERENCING
					   : fmt == OUT_FIXED ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC,
			/* Unknown: as large as allowed, shrunk at the end. */
			.size = sized ? vsize : VHD_MAX_DYNAMIC_SIZE,
			.block_size = o->block_size,
			.flags = (o->azure ? VHD_CREATE_AZURE : 0) | (o->sync ? 0 : VHD_CREATE_NO_SYNC),
			.parent = o->backing,
		};
		if (p.type == VHD_TYPE_FIXED && p.size > VHD_MAX_DYNAMIC_SIZE)
			vt_warn("fixed images over 2040 GiB are valid, but qemu-img refuses to open them");
		if (vhd_create(dst_path, &p, &d.img, &err) < 0) {
			vt_error("%s", err.message);
			goto out;
		}
		created = true;
		if (o->backing) {
			d.parent = vhd_parent(d.img);
			if (sized && vhd_virtual_size(d.img) != size) {
				vt_error("%s is %" PRIu64 " bytes but the parent %s is %" PRIu64 " bytes; -B needs equal sizes",
					 src.name, size, o->backing, vhd_virtual_size(d.img));
				goto out;
			}
		}
	}

	if (src.stream) {
		uint64_t limit = UINT64_MAX, total;
		const char *why = "";
		if (o->size_given) {
			limit = o->size;
			why = "given by --size";
		} else if (o->backing) {
			limit = vhd_virtual_size(d.img);
			why = "of the parent image (-B needs equal sizes)";
		} else if (d.img) {
			limit = VHD_MAX_DYNAMIC_SIZE;
			why = "(2040 GiB) that a dynamic VHD can hold";
		}
		if (copy_stream(&src, &d, limit, why, o->progress, &total) < 0)
			goto out;
		if (total != limit && (o->size_given || o->backing)) {
			vt_error("%s: the stream is %" PRIu64 " bytes, not the %" PRIu64 " bytes %s", src.name,
				 total, limit, why);
			goto out;
		}
		if (!sized && fmt == OUT_DYNAMIC && !o->backing && shrink_image(&d, &src, total) < 0)
			goto out;
		size = total;
		vsize = o->azure ? vt_azure_round(size) : size;
	} else if (copy_data(&src, &d, o->progress) < 0) {
		goto out;
	}

	if (footer_last && !have_footer) {
		if (check_stream_size(&src, size, vsize) < 0)
			goto out;
		if (fixed_footer(vsize, o->azure, footer) < 0)
			goto out;
		if (vsize > VHD_MAX_DYNAMIC_SIZE)
			vt_warn("fixed images over 2040 GiB are valid, but qemu-img refuses to open them");
	}
	if (footer_last && put_footer(&d, footer, size, vsize) < 0)
		goto out;
	if (d.img) {
		int r = vhd_flush(d.img);
		if (r < 0) {
			vt_error("%s", vhd_errmsg(d.img));
			goto out;
		}
		r = vhd_close(d.img);
		d.img = NULL;
		if (r < 0) {
			vt_error("%s: cannot finish the image: %s", dst_path, strerror(-r));
			goto out;
		}
	} else if (d.stream) {
		if (outstream_finish(&d.out, o->sync) < 0)
			goto out;
	} else {
		/* Trailing zeros of a stream were not written: the size makes them. */
		int r = src.stream && fmt == OUT_RAW ? d.raw->ops->truncate(d.raw, size) : 0;
		if (r < 0) {
			vt_error("%s: cannot size the file to %" PRIu64 " bytes: %s", dst_path, size,
				 strerror(-r));
			goto out;
		}
		if (o->sync && d.raw->ops->flush(d.raw) < 0) {
			vt_error("%s: flush failed", dst_path);
			goto out;
		}
	}
	status = EXIT_OK;
out:
	if (d.img)
		vhd_close(d.img);
	if (d.raw)
		vhd_io_close(d.raw);
	if (d.stream)
		outstream_close(&d.out);
	if (status != EXIT_OK && created)
		unlink(dst_path);
	close_source(&src);
	return status;
}

static int parse_format(struct options *o)
{
	if (strcmp(o->out_fmt, "raw") == 0)
		o->fmt = OUT_RAW;
	else if (strcmp(o->out_fmt, "fixed") == 0)
		o->fmt = OUT_FIXED;
	else if (strcmp(o->out_fmt, "dynamic") == 0 || strcmp(o->out_fmt, "vpc") == 0 ||
		 strcmp(o->out_fmt, "vhd") == 0)
		o->fmt = OUT_DYNAMIC;
	else {
		vt_error("unknown output format '%s' (raw, fixed or dynamic)", o->out_fmt);
		return -1;
	}
	if (o->azure) {
		if (o->out_given && o->fmt != OUT_FIXED) {
			vt_error("--azure writes a fixed image; it cannot be combined with -O %s", o->out_fmt);
			return -1;
		}
		o->fmt = OUT_FIXED;
	}
	return 0;
}

/* Standard output and .gz files are written in order: raw data, or a fixed
 * VHD (its footer comes last); the others need to seek back. */
static int check_stream_format(struct options *o, const char *dst_path)
{
	if (!is_stdio(dst_path) && !name_ends_gz(dst_path))
		return 0;
	if (o->backing || (o->out_given && o->fmt == OUT_DYNAMIC)) {
		vt_error("%s: a %s VHD cannot be written to a pipe or a .gz file: its metadata is written where the file can seek (write it to a file, or use -O raw or -O fixed)",
			 is_stdio(dst_path) ? "standard output" : dst_path,
			 o->backing ? "differencing" : "dynamic");
		return -1;
	}
	if (!o->out_given && !o->azure)
		o->fmt = OUT_RAW;
	return 0;
}

int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "block-size", required_argument, NULL, 'S' },
		{ "azure", no_argument, NULL, 'A' },
		{ "progress", no_argument, NULL, 'p' },
		{ "overwrite", no_argument, NULL, 'W' },
		{ "sync", no_argument, NULL, 'Y' },
		{ "size", required_argument, NULL, 'Z' },
		{ NULL, 0, NULL, 0 },
	};
	struct options o = { .out_fmt = "dynamic" };
	int c;

	while ((c = getopt_long(argc, argv, "f:O:B:p", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.src_fmt = optarg;
			if (strcmp(optarg, "raw") && strcmp(optarg, "vhd") && strcmp(optarg, "vpc")) {
				vt_error("unknown source format '%s' (raw or vhd)", optarg);
				return EXIT_FAIL;
			}
			break;
		case 'O':
			o.out_fmt = optarg;
			o.out_given = true;
			break;
		case 'B':
			o.backing = optarg;
			break;
		case 'S':
			if (vt_parse_block_size(optarg, &o.block_size) < 0)
				return EXIT_FAIL;
			break;
		case 'A':
			o.azure = true;
			break;
		case 'p':
			o.progress = true;
			break;
		case 'W':
			o.overwrite = true;
			break;
		case 'Y':
			o.sync = true;
			break;
		case 'Z':
			if (vt_parse_size(optarg, &o.size) < 0) {
				vt_error("invalid size '%s'", optarg);
				return EXIT_FAIL;
			}
			o.size_given = true;
			break;
		default:
			return vt_usage("convert");
		}
	}
	if (argc - optind != 2)
		return vt_usage("convert");
	const char *src_path = argv[optind], *dst_path = argv[optind + 1];

	if (parse_format(&o) < 0 || check_stream_format(&o, dst_path) < 0)
		return EXIT_FAIL;
	if (o.backing && (o.fmt != OUT_DYNAMIC || o.azure)) {
		vt_error("-B writes a differencing image; it cannot be combined with %s",
			 o.azure ? "--azure" : o.out_fmt);
		return EXIT_FAIL;
	}
	/* A reader that goes away must end the job with a message, not kill it. */
	signal(SIGPIPE, SIG_IGN);
	return convert(&o, src_path, dst_path);
}
