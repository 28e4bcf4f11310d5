#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every tests/cli/test-*.sh (or the ones named), each under a time
# budget, and print one summary line: "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")"
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
echo "cli: $pass passed, $failed failed, $skip skipped"
[ -z "$failures" ] || echo "failed:$failures"
[ $failed -eq 0 ]
