#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# nbd.sh - vhd-nbd against qemu-nbd (-f vpc -e 8) on the same dynamic VHD, in one run.
#
# Usage: bench/nbd.sh [--size SIZE] [--runs N]
#   --size SIZE   virtual size (default 2G; binary suffixes), about half of it data
#   --runs N      runs per case and server; the best is reported (default 3)
# Environment: VHDTOOL, VHDNBD (default: build/ beside this folder), TMPDIR.
#
# Cases, each against both servers on the same image (a copy each, so writes do not mix):
#   read      nbdcopy URI null:             (seconds; ratio = qemu-nbd s / vhd-nbd s)
#   write     nbdcopy RAW URI into a fresh dynamic image of the same size (allocating writes)
#   randread  fio --ioengine=nbd, 4 KiB random reads, iodepth 32, 10 s (IOPS; ratio = ours / qemu's)
# A ratio above 1 means vhd-nbd is faster.  Needs qemu-utils, libnbd-bin and fio.

set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
VHDTOOL=${VHDTOOL:-$here/build/vhdtool}
VHDNBD=${VHDNBD:-$here/build/vhd-nbd}
SIZE=2G RUNS=3
while [[ $# -gt 0 ]]; do
	case $1 in
	--size) SIZE=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	*) echo "usage: $0 [--size SIZE] [--runs N]" >&2; exit 2 ;;
	esac
done
for t in qemu-nbd nbdcopy fio qemu-img; do
	command -v $t >/dev/null || { echo "nbd.sh: $t is missing" >&2; exit 1; }
done
[[ -x $VHDTOOL && -x $VHDNBD ]] || { echo "nbd.sh: build first (make)" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/nbdbench.XXXXXX")
S=$(mktemp -d /tmp/nbs.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W" "$S"
}
trap cleanup EXIT

bytes=$("$VHDTOOL" create "$W/probe.vhd" "$SIZE" | sed -n 's/.*size=\([0-9]*\) .*/\1/p')
rm -f "$W/probe.vhd"
echo "generating a $((bytes >> 20)) MiB raw image, half data ..."
truncate -s "$bytes" "$W/src.raw"
python3 - "$W/src.raw" "$bytes" <<'PY'
import os, sys
path, size = sys.argv[1], int(sys.argv[2])
mib = 1 << 20
rnd = os.urandom(16 * mib)
with open(path, "r+b") as f:
    for off in range(0, size, 2 * mib):   # 1 MiB of data in every 2 MiB
        f.seek(off)
        f.write(rnd[(off // mib) % 15 * mib:][:mib])
PY
"$VHDTOOL" convert "$W/src.raw" "$W/ours.vhd"
cp --sparse=always "$W/ours.vhd" "$W/theirs.vhd"

serve_ours() { # IMAGE SOCKET
	"$VHDNBD" --socket "$2" "$1" & pids+=($!)
	for _ in $(seq 100); do [[ -S $2 ]] && return; sleep 0.05; done
	echo "vhd-nbd did not start" >&2; exit 1
}
serve_qemu() { # IMAGE SOCKET
	qemu-nbd -f vpc -e 8 -t --socket "$2" "$1" & pids+=($!)
	for _ in $(seq 100); do [[ -S $2 ]] && return; sleep 0.05; done
	echo "qemu-nbd did not start" >&2; exit 1
}
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
	rm -f "$S"/*
}
best_time() { # CMD... : best wall time of RUNS runs
	local best=
	for _ in $(seq "$RUNS"); do
		local t0 t1 dt
		t0=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		t1=$(date +%s.%N)
		dt=$(echo "$t1 - $t0" | bc -l)
		if [[ -z $best ]] || (( $(echo "$dt < $best" | bc -l) )); then best=$dt; fi
	done
	printf '%.3f' "$best"
}
fio_iops() { # URI
	local best=0
	for _ in $(seq "$RUNS"); do
		local iops
		fio --name=rr --ioengine=nbd --uri="$1" --rw=randread --bs=4k --iodepth=32 \
			--runtime=10 --time_based --output-format=json --output="$W/fio.json" >/dev/null 2>&1
		iops=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"]))' "$W/fio.json")
		(( iops > best )) && best=$iops
	done
	echo "$best"
}

echo "read (nbdcopy URI null:) ..."
serve_ours "$W/ours.vhd" "$S/o"; serve_qemu "$W/theirs.vhd" "$S/q"
r_ours=$(best_time nbdcopy "nbd+unix:///?socket=$S/o" null:)
r_qemu=$(best_time nbdcopy "nbd+unix:///?socket=$S/q" null:)
echo "randread (fio nbd, 4 KiB, iodepth 32) ..."
i_ours=$(fio_iops "nbd+unix:///?socket=$S/o")
i_qemu=$(fio_iops "nbd+unix:///?socket=$S/q")
stop_all

echo "write (nbdcopy RAW URI, fresh dynamic image) ..."
w_best() { # SERVER
	local best=
	for _ in $(seq "$RUNS"); do
		rm -f "$W/w.vhd"
		"$VHDTOOL" create "$W/w.vhd" "$bytes" >/dev/null
		"serve_$1" "$W/w.vhd" "$S/w"
		local t0 t1 dt
		t0=$(date +%s.%N)
		nbdcopy "$W/src.raw" "nbd+unix:///?socket=$S/w"
		t1=$(date +%s.%N)
		stop_all
		dt=$(echo "$t1 - $t0" | bc -l)
		if [[ -z $best ]] || (( $(echo "$dt < $best" | bc -l) )); then best=$dt; fi
		qemu-img compare -q -f raw -F vpc "$W/src.raw" "$W/w.vhd" || { echo "write via $1: contents differ" >&2; exit 1; }
	done
	printf '%.3f' "$best"
}
w_ours=$(w_best ours)
w_qemu=$(w_best qemu)

echo
echo "$((bytes >> 20)) MiB dynamic VHD, half data; best of $RUNS; ratio > 1: vhd-nbd is faster"
printf '%-10s %12s %12s %8s\n' case vhd-nbd qemu-nbd ratio
printf '%-10s %11ss %11ss %8.2f\n' read "$r_ours" "$r_qemu" "$(echo "$r_qemu / $r_ours" | bc -l)"
printf '%-10s %11ss %11ss %8.2f\n' write "$w_ours" "$w_qemu" "$(echo "$w_qemu / $w_ours" | bc -l)"
printf '%-10s %10s/s %10s/s %8.2f\n' randread "$i_ours" "$i_qemu" "$(echo "$i_ours / ($i_qemu + 0.000001)" | bc -l)"
