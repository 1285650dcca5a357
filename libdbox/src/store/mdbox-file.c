/* mdbox-file.c - m.N files for appending (see mdbox-file.h for the rules). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/dindex-file.h"
#include "store/mdbox-file.h"
#include "store/mdbox-maplock.h"
#include "store/store-private.h"

/* How many of the newest files are tried before a new one is made
 * (Dovecot looks at 10 too). */
#define MDBOX_CANDIDATES 10

struct candidate {
	uint32_t file_id;
	uint64_t size;
};

struct candidates {
	struct dbox_store *store;
	uint64_t need, limit;     /* a file stays below limit */
	struct candidate *c;
	unsigned int n;
	uint32_t max_id;
};

static int candidate_add(void *ctx, uint32_t file_id, uint64_t size,
			 bool sealed)
{
	struct candidates *cs = ctx;

	if (cs->max_id == 0)
		cs->max_id = file_id;
	if (cs->n == MDBOX_CANDIDATES)
		return 1;
	/* sealed: reindex found damage; appending after it would put new
	 * mail where no reader can frame it */
	if (size + cs->need < cs->limit && !sealed)
		cs->c[cs->n++] = (struct candidate){ file_id, size };
	return 0;
}

static int list_candidates(struct dbox_store *store, uint64_t need,
			   uint64_t limit, struct candidate *c,
			   unsigned int *count_r, uint32_t *max_id_r,
			   struct dbox_err *err)
{
	struct candidates cs = { store, need, limit, c, 0, 0 };
	int ret = dindex_files_newest(store->idx, candidate_add, &cs, err);

	*max_id_r = cs.max_id;
	*count_r = cs.n;
	return ret < 0 ? ret : 0;
}

int mdbox_file_committed(struct dbox_store *store, uint32_t file_id,
			 uint64_t *size_r, struct dbox_err *err)
{
	return dindex_file_size(store->idx, file_id, size_r, err);
}

static int dovecot_map_load(struct dbox_store *store,
			    struct mdbox_dovecot_map *dm)
{
	char prefix[PATH_MAX];

	if (dm->loaded)
		return dm->ret;
	dm->loaded = true;
	if (dbox_path(prefix, sizeof(prefix), "%s/storage/dovecot.map.index",
		      store->dovecot_index_dir != NULL ?
		      store->dovecot_index_dir : store->root) < 0)
		dm->ret = -ENAMETOOLONG;
	else
		dm->ret = dovi_index_open(prefix, &dm->map, NULL);
	if (dm->ret == -ENOENT)
		dm->ret = 0;  /* Dovecot never wrote here */
	return dm->ret;
}

void mdbox_dovecot_map_free(struct mdbox_dovecot_map *dm)
{
	if (dm->map != NULL)
		dovi_index_free(dm->map);
	dm->map = NULL;
}

/* The end of the last record Dovecot's map places in m.<id> (0: none;
 * UINT64_MAX: the map cannot be read). */
static uint64_t dovecot_map_end(struct dbox_store *store,
				struct mdbox_dovecot_map *dm, uint32_t id)
{
	uint64_t end = 0;
	uint32_t n;

	if (dovecot_map_load(store, dm) < 0)
		return UINT64_MAX;
	n = dm->map != NULL ? dovi_index_count(dm->map) : 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t file_id, offset, size;
		uint16_t refs;
		bool have_refs;

		if (dovi_index_map_rec(dm->map, i, &file_id, &offset, &size,
				       &have_refs, &refs) && file_id == id &&
		    (uint64_t)offset + size > end)
			end = (uint64_t)offset + size;
	}
	return end;
}

int mdbox_file_committed_end(struct dbox_store *store,
			     struct mdbox_dovecot_map *dm, uint32_t file_id,
			     uint64_t file_size, uint64_t *ours_r,
			     uint64_t *end_r, struct dbox_err *err)
{
	int ret = mdbox_file_committed(store, file_id, ours_r, err);

	if (ret == -ENOENT)
		*ours_r = 0;
	else if (ret < 0)
		return ret;
	*end_r = *ours_r;
	/* nothing beyond our committed end: nothing to ask the map */
	if (file_size > *ours_r) {
		uint64_t dovecot_end = dovecot_map_end(store, dm, file_id);

		if (dovecot_end > *end_r)
			*end_r = dovecot_end;
	}
	return ret;
}

/* After taking the lock: is the file still the one at path?  Recovery
 * and purge unlink files under this same lock, so a file that lost its
 * name while we waited must not be appended to. */
static int still_linked(struct dfs_file *f, const char *path)
{
	struct stat a, b;
	int ret = dfs_sync_fstat(f, &a);

	if (ret < 0)
		return ret;
	if (stat(path, &b) < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev ? 0 : -ENOENT;
}

/* Opens and locks m.<id> to append need bytes below limit; 1 = ours,
 * 0 = busy, gone or full, <0 error. */
static int try_existing(struct dbox_store *store, uint32_t file_id,
			uint64_t need, uint64_t limit,
			struct mdbox_append **app_r, struct dbox_err *err)
{
	char path[PATH_MAX];
	struct dfs_file *f;
	struct stat st;
	uint64_t size = 0;
	int ret;

	dbox_mdbox_path(store, file_id, path, sizeof(path));
	ret = dfs_sync_open(store->fs, path, O_RDWR | O_CLOEXEC, 0, &f);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return dbox_fail(err, ret, "open %s: %s", path, strerror(-ret));
	ret = dfs_sync_try_lock(f);
	if (ret == 0)
		ret = still_linked(f, path);
	/* re-read the committed end only now: whoever held the lock may
	 * have committed more in the meantime */
	if (ret == 0)
		ret = mdbox_file_committed(store, file_id, &size, err);
	if (ret == 0)
		ret = dfs_sync_fstat(f, &st);
	/* bytes beyond the committed end are not ours to cut: a dead
	 * writer's (its recovery removes them) or Dovecot's own appends */
	if (ret == 0 && (uint64_t)st.st_size > size)
		ret = -EFBIG;
	if (ret == 0 && size + need >= limit)
		ret = -EFBIG;
	if (ret == 0)
		ret = dbox_owner_mark(store, file_id, path, err);
	if (ret < 0) {
		dfs_sync_close(f);
		return ret == -EWOULDBLOCK || ret == -ENOENT || ret == -EFBIG ?
			0 : dbox_fail(err, ret, "lock %s: %s", path,
				      strerror(-ret));
	}
	*app_r = calloc(1, sizeof(**app_r));
	if (*app_r == NULL) {
		dfs_sync_close(f);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	**app_r = (struct mdbox_append){ .file_id = file_id, .file = f,
		.committed = size, .end = size };
	return 1;
}

/* The first id to try for a new file: above the index's newest and above
 * what this store created since (files a transaction still fills are not
 * in the index; trying each of them again would make a transaction of N
 * new files cost N^2 attempts, and fail beyond the 1000 tried). */
static uint32_t first_new_id(struct dbox_store *store, uint32_t index_next)
{
	uint32_t id;

	pthread_mutex_lock(&store->append_lock);
	id = store->append_next_id > index_next ? store->append_next_id :
		index_next;
	pthread_mutex_unlock(&store->append_lock);
	return id;
}

static void created_id(struct dbox_store *store, uint32_t id)
{
	pthread_mutex_lock(&store->append_lock);
	if (id >= store->append_next_id)
		store->append_next_id = id + 1;
	pthread_mutex_unlock(&store->append_lock);
}

/* A new m.N at first_id or above (the first free id), locked. */
static int create_at(struct dbox_store *store, uint32_t first_id,
		     struct mdbox_append **app_r, struct dbox_err *err)
{
	char path[PATH_MAX], hdr[64];
	size_t hlen = dbox_file_hdr_format(hdr, sizeof(hdr), dbox_now());
	struct dfs_file *f = NULL;
	uint32_t id = first_new_id(store, first_id);
	int ret = -EEXIST;

	for (int tries = 0; ret == -EEXIST && tries < 1000; tries++, id++) {
		dbox_mdbox_path(store, id, path, sizeof(path));
		/* the file is born as a link of our owner mark: a crash
		 * leaves nothing that recovery could not prove ours */
		ret = dbox_owner_mark_new(store, id, path, err);
		if (ret < 0)
			continue;
		ret = dfs_sync_open(store->fs, path, O_RDWR | O_CLOEXEC, 0, &f);
		if (ret == 0) {
			ret = dfs_sync_try_lock(f);
			if (ret < 0)
				dfs_sync_close(f);
		}
		if (ret < 0) {
			unlink(path);
			dbox_owner_unmark(store, id);
			break;
		}
	}
	id--;
	if (ret < 0)
		return dbox_fail(err, ret, "create %s: %s", path,
				 strerror(-ret));
	ret = dfs_sync_pwrite(f, hdr, hlen, 0);
	if (ret == 0) {
		*app_r = calloc(1, sizeof(**app_r));
		if (*app_r == NULL)
			ret = -ENOMEM;
	}
	if (ret < 0) {
		dfs_sync_close(f);
		unlink(path);
		dbox_owner_unmark(store, id);
		return dbox_fail(err, ret, "create %s: %s", path,
				 strerror(-ret));
	}
	**app_r = (struct mdbox_append){ .file_id = id, .file = f,
		.committed = 0, .end = hlen, .created = true };
	created_id(store, id);
	return 0;
}

/* A new m.N undone before anyone saw it. */
static void create_undo(struct dbox_store *store, struct mdbox_append *app)
{
	char path[PATH_MAX];

	dbox_mdbox_path(store, app->file_id, path, sizeof(path));
	dfs_sync_close(app->file);
	unlink(path);
	dbox_owner_unmark(store, app->file_id);
	free(app);
}

/* The new app's id raised in the map under ml: 0, or -errno (app undone,
 * *map_r: the map refused).  A damaged map cannot count it; Dovecot
 * rebuilds such a map from the m.N there (its save may meanwhile fail on
 * finding ours), so the file stays: made under the lock, no save of
 * Dovecot's was naming one at that moment. */
static int counted(struct dbox_store *store, struct mdbox_maplock *ml,
		   struct mdbox_append *app, bool *map_r, struct dbox_err *err)
{
	struct dbox_err why = { 0 };
	int ret = mdbox_maplock_raise(ml, app->file_id, &why);

	if (ret == -EBADMSG || ret == -ENOENT) {
		dbox_log(DBOX_LOG_WARNING, "m.%u is not counted in Dovecot's "
			 "map, which its rebuild fixes: %s", app->file_id,
			 why.msg);
		return 0;
	}
	if (ret < 0) {
		create_undo(store, app);
		*map_r = true;
		return dbox_fail(err, ret, "%s", why.msg);
	}
	return 0;
}

/* A new m.N at first_id or above; in a tree with Dovecot's map, made
 * under the map's lock above its highest file id, which is raised to it
 * there (mdbox-maplock.h).  *map_r: the map refused (its lock could not
 * be had, or the raise could not be written: err says why), and no file
 * was made. */
static int create_new(struct dbox_store *store, uint32_t first_id,
		      bool *map_r, struct mdbox_append **app_r,
		      struct dbox_err *err)
{
	struct mdbox_maplock *ml;
	uint32_t highest;
	int ret = mdbox_maplock_take(store, &ml, &highest, err);

	*map_r = ret < 0;
	if (ret < 0)
		return ret;
	if (ml != NULL && highest >= first_id)
		first_id = highest + 1;
	ret = create_at(store, first_id, app_r, err);
	if (ret == 0 && ml != NULL)
		ret = counted(store, ml, *app_r, map_r, err);
	/* only now: with the id raised, Dovecot's next m.N is above ours */
	mdbox_maplock_release(ml);
	return ret;
}

/* One of the newest files locked to append need bytes below limit: 1
 * (*app_r), 0 none (*max_id_r: the highest file id listed), -errno. */
static int try_newest(struct dbox_store *store, uint64_t need,
		      uint64_t limit, uint32_t *max_id_r,
		      struct mdbox_append **app_r, struct dbox_err *err)
{
	struct candidate c[MDBOX_CANDIDATES];
	unsigned int count = 0;
	int ret = list_candidates(store, need, limit, c, &count, max_id_r,
				  err);

	/* need >= limit lists none: such a message gets a file of its own */
	for (unsigned int i = 0; ret >= 0 && i < count; i++) {
		ret = try_existing(store, c[i].file_id, need, limit, app_r,
				   err);
		if (ret == 1)
			return 1;
	}
	return ret < 0 ? ret : 0;
}

/* No new m.N could be made under Dovecot's map lock (why, err): one that
 * Dovecot could take for its next file is never made; the message goes
 * to one of the newest files we can lock, whatever its size (the rotate
 * size is a preference, a lost message is not), else the save fails
 * with -EAGAIN, to be tried again. */
static int without_new(struct dbox_store *store, uint64_t need, int why,
		       struct mdbox_append **app_r, struct dbox_err *err)
{
	struct dbox_err e = { 0 };
	uint32_t max_id;
	char msg[sizeof(err->msg)];
	int ret = try_newest(store, need, UINT64_MAX, &max_id, app_r, &e);

	if (ret == 1) {
		dbox_log(DBOX_LOG_WARNING, "m.%u filled beyond the rotate "
			 "size: no new m.N (%s)", (*app_r)->file_id, err->msg);
		return 0;
	}
	snprintf(msg, sizeof(msg), "%s", err->msg);
	if (ret < 0)
		return dbox_fail(err, ret, "%s", e.msg);
	return dbox_fail(err, -EAGAIN, "no m.N to append to and no new one: "
			 "%s (%s)", msg, strerror(-why));
}

int mdbox_append_get(struct dbox_store *store, uint64_t need,
		     struct mdbox_append **app_r, struct dbox_err *err)
{
	uint32_t max_id = 0;
	bool map;
	int ret;

	/* the file the last transaction used: open, locked, end known */
	pthread_mutex_lock(&store->append_lock);
	if (store->append_cache != NULL && need < store->rotate_size &&
	    store->append_cache->end + need < store->rotate_size) {
		*app_r = store->append_cache;
		store->append_cache = NULL;
		(*app_r)->next = NULL;
		pthread_mutex_unlock(&store->append_lock);
		return 0;
	}
	pthread_mutex_unlock(&store->append_lock);
	ret = try_newest(store, need, store->rotate_size, &max_id, app_r,
			 err);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	ret = create_new(store, max_id + 1, &map, app_r, err);
	return ret < 0 && map ? without_new(store, need, ret, app_r, err) :
		ret;
}

int mdbox_append_sync(struct mdbox_append *app, struct dbox_err *err)
{
	int ret = dfs_sync_fsync(app->file);

	if (ret < 0)
		return dbox_fail(err, ret, "fsync %s: %s",
				 dfs_file_path(app->file), strerror(-ret));
	return 0;
}

int mdbox_append_close(struct mdbox_append *app, struct dbox_err *err)
{
	int ret;

	if (!app->created || app->file == NULL)
		return 0;
	ret = mdbox_append_sync(app, err);
	if (ret < 0)
		return ret;
	dfs_sync_close(app->file);
	app->file = NULL;
	app->synced_end = app->end;
	return 0;
}

int mdbox_append_record(struct dbox_store *store, struct mdbox_append *app,
			struct dbox_err *err)
{
	if (app->created)
		return dindex_file_insert(store->idx, app->file_id, app->end,
					  dbox_now(), false, err);
	return dindex_file_set_size(store->idx, app->file_id, app->end, err);
}

void mdbox_append_release(struct dbox_store *store, struct mdbox_append *app,
			  bool rollback)
{
	char path[PATH_MAX];
	bool gone = false;

	if (rollback && app->created) {
		dbox_mdbox_path(store, app->file_id, path, sizeof(path));
		unlink(path);
		dbox_owner_unmark(store, app->file_id);
		gone = true;
	} else if (rollback) {
		/* only created files are closed early: this one is open */
		dfs_sync_truncate(app->file, (off_t)app->committed);
		app->end = app->committed;
	} else {
		app->committed = app->end;
		app->created = false;
	}
	if (!gone && app->file != NULL && app->end < store->rotate_size) {
		pthread_mutex_lock(&store->append_lock);
		if (store->append_cache == NULL) {
			app->next = NULL;
			store->append_cache = app;
			app = NULL;
		}
		pthread_mutex_unlock(&store->append_lock);
		if (app == NULL)
			return;
	}
	/* closing drops the flock */
	if (!gone)
		dbox_owner_unmark(store, app->file_id);
	if (app->file != NULL)
		dfs_sync_close(app->file);
	free(app);
}

void mdbox_append_cache_clear(struct dbox_store *store)
{
	struct mdbox_append *app;

	pthread_mutex_lock(&store->append_lock);
	app = store->append_cache;
	store->append_cache = NULL;
	pthread_mutex_unlock(&store->append_lock);
	if (app != NULL) {
		dbox_owner_unmark(store, app->file_id);
		dfs_sync_close(app->file);
		free(app);
	}
}
