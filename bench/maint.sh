#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# maint.sh - time `vhdtool compact` and `vhdtool merge` against the physical limit of this
# machine: `cp --sparse=always` of the same file (no fsync, as cp never syncs).
#
# Usage: bench/maint.sh [--size SIZE] [--merge-size SIZE] [--runs N]
#   --size SIZE        virtual size of the compacted image and of the merge base, K/M/G binary
#                      suffixes, a multiple of 4 MiB, at least 16M (default 4G)
#   --merge-size SIZE  bytes of changes the merged child holds, a multiple of 2 MiB, at most
#                      half of --size (default 1G)
#   --runs N           runs per case; the best (shortest) of each side is reported (default 3)
# Environment: VHDTOOL=path (default: build/vhdtool beside this folder, built with make if
# missing), TMPDIR (scratch place; needs about 3.5 x SIZE free, then SIZE + 3.5 x MERGE-SIZE).
#
# Cases (2 MiB blocks, the default):
#   compact  a dynamic image with every block allocated, the even blocks random data, the odd
#            ones 2 MiB of zeros written as data (so compact has to read them to find them
#            empty); compact frees the zero blocks, moves the last data blocks into the gaps
#            and cuts the file (about SIZE/2 smaller).  Limit: cp of the same image file.
#   merge    a base of SIZE with SIZE/4 of data, and a child (`vhdtool convert -B`) holding
#            MERGE-SIZE of changes in whole blocks spread evenly over the disk, half of them
#            over the base's data, half over its holes (the base allocates those).  `vhdtool
#            merge child` writes them into the base.  Limit: cp of the child file.
#
# Each run restores fresh copies of the images from pristine ones and makes them durable
# (sync -f), outside the timing: the compact image with cp --sparse=never, which keeps its zero
# blocks as data where --sparse=always would turn them into holes, the merge images (no zero
# runs in them) with cp --sparse=always.  Then it times cp of the image file, cp of it followed
# by `sync -d` of the copy, and the vhdtool command on that same restored file, with a
# `sync -f` before each timed command so no earlier write-back runs inside it.  The page cache
# is not dropped (that needs root): every command reads a file that was just written, so all
# see the same warm cache.  vhdtool's own fsyncs (compact and merge are crash-safe) are inside
# its time; plain cp syncs nothing.
# After every run (outside the timing): `vhdtool check` exits 0, `qemu-img compare` against
# the raw source, allocated blocks and file size as expected.
#
# GB = 10^9 bytes.  GB/s: compact = virtual bytes scanned / s, merge = bytes merged / s;
# file GB/s = bytes of the input file (the image compacted, the child merged) / s, which is
# also what cp moves.  ratio = vhdtool s / cp s (the target is <= 1.5); ratio +sync = vhdtool s /
# (cp + sync -d) s, for information, since vhdtool's result is durable and plain cp's is not.
# Per-run times go to stderr as the runs go (the machine's noise shows there).  RSS = vhdtool's peak
# resident set size (GNU time %M), the largest of the runs.
# Exit status 1 if any correctness check failed (a missed speed target is only reported).

set -euo pipefail

die() { echo "maint.sh: $*" >&2; exit 1; }

SIZE=4G MSIZE=1G RUNS=3
while [[ $# -gt 0 ]]; do
    case $1 in
        --size) [[ $# -ge 2 ]] || die "--size needs a value"; SIZE=$2; shift 2 ;;
        --size=*) SIZE=${1#--size=}; shift ;;
        --merge-size) [[ $# -ge 2 ]] || die "--merge-size needs a value"; MSIZE=$2; shift 2 ;;
        --merge-size=*) MSIZE=${1#--merge-size=}; shift ;;
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; shift ;;
        -h|--help) sed -n '3,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"

to_bytes() {
    local s=${1^^} m=1
    case $s in
        *K) m=1024 ;; *M) m=$((1024 ** 2)) ;; *G) m=$((1024 ** 3)) ;; *T) m=$((1024 ** 4)) ;;
    esac
    s=${s%[KMGT]}
    [[ $s =~ ^[0-9]+$ ]] || die "bad size '$1'"
    echo $((s * m))
}
MIB=$((1024 * 1024))
BLK=$((2 * MIB))
BYTES=$(to_bytes "$SIZE")
MBYTES=$(to_bytes "$MSIZE")
(( BYTES >= 16 * MIB && BYTES % (2 * BLK) == 0 )) || die "--size must be a multiple of 4 MiB and at least 16M"
(( MBYTES >= BLK && MBYTES % BLK == 0 )) || die "--merge-size must be a multiple of 2 MiB"
(( 2 * MBYTES <= BYTES )) || die "--merge-size must be at most half of --size"
NBLK=$((BYTES / BLK))          # blocks of the image
NZERO=$((NBLK / 2))            # the odd ones: zeros written as data
MBLK=$((MBYTES / BLK))         # blocks the child changes

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
if [[ -z ${VHDTOOL:-} ]]; then
    VHDTOOL=$here/../build/vhdtool
    if [[ ! -x $VHDTOOL ]]; then
        echo "maint.sh: $VHDTOOL missing, running make" >&2
        make -C "$here/.." >&2 || die "make failed"
    fi
fi
[[ -x $VHDTOOL ]] || die "$VHDTOOL not found or not executable (run make or set VHDTOOL=...)"
for t in qemu-img qemu-io python3; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install qemu-utils python3)"
done
if [[ ! -x /usr/bin/time ]]; then
    echo "maint.sh: installing GNU time" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 time >/dev/null
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/vhdmaint.XXXXXX")
trap 'rm -rf -- "$W"' EXIT INT TERM
V=$VHDTOOL

# gen MODE FILE SIZE ...: fill a raw FILE (created sparse if missing) with distinct random
# blocks: a 32 MiB pool from /dev/urandom per call, each block a different sector-aligned
# window of it, stamped with a tag and its block number every 64 KiB, so no two blocks (nor a
# block and its replacement) are alike.
#   data FILE SIZE TAG BLOCK...   random data into those blocks
#   mark FILE SIZE VALUE BLOCK... one byte VALUE at the last byte of those blocks
gen() {
    python3 - "$BLK" "$@" <<'PY'
import os, sys
blk, mode, path, size = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
arg, blocks = sys.argv[5], [int(b) for b in sys.argv[6:]]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
if os.fstat(fd).st_size != size:
    os.ftruncate(fd, size)
if mode == "data":
    pool_len = 32 << 20
    pool = os.urandom(pool_len)
    tag = arg.encode()[:8].ljust(8, b".")
    for b in blocks:
        start = (b * 2654435761 * 512) % (pool_len - blk)
        buf = bytearray(pool[start:start + blk])
        for o in range(0, blk, 65536):
            buf[o:o + 16] = tag + b.to_bytes(8, "little")
        os.pwrite(fd, buf, b * blk)
elif mode == "mark":
    v = bytes([int(arg)])
    for b in blocks:
        os.pwrite(fd, v, b * blk + blk - 1)
else:
    sys.exit("gen: bad mode " + mode)
os.close(fd)
PY
}

json_field() { # FILE_OR_- KEY: a top-level number from vhdtool's JSON
    python3 -c 'import json,sys; f=sys.argv[1]; d=json.load(sys.stdin if f=="-" else open(f)); print(d[sys.argv[2]])' "$@"
}
sz() { stat -c %s -- "$1"; }
restore() { # PRISTINE WORK [SPARSE]
    rm -f -- "$2"
    cp --sparse="${3:-always}" -- "$1" "$2"
    sync -f -- "$2"
}
alloc_bytes() { du -B1 -- "$1" | cut -f1; }

# timed CMD...: run once after a sync, print "seconds rss_kib"; fail loudly on error.
timed() {
    local t0 t1 rc=0
    sync -f -- "$W"
    t0=$EPOCHREALTIME
    /usr/bin/time -f %M -o "$W/time.out" "$@" >"$W/cmd.log" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    if (( rc != 0 )); then
        echo "maint.sh: command failed (exit $rc): $*" >&2
        sed 's/^/    /' "$W/cmd.log" >&2
        exit 1
    fi
    # GNU time may add a "Command exited..." line; the last line is the number
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}') $(tail -n 1 "$W/time.out")"
}
lt() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a < b)}'; }
# best VAR SECONDS: keep the smaller in VAR
best() { if [[ -z ${!1} ]] || lt "$2" "${!1}"; then printf -v "$1" %s "$2"; fi; }

# limits SRC DST PREFIX: time `cp --sparse=always SRC DST`, then the same followed by
# `sync -d DST` (its data made durable, as vhdtool's fdatasync does); keep the best of each in
# ${PREFIX}cp and ${PREFIX}cps, the last ones in lcp and lcps.  DST is removed after each.
limits() {
    local s m v
    rm -f -- "$2"
    read -r s m < <(timed cp --sparse=always -- "$1" "$2"); [[ -n ${s:-} ]] || exit 1
    v=${3}cp; best "$v" "$s"; lcp=$s
    rm -f -- "$2"
    # shellcheck disable=SC2016  # expanded by the inner bash
    read -r s m < <(timed bash -c 'cp --sparse=always -- "$1" "$2" && sync -d -- "$2"' _ "$1" "$2")
    [[ -n ${s:-} ]] || exit 1
    v=${3}cps; best "$v" "$s"; lcps=$s
    rm -f -- "$2"
}

FAILED=0
fail() { echo "maint.sh: FAIL: $*" >&2; FAILED=1; }

# ok_check FILE / ok_same FMT1 FILE1 FMT2 FILE2: print ok or FAIL (and say why on stderr)
ok_check() {
    if "$V" check "$1" >"$W/check.log" 2>&1; then echo ok; else
        echo "maint.sh: vhdtool check $1 failed:" >&2; sed 's/^/    /' "$W/check.log" >&2; echo FAIL; fi
}
ok_same() {
    if qemu-img compare -f "$1" -F "$3" "$2" "$4" >"$W/cmp.log" 2>&1; then echo ok; else
        echo "maint.sh: $2 ($1) and $4 ($3) differ: $(head -n 1 "$W/cmp.log")" >&2; echo FAIL; fi
}

# ---- compact: the image -----------------------------------------------------------------------
C=$W/compact
mkdir "$C"
echo "compact: generating a $((BYTES / MIB)) MiB dynamic image, $NBLK blocks, half random, half zeros written as data ..." >&2
even=() odd=()
for ((b = 0; b < NBLK; b += 2)); do even+=("$b"); odd+=("$((b + 1))"); done
gen data "$C/src.raw" "$BYTES" compact "${even[@]}"
gen mark "$C/src.raw" "$BYTES" 255 "${odd[@]}"        # so convert allocates the odd blocks
"$V" convert -O dynamic "$C/src.raw" "$C/orig.vhd" >/dev/null
gen mark "$C/src.raw" "$BYTES" 0 "${odd[@]}"          # the reference: odd blocks all zeros
qio=()
for b in "${odd[@]}"; do qio+=(-c "write -P 0 $((b * BLK)) $BLK"); done
qemu-io -f vpc "${qio[@]}" "$C/orig.vhd" >"$W/qemu-io.log" 2>&1 ||
    { sed 's/^/    /' "$W/qemu-io.log" >&2; die "qemu-io could not write the zero blocks"; }
unset qio
"$V" info --json "$C/orig.vhd" >"$W/info.json"
alloc=$(json_field "$W/info.json" allocated-blocks)
(( alloc == NBLK )) || die "the test image has $alloc allocated blocks, not $NBLK"
[[ $(ok_check "$C/orig.vhd") == ok ]] || die "the test image does not pass vhdtool check"
[[ $(ok_same raw "$C/src.raw" vpc "$C/orig.vhd") == ok ]] || die "the test image does not read like its source"
CFILE=$(sz "$C/orig.vhd")
CDU=$(alloc_bytes "$C/orig.vhd")
(( CDU * 10 >= CFILE * 9 )) || die "the test image is not allocated on disk ($CDU of $CFILE bytes)"

echo "compact: $RUNS runs ..." >&2
c_best='' c_rss=0 c_cp='' c_cps='' c_after=0 c_chk=ok c_same=ok c_size=ok c_json=''
for ((r = 0; r < RUNS; r++)); do
    restore "$C/orig.vhd" "$C/work.vhd" never
    du=$(alloc_bytes "$C/work.vhd")
    (( du * 10 >= CFILE * 9 )) || die "the restored image is not allocated on disk ($du of $CFILE bytes)"
    limits "$C/work.vhd" "$C/cp.vhd" c_
    read -r s m < <(timed "$V" compact --json "$C/work.vhd"); [[ -n ${s:-} ]] || exit 1
    best c_best "$s"
    (( m > c_rss )) && c_rss=$m
    c_json=$(tail -n 1 "$W/cmd.log")
    echo "  run $((r + 1)): cp $lcp s, cp+sync $lcps s, compact $s s" >&2
    # outside the timing: is the result right?
    [[ $(ok_check "$C/work.vhd") == ok ]] || { c_chk=FAIL; fail "compact run $r: check"; }
    [[ $(ok_same raw "$C/src.raw" vpc "$C/work.vhd") == ok ]] || { c_same=FAIL; fail "compact run $r: contents"; }
    c_after=$(sz "$C/work.vhd")
    freed=$(json_field - blocks-freed <<<"$c_json")
    alloc=$(json_field - allocated-blocks < <("$V" info --json "$C/work.vhd"))
    if (( freed != NZERO || alloc != NBLK - NZERO || CFILE - c_after < NZERO * BLK )); then
        c_size=FAIL
        fail "compact run $r: freed $freed blocks (want $NZERO), $alloc left allocated (want $((NBLK - NZERO))), file $CFILE -> $c_after bytes (want at least $((NZERO * BLK)) less)"
    fi
done
c_moved=$(json_field - blocks-moved <<<"$c_json")
c_freed=$(json_field - blocks-freed <<<"$c_json")
rm -rf -- "$C"

# ---- merge: base and child --------------------------------------------------------------------
M=$W/merge
mkdir "$M"
echo "merge: generating a $((BYTES / MIB)) MiB base with $((BYTES / 4 / MIB)) MiB of data and a child changing $((MBYTES / MIB)) MiB ..." >&2
based=() changed=()
for ((b = 0; b < NBLK; b++)); do (( b % 8 == 0 || b % 8 == 2 )) && based+=("$b"); done
for ((j = 0; j < MBLK; j++)); do changed+=("$((j * NBLK / MBLK))"); done
gen data "$M/base.raw" "$BYTES" base "${based[@]}"
cp --sparse=always -- "$M/base.raw" "$M/changed.raw"
gen data "$M/changed.raw" "$BYTES" changed "${changed[@]}"
# the child names its parent base.vhd in the same folder: work copies keep these names and
# the pristine ones are *.orig beside them
"$V" convert -O dynamic "$M/base.raw" "$M/base.vhd" >/dev/null
"$V" convert -B "$M/base.vhd" "$M/changed.raw" "$M/child.vhd" >/dev/null
cp --sparse=always -- "$M/base.vhd" "$M/base.orig"
cp --sparse=always -- "$M/child.vhd" "$M/child.orig"
alloc=$(json_field - allocated-blocks < <("$V" info --json "$M/child.vhd"))
(( alloc == MBLK )) || die "the child has $alloc allocated blocks, not $MBLK"
# qemu's vpc driver ignores a differencing image's parent, so read the chain with vhdtool
"$V" convert -O raw "$M/child.vhd" "$M/child.raw" >/dev/null
[[ $(ok_same raw "$M/changed.raw" raw "$M/child.raw") == ok ]] || die "the child does not read like its source"
rm -f -- "$M/child.raw"
rm -f -- "$M/base.raw"
BASEFILE=$(sz "$M/base.orig")
MFILE=$(sz "$M/child.orig")
# blocks the base must allocate: changed ones over its holes
newblk=0
for b in "${changed[@]}"; do (( b % 8 == 0 || b % 8 == 2 )) || newblk=$((newblk + 1)); done

echo "merge: $RUNS runs ..." >&2
m_best='' m_rss=0 m_cp='' m_cps='' m_chk=ok m_same=ok m_size=ok
for ((r = 0; r < RUNS; r++)); do
    restore "$M/base.orig" "$M/base.vhd"
    restore "$M/child.orig" "$M/child.vhd"
    limits "$M/child.vhd" "$M/cp.vhd" m_
    read -r s m < <(timed "$V" merge "$M/child.vhd"); [[ -n ${s:-} ]] || exit 1
    best m_best "$s"
    (( m > m_rss )) && m_rss=$m
    echo "  run $((r + 1)): cp $lcp s, cp+sync $lcps s, merge $s s" >&2
    [[ $(ok_check "$M/base.vhd") == ok ]] || { m_chk=FAIL; fail "merge run $r: check"; }
    [[ $(ok_same raw "$M/changed.raw" vpc "$M/base.vhd") == ok ]] || { m_same=FAIL; fail "merge run $r: contents"; }
    alloc=$(json_field - allocated-blocks < <("$V" info --json "$M/base.vhd"))
    if (( alloc != ${#based[@]} + newblk )); then
        m_size=FAIL; fail "merge run $r: the base has $alloc allocated blocks, want $(( ${#based[@]} + newblk ))"
    fi
done

# ---- the table --------------------------------------------------------------------------------
gbps() { awk -v b="$1" -v s="$2" 'BEGIN{ if (s > 0) printf "%.2f", b / s / 1e9; else print "inf" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
target() { awk -v r="$1" 'BEGIN{ print (r <= 1.5) ? "yes" : "NO" }'; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k / 1024}'; }
tbl() { printf '%-8s %9s %8s %8s %6s %6s %6s %6s %5s %6s %7s %5s %4s %4s\n' "$@"; }
row() { # NAME TOOL_S CP_S CPS_S WORK_BYTES FILE_BYTES RSS_KIB CHECK SAME SIZE
    local r
    r=$(ratio "$2" "$3")
    tbl "$1" "$2" "$3" "$4" "$(gbps "$5" "$2")" "$(gbps "$6" "$2")" "$(gbps "$6" "$3")" "$r" \
        "$([[ $8$9${10} == okokok ]] && target "$r" || echo -)" "$(ratio "$2" "$4")" "$(mib "$7")" "$8" "$9" "${10}"
}

echo
echo "best of $RUNS runs; GB = 10^9 bytes; ratio = vhdtool s / cp --sparse=always s of the same file (target <= 1.5)"
echo "page cache not dropped: every run restores and syncs fresh copies, then times cp, cp + sync -d and vhdtool on them"
tbl case 'vhdtool s' 'cp s' 'cp+sync' GB/s file cp ratio '<=1.5' 'ratio' 'RSS' check same size
tbl '' '' '' 's' '' GB/s GB/s '' '' '+sync' MiB '' '' ''
row compact "$c_best" "$c_cp" "$c_cps" "$BYTES" "$CFILE" "$c_rss" "$c_chk" "$c_same" "$c_size"
row merge "$m_best" "$m_cp" "$m_cps" "$MBYTES" "$MFILE" "$m_rss" "$m_chk" "$m_same" "$m_size"
echo "compact: $((BYTES / MIB)) MiB virtual, file $((CFILE / MIB)) -> $((c_after / MIB)) MiB, $c_freed of $NZERO zero blocks freed, $c_moved moved (last run)"
echo "merge:   $((MBYTES / MIB)) MiB in $MBLK blocks ($newblk new to the base), child file $((MFILE / MIB)) MiB, base file $((BASEFILE / MIB)) MiB before"
echo "(GB/s: compact = virtual bytes / s, merge = merged bytes / s; file GB/s = input file bytes / s; cp GB/s = the same bytes / cp s;"
echo " ratio +sync = vhdtool s / (cp + sync -d) s, for information: vhdtool makes its result durable, plain cp does not;"
echo " check = vhdtool check exits 0, same = qemu-img compare with the raw source, size = blocks freed / allocated and file size as expected)"
exit $FAILED
