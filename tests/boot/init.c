/* SPDX-License-Identifier: MIT */
/*
 * A tiny static /init for the boot suite: it proves that the Debian kernel
 * started by vhdboot.efi reached initramfs userspace, then powers off.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
	struct utsname u;
	if (uname(&u) == 0)
		printf("VHDBOOT-LINUX-OK %s %s\n", u.sysname, u.release);
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
