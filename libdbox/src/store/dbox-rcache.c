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

/* Under the lock: the least recently used window with data other than
 * keep, or NULL. */
static struct dbox_rcache_win *oldest(struct dbox_store *store,
				      const struct dbox_rcache_win *keep)
{
	struct dbox_rcache_win *v = NULL;

	for (int i = 0; i < DBOX_RCACHE_SLOTS; i++) {
		struct dbox_rcache_win *w = &store->rcache[i];

		if (w->data != NULL && w != keep &&
		    (v == NULL || w->last_use < v->last_use))
			v = w;
	}
	return v;
}

/* Under the lock: the window's data, taken out of the cache. */
static unsigned char *take(struct dbox_store *store,
			   struct dbox_rcache_win *w)
{
	unsigned char *data = w->data;

	store->rcache_bytes -= w->len;
	w->data = NULL;
	w->path[0] = '\0';
	return data;
}

void dbox_rcache_put(struct dbox_store *store, const char *path,
		     uint64_t start, unsigned char *data, size_t len)
{
	unsigned char *freed[DBOX_RCACHE_SLOTS];
	struct dbox_rcache_win *w, *v;
	int n = 0;

	if (strlen(path) >= sizeof(w->path) || len == 0 ||
	    len > DBOX_RCACHE_BUDGET) {
		free(data);
		return;
	}
	pthread_mutex_lock(&store->rcache_lock);
	w = victim(store);
	if (w->data != NULL)
		freed[n++] = take(store, w);
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->start = start;
	w->len = len;
	w->data = data;
	w->last_use = ++store->rcache_clock;
	store->rcache_bytes += len;
	/* the oldest windows go to keep within the budget */
	while (store->rcache_bytes > DBOX_RCACHE_BUDGET &&
	       (v = oldest(store, w)) != NULL)
		freed[n++] = take(store, v);
	pthread_mutex_unlock(&store->rcache_lock);
	for (int i = 0; i < n; i++)
		free(freed[i]);
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
		freed[n++] = take(store, w);
	}
	pthread_mutex_unlock(&store->rcache_lock);
	for (int i = 0; i < n; i++)
		free(freed[i]);
}
