/* dbox-fcache.c - storage files kept open for reads.
 *
 * mdbox packs many messages into one m.N, so opening it once per read would
 * waste most of the time in open(); sdbox u.N files are reused by the
 * kernel's repeated reads of one message.  Entries are opened through the
 * async fs layer (dfs_open never blocks; reads queue behind the open) and
 * evicted least-recently-used when no request holds them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "store/store-private.h"

static void fcache_open_cb(void *ctx, const struct dfs_result *res)
{
	struct dbox_store *store = ctx;

	if (res->err == 0)
		return;
	/* forget a file that failed to open, so the next get retries */
	pthread_mutex_lock(&store->fcache_lock);
	for (int i = 0; i < DBOX_FCACHE_SIZE; i++) {
		struct dbox_fcache_entry *e = &store->fcache[i];

		if (e->file == res->file)
			e->path[0] = '\0';
	}
	pthread_mutex_unlock(&store->fcache_lock);
}

static struct dbox_fcache_entry *fcache_victim(struct dbox_store *store)
{
	struct dbox_fcache_entry *victim = NULL;

	for (int i = 0; i < DBOX_FCACHE_SIZE; i++) {
		struct dbox_fcache_entry *e = &store->fcache[i];

		if (e->file == NULL)
			return e;
		if (e->users == 0 &&
		    (victim == NULL || e->last_use < victim->last_use))
			victim = e;
	}
	return victim;
}

int dbox_fcache_get(struct dbox_store *store, const char *path,
		    struct dfs_file **file_r)
{
	struct dbox_fcache_entry *e;
	struct dfs_file *old = NULL, *file;

	if (strlen(path) >= sizeof(e->path))
		return -ENAMETOOLONG;
	pthread_mutex_lock(&store->fcache_lock);
	for (int i = 0; i < DBOX_FCACHE_SIZE; i++) {
		e = &store->fcache[i];
		if (e->file != NULL && strcmp(e->path, path) == 0) {
			e->users++;
			e->last_use = ++store->fcache_clock;
			*file_r = e->file;
			pthread_mutex_unlock(&store->fcache_lock);
			return 0;
		}
	}
	file = dfs_open(store->fs, path, O_RDONLY | O_CLOEXEC, 0,
			fcache_open_cb, store);
	e = fcache_victim(store);
	if (e != NULL) {
		old = e->file;
		snprintf(e->path, sizeof(e->path), "%s", path);
		e->file = file;
		e->users = 1;
		e->last_use = ++store->fcache_clock;
	}
	pthread_mutex_unlock(&store->fcache_lock);
	if (old != NULL)
		dfs_close(old, NULL, NULL);
	/* every slot busy: the caller gets a private handle that put()
	 * closes */
	*file_r = file;
	return 0;
}

void dbox_fcache_put(struct dbox_store *store, struct dfs_file *file)
{
	bool cached = false, close_it = false;

	pthread_mutex_lock(&store->fcache_lock);
	for (int i = 0; i < DBOX_FCACHE_SIZE; i++) {
		struct dbox_fcache_entry *e = &store->fcache[i];

		if (e->file != file)
			continue;
		cached = true;
		e->users--;
		/* dropped or failed entries have an empty path */
		if (e->users == 0 && e->path[0] == '\0') {
			e->file = NULL;
			close_it = true;
		}
		break;
	}
	pthread_mutex_unlock(&store->fcache_lock);
	if (!cached || close_it)
		dfs_close(file, NULL, NULL);
}

/* Entries of `path` (dir: every path below it) are forgotten; unused
 * ones closed. */
static void fcache_forget(struct dbox_store *store, const char *path,
			  bool dir)
{
	struct dfs_file *close_files[DBOX_FCACHE_SIZE];
	size_t n = strlen(path);
	int closing = 0;

	pthread_mutex_lock(&store->fcache_lock);
	for (int i = 0; i < DBOX_FCACHE_SIZE; i++) {
		struct dbox_fcache_entry *e = &store->fcache[i];

		if (e->file == NULL || (dir ? strncmp(e->path, path, n) != 0 ||
					e->path[n] != '/' :
					strcmp(e->path, path) != 0))
			continue;
		e->path[0] = '\0';
		if (e->users == 0) {
			close_files[closing++] = e->file;
			e->file = NULL;
		}
	}
	pthread_mutex_unlock(&store->fcache_lock);
	for (int i = 0; i < closing; i++)
		dfs_close(close_files[i], NULL, NULL);
	dbox_rcache_drop(store, path, dir);
}

void dbox_fcache_drop(struct dbox_store *store, const char *path)
{
	fcache_forget(store, path, false);
}

void dbox_fcache_drop_dir(struct dbox_store *store, const char *dir)
{
	fcache_forget(store, dir, true);
}

void dbox_fcache_clear(struct dbox_store *store)
{
	for (int i = 0; i < DBOX_FCACHE_SIZE; i++) {
		struct dbox_fcache_entry *e = &store->fcache[i];

		if (e->file != NULL)
			dfs_close(e->file, NULL, NULL);
		e->file = NULL;
		e->path[0] = '\0';
		e->users = 0;
	}
	dbox_rcache_drop(store, "", true);
}
