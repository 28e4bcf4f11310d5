/* SPDX-License-Identifier: MIT */
/*
 * The few services the core needs from its host besides struct vhd_io.
 * platform_posix.c implements them on Linux; efiboot/ provides its own.
 */
#ifndef VHD_PLATFORM_H
#define VHD_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

void *vhd_malloc(size_t size);
void *vhd_calloc(size_t n, size_t size);
void vhd_free(void *p);

struct vhd_mutex;
struct vhd_mutex *vhd_mutex_new(void);       /* NULL when out of memory */
void vhd_mutex_lock(struct vhd_mutex *m);
void vhd_mutex_unlock(struct vhd_mutex *m);
void vhd_mutex_free(struct vhd_mutex *m);

/* Seconds since the Unix epoch, UTC. */
int64_t vhd_time_now(void);
/* A new random (version 4) UUID in the byte order it is stored on disk. */
void vhd_uuid_generate(uint8_t uuid[16]);

#endif
