#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# convert.sh - time `vhdtool convert` against `qemu-img convert` on the same half-sparse image.
#
# Usage: bench/convert.sh [--size SIZE] [--runs N] [--sync] [--qemu-only]
#   --size SIZE   virtual size of the test image, K/M/G binary suffixes, a multiple of 1 MiB
#                 (default 2G; e.g. --size 64M for a quick run)
#   --runs N      runs per tool and case, the best (shortest) is reported (default 2)
#   --sync        count the write-back too: each timed run ends with `sync -d OUTPUT`
#                 (by default neither tool syncs its output, as cp does not)
#   --qemu-only   time qemu-img alone (for trying the script before vhdtool is built)
# Environment: VHDTOOL=path (default: build/vhdtool beside this folder), TMPDIR (scratch place;
# needs about 5 x SIZE free).
#
# The image: 1 MiB units in a repeating 16 MiB pattern DDHH DHDH HHDD HDHD (D = random data from
# /dev/urandom, H = hole), so half the bytes are data; of each 8 VHD blocks of 2 MiB, 2 are full,
# 4 half full and 2 empty.
#
# Cases (both tools read the same input; nothing is dropped from the page cache, the runs
# alternate ours/qemu so both see the same warm cache):
#   raw->dynamic   vhdtool convert -O dynamic   vs  qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on
#   dynamic->raw   vhdtool convert -O raw on our dynamic  vs  qemu-img convert -f vpc -O raw on its own dynamic
#   raw->fixed     vhdtool convert -O fixed     vs  qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on
# Every output's virtual size and contents are checked (qemu-img info, qemu-img compare) against
# the input and against the other tool's output.  Ratio = qemu seconds / our seconds (> 1: we are faster).  RSS = peak resident
# set size (GNU time %M), the largest of the runs.  Exit status 1 if any comparison failed.

set -euo pipefail

die() { echo "convert.sh: $*" >&2; exit 1; }

SIZE=2G RUNS=2 QEMU_ONLY=0 SYNC=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --size) [[ $# -ge 2 ]] || die "--size needs a value"; SIZE=$2; shift 2 ;;
        --size=*) SIZE=${1#--size=}; shift ;;
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; shift ;;
        --sync) SYNC=1; shift ;;
        --qemu-only) QEMU_ONLY=1; shift ;;
        -h|--help) sed -n '3,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
BYTES=$(to_bytes "$SIZE")
MIB=$((1024 * 1024))
(( BYTES >= 16 * MIB && BYTES % MIB == 0 )) || die "size must be a multiple of 1 MiB and at least 16M"
UNITS=$((BYTES / MIB))

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
VHDTOOL=${VHDTOOL:-$here/../build/vhdtool}
if (( ! QEMU_ONLY )); then
    [[ -x $VHDTOOL ]] || die "$VHDTOOL not found or not executable (run make, set VHDTOOL=..., or use --qemu-only)"
fi
command -v qemu-img >/dev/null || die "qemu-img not found (apt-get install qemu-utils)"
if [[ ! -x /usr/bin/time ]]; then
    echo "convert.sh: installing GNU time" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 time >/dev/null
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/vhdbench.XXXXXX")
trap 'rm -rf -- "$W"' EXIT INT TERM

# ---- the input image --------------------------------------------------------------------------
PATTERN=DDHHDHDHHHDDHDHD
echo "generating a $((UNITS)) MiB half-sparse raw image in $W ..." >&2
truncate -s "$BYTES" "$W/in.raw"
i=0
while (( i < UNITS )); do
    if [[ ${PATTERN:i % 16:1} == D ]]; then
        n=1
        while (( i + n < UNITS )) && [[ ${PATTERN:(i + n) % 16:1} == D ]]; do n=$((n + 1)); done
        dd if=/dev/urandom of="$W/in.raw" bs=1M seek="$i" count="$n" conv=notrunc status=none
        i=$((i + n))
    else
        i=$((i + 1))
    fi
done
sync -f "$W/in.raw" 2>/dev/null || true

# ---- timing -----------------------------------------------------------------------------------
# timed OUT_FILE_TO_REMOVE CMD...: run once, print "seconds rss_kib"; fail loudly on error.
timed() {
    local out=$1; shift
    rm -f -- "$out"
    local t0 t1 rc=0
    t0=$EPOCHREALTIME
    /usr/bin/time -f %M -o "$W/time.out" "$@" >"$W/cmd.log" 2>&1 || rc=$?
    (( SYNC && rc == 0 )) && sync -d -- "$out"
    t1=$EPOCHREALTIME
    if (( rc != 0 )); then
        echo "convert.sh: command failed (exit $rc): $*" >&2
        sed 's/^/    /' "$W/cmd.log" >&2
        exit 1
    fi
    # GNU time may add a "Command exited..." line; the last line is the number
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}') $(tail -n 1 "$W/time.out")"
}

FAILED=0
vsize() { qemu-img info -f "$1" --output=json "$2" | sed -n 's/^ *"virtual-size": *\([0-9]*\).*/\1/p'; }

# same FMT1 FILE1 FMT2 FILE2: equal virtual sizes and `qemu-img compare` contents; prints ok / DIFF
# (qemu-img compare -s would also demand the same allocation status, which raw holes never match)
# Called in $(...): sets no globals.
same() {
    local s1 s2
    s1=$(vsize "$1" "$2"); s2=$(vsize "$3" "$4")
    if [[ -z $s1 || $s1 != "$s2" ]]; then
        echo "convert.sh: $2 ($1) is ${s1:-?} bytes, $4 ($3) is ${s2:-?} bytes" >&2
        echo DIFF
    elif qemu-img compare -q -f "$1" -F "$3" "$2" "$4" >"$W/cmp.log" 2>&1; then
        echo ok
    else
        echo "convert.sh: $2 ($1) and $4 ($3) differ: $(head -n 1 "$W/cmp.log")" >&2
        echo DIFF
    fi
}

ROWS=()
# run_case NAME OUR_OUT OUR_FMT QEMU_OUT QEMU_FMT OURCMD... -- QEMUCMD...
run_case() {
    local name=$1 oo=$2 of=$3 qo=$4 qf=$5; shift 5
    local -a ours=() qemu=()
    while [[ $1 != -- ]]; do ours+=("$1"); shift; done; shift
    qemu=("$@")
    local r s m os='' om=0 qs='' qm=0
    echo "running $name ..." >&2
    for ((r = 0; r < RUNS; r++)); do            # alternate, so both see the same cache state
        if (( ! QEMU_ONLY )); then
            read -r s m < <(timed "$oo" "${ours[@]}"); [[ -n $s ]] || exit 1
            if [[ -z $os ]] || awk -v a="$s" -v b="$os" 'BEGIN{exit !(a < b)}'; then os=$s; fi
            (( m > om )) && om=$m
        fi
        read -r s m < <(timed "$qo" "${qemu[@]}"); [[ -n $s ]] || exit 1
        if [[ -z $qs ]] || awk -v a="$s" -v b="$qs" 'BEGIN{exit !(a < b)}'; then qs=$s; fi
        (( m > qm )) && qm=$m
    done
    local in_fmt=raw in_file=$W/in.raw
    local vq vo=- vx=- ratio=- ourrss=-
    vq=$(same "$in_fmt" "$in_file" "$qf" "$qo")
    [[ $vq == ok ]] || FAILED=1
    if (( ! QEMU_ONLY )); then
        vo=$(same "$in_fmt" "$in_file" "$of" "$oo")
        vx=$(same "$of" "$oo" "$qf" "$qo")
        [[ $vo == ok && $vx == ok ]] || FAILED=1
        ratio=$(awk -v q="$qs" -v o="$os" 'BEGIN{ if (o > 0) printf "%.2f", q / o; else print "inf" }')
        ourrss=$(awk -v k="$om" 'BEGIN{printf "%.1f", k / 1024}')
    fi
    local du_o=- du_q
    (( QEMU_ONLY )) || du_o=$(du -m -- "$oo" | cut -f1)
    du_q=$(du -m -- "$qo" | cut -f1)
    ROWS+=("$(printf '%-13s %9s %9s %7s %9s %9s %8s %8s %4s %4s %4s' "$name" "${os:--}" "$qs" "$ratio" \
        "$ourrss" "$(awk -v k="$qm" 'BEGIN{printf "%.1f", k / 1024}')" "$du_o" "$du_q" "$vo" "$vq" "$vx")")
}

V=$VHDTOOL
run_case 'raw->dynamic' "$W/ours.vhd" vpc "$W/qemu.vhd" vpc \
    "$V" convert -O dynamic "$W/in.raw" "$W/ours.vhd" -- \
    qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$W/in.raw" "$W/qemu.vhd"
run_case 'dynamic->raw' "$W/ours.raw" raw "$W/qemu.raw" raw \
    "$V" convert -O raw "$W/ours.vhd" "$W/ours.raw" -- \
    qemu-img convert -f vpc -O raw "$W/qemu.vhd" "$W/qemu.raw"
rm -f -- "$W/ours.raw" "$W/qemu.raw"
run_case 'raw->fixed' "$W/ours-fixed.vhd" vpc "$W/qemu-fixed.vhd" vpc \
    "$V" convert -O fixed "$W/in.raw" "$W/ours-fixed.vhd" -- \
    qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "$W/in.raw" "$W/qemu-fixed.vhd"

echo
echo "virtual size $BYTES bytes ($UNITS MiB, half data), best of $RUNS runs; ratio = qemu s / our s (>1: we are faster)"
if (( SYNC )); then echo "times include sync -d of the output"; else echo "times exclude write-back (neither tool syncs its output by default; see --sync)"; fi
printf '%-13s %9s %9s %7s %9s %9s %8s %8s %4s %4s %4s\n' case 'our s' 'qemu s' ratio 'our MiB' 'qemu MiB' \
    'our du' 'qemu du' 'o=in' 'q=in' 'o=q'
for row in "${ROWS[@]}"; do echo "$row"; done
echo "(MiB = peak RSS; du = output's allocated MiB; o=in, q=in, o=q: same virtual size and qemu-img compare)"
(( QEMU_ONLY )) && echo "(--qemu-only: vhdtool columns not measured)"
exit $FAILED
