/* cpus: the CPUs this process may use (see include/iotgw/cpus.h). The
 * cgroup is found as systemd and the Go and Java runtimes find it: the
 * process's path in each hierarchy from /proc/self/cgroup, the hierarchy's
 * mount point (and the part of it the mount shows, in a container) from
 * /proc/self/mountinfo; then every directory from the process's cgroup up
 * to the mount point, since a quota on a parent (a slice) limits its
 * children too. Anything missing or unreadable means "no quota". */
#include "iotgw/cpus.h"

#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 4096

/* One line of the file at path, without its newline; false if none. */
static bool read_line(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fgets(out, (int)cap, f) != NULL;
	fclose(f);
	if (ok)
		out[strcspn(out, "\n")] = '\0';
	return ok;
}

/* Does the comma-separated list contain item? */
static bool list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, item, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

/* What a scan of a file looks for: the hierarchy (v2, or v1's cpu) and where
 * the answer goes. */
struct want {
	bool v2;
	char *out, *root; /* root: the mount's root (mountinfo only) */
	size_t cap, rcap;
};

/* Calls match on each line of path (without its newline) until it says found. */
static bool scan(const char *path, bool (*match)(char *line, const struct want *w),
		 const struct want *w)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char line[LINE_MAX_LEN];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		found = match(line, w);
	}
	fclose(f);
	return found;
}

/* /proc/self/cgroup: "0::PATH" (v2) or "N:CONTROLLERS:PATH" with cpu among
 * the controllers (v1). */
static bool match_cgroup(char *line, const struct want *w)
{
	char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2)
		return false;
	*c1 = *c2 = '\0';
	bool match = w->v2 ? strcmp(line, "0") == 0 && c2 == c1 + 1 : list_has(c1 + 1, "cpu");
	return match && (size_t)snprintf(w->out, w->cap, "%s", c2 + 1) < w->cap;
}

/* /proc/self/mountinfo: "id parent major:minor root mountpoint options
 * [optional...] - fstype source super-options" (spaces inside fields are
 * escaped as \040); the mount of a cgroup2, or of a cgroup with cpu. */
static bool match_mount(char *line, const struct want *w)
{
	char *sep = strstr(line, " - ");
	if (!sep)
		return false;
	*sep = '\0';
	char *field[5] = {NULL}, *save = NULL, *p = line;
	for (int n = 0; n < 5; n++, p = NULL)
		field[n] = strtok_r(p, " ", &save);
	char *fstype = strtok_r(sep + 3, " ", &save);
	char *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
	char *super = source ? strtok_r(NULL, " ", &save) : NULL;
	if (!field[4] || !fstype)
		return false;
	bool match = w->v2 ? strcmp(fstype, "cgroup2") == 0
			   : strcmp(fstype, "cgroup") == 0 && super && list_has(super, "cpu");
	return match && (size_t)snprintf(w->out, w->cap, "%s", field[4]) < w->cap &&
	       (size_t)snprintf(w->root, w->rcap, "%s", field[3]) < w->rcap;
}

/* The quota one directory sets, in CPUs rounded up; 0 none. */
static unsigned dir_quota(bool v2, const char *dir)
{
	char path[1100], line[128], line2[128]; /* dir: up to 1024 */
	long long q = -1, period = 0;
	if (v2) {
		if ((size_t)snprintf(path, sizeof path, "%s/cpu.max", dir) >= sizeof path ||
		    !read_line(path, line, sizeof line) ||
		    sscanf(line, "%lld %lld", &q, &period) != 2)
			return 0; /* also "max 100000": no quota */
	} else {
		char p2[1100];
		if ((size_t)snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir) >= sizeof path ||
		    (size_t)snprintf(p2, sizeof p2, "%s/cpu.cfs_period_us", dir) >= sizeof p2 ||
		    !read_line(path, line, sizeof line) || !read_line(p2, line2, sizeof line2))
			return 0;
		q = strtoll(line, NULL, 10);
		period = strtoll(line2, NULL, 10);
	}
	if (q <= 0 || period <= 0)
		return 0;
	long long n = (q + period - 1) / period;
	return n < 1 ? 1 : n > 1 << 20 ? 1u << 20 : (unsigned)n;
}

/* The smallest quota from the process's cgroup up to the hierarchy's mount. */
static void hierarchy_quota(bool v2, struct cpus *c)
{
	char rel[768], mnt[256], root[256], dir[sizeof c->quota_at];
	struct want path = {v2, rel, NULL, sizeof rel, 0};
	struct want mount = {v2, mnt, root, sizeof mnt, sizeof root};
	if (!scan("/proc/self/cgroup", match_cgroup, &path) ||
	    !scan("/proc/self/mountinfo", match_mount, &mount))
		return;
	/* In a container the mount shows only part of the hierarchy (its root
	 * field); the path from /proc/self/cgroup is then relative to it. */
	const char *r = rel;
	size_t rl = strlen(root);
	if (strcmp(root, "/") != 0 && strncmp(rel, root, rl) == 0 && (rel[rl] == '/' || !rel[rl]))
		r = rel + rl;
	if ((size_t)snprintf(dir, sizeof dir, "%s%s", mnt, strcmp(r, "/") == 0 ? "" : r) >=
	    sizeof dir)
		return;
	size_t base = strlen(mnt);
	for (;;) {
		unsigned q = dir_quota(v2, dir);
		if (q && (!c->quota || q < c->quota)) {
			c->quota = q;
			memcpy(c->quota_at, dir, strlen(dir) + 1); /* same size */
		}
		char *slash = strrchr(dir, '/');
		if (strlen(dir) <= base || !slash || (size_t)(slash - dir) < base)
			break;
		*slash = '\0';
	}
}

void cpus_available(struct cpus *out)
{
	memset(out, 0, sizeof *out);
	cpu_set_t set;
	int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
	out->affinity = n < 1 ? 1 : (unsigned)n;
	hierarchy_quota(true, out);
	hierarchy_quota(false, out);
}

unsigned cpus_usable(const struct cpus *c)
{
	return c->quota && c->quota < c->affinity ? c->quota : c->affinity;
}
