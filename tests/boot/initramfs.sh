# SPDX-License-Identifier: MIT
# Build test initramfs images for the handoff tests, without root and
# without touching the machine: busybox-static for the shell and tools,
# modules from Debian's unpacked kernel (with their dependencies and a
# depmod'ed modules.dep), programs copied with their shared libraries
# (initramfs-tools' copy_exec does the same), then tests/boot/newc.py.
# Sourced by tests/boot/test-*.sh after lib.sh.

# ird_start DIR: an initramfs tree with busybox and the usual folders.
ird_start() {
	local d=$1 a
	mkdir -p "$d"/{bin,sbin,dev,proc,sys,run,root,tmp,etc,lib,lib64,usr/lib,usr/bin,usr/sbin}
	cp /bin/busybox "$d/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$d/bin/$a" ] || ln -s busybox "$d/bin/$a"
	done
}

# ird_exec DIR BIN...: copy programs and the shared libraries they load.
ird_exec() {
	local d=$1 b lib
	shift
	for b in "$@"; do
		mkdir -p "$d$(dirname "$b")"
		rm -f "$d$b"   # never write through a busybox applet link
		cp -L "$b" "$d$b"
		for lib in $(ldd "$b" 2>/dev/null | grep -oE '/[^ ]+' | sort -u); do
			[ -e "$d$lib" ] && continue
			mkdir -p "$d$(dirname "$lib")"
			cp -L "$lib" "$d$lib"
		done
	done
}

# ird_modules DIR KDIR MODULE...: the modules, their dependencies, depmod.
ird_modules() {
	local d=$1 kdir=$2 ver m f dep
	shift 2
	ver=$(ls "$kdir/lib/modules" | head -1)
	local src=$kdir/lib/modules/$ver queue=("$@") seen=" "
	mkdir -p "$d/lib/modules/$ver"
	while [ ${#queue[@]} -gt 0 ]; do
		m=${queue[0]}
		queue=("${queue[@]:1}")
		case "$seen" in *" $m "*) continue ;; esac
		seen="$seen$m "
		f=$(find "$src/kernel" \( -name "$m.ko" -o -name "${m//_/-}.ko" -o -name "${m//-/_}.ko" \) | head -1)
		[ -n "$f" ] || continue   # built in
		mkdir -p "$d/lib/modules/$ver/$(dirname "${f#$src/}")"
		cp "$f" "$d/lib/modules/$ver/${f#$src/}"
		for dep in $(modinfo -F depends "$f" | tr ',' ' '); do queue+=("$dep"); done
	done
	cp "$src/modules.builtin" "$src/modules.builtin.modinfo" "$src/modules.order" "$d/lib/modules/$ver/" 2>/dev/null || true
	depmod -b "$d" "$ver" || fail "depmod failed"
}

# ird_pack DIR OUT: the cpio archive, with /dev/console.
ird_pack() {
	"$TOP/tests/boot/newc.py" "$2" "$1" dev/console:c:5:1 || fail "cannot pack the initramfs"
}

# rootfs_image OUT SIZE_MIB DIR: an ext4 image holding DIR (mkfs.ext4 -d).
rootfs_image() {
	rm -f "$1"
	truncate -s "$2M" "$1"
	mkfs.ext4 -q -F -L vhdroot -d "$3" "$1" || fail "mkfs.ext4 -d failed"
}

# ext4_cat IMG PATH: print a file of an ext4 image (debugfs, no mount).
ext4_cat() {
	debugfs -R "cat $2" "$1" 2>/dev/null
}
