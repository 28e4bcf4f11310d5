/* SPDX-License-Identifier: MIT */
/*
 * --initramfs: what a server that holds the machine's root file system
 * needs so that memory pressure and the shutdown's kill passes cannot take
 * it away while the kernel still writes through it.
 */
#ifndef VHD_NBD_INITRAMFS_H
#define VHD_NBD_INITRAMFS_H

/* Memory requests to the kernel on the I/O path can deadlock a server that
 * the kernel's own writeback waits on: this many bytes of request buffers
 * in flight at most, all kept by malloc for reuse once first used. */
#define INITRAMFS_MEMORY_BUDGET (16u << 20)

/* Before any thread exists: one malloc arena that keeps what it has
 * (no trimming, large buffers from the heap), so that buffers freed after a
 * request serve the next ones instead of returning to the kernel. */
void initramfs_tune_malloc(void);

/*
 * In the serving process, before it reports ready: PR_SET_IO_FLUSHER,
 * mlockall(MCL_CURRENT | MCL_FUTURE), oom_score_adj -1000, and argv[0]
 * marked with a leading '@' (systemd's root-storage daemon convention)
 * when it is not already.  Each step that fails is a warning on stderr, not
 * an error: an older kernel or a missing capability still boots.
 */
void initramfs_harden(char *argv0);

#endif
