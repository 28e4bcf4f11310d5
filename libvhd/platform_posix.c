/* SPDX-License-Identifier: MIT */
/* Host services for the core on POSIX systems. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <uuid/uuid.h>

#include "platform.h"

void *vhd_malloc(size_t size)
{
	return malloc(size);
}

void *vhd_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

void vhd_free(void *p)
{
	free(p);
}

struct vhd_mutex {
	pthread_mutex_t m;
};

struct vhd_mutex *vhd_mutex_new(void)
{
	struct vhd_mutex *m = malloc(sizeof(*m));
	if (m && pthread_mutex_init(&m->m, NULL) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

void vhd_mutex_lock(struct vhd_mutex *m)
{
	pthread_mutex_lock(&m->m);
}

void vhd_mutex_unlock(struct vhd_mutex *m)
{
	pthread_mutex_unlock(&m->m);
}

void vhd_mutex_free(struct vhd_mutex *m)
{
	pthread_mutex_destroy(&m->m);
	free(m);
}

int64_t vhd_time_now(void)
{
	return (int64_t)time(NULL);
}

void vhd_uuid_generate(uint8_t uuid[16])
{
	uuid_generate_random(uuid);
}
