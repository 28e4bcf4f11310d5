#!/bin/bash
# SPDX-License-Identifier: MIT
# handoff=nbd with a real init: the root inside a dynamic VHD holds systemd
# (this machine's, with its libraries and units) and busybox.  The test
# initramfs attaches the root through vhd-nbd, moves /run into it and hands
# over to systemd as PID 1, which runs one service (write a file) and powers
# off.  systemd spares the server (argv[0] starts with '@'), pivots back
# into /run/initramfs with the old root on /oldroot and runs vhd-handoff's
# shutdown program there: it unmounts the old root, detaches /dev/nbd0,
# waits for vhd-nbd to close the VHD and unmounts the host partition.  The
# VHD on the host then passes vhdtool check and holds the file.
. "$(dirname "$0")/handoff-lib.sh"
SYSTEMD=/lib/systemd/systemd
[ -x $SYSTEMD ] || fail "$SYSTEMD is missing (apt-get install systemd)"

# systemd_root DIR: a merged-/usr root with systemd, busybox and the test unit.
systemd_root() {
	local d=$1 a
	mkdir -p "$d"/usr/{bin,sbin,lib,lib64} "$d"/{dev,proc,sys,run,tmp,root,etc/systemd/system}
	for a in bin sbin lib lib64; do ln -s "usr/$a" "$d/$a"; done
	mkdir -p "$d/var" && ln -s ../run "$d/var/run"
	cp /bin/busybox "$d/usr/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$d/usr/bin/$a" ] || ln -s busybox "$d/usr/bin/$a"
	done
	ird_exec "$d" $SYSTEMD /lib/systemd/systemd-shutdown
	cp -a /lib/systemd/system "$d/usr/lib/systemd/"
	cp /usr/lib/os-release "$d/etc/os-release"
	: >"$d/etc/machine-id"
	echo "root:x:0:0:root:/root:/bin/sh" >"$d/etc/passwd"
	echo "root:x:0:" >"$d/etc/group"
	cat >"$d/etc/systemd/system/vhdtest.service" <<-'EOF'
	[Unit]
	Description=vhdboot handoff test: write a file on the VHD's root
	DefaultDependencies=no
	SuccessAction=poweroff
	FailureAction=poweroff
	[Service]
	Type=oneshot
	ExecStart=/bin/sh /vhdtest.sh
	StandardOutput=tty
	TTYPath=/dev/console
	EOF
	cat >"$d/etc/systemd/system/vhdtest.target" <<-'EOF'
	[Unit]
	Description=vhdboot handoff test
	Requires=vhdtest.service
	After=vhdtest.service
	EOF
	cat >"$d/vhdtest.sh" <<-'EOF'
	say() { echo "handoff-test: $*" >/dev/console; }
	say "systemd root: $(cat /marker.txt), PID 1 is $(cat /proc/1/comm)"
	n=$(ls /boot-*.txt 2>/dev/null | wc -l)
	echo "written by boot $((n + 1)) under systemd" >"/boot-$((n + 1)).txt"
	sync
	say "wrote boot-$((n + 1)).txt under systemd"
	EOF
}

systemd_root "$T/rootdir"
handoff_initrd "$T/initrd.img"
linux_vhd_raw "$T/linux.raw" "$T/initrd.img"
host_disk "$T/host.raw"
vhdtool convert "$T/linux.raw" "$T/dyn.vhd"
fat_put "$T/host.raw" 1 "$T/dyn.vhd" /vhd/dyn.vhd

boot_handoff "$T/systemd.log" $'vhd=\\vhd\\dyn.vhd\nprogram=\\vmlinuz\nhandoff=nbd\ncmdline=initrd=\\initrd.img console=ttyS0 panic=-1 systemd.unit=vhdtest.target\n'
expect_serial "$T/systemd.log" "handoff-test: switching to systemd on /dev/nbd0p2"
expect_serial "$T/systemd.log" "handoff-test: systemd root: root of the VHD, PID 1 is systemd"
expect_serial "$T/systemd.log" "handoff-test: wrote boot-1.txt under systemd"
expect_serial "$T/systemd.log" "vhd-handoff shutdown: after systemd (old root on /oldroot): vhd-nbd closed the VHD; poweroff"
expect_serial "$T/systemd.log" "reboot: Power down"
host_get vhd/dyn.vhd "$T/dyn.after"
expect_status 0 vhdtool check "$T/dyn.after"
[ "$(vhd_root_cat "$T/dyn.after" /boot-1.txt)" = "written by boot 1 under systemd" ] ||
	fail "the file written under systemd is not in the VHD"
echo ok
