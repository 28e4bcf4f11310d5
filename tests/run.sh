#!/bin/bash
# SPDX-License-Identifier: MIT
# Run the tests of one suite: tests/run.sh SUITE [TEST...] runs every
# tests/SUITE/test-*.sh (or the ones named), each under a time budget, and
# prints one summary line: "SUITE: N passed, N failed, N skipped".
set -u
suite=${1:?usage: tests/run.sh SUITE [TEST...]}
shift
cd "$(dirname "$0")/$suite"
budget=${TEST_BUDGET:-300}
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test-*.sh)
pass=0 failed=0 skip=0 failures=""
for t in "${tests[@]}"; do
	start=$(date +%s)
	out=$(timeout --kill-after=10 "$budget" bash "$t" 2>&1)
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $t (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "SKIP $t: $(echo "$out" | tail -1)" ;;
	*) failed=$((failed + 1)); failures="$failures $t"
	   echo "FAIL $t (exit $rc, ${secs}s)"; echo "$out" | tail -40 | sed 's/^/    /' ;;
	esac
done
echo "$suite: $pass passed, $failed failed, $skip skipped"
[ -z "$failures" ] || echo "failed:$failures"
[ $failed -eq 0 ]
