#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian 12 packages a job needs, only when some are missing.
#   scripts/deps.sh build|test|demo|bench
set -eu
build="build-essential zlib1g-dev uuid-dev pkg-config libgnutls28-dev gnu-efi"
case "${1:-build}" in
build) pkgs="$build" ;;
test) pkgs="$build libcriterion-dev qemu-utils libvhdi-utils clang libclang-rt-14-dev python3 openssl libnbd-bin python3-libnbd gnutls-bin qemu-system-x86 ovmf mtools dosfstools exfatprogs exfat-fuse fusefat fuse3 gdisk util-linux e2fsprogs busybox-static nbd-client kmod systemd valgrind" ;;
demo) pkgs="$build qemu-utils libnbd-bin" ;;
bench) pkgs="$build qemu-utils time libnbd-bin fio bc" ;;
*) echo "usage: $0 build|test|demo|bench" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "$0: need root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -q
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $missing
