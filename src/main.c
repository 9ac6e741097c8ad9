/* iotgw: command line, startup order, exit status. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <openssl/ssl.h>

#include "iotgw/config.h"
#include "iotgw/gateway.h"
#include "iotgw/log.h"
#include "iotgw/passwd_tool.h"
#include "iotgw/spool.h"
#include "iotgw/spool_stats.h"
#include "iotgw/status.h"
#include "iotgw/tls_ctx.h"
#include "iotgw/version.h"

#define DEFAULT_CONFIG "/etc/iotgw.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: iotgw [-c FILE] [-t [-u USER]] [-d] [--log-stderr] [--spool-stats] [--events]\n"
		"             [--version] [-h]\n"
		"       iotgw passwd [-i ITERATIONS] [-g] FILE DEVICE   (see iotgw(8))\n"
		"       iotgw status [-c FILE]   the running gateway's state; exit 0 ready,\n"
		"                                1 running but not ready, 3 not running\n"
		"  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
		"  -t, --test         check the configuration (including certificates and keys)\n"
		"                     and exit: 0 if valid, 78 with FILE:LINE: messages if not\n"
		"  -u, --user USER    with -t, as root: check as USER (the service's User=), so\n"
		"                     unreadable keys and an unwritable spool show\n"
		"  -d, --debug        log at debug level (overrides log_level)\n"
		"      --log-stderr   log readable lines to stderr even under systemd\n"
		"      --spool-stats  print the spool's depth, oldest entry and the running\n"
		"                     gateway's upstream state, then exit\n"
		"      --events       list every log event name (IOTGW_EVENT=) and exit\n"
		"      --version      print the version and exit\n"
		"  -h, --help         this help\n"
		"Signals: SIGHUP reloads the configuration and certificates, SIGUSR1 logs the\n"
		"status, SIGTERM and SIGINT stop.\n");
}

/* `iotgw -t` in ExecStartPre= writes into a journal stream: a "<3>"/"<4>"
 * prefix (sd-daemon(3)) files each problem at its priority, so that
 * `journalctl -p err` shows why the service did not start. */
static bool diag_prefix;

static void print_diag(void *ctx, enum cfg_severity sev, const char *file, int line,
		       const char *msg)
{
	if (diag_prefix)
		fputs(sev == CFG_ERROR ? "<3>" : "<4>", ctx);
	cfg_diag_print(ctx, sev, file, line, msg);
}

/* Drops to user (its groups too) for `-t -u USER`, so the files are opened
 * with the service's rights. Needs root, unless user is already us. */
static int become(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		fprintf(stderr, "iotgw: -u %s: no such user\n", user);
		return -1;
	}
	if (geteuid() == pw->pw_uid)
		return 0;
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		fprintf(stderr, "iotgw: -u %s: cannot become that user: %s (run -t -u as root)\n",
			user, strerror(errno));
		return -1;
	}
	return 0;
}

/* Needs only [spool] dir: syntax problems elsewhere in the file (or
 * certificates that no longer load) must not hide the spool. */
static void errors_only(void *ctx, enum cfg_severity sev, const char *file, int line,
			const char *msg)
{
	if (sev == CFG_ERROR)
		print_diag(ctx, sev, file, line, msg);
}

static int print_spool_stats(const char *config)
{
	struct iotgw_config cfg;
	(void)cfg_load_file(config, &cfg, errors_only, stderr);
	if (!cfg.spool.dir) {
		fprintf(stderr, "iotgw: %s: cannot find the [spool] directory\n", config);
		cfg_free(&cfg);
		return 1;
	}
	int rc = spool_stats_print(cfg.spool.dir, stdout, stderr);
	cfg_free(&cfg);
	return rc;
}

/* `iotgw status`: the report of the running gateway, from the DIR/status
 * file it rewrites every second (status.h). LSB exit codes: 0 running and
 * ready, 1 running but not ready, 3 not running, 4 unknown. */
static int print_status(const char *config)
{
	struct iotgw_config cfg;
	(void)cfg_load_file(config, &cfg, errors_only, stderr);
	if (!cfg.spool.dir) {
		fprintf(stderr, "iotgw: %s: cannot find the [spool] directory\n", config);
		cfg_free(&cfg);
		return 4;
	}
	long pid = spool_running_pid(cfg.spool.dir);
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", cfg.spool.dir, SPOOL_STATUS_NAME);
	cfg_free(&cfg);
	if (pid == 0) {
		printf("iotgw is not running (no gateway holds the spool lock)\n");
		return 3;
	}
	FILE *f = fopen(path, "re");
	char text[8192];
	size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
	if (f)
		fclose(f);
	text[n] = '\0';
	struct status_snapshot s;
	if (!f || status_parse_kv(text, &s) != 0) {
		fprintf(stderr, "iotgw: cannot read %s: %s\n", path,
			f ? "no status in it" : strerror(errno));
		return 4;
	}
	time_t now = time(NULL);
	struct buf out;
	buf_init(&out, 1u << 16);
	int rc = status_report(&s, &out);
	if (rc == 0)
		fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
	if (now - s.now_unix > 5)
		printf("(this report is %lld s old: is the gateway's loop stuck? see its log)\n",
		       (long long)(now - s.now_unix));
	char why[128];
	return rc != 0 ? 4 : status_ready(&s, why, sizeof why) ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"test", no_argument, NULL, 't'},
		{"user", required_argument, NULL, 'u'},
		{"debug", no_argument, NULL, 'd'},
		{"log-stderr", no_argument, NULL, 'L'},
		{"spool-stats", no_argument, NULL, 'S'},
		{"version", no_argument, NULL, 'V'},
		{"events", no_argument, NULL, 'E'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	if (argc > 1 && strcmp(argv[1], "passwd") == 0)
		return passwd_tool_main(argc - 1, argv + 1);
	bool status_cmd = argc > 1 && strcmp(argv[1], "status") == 0;
	if (status_cmd) {
		argc--;
		argv++;
	}
	const char *config = DEFAULT_CONFIG;
	bool test_only = false, debug = false, force_stderr = false, spool_stats = false;
	int opt;
	const char *as_user = NULL;
	while ((opt = getopt_long(argc, argv, "c:tdhu:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			as_user = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'L':
			force_stderr = true;
			break;
		case 'S':
			spool_stats = true;
			break;
		case 'V':
			printf("iotgw %s\n", IOTGW_VERSION);
			return 0;
		case 'E':
			for (int e = EV_NONE + 1; e < EV__COUNT; e++)
				printf("%s\n", event_name((enum iotgw_event)e));
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "iotgw: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	/* Writes to a device that vanished must fail with EPIPE, not kill us
	 * (OpenSSL writes with plain write(2)). */
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	diag_prefix = log_stderr_is_journal();
	if (status_cmd)
		return print_status(config);
	if (spool_stats)
		return print_spool_stats(config);
	if (as_user && !test_only) {
		fprintf(stderr, "iotgw: -u only goes with -t\n");
		return 2;
	}
	if (test_only) {
		if (as_user && become(as_user) != 0)
			return 1;
		/* Run by systemd (ExecStartPre=) or for a named user: the check
		 * stands in for the service. */
		bool as_service = as_user || getenv("INVOCATION_ID");
		struct iotgw_config cfg;
		int errors = gateway_check_config(config, &cfg, print_diag, stderr, as_service);
		if (errors) {
			fprintf(stderr, "%s%s: %d error(s)\n", diag_prefix ? "<3>" : "", config,
				errors);
			return IOTGW_EXIT_CONFIG;
		}
		cfg_free(&cfg);
		printf("%s: configuration OK\n", config);
		return 0;
	}

	log_init(force_stderr ? LOG_TARGET_STDERR : LOG_TARGET_AUTO, LOG_INFO);
	if (debug)
		log_force_level(LOG_DEBUG);
	mosquitto_lib_init();
	int status = 1;
	struct gateway *gw = gateway_new(config, &status);
	if (!gw) {
		mosquitto_lib_cleanup();
		return status;
	}
	status = gateway_run(gw);
	gateway_free(gw);
	tls_ctx_cleanup(); /* the TLS session stores, once no context uses them */
	mosquitto_lib_cleanup();
	return status;
}
