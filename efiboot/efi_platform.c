/* SPDX-License-Identifier: MIT */
/* platform.h for UEFI: pool memory, TPL locks, the RTC, a random UUID. */
#include "efi_glue.h"
#include "platform.h"

void *vhd_malloc(size_t size)
{
	void *p = NULL;
	if (size == 0)
		size = 1;
	if (BS->AllocatePool(EfiLoaderData, size, &p) != EFI_SUCCESS)
		return NULL;
	return p;
}

void *vhd_calloc(size_t n, size_t size)
{
	if (size && n > (size_t)-1 / size)
		return NULL;
	void *p = vhd_malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void vhd_free(void *p)
{
	if (p)
		BS->FreePool(p);
}

/*
 * UEFI has one thread, but firmware timer events at TPL_CALLBACK can run
 * inside our code (the FAT driver flushes from one).  A lock raises the TPL
 * to TPL_CALLBACK, which holds those events off, and restores it after:
 * the TPL is never left raised.  A caller already at TPL_CALLBACK or above
 * is left as it is (lowering the TPL there would be a bug).  Locks nest
 * (an image, then its parent).
 */
#define LOCK_DEPTH 16
struct vhd_mutex {
	EFI_TPL saved[LOCK_DEPTH];
	unsigned depth;
};

struct vhd_mutex *vhd_mutex_new(void)
{
	return vhd_calloc(1, sizeof(struct vhd_mutex));
}

void vhd_mutex_lock(struct vhd_mutex *m)
{
	EFI_TPL cur = BS->RaiseTPL(TPL_HIGH_LEVEL);
	BS->RestoreTPL(cur);
	if (cur < TPL_CALLBACK)
		BS->RaiseTPL(TPL_CALLBACK);
	if (m->depth < LOCK_DEPTH)
		m->saved[m->depth] = cur;
	m->depth++;
}

void vhd_mutex_unlock(struct vhd_mutex *m)
{
	if (m->depth == 0)
		return;
	m->depth--;
	if (m->depth < LOCK_DEPTH && m->saved[m->depth] < TPL_CALLBACK)
		BS->RestoreTPL(m->saved[m->depth]);
}

void vhd_mutex_free(struct vhd_mutex *m)
{
	vhd_free(m);
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int64_t vhd_time_now(void)
{
	EFI_TIME t;
	if (RT->GetTime(&t, NULL) != EFI_SUCCESS || t.Month < 1 || t.Month > 12 || t.Day < 1 ||
	    t.Day > 31)
		return 946684800; /* 2000-01-01, the VHD epoch */
	int64_t s = days_from_civil(t.Year, t.Month, t.Day) * 86400 + t.Hour * 3600 +
		    t.Minute * 60 + t.Second;
	if (t.TimeZone != EFI_UNSPECIFIED_TIMEZONE && t.TimeZone >= -1440 && t.TimeZone <= 1440)
		s += (int64_t)t.TimeZone * 60; /* local = UTC - TimeZone */
	return s;
}

static EFI_GUID rng_protocol = { 0x3152bca5, 0xeade, 0x433d,
				 { 0x86, 0x2e, 0xc0, 0x1c, 0xdc, 0x29, 0x1f, 0x44 } };

typedef EFI_STATUS(EFIAPI *rng_get_rng)(void *this, EFI_GUID *alg, UINTN len, UINT8 *out);
struct rng_protocol_if {
	void *get_info;
	rng_get_rng get_rng;
};

void vhd_uuid_generate(uint8_t uuid[16])
{
	struct rng_protocol_if *rng = NULL;
	if (BS->LocateProtocol(&rng_protocol, NULL, (void **)&rng) != EFI_SUCCESS || !rng ||
	    rng->get_rng(rng, NULL, 16, uuid) != EFI_SUCCESS) {
		/* No RNG: the time and a counter, mixed (a loader never creates
		 * an image, so this only keeps the hook honest). */
		static uint64_t counter;
		uint64_t x = (uint64_t)vhd_time_now() ^ (++counter * 0x9e3779b97f4a7c15ull) ^
			     (uint64_t)(uintptr_t)uuid;
		for (int i = 0; i < 16; i++) {
			x ^= x >> 33;
			x *= 0xff51afd7ed558ccdull;
			x ^= x >> 29;
			uuid[i] = (uint8_t)x;
		}
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}
