#!/bin/sh
# SPDX-License-Identifier: MIT
# dracut initqueue/settled hook: run the shared handoff script once.
[ -e /run/vhdboot/.done ] && return 0 2>/dev/null
mkdir -p /run/vhdboot && : > /run/vhdboot/.done
/sbin/vhdboot-handoff || die "vhdboot: the OS handoff failed (see the message above)"
