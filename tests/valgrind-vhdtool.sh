#!/bin/sh
# SPDX-License-Identifier: MIT
# vhdtool under valgrind: any memory error or definite leak is exit 99,
# which the tests see as a wrong exit code.
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	"${VALGRIND_VHDTOOL:-$(dirname "$0")/../build/vhdtool}" "$@"
