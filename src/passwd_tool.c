/* passwd_tool: `iotgw passwd` (see include/iotgw/passwd_tool.h).
 *
 * The order of events protects the file: validate the arguments, get the
 * password and hash it, then lock the directory, read and check the current
 * file, write the new text to a temporary file next to it, fsync, rename over
 * the old one and fsync the directory. A crash or a full disk at any point
 * leaves either the old or the new file, never a half-written one. */
#include "iotgw/passwd_tool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "iotgw/auth.h"
#include "iotgw/config.h"

#define PROG "iotgw passwd"
#define FILE_MODE 0640
/* Passwords typed or piped in; the MQTT limit is 65535, nobody types that. */
#define PW_LINE_MAX 1024
#define GEN_CHARS 24 /* generated passwords: 24 of 62 characters, ~143 bits */
#define SHORT_PW 12

static void usage(FILE *out)
{
	fprintf(out,
		"usage: iotgw passwd [-i ITERATIONS] [-g] FILE DEVICE\n"
		"       iotgw passwd -D FILE DEVICE\n"
		"Sets the password of DEVICE in the password file FILE (listener key\n"
		"password_file), creating FILE if needed. The password is read from the\n"
		"terminal without echo (twice), or as one line from stdin if it is not a\n"
		"terminal. Other entries and comments are kept; FILE is replaced atomically\n"
		"with mode 0640. Reload iotgw afterwards (systemctl reload iotgw).\n"
		"  -D             delete DEVICE from FILE\n"
		"  -g             generate a random password and print it on stdout\n"
		"  -i ITERATIONS  PBKDF2-HMAC-SHA256 iterations, %u..%u (default %u)\n"
		"  -h             this help\n",
		AUTH_PW_MIN_ITERATIONS, AUTH_PW_MAX_ITERATIONS, AUTH_PW_DEFAULT_ITERATIONS);
}

/* ---- reading the password ---- */

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

/* Ctrl-C at the prompt must not leave the terminal without echo. */
static void restore_tty_and_die(int sig)
{
	if (tty_changed)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads one line from fd into buf (without the LF or CRLF). Returns its
 * length, or -1 after printing why (read error, longer than cap - 1). */
static long read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	bool too_long = false;
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, PROG ": cannot read the password: %s\n", strerror(errno));
			return -1;
		}
		if (r == 0 || c == '\n')
			break;
		if (n + 1 < cap)
			buf[n++] = c;
		else
			too_long = true; /* drain the line, then refuse */
	}
	if (too_long) {
		fprintf(stderr, PROG ": password longer than %zu bytes\n", cap - 1);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (long)n;
}

static long prompt_no_echo(const char *prompt, char *buf, size_t cap)
{
	struct termios t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	/* Echo off before the prompt: what is typed after seeing the prompt is
	 * never echoed nor flushed away by TCSAFLUSH. */
	tty_changed = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0) {
		tty_changed = 0;
		fprintf(stderr, PROG ": cannot turn off echo: %s\n", strerror(errno));
		return -1;
	}
	fputs(prompt, stderr);
	fflush(stderr);
	long n = read_line(STDIN_FILENO, buf, cap);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_changed = 0;
	fputc('\n', stderr);
	return n;
}

/* The password from the terminal (twice) or from stdin. Returns its length
 * (> 0), or -1 after printing why. */
static long get_password(const char *device, char *pw, size_t cap)
{
	if (!isatty(STDIN_FILENO)) {
		long n = read_line(STDIN_FILENO, pw, cap);
		if (n == 0)
			fprintf(stderr, PROG ": empty password refused\n");
		return n > 0 ? n : -1;
	}
	if (tcgetattr(STDIN_FILENO, &saved_tty) != 0) {
		fprintf(stderr, PROG ": cannot read terminal settings: %s\n", strerror(errno));
		return -1;
	}
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
	struct sigaction sa = {.sa_handler = restore_tty_and_die};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		(void)sigaction(sigs[i], &sa, NULL);

	char prompt[AUTH_DEVICE_MAX + 32];
	snprintf(prompt, sizeof prompt, "Password for %s: ", device);
	char again[PW_LINE_MAX];
	long n = prompt_no_echo(prompt, pw, cap);
	long m = n > 0 ? prompt_no_echo("Retype password: ", again, sizeof again) : -1;
	bool same = n > 0 && m == n && memcmp(pw, again, (size_t)n) == 0;
	OPENSSL_cleanse(again, sizeof again);
	if (n == 0) {
		fprintf(stderr, PROG ": empty password refused\n");
		return -1;
	}
	if (n < 0 || m < 0)
		return -1;
	if (!same) {
		fprintf(stderr, PROG ": the passwords do not match; nothing changed\n");
		return -1;
	}
	return n;
}

/* GEN_CHARS random letters and digits (rejection sampling keeps them
 * uniform); they survive shells, C strings and config files unquoted. */
static long generate_password(char *pw, size_t cap)
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t n = 0;
	if (cap <= GEN_CHARS)
		return -1;
	while (n < GEN_CHARS) {
		unsigned char r[32];
		if (RAND_bytes(r, sizeof r) != 1) {
			fprintf(stderr, PROG ": no random bytes from OpenSSL\n");
			return -1;
		}
		for (size_t i = 0; i < sizeof r && n < GEN_CHARS; i++)
			if (r[i] < 248) /* 248 = 4 * 62 */
				pw[n++] = set[r[i] % 62];
		OPENSSL_cleanse(r, sizeof r);
	}
	pw[n] = '\0';
	return (long)n;
}

/* ---- the file ---- */

/* Password file problems look like configuration problems: FILE:LINE: message. */
static void print_diag(void *ctx, const char *file, int line, const char *msg)
{
	(void)ctx;
	cfg_diag_print(stderr, CFG_ERROR, file, line, msg);
}

/* Reads path into a new buffer. Returns 0 (also for a missing file:
 * *exists = false), or -1 after printing why. */
static int read_file(const char *path, char **text, size_t *len, bool *exists, struct stat *st)
{
	*text = NULL;
	*len = 0;
	*exists = false;
	if (lstat(path, st) != 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, PROG ": cannot stat %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* rename() would replace the link itself, not its target. */
	if (S_ISLNK(st->st_mode)) {
		fprintf(stderr, PROG ": %s is a symbolic link; give the path of its target\n",
			path);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		fprintf(stderr, PROG ": %s is not a regular file\n", path);
		return -1;
	}
	if ((unsigned long long)st->st_size > AUTH_PWFILE_MAX_BYTES) {
		fprintf(stderr, PROG ": %s is larger than %u bytes\n", path, AUTH_PWFILE_MAX_BYTES);
		return -1;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = (size_t)st->st_size + 1, n = 0;
	char *buf = malloc(cap);
	int rc = -1;
	while (buf) {
		if (n == cap) { /* it grew under us: we hold the lock, the writer does not */
			fprintf(stderr, PROG ": %s changed while being read\n", path);
			break;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, PROG ": cannot read %s: %s\n", path, strerror(errno));
			break;
		}
		if (r == 0) {
			rc = 0;
			break;
		}
		n += (size_t)r;
	}
	if (!buf)
		fprintf(stderr, PROG ": out of memory\n");
	close(fd);
	if (rc != 0) {
		free(buf);
		return -1;
	}
	*text = buf;
	*len = n;
	*exists = true;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes text to a temporary file in dir and renames it to path. old is the
 * old file's stat (NULL if new); dirst the directory's. */
static int replace_file(const char *path, int dirfd, const struct stat *dirst, const char *text,
			size_t len, const struct stat *old)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
	char tmp[4096];
	int k = snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", (int)dlen, path,
			 slash ? slash + 1 : path);
	if (k < 0 || (size_t)k >= sizeof tmp) {
		fprintf(stderr, PROG ": path too long: %s\n", path);
		return -1;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, PROG ": cannot create a temporary file next to %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	const char *step = "chmod";
	if (fchmod(fd, FILE_MODE) != 0)
		goto fail;
	/* Keep who may read it: the daemon reads it through the group. */
	uid_t uid = old ? old->st_uid : (uid_t)-1;
	gid_t gid = old ? old->st_gid : dirst->st_gid;
	if (fchown(fd, uid, gid) != 0) {
		if (old)
			fprintf(stderr,
				PROG ": warning: cannot keep owner %u and group %u of %s (%s); "
				"check who may read it\n",
				(unsigned)old->st_uid, (unsigned)old->st_gid, path,
				strerror(errno));
	}
	step = "write";
	if (write_all(fd, text, len) != 0)
		goto fail;
	step = "fsync";
	if (fsync(fd) != 0)
		goto fail;
	step = "close";
	int c = close(fd);
	fd = -1;
	if (c != 0)
		goto fail;
	step = "rename";
	if (rename(tmp, path) != 0)
		goto fail;
	/* The rename itself is durable only once the directory is synced. */
	if (fsync(dirfd) != 0)
		fprintf(stderr, PROG ": warning: fsync of the directory of %s: %s\n", path,
			strerror(errno));
	return 0;
fail:
	fprintf(stderr, PROG ": cannot %s %s: %s; %s unchanged\n", step, tmp, strerror(errno),
		path);
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	return -1;
}

static int open_locked_dir(const char *path, struct stat *st)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int k = slash ? snprintf(dir, sizeof dir, "%.*s", (int)(slash - path + 1), path)
		      : snprintf(dir, sizeof dir, ".");
	if (k < 0 || (size_t)k >= sizeof dir) {
		fprintf(stderr, PROG ": path too long: %s\n", path);
		return -1;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, PROG ": cannot open directory %s: %s\n", dir, strerror(errno));
		return -1;
	}
	/* Two concurrent runs would each rewrite the file from the same old
	 * text and one change would be lost: serialize them. */
	if (fstat(fd, st) != 0 || flock(fd, LOCK_EX) != 0) {
		fprintf(stderr, PROG ": cannot lock directory %s: %s\n", dir, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int update(const char *path, const char *device, const char *entry)
{
	struct stat dirst, st;
	int dirfd = open_locked_dir(path, &dirst);
	if (dirfd < 0)
		return 1;
	char *text = NULL, *out = NULL;
	size_t len = 0, outlen = 0;
	bool exists, found = false;
	int rc = 1;
	struct auth_pwfile *pf = NULL;
	if (read_file(path, &text, &len, &exists, &st) != 0)
		goto done;
	if (!exists && !entry) {
		fprintf(stderr, PROG ": %s does not exist\n", path);
		goto done;
	}
	int errors = auth_pwfile_parse(text ? text : "", len, path, &pf, print_diag, NULL);
	auth_pwfile_free(pf);
	if (errors) {
		fprintf(stderr, PROG ": %s has %d error%s; fix %s first, nothing changed\n", path,
			errors, errors == 1 ? "" : "s", errors == 1 ? "it" : "them");
		goto done;
	}
	if (auth_pwfile_edit(text ? text : "", len, device, entry, &out, &outlen, &found) != 0) {
		fprintf(stderr, PROG ": out of memory\n");
		goto done;
	}
	if (!entry && !found) {
		fprintf(stderr, PROG ": %s has no entry for %s; nothing changed\n", path, device);
		goto done;
	}
	if (replace_file(path, dirfd, &dirst, out, outlen, exists ? &st : NULL) != 0)
		goto done;
	if (!entry) {
		fprintf(stderr, PROG ": deleted %s from %s\n", device, path);
	} else if (found) {
		fprintf(stderr, PROG ": updated the password of %s in %s\n", device, path);
	} else if (exists) {
		fprintf(stderr, PROG ": added %s to %s\n", device, path);
	} else {
		struct group *g = getgrgid(dirst.st_gid);
		fprintf(stderr, PROG ": created %s (mode 0640, group %s) with %s\n", path,
			g ? g->gr_name : "?", device);
	}
	rc = 0;
done:
	if (text)
		OPENSSL_cleanse(text, len);
	free(text);
	if (out)
		OPENSSL_cleanse(out, outlen);
	free(out);
	close(dirfd); /* releases the lock */
	return rc;
}

int passwd_tool_main(int argc, char **argv)
{
	bool del = false, gen = false;
	unsigned iterations = AUTH_PW_DEFAULT_ITERATIONS;
	int opt;
	optind = 0; /* glibc: full re-initialization, main() may have used getopt */
	while ((opt = getopt(argc, argv, "+Dgi:h")) != -1) {
		switch (opt) {
		case 'D':
			del = true;
			break;
		case 'g':
			gen = true;
			break;
		case 'i': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    v < AUTH_PW_MIN_ITERATIONS || v > AUTH_PW_MAX_ITERATIONS) {
				fprintf(stderr, PROG ": -i: expected %u..%u, got '%s'\n",
					AUTH_PW_MIN_ITERATIONS, AUTH_PW_MAX_ITERATIONS, optarg);
				return 2;
			}
			iterations = (unsigned)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (del && gen) {
		fprintf(stderr, PROG ": -D and -g cannot be combined\n");
		return 2;
	}
	const char *path = argv[optind], *device = argv[optind + 1];
	if (!auth_device_id_valid(device, strlen(device)) || strchr(device, ':')) {
		fprintf(stderr,
			PROG ": '%s' is not a usable device id (1-64 printable ASCII characters, "
			     "no spaces, '/', '+', '#' or ':')\n",
			device);
		return 2;
	}
	if (path[0] == '\0' || path[strlen(path) - 1] == '/') {
		fprintf(stderr, PROG ": '%s' is not a file name\n", path);
		return 2;
	}
	if (del)
		return update(path, device, NULL);

	char pw[PW_LINE_MAX];
	long n = gen ? generate_password(pw, sizeof pw) : get_password(device, pw, sizeof pw);
	if (n <= 0) {
		OPENSSL_cleanse(pw, sizeof pw);
		return 1;
	}
	if (!gen && n < SHORT_PW)
		fprintf(stderr,
			PROG ": warning: a %ld-character password can be guessed offline from a "
			     "leaked file; iotgw passwd -g makes a strong one\n",
			n);
	char entry[AUTH_PW_LINE_MAX], why[200];
	int rc = auth_pw_hash_line(device, (const uint8_t *)pw, (size_t)n, iterations, NULL, 0,
				   entry, sizeof entry, why, sizeof why);
	if (rc != 0) {
		OPENSSL_cleanse(pw, sizeof pw);
		fprintf(stderr, PROG ": %s\n", why);
		return 1;
	}
	rc = update(path, device, entry);
	OPENSSL_cleanse(entry, sizeof entry);
	if (rc == 0 && gen) {
		/* Only once it is stored: a password nobody can use is noise. */
		printf("%s\n", pw);
		if (fflush(stdout) != 0) {
			fprintf(stderr, PROG ": cannot write the password to stdout\n");
			rc = 1;
		}
	}
	OPENSSL_cleanse(pw, sizeof pw);
	return rc;
}
