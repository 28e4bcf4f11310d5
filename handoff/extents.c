/* SPDX-License-Identifier: MIT */
/* Checks on the loader's extent lists, and the comparison with the file's
 * extents as the file system reports them now. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handoff.h"

#define SAY(...)                                             \
	do {                                                 \
		if (err && errlen)                           \
			snprintf(err, errlen, __VA_ARGS__);  \
	} while (0)

uint64_t ho_size_sectors(uint64_t bytes)
{
	return bytes / HO_SECTOR + (bytes % HO_SECTOR != 0);
}

static int by_start(const void *a, const void *b)
{
	const struct ho_extent *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int by_host(const void *a, const void *b)
{
	const struct ho_extent *x = a, *y = b;
	return x->host < y->host ? -1 : x->host > y->host;
}

/* Do two runs of the list share a host sector?  Index of the later one, or 0. */
static size_t host_overlap(const struct ho_extent_list *l)
{
	struct ho_extent *copy = malloc((l->n ? l->n : 1) * sizeof(*copy));
	size_t bad = 0;

	if (!copy)
		return SIZE_MAX;
	memcpy(copy, l->v, l->n * sizeof(*copy));
	qsort(copy, l->n, sizeof(*copy), by_host);
	for (size_t i = 1; i < l->n && !bad; i++)
		if (copy[i - 1].host + copy[i - 1].sectors > copy[i].host)
			bad = i;
	free(copy);
	return bad;
}

int ho_fext_validate(const struct ho_extent_list *fext, uint64_t file_size,
		     uint64_t part_sectors, char *err, size_t errlen)
{
	uint64_t want = ho_size_sectors(file_size), next = 0;

	if (fext->n == 0) {
		SAY("vhd.fext is empty");
		return -EINVAL;
	}
	for (size_t i = 0; i < fext->n; i++) {
		const struct ho_extent *e = &fext->v[i];
		if (e->start != next) {
			SAY("vhd.fext extent %zu starts at file sector %" PRIu64 ", not %" PRIu64
			    " (the list must be sorted and leave no gap)", i + 1, e->start, next);
			return -EINVAL;
		}
		if (e->start >= want) {
			SAY("vhd.fext extent %zu starts past the end of the %" PRIu64 "-byte file",
			    i + 1, file_size);
			return -EINVAL;
		}
		if (e->host >= part_sectors || e->sectors > part_sectors - e->host) {
			SAY("vhd.fext extent %zu (host sectors %" PRIu64 "+%" PRIu64
			    ") runs past the %" PRIu64 "-sector host partition",
			    i + 1, e->host, e->sectors, part_sectors);
			return -EINVAL;
		}
		next = e->start + e->sectors;
	}
	if (next < want) {
		SAY("vhd.fext covers %" PRIu64 " sectors of the %" PRIu64 "-sector file", next, want);
		return -EINVAL;
	}
	size_t o = host_overlap(fext);
	if (o == SIZE_MAX)
		return -ENOMEM;
	if (o) {
		SAY("vhd.fext maps two parts of the file onto the same host sectors");
		return -EINVAL;
	}
	return 0;
}

int ho_dm_validate(const struct ho_extent_list *dm, const struct ho_extent_list *fext,
		   uint64_t file_size, uint64_t *virtual_sectors, char *err, size_t errlen)
{
	uint64_t file_sectors = ho_size_sectors(file_size), next = 0;

	if (dm->n == 0) {
		SAY("vhd.dm is empty");
		return -EINVAL;
	}
	/* Host runs of the file, sorted, to look each dm segment up in. */
	struct ho_extent *f = malloc(fext->n * sizeof(*f));
	if (!f)
		return -ENOMEM;
	memcpy(f, fext->v, fext->n * sizeof(*f));
	qsort(f, fext->n, sizeof(*f), by_host);

	int r = 0;
	for (size_t i = 0; i < dm->n && !r; i++) {
		const struct ho_extent *d = &dm->v[i];
		if (d->start != next) {
			SAY("vhd.dm segment %zu starts at virtual sector %" PRIu64 ", not %" PRIu64
			    " (the list must be sorted and leave no gap)", i + 1, d->start, next);
			r = -EINVAL;
			break;
		}
		next = d->start + d->sectors;
		if (next > file_sectors) {
			SAY("vhd.dm maps more sectors than the %" PRIu64 "-byte file holds", file_size);
			r = -EINVAL;
			break;
		}
		/* Every host sector of the segment must belong to the file: walk
		 * the file's host runs that cover it, which must touch. */
		uint64_t at = d->host, end = d->host + d->sectors;
		size_t lo = 0, hi = fext->n;
		while (lo < hi) { /* last run starting at or before `at` */
			size_t mid = lo + (hi - lo) / 2;
			if (f[mid].host <= at)
				lo = mid + 1;
			else
				hi = mid;
		}
		size_t k = lo;
		while (at < end) {
			if (k == 0 || f[k - 1].host > at || f[k - 1].host + f[k - 1].sectors <= at) {
				SAY("vhd.dm segment %zu maps host sector %" PRIu64
				    ", which is not part of the VHD file", i + 1, at);
				r = -EINVAL;
				break;
			}
			at = f[k - 1].host + f[k - 1].sectors;
			k++;
			if (k > fext->n)
				k = fext->n; /* past the last run: the check above fails */
		}
	}
	free(f);
	if (r)
		return r;
	size_t o = host_overlap(dm);
	if (o == SIZE_MAX)
		return -ENOMEM;
	if (o) {
		SAY("vhd.dm maps two virtual sectors onto the same host sector");
		return -EINVAL;
	}
	*virtual_sectors = next;
	return 0;
}

void ho_extents_normalize(struct ho_extent_list *l)
{
	size_t o = 0;

	if (l->n == 0)
		return;
	qsort(l->v, l->n, sizeof(*l->v), by_start);
	for (size_t i = 1; i < l->n; i++) {
		struct ho_extent *last = &l->v[o], *e = &l->v[i];
		if (last->start + last->sectors == e->start && last->host + last->sectors == e->host)
			last->sectors += e->sectors;
		else
			l->v[++o] = *e;
	}
	l->n = o + 1;
}

/* Cut the list at `sectors`: file system blocks run past the end of file. */
static void clip(struct ho_extent_list *l, uint64_t sectors)
{
	size_t n = 0;

	while (n < l->n && l->v[n].start < sectors) {
		if (l->v[n].sectors > sectors - l->v[n].start)
			l->v[n].sectors = sectors - l->v[n].start;
		n++;
	}
	l->n = n;
}

int ho_fext_compare(struct ho_extent_list *want, struct ho_extent_list *have, uint64_t file_size,
		    char *err, size_t errlen)
{
	uint64_t sectors = ho_size_sectors(file_size), at = 0;

	ho_extents_normalize(want);
	ho_extents_normalize(have);
	clip(want, sectors);
	clip(have, sectors);
	for (size_t i = 0; at < sectors; i++) {
		if (i >= have->n || have->v[i].start != at) {
			SAY("file sector %" PRIu64 " has no block on the disk now", at);
			return -ESTALE;
		}
		if (i >= want->n || want->v[i].start != at) {
			SAY("the loader's extents leave file sector %" PRIu64 " unmapped", at);
			return -ESTALE;
		}
		const struct ho_extent *h = &have->v[i], *w = &want->v[i];
		if (h->host != w->host) {
			SAY("file sector %" PRIu64 " is at host sector %" PRIu64
			    " now, the loader saw %" PRIu64, at, h->host, w->host);
			return -ESTALE;
		}
		if (h->sectors != w->sectors) {
			uint64_t where = at + (h->sectors < w->sectors ? h->sectors : w->sectors);
			SAY("file sector %" PRIu64 " is not where the loader saw it", where);
			return -ESTALE;
		}
		at += h->sectors;
	}
	return 0;
}
