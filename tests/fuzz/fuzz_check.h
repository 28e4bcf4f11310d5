/* SPDX-License-Identifier: MIT */
/*
 * FZ_CHECK: a fuzz oracle.  A failed invariant aborts, so libFuzzer keeps
 * the input as a crash.  Kept apart from fuzz_common.h, which needs libvhd's
 * internals, so that targets over other code (nbd, efiboot, handoff) can use
 * it too.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FZ_CHECK(cond)                                                              \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, \
				__LINE__, #cond);                                   \
			abort();                                                    \
		}                                                                   \
	} while (0)

#endif
