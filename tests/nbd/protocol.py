# SPDX-License-Identifier: MIT
# Run by nbdsh (handle h, connected with base:allocation): every command and
# flag through libnbd, then requests a normal client refuses to send.
import errno
import os

size = h.get_size()
assert size == int(os.environ["SIZE"]), size
assert h.can_multi_conn() and h.can_flush() and h.can_fua() and h.can_trim()
assert h.can_zero() and h.can_fast_zero() and h.can_df() and h.can_cache()
assert h.can_meta_context("base:allocation")
block = 2 << 20

def status(off, length, flags=0):
    out = []
    def cb(metacontext, offset, entries, err):
        assert metacontext == "base:allocation"
        out.extend(zip(entries[0::2], entries[1::2]))
        return 0
    h.block_status(length, off, cb, flags)
    return out

# READ / WRITE with and without FUA, at odd offsets and lengths.
h.pwrite(b"\x11" * 4096, 0)
h.pwrite(b"\x22" * 1000, 5000, nbd.CMD_FLAG_FUA)
assert h.pread(1000, 5000) == b"\x22" * 1000
assert h.pread(3, 4095) == b"\x11\x00\x00"
h.flush()

# Structured reads: DF gives one data chunk; without DF holes come as holes.
def chunks(off, length, flags=0):
    seen = []
    def cb(buf, offset, status, err):
        seen.append((status, offset, len(buf)))
        return 0
    h.pread_structured(length, off, cb, flags)
    return seen
mixed = chunks(0, 2 * block)   # block 0 has data, block 1 is a hole
assert any(s == nbd.READ_HOLE for s, _, _ in mixed), mixed
assert any(s == nbd.READ_DATA for s, _, _ in mixed), mixed
assert sum(n for _, _, n in mixed) == 2 * block
df = chunks(0, 2 * block, nbd.CMD_FLAG_DF)
assert df == [(nbd.READ_DATA, 0, 2 * block)], df

# BLOCK_STATUS: data then hole; REQ_ONE gives exactly one extent.
st = status(0, 4 * block)
assert st[0][1] == 0 and st[0][0] >= 6000, st     # what was written is data
assert st[1][1] == nbd.STATE_HOLE | nbd.STATE_ZERO, st
assert sum(l for l, _ in st) == 4 * block
one = status(0, 4 * block, nbd.CMD_FLAG_REQ_ONE)
assert len(one) == 1 and one[0][0] <= 4 * block, one

# WRITE_ZEROES: a whole block is unmapped; NO_HOLE allocates; FAST_ZERO on
# part of an allocated block is refused as not fast.
h.pwrite(b"\x33" * block, 4 * block)
h.zero(block, 4 * block)
assert h.pread(block, 4 * block) == bytes(block)
assert status(4 * block, block) == [(block, nbd.STATE_HOLE | nbd.STATE_ZERO)]
h.zero(4096, 6 * block, nbd.CMD_FLAG_NO_HOLE)
assert status(6 * block, 4096)[0][1] == 0
h.pwrite(b"\x44" * 8192, 8 * block)
try:
    h.zero(512, 8 * block + 512, nbd.CMD_FLAG_FAST_ZERO)
    raise AssertionError("FAST_ZERO of part of a block succeeded")
except nbd.Error as e:
    assert e.errnum == errno.ENOTSUP, e
assert h.pread(8192, 8 * block) == b"\x44" * 8192
h.zero(512, 8 * block + 512, nbd.CMD_FLAG_FUA)
assert h.pread(1024, 8 * block) == b"\x44" * 512 + bytes(512)
h.zero(block, 10 * block, nbd.CMD_FLAG_FAST_ZERO)   # unallocated: nothing to do

# TRIM (advisory), CACHE, FLUSH.
h.pwrite(b"\x55" * block, 12 * block)
h.trim(block, 12 * block, nbd.CMD_FLAG_FUA)
assert h.pread(block, 12 * block) == bytes(block)
h.cache(block, 0)
h.flush()

# Requests a strict client refuses, answered per the spec.
h.set_strict_mode(0)
def expect_errno(fn, want):
    try:
        fn()
    except nbd.Error as e:
        assert e.errnum == want, (e, want)
        return
    raise AssertionError("no error")
expect_errno(lambda: h.pread(512, size), errno.EINVAL)            # past the end
expect_errno(lambda: h.pread(1024, size - 512), errno.EINVAL)     # straddles the end
expect_errno(lambda: h.pwrite(b"x" * 512, size), errno.ENOSPC)
expect_errno(lambda: h.zero(1024, size - 512), errno.ENOSPC)
expect_errno(lambda: h.trim(512, size), errno.ENOSPC)
expect_errno(lambda: h.pread(0, 0), errno.EINVAL)                 # zero length
expect_errno(lambda: h.pread(512, 0, 0x80), errno.EINVAL)        # unknown flag
expect_errno(lambda: h.pread(512, 0, nbd.CMD_FLAG_NO_HOLE), errno.EINVAL)  # flag of another command
assert h.pread(4, 0, nbd.CMD_FLAG_FUA) == b"\x11" * 4            # FUA is valid everywhere
h.flush(nbd.CMD_FLAG_FUA)
expect_errno(lambda: h.pread((32 << 20) + 512, 0), errno.EINVAL) # above the maximum
expect_errno(lambda: h.block_status(512, size, lambda *a: 0), errno.EINVAL)
assert h.pread(4, 0) == b"\x11" * 4                               # still serving
# A write above the advertised maximum payload ends the connection.
try:
    h.pwrite(b"\0" * ((32 << 20) + 512), 0)
    raise AssertionError("oversized write accepted")
except nbd.Error:
    pass
print("protocol checks passed")
