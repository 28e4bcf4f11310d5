/* SPDX-License-Identifier: MIT */
/* vhd-nbd: serve VHD images (fixed, dynamic, differencing) over NBD. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "initramfs.h"
#include "server.h"

static const char usage_text[] =
	"usage: vhd-nbd [-r] [--socket PATH | --bind ADDR] [--port N] [--export NAME=FILE ...]\n"
	"               [--snapshot] [--pidfile F] [--daemon] [--max-connections N]\n"
	"               [--threads N] [--allow-parent-dir DIR ...]\n"
	"               [--tls=off|on|require] [--tls-certificates DIR | --tls-psk FILE]\n"
	"               [--tls-verify-peer] [--initramfs] [--log FILE] [--verbose]\n"
	"               [FILE]\n"
	"\n"
	"Serve VHD images over the NBD protocol until SIGTERM or SIGINT.\n"
	"  FILE                  one image, served as the default export (name \"\")\n"
	"  -e, --export NAME=FILE  serve FILE as export NAME (repeat for more)\n"
	"  -r, --read-only       refuse writes to every export\n"
	"  -s, --snapshot        writes go to a temporary child, dropped at exit\n"
	"  -k, --socket PATH     listen on a unix socket\n"
	"  -b, --bind ADDR       listen on this TCP address (default 127.0.0.1)\n"
	"  -p, --port N          TCP port (default 10809)\n"
	"      --pidfile F       write the process id to F once listening\n"
	"      --daemon          detach once listening\n"
	"      --max-connections N  at most N clients at once (default 64)\n"
	"      --threads N       requests in flight per connection (default 4)\n"
	"      --allow-parent-dir DIR  parents of differencing images may also come\n"
	"                        from DIR (default: only the image's own folder tree)\n"
	"      --tls=MODE        off, on (clients choose) or require (default with\n"
	"                        credentials: require)\n"
	"      --tls-certificates DIR  X.509: DIR/server-cert.pem, server-key.pem,\n"
	"                        ca-cert.pem\n"
	"      --tls-psk FILE    pre-shared keys, \"username:hexkey\" lines (psktool)\n"
	"      --tls-verify-peer  clients must show a certificate signed by ca-cert.pem\n"
	"      --initramfs       serve the root file system from an initramfs: one\n"
	"                        export on --socket, implies --daemon; memory locked,\n"
	"                        PR_SET_IO_FLUSHER, oom_score_adj -1000, argv[0] '@';\n"
	"                        SIGTERM, SIGINT and SIGHUP ignored; exits 0 once the\n"
	"                        last client is gone (SIGUSR1 stops it sooner)\n"
	"      --log FILE        once listening, append messages to FILE (e.g.\n"
	"                        /dev/kmsg) instead of stderr\n"
	"      --verbose         with --initramfs, keep stderr (default: /dev/null)\n"
	"  -h, --help, -V, --version\n";

static void on_signal(int sig)
{
	(void)sig;
	server_stop();
}

static int add_export(struct server_config *cfg, const char *name, const char *path)
{
	for (size_t i = 0; i < cfg->exports.n; i++) {
		if (strcmp(cfg->exports.v[i].name, name) == 0) {
			fprintf(stderr, "vhd-nbd: export name '%s' given twice\n", name);
			return -1;
		}
	}
	if (strlen(name) > 4096) {
		fprintf(stderr, "vhd-nbd: export name longer than 4096 bytes\n");
		return -1;
	}
	struct nbd_export *v = realloc(cfg->exports.v, (cfg->exports.n + 1) * sizeof(*v));
	if (!v)
		return -1;
	cfg->exports.v = v;
	struct nbd_export *e = &v[cfg->exports.n++];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	e->path = strdup(path);
	return e->name && e->path ? 0 : -1;
}

static int parse_count(const char *s, int min, int max, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

/* --tls and its credentials: loaded once, before any client comes. */
static int setup_tls(struct server_config *cfg, const char *mode, const char *cert_dir,
		     const char *psk, bool verify_peer)
{
	bool creds = cert_dir || psk;
	enum tls_mode m = creds ? TLS_REQUIRE : TLS_OFF;
	if (mode && strcmp(mode, "off") == 0)
		m = TLS_OFF;
	else if (mode && strcmp(mode, "on") == 0)
		m = TLS_ON;
	else if (mode && strcmp(mode, "require") == 0)
		m = TLS_REQUIRE;
	else if (mode) {
		fprintf(stderr, "vhd-nbd: --tls takes off, on or require, not '%s'\n", mode);
		return -1;
	}
	if (cert_dir && psk) {
		fprintf(stderr, "vhd-nbd: give --tls-certificates or --tls-psk, not both\n");
		return -1;
	}
	if (m != TLS_OFF && !creds) {
		fprintf(stderr, "vhd-nbd: --tls=%s needs --tls-certificates DIR or --tls-psk FILE\n",
			mode);
		return -1;
	}
	if (m == TLS_OFF && (creds || verify_peer)) {
		fprintf(stderr, "vhd-nbd: TLS options given with --tls=off\n");
		return -1;
	}
	if (verify_peer && !cert_dir) {
		fprintf(stderr, "vhd-nbd: --tls-verify-peer needs --tls-certificates\n");
		return -1;
	}
	if (m == TLS_OFF)
		return 0;
	cfg->tls_required = m == TLS_REQUIRE;
	return tls_creds_load(cert_dir, psk, verify_peer, &cfg->tls);
}

static void free_exports(struct server_config *cfg)
{
	for (size_t i = 0; i < cfg->exports.n; i++) {
		struct nbd_export *e = &cfg->exports.v[i];
		nbd_export_close(e);
		free(e->name);
		free(e->path);
		free(e->description);
	}
	free(cfg->exports.v);
	cfg->exports.v = NULL;
	cfg->exports.n = 0;
}

/* --initramfs: one export, on a unix socket, no TLS, writes to the image. */
static int check_initramfs(const struct server_config *cfg, bool snapshot, bool tls)
{
	const char *why = NULL;
	if (cfg->exports.n != 1)
		why = "exactly one export";
	else if (!cfg->socket_path)
		why = "--socket PATH";
	else if (snapshot)
		why = "no --snapshot (writes must reach the image)";
	else if (tls)
		why = "no TLS options (the socket is local)";
	if (!why)
		return 0;
	fprintf(stderr, "vhd-nbd: --initramfs needs %s\n", why);
	return -1;
}

/* Fork once listening; the parent exits when the child says it is ready. */
static int daemonize(int *ready_fd)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		char c;
		ssize_t n;
		/* Ctrl-C or SIGTERM before the child is ready stops the wait. */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		close(p[1]);
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0)
		return -1;
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		close(null);
	}
	*ready_fd = p[1];
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "read-only", no_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 'k' },
		{ "bind", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "export", required_argument, NULL, 'e' },
		{ "snapshot", no_argument, NULL, 's' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "daemon", no_argument, NULL, 'D' },
		{ "max-connections", required_argument, NULL, 'M' },
		{ "threads", required_argument, NULL, 'T' },
		{ "allow-parent-dir", required_argument, NULL, 'A' },
		{ "tls", required_argument, NULL, 't' },
		{ "tls-certificates", required_argument, NULL, 'C' },
		{ "tls-psk", required_argument, NULL, 'K' },
		{ "tls-verify-peer", no_argument, NULL, 'Y' },
		{ "initramfs", no_argument, NULL, 'I' },
		{ "log", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_config cfg = {
		.bind_addr = "127.0.0.1",
		.port = "10809",
		.max_connections = 64,
		.threads = 4,
		.memory_budget = 256u << 20,
	};
	bool read_only = false, snapshot = false, daemon_mode = false, bind_given = false;
	const char *pidfile = NULL;
	const char *tls_mode = NULL, *tls_cert_dir = NULL, *tls_psk = NULL;
	bool tls_verify_peer = false;
	bool initramfs = false, verbose = false;
	const char *log_path = NULL;
	/* --allow-parent-dir, NULL-terminated; the strings are argv's. */
	const char **parent_dirs = calloc((size_t)argc + 1, sizeof(*parent_dirs));
	size_t nparent_dirs = 0;
	int c;

	if (!parent_dirs)
		return 1;

	while ((c = getopt_long(argc, argv, "rk:b:p:e:shV", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			read_only = true;
			break;
		case 'k':
			cfg.socket_path = optarg;
			break;
		case 'b':
			cfg.bind_addr = optarg;
			bind_given = true;
			break;
		case 'p': {
			int port;
			if (parse_count(optarg, 0, 65535, &port) < 0) {
				fprintf(stderr, "vhd-nbd: invalid port '%s'\n", optarg);
				goto fail;
			}
			cfg.port = optarg;
			bind_given = true;
			break;
		}
		case 'e': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq[1] == '\0') {
				fprintf(stderr, "vhd-nbd: --export takes NAME=FILE, not '%s'\n", optarg);
				goto fail;
			}
			*eq = '\0';
			if (add_export(&cfg, optarg, eq + 1) < 0)
				goto fail;
			break;
		}
		case 's':
			snapshot = true;
			break;
		case 'P':
			pidfile = optarg;
			break;
		case 'D':
			daemon_mode = true;
			break;
		case 'M':
			if (parse_count(optarg, 1, 4096, &cfg.max_connections) < 0) {
				fprintf(stderr, "vhd-nbd: --max-connections takes 1 to 4096\n");
				goto fail;
			}
			break;
		case 'T':
			if (parse_count(optarg, 1, 64, &cfg.threads) < 0) {
				fprintf(stderr, "vhd-nbd: --threads takes 1 to 64\n");
				goto fail;
			}
			break;
		case 'A': {
			struct stat st;
			if (stat(optarg, &st) < 0 || !S_ISDIR(st.st_mode)) {
				fprintf(stderr, "vhd-nbd: --allow-parent-dir %s: not a folder\n", optarg);
				goto fail;
			}
			parent_dirs[nparent_dirs++] = optarg;
			break;
		}
		case 't':
			tls_mode = optarg;
			break;
		case 'C':
			tls_cert_dir = optarg;
			break;
		case 'K':
			tls_psk = optarg;
			break;
		case 'Y':
			tls_verify_peer = true;
			break;
		case 'I':
			initramfs = true;
			break;
		case 'L':
			log_path = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			free(parent_dirs);
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			free(parent_dirs);
			printf("vhd-nbd %s\n", LIBVHD_VERSION_STRING);
			return 0;
		default:
			fputs(usage_text, stderr);
			goto fail;
		}
	}
	int rest = argc - optind;
	if (rest > 1 || (rest == 1 && cfg.exports.n) || (rest == 0 && !cfg.exports.n)) {
		fprintf(stderr, "vhd-nbd: give either one FILE or --export NAME=FILE options\n%s",
			usage_text);
		goto fail;
	}
	if (cfg.socket_path && bind_given) {
		fprintf(stderr, "vhd-nbd: --socket and --bind/--port exclude each other\n");
		goto fail;
	}
	if (rest == 1 && add_export(&cfg, "", argv[optind]) < 0)
		goto fail;
	if (initramfs) {
		if (check_initramfs(&cfg, snapshot, tls_mode || tls_cert_dir || tls_psk) < 0)
			goto fail;
		daemon_mode = true;
		cfg.memory_budget = INITRAMFS_MEMORY_BUDGET;
		cfg.stop_when_idle = true;
		initramfs_tune_malloc();
	}
	int log_fd = -1;
	if (log_path && (log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "vhd-nbd: --log %s: %s\n", log_path, strerror(errno));
		goto fail;
	}
	if (setup_tls(&cfg, tls_mode, tls_cert_dir, tls_psk, tls_verify_peer) < 0)
		goto fail;

	for (size_t i = 0; i < cfg.exports.n; i++) {
		struct vhd_error err;
		struct nbd_export *e = &cfg.exports.v[i];
		if (nbd_export_open(e, read_only, snapshot, parent_dirs, &err) < 0) {
			fprintf(stderr, "vhd-nbd: %s\n", err.message);
			goto fail;
		}
		char desc[256];
		snprintf(desc, sizeof(desc), "%s (%s VHD%s)", e->path,
			 vhd_get_type(e->img) == VHD_TYPE_FIXED ? "fixed"
			 : vhd_get_type(e->img) == VHD_TYPE_DYNAMIC ? "dynamic" : "differencing",
			 snapshot && !read_only ? ", snapshot" : "");
		e->description = strdup(desc);
	}

	signal(SIGPIPE, SIG_IGN);
	/* Handlers before the pidfile: whoever reads it may signal at once. */
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	if (initramfs) {
		/*
		 * The root file system hangs on this process: the shutdown's
		 * kill passes must not stop it while the kernel still writes.
		 * It ends when its last client leaves (nbd-client -d), or on
		 * SIGUSR1 when the attach never happened.
		 */
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		sigaction(SIGUSR1, &sa, NULL);
	} else {
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
	}
	if (server_listen(&cfg) < 0)
		goto fail;
	int ready_fd = -1;
	if (daemon_mode && daemonize(&ready_fd) < 0) {
		fprintf(stderr, "vhd-nbd: cannot detach: %s\n", strerror(errno));
		goto fail;
	}
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");
		if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
			fprintf(stderr, "vhd-nbd: %s: %s\n", pidfile, strerror(errno));
			goto fail;
		}
	}
	if (initramfs)
		initramfs_harden(argv[0]);
	/* Last, so that every message so far reached whoever started us. */
	if (log_fd >= 0) {
		dup2(log_fd, 2);
		close(log_fd);
	} else if (initramfs && !verbose) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, 2);
			close(null);
		}
	}
	if (ready_fd >= 0) {
		char one = 1;
		if (write(ready_fd, &one, 1) != 1)
			goto fail;
		close(ready_fd);
	}

	server_run(&cfg);

	int status = 0;
	for (size_t i = 0; i < cfg.exports.n; i++) {
		struct nbd_export *e = &cfg.exports.v[i];
		if (nbd_export_close(e) < 0) {
			fprintf(stderr, "vhd-nbd: %s: closing the image failed\n", e->path);
			status = 1;
		}
	}
	free_exports(&cfg);
	free(parent_dirs);
	tls_creds_free(cfg.tls);
	if (pidfile)
		unlink(pidfile);
	return status;
fail:
	free_exports(&cfg);
	free(parent_dirs);
	tls_creds_free(cfg.tls);
	return 1;
}
