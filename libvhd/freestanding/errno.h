/* SPDX-License-Identifier: MIT */
/* errno values for freestanding builds: the core returns them negated. */
#ifndef VHD_FREESTANDING_ERRNO_H
#define VHD_FREESTANDING_ERRNO_H

#define EPERM 1
#define ENOENT 2
#define EIO 5
#define ENXIO 6
#define E2BIG 7
#define ENOMEM 12
#define EACCES 13
#define EBUSY 16
#define EEXIST 17
#define ENODEV 19
#define ENOTDIR 20
#define EISDIR 21
#define EINVAL 22
#define EFBIG 27
#define ENOSPC 28
#define EROFS 30
#define EMLINK 31
#define ENAMETOOLONG 36
#define ENOTEMPTY 39
#define ELOOP 40
#define EOPNOTSUPP 95
#define ENOTSUP EOPNOTSUPP
#define EDQUOT 122

#endif
