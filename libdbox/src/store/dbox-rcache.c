/* dbox-rcache.c - storage file bytes read ahead (see store-private.h).
 *
 * A cold read of a folder opens its messages one after the other; in
 * mdbox they lie one after the other in m.N.  The check at open reads a
 * window of up to DBOX_RCACHE_WINDOW from the record on, and the opens
 * and reads of the next messages find their records in it: one I/O per
 * window instead of two per message, which is what slow storage (a
 * network filesystem, fs=delay:...) pays for.  Bytes of a committed record
 * never change, but a window may also hold bytes beyond the committed end
 * that a writer rolls back, so every record served from a window is
 * checked again there (framing and GUID, dbox_msg_read_cached) and a
 * window that disagrees with the index is dropped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store-private.h"

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return n == 0 || (strncmp(path, dir, n) == 0 && path[n] == '/');
}

static struct dbox_rcache_win *victim(struct dbox_store *store)
{
	struct dbox_rcache_win *v = &store->rcache[0];

	for (int i = 0; i < DBOX_RCACHE_SLOTS; i++) {
		struct dbox_rcache_win *w = &store->rcache[i];

		if (w->data == NULL)
			return w;
		if (w->last_use < v->last_use)
			v = w;
	}
	return v;
}

void dbox_rcache_put(struct dbox_store *store, const char *path,
		     uint64_t start, unsigned char *data, size_t len)
{
	struct dbox_rcache_win *w;
	unsigned char *old;

	if (strlen(path) >= sizeof(w->path) || len == 0) {
		free(data);
		return;
	}
	pthread_mutex_lock(&store->rcache_lock);
	w = victim(store);
	old = w->data;
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->start = start;
	w->len = len;
	w->data = data;
	w->last_use = ++store->rcache_clock;
	pthread_mutex_unlock(&store->rcache_lock);
	free(old);
}

int dbox_rcache_get(struct dbox_store *store, const char *path,
		    uint64_t start, size_t len, void *buf)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&store->rcache_lock);
	for (int i = 0; i < DBOX_RCACHE_SLOTS && ret < 0; i++) {
		struct dbox_rcache_win *w = &store->rcache[i];

		if (w->data == NULL || start < w->start ||
		    start - w->start > w->len ||
		    len > w->len - (start - w->start) ||
		    strcmp(w->path, path) != 0)
			continue;
		memcpy(buf, w->data + (start - w->start), len);
		w->last_use = ++store->rcache_clock;
		ret = 0;
	}
	pthread_mutex_unlock(&store->rcache_lock);
	return ret;
}

void dbox_rcache_drop(struct dbox_store *store, const char *path, bool dir)
{
	unsigned char *freed[DBOX_RCACHE_SLOTS];
	int n = 0;

	pthread_mutex_lock(&store->rcache_lock);
	for (int i = 0; i < DBOX_RCACHE_SLOTS; i++) {
		struct dbox_rcache_win *w = &store->rcache[i];

		if (w->data == NULL || (dir ? !under(w->path, path) :
					strcmp(w->path, path) != 0))
			continue;
		freed[n++] = w->data;
		w->data = NULL;
		w->path[0] = '\0';
	}
	pthread_mutex_unlock(&store->rcache_lock);
	for (int i = 0; i < n; i++)
		free(freed[i]);
}
