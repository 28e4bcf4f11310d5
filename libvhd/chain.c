/* SPDX-License-Identifier: MIT */
/* Finding and checking a differencing image's parent. */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define MAX_CANDIDATES 24

struct candidate {
	char path[VHD_LOCATOR_MAX_PATH];    /* what open_sibling gets ('/' separated) */
	char shown[VHD_LOCATOR_MAX_PATH];   /* what the user recognises */
};

struct candidates {
	struct candidate c[MAX_CANDIDATES];
	int n;
};

static void add(struct candidates *cs, const char *path, const char *shown)
{
	if (!*path || cs->n == MAX_CANDIDATES)
		return;
	for (int i = 0; i < cs->n; i++)
		if (strcmp(cs[0].c[i].path, path) == 0)
			return;
	vhd_strlcpy(cs->c[cs->n].path, path, sizeof(cs->c[0].path));
	vhd_strlcpy(cs->c[cs->n].shown, shown, sizeof(cs->c[0].shown));
	cs->n++;
}

static const char *basename_of(const char *p)
{
	const char *b = p;
	for (; *p; p++)
		if (*p == '/' || *p == '\\')
			b = p + 1;
	return b;
}

/* ".\dir\name" -> "dir/name"; "C:\dir\name" -> "/dir/name". */
static void windows_to_generic(const char *in, char *out, size_t len)
{
	size_t o = 0;
	if (((in[0] >= 'A' && in[0] <= 'Z') || (in[0] >= 'a' && in[0] <= 'z')) && in[1] == ':')
		in += 2;
	while (in[0] == '.' && (in[1] == '\\' || in[1] == '/'))
		in += 2;
	for (; *in && o + 1 < len; in++)
		out[o++] = *in == '\\' ? '/' : *in;
	out[o] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "file://localhost/a%20b" -> "/a b"; false when not a file URL. */
static bool file_url_to_path(const char *url, char *out, size_t len)
{
	if (strncmp(url, "file://", 7) != 0)
		return false;
	url += 7;
	if (strncmp(url, "localhost/", 10) == 0)
		url += 9;
	if (*url != '/')
		return false;
	size_t o = 0;
	for (; *url && o + 1 < len; url++) {
		int hi, lo;
		if (*url == '%' && (hi = hexval(url[1])) >= 0 && (lo = hexval(url[2])) >= 0) {
			char c = (char)(hi * 16 + lo);
			if (!c)
				return false;
			out[o++] = c;
			url += 2;
		} else {
			out[o++] = *url;
		}
	}
	out[o] = '\0';
	return true;
}

/* Decode locator i into out; returns false when it is unused or broken. */
bool vhd_read_locator(struct vhd_image *img, int i, struct vhd_locator *out)
{
	const struct vhd_locator_entry *l = &img->header.loc[i];
	uint8_t buf[2 * VHD_LOCATOR_MAX_PATH];

	memset(out, 0, sizeof(*out));
	for (int k = 0; k < 4; k++) {
		char c = (char)(l->code >> (24 - 8 * k));
		out->code[k] = c >= 0x20 && c < 0x7F ? c : '?';
	}
	out->data_space = l->data_space;
	out->data_length = l->data_length;
	out->data_offset = l->data_offset;
	uint64_t size;      /* now: the file may have grown since the open */
	if (img->io->ops->size(img->io, &size) < 0)
		size = img->file_size;
	if (!l->code || !l->data_length || l->data_length > sizeof(buf) ||
	    l->data_length > vhd_locator_space_bytes(l) ||
	    !vhd_range_ok(l->data_offset, l->data_length, size))
		return false;
	if (img->io->ops->pread(img->io, buf, l->data_length, l->data_offset) < 0)
		return false;
	out->valid = vhd_locator_decode_path(l->code, buf, l->data_length, out->path,
					     sizeof(out->path)) == 0;
	return out->valid;
}

/* Fill cs with the paths to try; absolute is scratch space. */
static void gather_candidates(struct vhd_image *img, struct candidates *cs,
			      struct candidates *absolute)
{
	struct vhd_locator loc;
	char generic[VHD_LOCATOR_MAX_PATH];
	char name[VHD_LOCATOR_MAX_PATH];
	bool have_name = vhd_utf16_to_utf8(img->header.parent_name, sizeof(img->header.parent_name),
					   true, name, sizeof(name)) > 0;

	/* Relative to the child's folder first: it survives moving both. */
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		if (img->header.loc[i].code == VHD_PLAT_W2RU && vhd_read_locator(img, i, &loc)) {
			windows_to_generic(loc.path, generic, sizeof(generic));
			add(cs, generic, loc.path);
		}
	}
	if (have_name) {
		windows_to_generic(name, generic, sizeof(generic));
		add(cs, generic[0] == '/' ? basename_of(generic) : generic, name);
	}
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		uint32_t code = img->header.loc[i].code;
		if (code == VHD_PLAT_W2RU || !vhd_read_locator(img, i, &loc))
			continue;
		if (code == VHD_PLAT_MACX) {
			if (file_url_to_path(loc.path, generic, sizeof(generic))) {
				add(cs, basename_of(generic), basename_of(generic));
				add(absolute, generic, loc.path);
			}
		} else if (code == VHD_PLAT_W2KU) {
			windows_to_generic(loc.path, generic, sizeof(generic));
			add(cs, basename_of(generic), basename_of(loc.path));
			add(absolute, generic, loc.path);
		}
	}
	for (int i = 0; i < absolute->n; i++)
		add(cs, absolute->c[i].path, absolute->c[i].shown);
}

bool vhd_chain_has_uuid(const uint8_t (*chain)[16], int n, const uint8_t *uuid)
{
	for (int i = 0; i < n; i++)
		if (memcmp(chain[i], uuid, 16) == 0)
			return true;
	return false;
}

int vhd_chain_open_parent(struct vhd_image *img, unsigned flags, int depth,
			  const uint8_t (*seen)[16], struct vhd_error *err)
{
	const char *name = img->io->name;
	struct vhd_error local;
	uint8_t chain[VHD_MAX_CHAIN_DEPTH + 1][16];
	struct candidates *cs;
	char tried[sizeof(err->message)] = "";
	size_t tlen = 0;
	char expect[37], got[37];
	int r = -ENOENT;
	bool cycle = false;

	if (!err)
		err = &local;
	if (depth >= VHD_MAX_CHAIN_DEPTH) {
		vhd_set_error(err, -EMLINK, "%s: the parent chain is deeper than %d images", name,
			      VHD_MAX_CHAIN_DEPTH);
		return -EMLINK;
	}
	if (seen)
		memcpy(chain, seen, sizeof(chain[0]) * (size_t)(depth));
	memcpy(chain[depth], img->footer.uuid, 16);
	if (!img->io->ops->open_sibling) {
		vhd_set_error(err, -ENOTSUP, "%s: this backend cannot open parent images", name);
		r = -ENOTSUP;
		goto missing;
	}
	cs = vhd_malloc(2 * sizeof(*cs));
	if (!cs) {
		vhd_set_error(err, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	cs[0].n = cs[1].n = 0;
	gather_candidates(img, &cs[0], &cs[1]);
	vhd_uuid_text(img->header.parent_uuid, expect);

	for (int i = 0; i < cs[0].n; i++) {
		struct vhd_io *pio;
		struct vhd_image *parent;
		struct vhd_error perr;
		const char *reason;
		char why[300];

		int pr = img->io->ops->open_sibling(img->io, cs[0].c[i].path, &pio);
		if (pr == -EPERM) {
			reason = "not in a folder allowed for parent images";
		} else if (pr < 0) {
			reason = vhd_strerror(pr);
		} else {
			pr = vhd_open_io_depth(pio, flags & ~VHD_OPEN_RDWR, depth + 1,
					       (const uint8_t(*)[16])chain, &parent, &perr);
			if (pr == -EMLINK) {
				vhd_set_error(err, pr, "%s", perr.message);
				vhd_free(cs);
				return pr;
			}
			if (pr < 0) {
				/* A candidate that is this image or one of its children
				 * (a shared file name, a stale locator) is skipped. */
				cycle = cycle || pr == -ELOOP;
				vhd_strlcpy(why, perr.message, sizeof(why));
				reason = why;
			} else if (memcmp(parent->footer.uuid, img->header.parent_uuid, 16) != 0 &&
				   !(flags & VHD_OPEN_IGNORE_PARENT_ID)) {
				vhd_uuid_text(parent->footer.uuid, got);
				vhd_format(why, sizeof(why), "its UUID is %s, the child expects %s", got,
					   expect);
				vhd_close(parent);
				pr = -EINVAL;
				reason = why;
			} else {
				if (memcmp(parent->footer.uuid, img->header.parent_uuid, 16) != 0) {
					vhd_uuid_text(parent->footer.uuid, got);
					vhd_img_warn(img, "parent %s has UUID %s, the child expects %s (ignored)",
						     cs[0].c[i].shown, got, expect);
				}
				if (img->header.parent_timestamp &&
				    img->header.parent_timestamp != parent->footer.timestamp)
					vhd_img_warn(img,
						     "parent %s has timestamp %u, the child recorded %u: the parent may have changed",
						     cs[0].c[i].shown, parent->footer.timestamp,
						     img->header.parent_timestamp);
				size_t plen = strlen(cs[0].c[i].path) + 1;
				img->parent_path = vhd_malloc(plen);
				if (img->parent_path)
					memcpy(img->parent_path, cs[0].c[i].path, plen);
				img->parent = parent;
				vhd_free(cs);
				return 0;
			}
		}
		if (pr != -ENOENT)
			r = pr;
		tlen += (size_t)vhd_format(tried + tlen, tlen < sizeof(tried) ? sizeof(tried) - tlen : 0,
					   "%s%s (%s)", tlen ? ", " : "", cs[0].c[i].shown, reason);
		if (tlen >= sizeof(tried))
			tlen = sizeof(tried);
	}
	if (cs[0].n == 0) {
		vhd_set_error(err, -ENOENT,
			      "%s: differencing image names no parent (no usable locator and no parent name)",
			      name);
	} else if (cycle) {
		r = -ELOOP;
		vhd_set_error(err, r, "%s: the parent chain has a cycle; tried: %s", name, tried);
	} else {
		vhd_set_error(err, r, "%s: parent (UUID %s) not found; tried: %s", name, expect, tried);
	}
	vhd_free(cs);
missing:
	if (flags & VHD_OPEN_PARENT_OPTIONAL) {
		size_t mlen = strlen(err->message) + 1;
		img->parent_error = vhd_malloc(mlen);
		if (img->parent_error)
			memcpy(img->parent_error, err->message, mlen);
		err->code = 0;
		err->message[0] = '\0';
		return 0;
	}
	return r;
}
