/* watch: inotify on the directories of a set of files, debounced. See
 * include/iotgw/watch.h for why directories and not the files. */
#include "iotgw/watch.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

struct watched_dir {
	int wd;
	char *dir;
	char **names; /* file names within dir */
	size_t nnames;
};

struct watch {
	struct ev_loop *loop;
	int fd;
	struct ev_io io;
	struct ev_timer quiet;
	unsigned quiet_ms;
	watch_fn fn;
	void *arg;
	struct watched_dir *dirs;
	size_t ndirs;
};

#define DIR_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB)

static void free_dirs(struct watch *w)
{
	for (size_t i = 0; i < w->ndirs; i++) {
		if (w->fd >= 0 && w->dirs[i].wd >= 0)
			inotify_rm_watch(w->fd, w->dirs[i].wd);
		for (size_t j = 0; j < w->dirs[i].nnames; j++)
			free(w->dirs[i].names[j]);
		free(w->dirs[i].names);
		free(w->dirs[i].dir);
	}
	free(w->dirs);
	w->dirs = NULL;
	w->ndirs = 0;
}

static bool is_watched(const struct watch *w, int wd, const char *name)
{
	for (size_t i = 0; i < w->ndirs; i++) {
		if (w->dirs[i].wd != wd)
			continue;
		for (size_t j = 0; j < w->dirs[i].nnames; j++)
			if (strcmp(w->dirs[i].names[j], name) == 0)
				return true;
		/* Kubernetes-style secret volumes swap a "..data" symlink: any
		 * change in a watched directory that is a dotted entry counts. */
		if (name[0] == '.' && name[1] == '.')
			return true;
	}
	return false;
}

static void on_quiet(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	struct watch *w = t->arg;
	w->fn(w->arg);
}

static void on_inotify(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)events;
	struct watch *w = io->arg;
	/* Aligned as inotify requires. */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
			if (ev->len && is_watched(w, ev->wd, ev->name))
				hit = true;
			if (ev->mask & IN_Q_OVERFLOW)
				hit = true;
			p += sizeof *ev + ev->len;
		}
	}
	if (hit)
		ev_timer_start(loop, &w->quiet, w->quiet_ms); /* restarts the quiet period */
}

struct watch *watch_new(struct ev_loop *loop, unsigned quiet_ms, watch_fn fn, void *arg)
{
	struct watch *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->loop = loop;
	w->quiet_ms = quiet_ms;
	w->fn = fn;
	w->arg = arg;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0 || ev_io_start(loop, &w->io, w->fd, EPOLLIN, on_inotify, w) != 0) {
		if (w->fd >= 0)
			close(w->fd);
		free(w);
		return NULL;
	}
	ev_timer_init(&w->quiet, on_quiet, w);
	return w;
}

static struct watched_dir *dir_for(struct watch *w, const char *dir)
{
	for (size_t i = 0; i < w->ndirs; i++)
		if (strcmp(w->dirs[i].dir, dir) == 0)
			return &w->dirs[i];
	struct watched_dir *d = realloc(w->dirs, (w->ndirs + 1) * sizeof *d);
	if (!d)
		return NULL;
	w->dirs = d;
	d = &w->dirs[w->ndirs];
	memset(d, 0, sizeof *d);
	d->wd = -1;
	d->dir = strdup(dir);
	if (!d->dir)
		return NULL;
	w->ndirs++;
	return d;
}

int watch_set(struct watch *w, const char *const *paths, size_t n, char *err, size_t errlen)
{
	free_dirs(w);
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		char dir[PATH_MAX];
		const char *slash = strrchr(paths[i], '/');
		const char *name = slash ? slash + 1 : paths[i];
		if (!slash)
			snprintf(dir, sizeof dir, ".");
		else if (slash == paths[i])
			snprintf(dir, sizeof dir, "/");
		else
			snprintf(dir, sizeof dir, "%.*s", (int)(slash - paths[i]), paths[i]);
		struct watched_dir *d = dir_for(w, dir);
		char **names = d ? realloc(d->names, (d->nnames + 1) * sizeof *names) : NULL;
		if (!names) {
			failed++;
			snprintf(err, errlen, "out of memory");
			continue;
		}
		d->names = names;
		if (!(d->names[d->nnames] = strdup(name))) {
			failed++;
			continue;
		}
		d->nnames++;
		if (d->wd < 0) {
			d->wd = inotify_add_watch(w->fd, dir, DIR_EVENTS);
			if (d->wd < 0) {
				failed++;
				snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			}
		}
	}
	return failed;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	ev_timer_stop(w->loop, &w->quiet);
	ev_io_stop(w->loop, &w->io);
	free_dirs(w);
	close(w->fd);
	free(w);
}
