/* SPDX-License-Identifier: MIT */
/* Decoding and judging transmission requests: pure, no I/O. */
#include <errno.h>
#include <string.h>

#include "endian.h"
#include "nbd.h"
#include "protocol.h"

void nbd_request_decode(const uint8_t buf[NBD_REQUEST_SIZE], struct nbd_request *r)
{
	r->magic = vhd_be32(buf);
	r->flags = vhd_be16(buf + 4);
	r->type = vhd_be16(buf + 6);
	r->cookie = vhd_be64(buf + 8);
	r->offset = vhd_be64(buf + 16);
	r->length = vhd_be32(buf + 24);
}

uint32_t nbd_request_payload(const struct nbd_request *r)
{
	return r->type == NBD_CMD_WRITE ? r->length : 0;
}

/* The flags each command may carry. */
static uint16_t allowed_flags(uint16_t type, const struct nbd_session *s)
{
	/* FUA is valid on every command once advertised (it is a no-op on
	 * reads); clients are known to set it everywhere. */
	switch (type) {
	case NBD_CMD_READ:
		return NBD_CMD_FLAG_FUA | (s->structured ? NBD_CMD_FLAG_DF : 0);
	case NBD_CMD_WRITE_ZEROES:
		return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
	case NBD_CMD_BLOCK_STATUS:
		return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
	default:
		return NBD_CMD_FLAG_FUA;
	}
}

enum nbd_verdict nbd_request_validate(const struct nbd_request *r, const struct nbd_session *s,
				      uint32_t *error)
{
	const struct nbd_export *e = s->exp;
	bool writes = false;

	if (r->magic != NBD_REQUEST_MAGIC)
		return NBD_HANG_UP;
	/* A payload larger than we advertised cannot be skipped in reason. */
	if (r->type == NBD_CMD_WRITE && r->length > NBD_MAX_PAYLOAD)
		return NBD_HANG_UP;

	*error = NBD_EINVAL;
	switch (r->type) {
	case NBD_CMD_READ:
		if (r->length > NBD_MAX_PAYLOAD)
			return NBD_REJECT;
		break;
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		writes = true;
		break;
	case NBD_CMD_FLUSH:
		if (r->offset || r->length)
			return NBD_REJECT;
		break;
	case NBD_CMD_CACHE:
		break;
	case NBD_CMD_BLOCK_STATUS:
		if (!s->base_allocation)
			return NBD_REJECT;
		break;
	default:
		return NBD_REJECT;      /* unknown command (DISC is handled before) */
	}
	if (r->flags & ~allowed_flags(r->type, s))
		return NBD_REJECT;
	if (r->type != NBD_CMD_FLUSH) {
		if (r->length == 0)
			return NBD_REJECT;
		if (r->offset > e->size || r->length > e->size - r->offset) {
			*error = writes ? NBD_ENOSPC : NBD_EINVAL;
			return NBD_REJECT;
		}
	}
	if (writes && e->read_only) {
		*error = NBD_EPERM;
		return NBD_REJECT;
	}
	*error = 0;
	return NBD_OK;
}

uint32_t nbd_errno_to_wire(int err)
{
	switch (err < 0 ? -err : err) {
	case EROFS:
	case EPERM:
	case EACCES:
		return NBD_EPERM;
	case ENOSPC:
	case EFBIG:
	case EDQUOT:
		return NBD_ENOSPC;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}
