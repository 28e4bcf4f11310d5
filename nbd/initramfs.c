/* SPDX-License-Identifier: MIT */
/* --initramfs: keep the root file system's server alive under memory
 * pressure and through the shutdown's kill passes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "initramfs.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57    /* Linux 5.6 */
#endif

void initramfs_tune_malloc(void)
{
	/* The largest value glibc accepts (32 MiB on 64-bit); a request as
	 * large as NBD_MAX_PAYLOAD still comes from mmap. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	mallopt(M_ARENA_MAX, 1);
}

static void warn(const char *what)
{
	fprintf(stderr, "vhd-nbd: warning: %s: %s\n", what, strerror(errno));
}

void initramfs_harden(char *argv0)
{
	/*
	 * The kernel's writeback may wait on this process: its allocations
	 * must not themselves wait on writeback (PF_MEMALLOC_NOIO), and the
	 * dirty throttling must not stall it (PF_LOCAL_THROTTLE).
	 */
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) < 0)
		warn("PR_SET_IO_FLUSHER (needs Linux 5.6 and CAP_SYS_RESOURCE)");
	/* A page of this process swapped out could only come back through
	 * a disk it may itself be serving. */
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		warn("mlockall");
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "-1000", 5) != 5)
		warn("/proc/self/oom_score_adj");
	if (fd >= 0)
		close(fd);
	/* systemd's final kill pass spares a process whose argv[0] begins
	 * with '@' (docs: ROOT_STORAGE_DAEMONS); `exec -a @vhd-nbd` does it
	 * too, this covers a start without it. */
	if (argv0 && argv0[0] && argv0[0] != '@')
		argv0[0] = '@';
}
