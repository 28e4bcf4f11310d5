#!/bin/bash
# SPDX-License-Identifier: MIT
# make install: the tool, the library (soname, only vhd_ symbols exported),
# the header and libvhd.pc work for a program built against them; the help
# and the man page name every command.
. "$(dirname "$0")/../functions.sh"
requires pkg-config
requires cc
[ -z "${SANITIZED:-}" ] || { echo "SKIP: install is tested in the plain build"; exit 77; }

make -s -C "$TOP" install DESTDIR="$T/root" PREFIX=/usr/local >/dev/null
R=$T/root/usr/local
for f in bin/vhdtool bin/vhd-nbd bin/vhdboot-install share/man/man8/vhd-nbd.8 lib/libvhd.a lib/libvhd.so lib/libvhd.so.1 include/libvhd.h \
	 lib/pkgconfig/libvhd.pc share/man/man1/vhdtool.1 share/man/man3/libvhd.3; do
	[ -e "$R/$f" ] || fail "make install did not install $f"
done
# vhdboot: the loader (gnu-efi is a build dependency), its man page, the
# OS handoff's static tool, initramfs-tools hook and script, dracut module.
for f in lib/vhdboot/vhdboot.efi share/man/man5/vhdboot.conf.5 sbin/vhd-handoff \
	share/vhdboot/dracut/90vhdboot/module-setup.sh; do
	[ -e "$R/$f" ] || fail "make install did not install $f"
done
for f in hooks/vhdboot scripts/local-top/vhdboot; do
	[ -x "$T/root/etc/initramfs-tools/$f" ] || fail "make install did not install initramfs-tools $f"
done
! readelf -l "$R/sbin/vhd-handoff" | grep -q INTERP || fail "vhd-handoff is not static (it has a program interpreter)"
readelf -d "$R/lib/libvhd.so" | grep -q 'SONAME.*libvhd.so.1' || fail "soname is not libvhd.so.1"
# Only the public API is exported: every dynamic symbol is vhd_* and is in libvhd.h.
syms=$(nm -D --defined-only "$R/lib/libvhd.so" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u)
for s in $syms; do
	case $s in vhd_*) ;; *) fail "exported symbol $s is not in the vhd_ namespace" ;; esac
	grep -q "\b$s(" "$TOP/libvhd/libvhd.h" || fail "exported symbol $s is not in libvhd.h"
done
! nm -D --defined-only "$R/lib/libvhd.so" | grep -q ' vhd_checksum' || fail "internal symbols exported"

# A program built with pkg-config against the installed copy.
cat >"$T/prog.c" <<'C'
#include <libvhd.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	struct vhd_error err;
	struct vhd_create_params p = { .type = VHD_TYPE_DYNAMIC, .size = 8u << 20 };
	struct vhd_image *img;
	char buf[5] = "";
	if (argc < 2 || vhd_create(argv[1], &p, &img, &err) < 0 ||
	    vhd_pwrite(img, "libv", 4, 12345) < 0 || vhd_pread(img, buf, 4, 12345) < 0) {
		fprintf(stderr, "failed: %s\n", err.message);
		return 1;
	}
	printf("%s %llu\n", buf, (unsigned long long)vhd_virtual_size(img));
	return vhd_close(img) < 0;
}
C
export PKG_CONFIG_PATH=$R/lib/pkgconfig
sed -i "s|^prefix=.*|prefix=$R|; s|^libdir=.*|libdir=$R/lib|" "$R/lib/pkgconfig/libvhd.pc"
# shellcheck disable=SC2046
cc -std=c99 -pedantic -Wall -Werror -o "$T/prog" "$T/prog.c" $(pkg-config --cflags --libs libvhd)
LD_LIBRARY_PATH=$R/lib "$T/prog" "$T/api.vhd" | grep -qx 'libv 8388608' || fail "program against the installed library"
"$R/bin/vhdtool" check "$T/api.vhd" >/dev/null || fail "the installed vhdtool cannot check the program's image"
# The header also compiles as C++.
if command -v g++ >/dev/null; then
	echo '#include <libvhd.h>
int main() { return vhd_virtual_size(nullptr) == 0 ? 0 : 0; }' >"$T/cxx.cc"
	g++ -std=c++11 -Wall -Werror -fsyntax-only -I"$R/include" "$T/cxx.cc" || fail "libvhd.h is not valid C++"
fi

# Every command is in --help and in the man page.
cmds=$(vhdtool --help | awk '/^Commands:/ {on=1; next} on && /^  [a-z]/ {print $1}')
[ -n "$cmds" ] || fail "no commands in --help"
for c in $cmds; do
	grep -q "^\.SS.*\b$c\b" "$TOP/docs/vhdtool.1" || fail "command $c is not in the man page"
	vhdtool "$c" --help | grep -q "usage: vhdtool $c" || fail "$c --help"
done
echo ok
