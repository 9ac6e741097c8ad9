/* watch: "these files changed" events from inotify, in the event loop.
 *
 * Certificates are usually replaced, not rewritten in place (certbot,
 * cfssl, `mv new.pem cert.pem`, Kubernetes secret volumes swapping a
 * symlinked directory), so watching the file's inode would miss the change
 * or keep watching the old file. watch observes the directories that hold
 * the files and reports a change when an entry with one of the watched
 * names is written, created, moved in or deleted. Changes are debounced:
 * the callback runs once the files have been quiet for quiet_ms, so a
 * certificate and its key written one after the other cause one reload. */
#ifndef IOTGW_WATCH_H
#define IOTGW_WATCH_H

#include <stddef.h>

#include "iotgw/evloop.h"

struct watch;

typedef void (*watch_fn)(void *arg);

/* The caller owns the watch (watch_free); NULL with errno set. */
struct watch *watch_new(struct ev_loop *loop, unsigned quiet_ms, watch_fn fn, void *arg);
/* Replaces the watched set (the paths are copied). Returns the number of
 * paths that could not be watched (their directory is missing or
 * unreadable); reason of the last in err. */
int watch_set(struct watch *w, const char *const *paths, size_t n, char *err, size_t errlen);
void watch_free(struct watch *w);

#endif
