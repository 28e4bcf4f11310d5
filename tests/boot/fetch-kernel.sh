#!/bin/bash
# SPDX-License-Identifier: MIT
# Print the folder holding Debian's current amd64 kernel, unpacked (not
# installed: installing runs hooks and changes the machine).  The .deb comes
# from `apt-get download` and is kept in build/cache/linux/ for later runs.
# The folder has boot/vmlinuz-* and lib/modules/*.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${KERNEL_CACHE:-$top/build/cache/linux}
mkdir -p "$cache"
cd "$cache"
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
	apt-get update -o DPkg::Lock::Timeout=300 >/dev/null
	pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
fi
[ -n "$pkg" ] || { echo "fetch-kernel: no linux-image-amd64 in the package lists" >&2; exit 1; }
if [ ! -f "$pkg/.done" ]; then
	rm -rf "$pkg" ./"$pkg"_*.deb
	apt-get download "$pkg" >/dev/null 2>&1 || {
		apt-get update -o DPkg::Lock::Timeout=300 >/dev/null
		apt-get download "$pkg" >/dev/null
	}
	dpkg-deb -x ./"$pkg"_*.deb "$pkg"
	ls "$pkg"/boot/vmlinuz-* >/dev/null
	rm -f ./"$pkg"_*.deb
	touch "$pkg/.done"
fi
echo "$cache/$pkg"
