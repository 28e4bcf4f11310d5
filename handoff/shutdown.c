/* SPDX-License-Identifier: MIT */
/*
 * /run/initramfs/shutdown for the nbd handoff.  systemd-shutdown pivots
 * into /run/initramfs with the old root on /oldroot and runs this as PID 1
 * with reboot|poweroff|halt|kexec.  The root file system lives on
 * /dev/nbd0, served by vhd-nbd from a VHD on the host partition mounted at
 * /run/vhdboot/host: so move the host out, unmount the old root, detach
 * nbd0 (the server then closes the VHD and exits), unmount the host.  Run
 * from an initramfs that never switched root, it does the same in place.
 *
 * A static binary on purpose: after switch_root the initramfs is gone and
 * /run/initramfs holds only what the local-top script copied there, so the
 * shutdown program must need no shell and no shared library.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/nbd.h>

#include "sys.h"

#define OLDROOT "/oldroot"
#define HOST_MOUNT "/run/vhdboot/host"
#define PIDFILE "/run/vhdboot/vhd-nbd.pid"
#define SERVER_WAIT_S 30

static void say(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "vhd-handoff shutdown: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
}

int ho_nbd_disconnect(const char *node, char *err, size_t errlen)
{
	int fd = open(node, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", node, strerror(errno));
		return -errno;
	}
	/* Flush what the page cache still holds for the device itself, then
	 * ask the kernel to send NBD_CMD_DISC: the kernel allows this ioctl on
	 * a device nbd-client set up over netlink. */
	fsync(fd);
	ioctl(fd, BLKFLSBUF, 0);
	int r = ioctl(fd, NBD_DISCONNECT) == 0 ? 0 : -errno;
	if (r)
		snprintf(err, errlen, "%s: disconnect: %s", node, strerror(-r));
	close(fd);
	return r;
}

/* Undo the \ooo escapes of /proc/self/mountinfo in place. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static void unmount_hard(const char *mnt)
{
	if (umount2(mnt, 0) == 0)
		return;
	int e = errno;
	/* Busy: at least stop the writes, then let it go when it can. */
	mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL);
	if (umount2(mnt, MNT_DETACH) != 0)
		say("cannot unmount %s: %s", mnt, strerror(e));
}

/* Longer paths first: a mount's children before it.  (Mountinfo order is
 * not enough: /dev, /proc, /sys and /run were mounted before the root
 * and moved into it.) */
static int deeper_first(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Unmount every mount at or below `top`, deepest first. */
static void unmount_tree(const char *top)
{
	size_t tlen = strlen(top);

	for (int round = 0; round < 4; round++) {
		FILE *f = fopen("/proc/self/mountinfo", "re");
		char line[4096], *points[512];
		int n = 0;
		if (!f)
			return;
		while (n < 512 && fgets(line, sizeof(line), f)) {
			char mp[4096];
			if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
				continue;
			unescape(mp);
			if (strncmp(mp, top, tlen) == 0 && (mp[tlen] == '\0' || mp[tlen] == '/'))
				points[n++] = strdup(mp);
		}
		fclose(f);
		if (n == 0)
			return;
		qsort(points, (size_t)n, sizeof(points[0]), deeper_first);
		for (int i = 0; i < n; i++) {
			/* ENOENT, EINVAL: gone already, with a parent detached. */
			if (points[i] && umount2(points[i], 0) != 0 && round == 3 &&
			    errno != ENOENT && errno != EINVAL)
				unmount_hard(points[i]);
			free(points[i]);
		}
	}
}

static pid_t read_pid(const char *path)
{
	char text[32], *end;
	if (ho_read_text(path, text, sizeof(text)))
		return 0;
	long v = strtol(text, &end, 10);
	return (*end || v <= 1 || v > 1 << 22) ? 0 : (pid_t)v;
}

/* Reap orphans (we are PID 1); has the server exited?  *status gets its
 * wait status when it was ours to reap. */
static bool gone(pid_t pid, int *status)
{
	pid_t p;
	int st;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0)
		if (p == pid)
			*status = st;
	return kill(pid, 0) != 0 && errno == ESRCH;
}

/* True when the server exited by itself with status 0: it closed the VHD. */
static bool wait_server(pid_t pid)
{
	struct timespec tick = { 0, 100 * 1000 * 1000 };
	int ticks = 0, status = -1;

	while (!gone(pid, &status)) {
		if (ticks == SERVER_WAIT_S * 10) {
			say("vhd-nbd did not exit within 30 s: sending SIGTERM%s%s", "", "");
			kill(pid, SIGTERM);
		} else if (ticks == (SERVER_WAIT_S + 5) * 10) {
			say("vhd-nbd still runs: sending SIGKILL%s%s", "", "");
			kill(pid, SIGKILL);
		} else if (ticks > (SERVER_WAIT_S + 6) * 10) {
			return false;
		}
		nanosleep(&tick, NULL);
		ticks++;
	}
	return ticks < SERVER_WAIT_S * 10 && status != -1 && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

int ho_shutdown_main(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "poweroff";
	char err[HO_ERR_MAX];
	struct stat st;
	dev_t nbd = makedev(43, 0);
	int cmd;

	if (getpid() != 1) {
		/* Anywhere but systemd's final step this would pull the root away. */
		say("not PID 1: refusing to run (action %s)%s", verb, "");
		return 2;
	}
	mkdir("/dev", 0755);
	/* systemd runs us with stderr on /dev/null: say things on the console. */
	if (mknod("/dev/console", S_IFCHR | 0600, makedev(5, 1)) == 0 || errno == EEXIST) {
		int console = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
		if (console >= 0 && console != 2) {
			dup2(console, 2);
			close(console);
		}
	}
	if (!strcmp(verb, "reboot"))
		cmd = RB_AUTOBOOT;
	else if (!strcmp(verb, "poweroff"))
		cmd = RB_POWER_OFF;
	else if (!strcmp(verb, "halt"))
		cmd = RB_HALT_SYSTEM;
	else if (!strcmp(verb, "kexec"))
		cmd = RB_KEXEC;
	else {
		say("unknown action '%s': powering off%s", verb, "");
		cmd = RB_POWER_OFF;
	}
	mkdir("/proc", 0555);
	mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);

	/* systemd pivots here with the old root on /oldroot; an initramfs
	 * that never switched root (a rescue shell, the boot tests) runs us
	 * where we are, with /run/vhdboot as it was. */
	struct stat root_st, old_st;
	bool pivoted = stat(OLDROOT, &old_st) == 0 && stat("/", &root_st) == 0 &&
		       old_st.st_dev != root_st.st_dev;
	const char *old = pivoted ? OLDROOT : "";
	char pidfile[64], nbd_node[64], host_mount[64];
	snprintf(pidfile, sizeof(pidfile), "%s%s", old, PIDFILE);
	snprintf(nbd_node, sizeof(nbd_node), "%s/dev/nbd0", old);
	snprintf(host_mount, sizeof(host_mount), "%s", pivoted ? "/host" : HOST_MOUNT);

	pid_t server = read_pid(pidfile);
	if (stat(nbd_node, &st) == 0 && S_ISBLK(st.st_mode))
		nbd = st.st_rdev;
	int host = 1;
	if (pivoted) {
		mount(NULL, OLDROOT, NULL, MS_REC | MS_PRIVATE, NULL);
		mkdir("/host", 0700);
		host = mount(OLDROOT HOST_MOUNT, "/host", NULL, MS_MOVE, NULL) == 0;
		if (!host)
			say("cannot move the host partition out of the old root: %s%s",
			    strerror(errno), "");
		sync();
		unmount_tree(OLDROOT);
	}
	sync();

	if (mknod("/dev/nbd0", S_IFBLK | 0600, nbd) != 0 && errno != EEXIST)
		say("cannot create /dev/nbd0: %s%s", strerror(errno), "");
	else if (ho_nbd_disconnect("/dev/nbd0", err, sizeof(err)) != 0)
		say("%s%s", err, "");
	bool closed = server && wait_server(server);
	if (host)
		unmount_hard(host_mount);
	sync();
	say(closed ? "%s: vhd-nbd closed the VHD; %s" : "%s: vhd-nbd did not exit cleanly; %s",
	    pivoted ? "after systemd (old root on " OLDROOT ")" : "in the initramfs", verb);
	reboot(cmd);
	say("reboot(%s) failed: %s", verb, strerror(errno));
	return 1;
}
