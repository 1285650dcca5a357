/* mdbox-maplock.c - new m.N under Dovecot's map lock (see
 * mdbox-maplock.h). */
#include <errno.h>
#include <stdlib.h>

#include "dbox/dovecot-index.h"
#include "dovecot/dovecot-logwrite.h"
#include "store/dbox-dovecot-private.h"
#include "store/mdbox-maplock.h"
#include "store/store-private.h"

struct mdbox_maplock {
	struct dbox_store *store;
	struct dovi_loglock *lk;
	int unreadable;             /* -errno: the map could not be read */
	struct dbox_err why;        /* and why */
};

/* The map as it is under its lock: the one read before brought up to
 * date, else read whole. */
static int map_read(struct dbox_store *store, const char *prefix,
		    struct dbox_err *err)
{
	if (store->maplock_map != NULL &&
	    dovi_index_refresh(store->maplock_map, NULL, err) == 0)
		return 0;
	mdbox_maplock_free(store);
	return dovi_index_open(prefix, &store->maplock_map, err);
}

/* The map's log locked (*lk_r): 0; 1: the tree has no map; -errno. */
static int map_lock(struct dbox_store *store, const char *prefix,
		    struct dovi_loglock **lk_r, struct dbox_err *err)
{
	char log[PATH_MAX];
	unsigned lock_ms = store->dovecot_lock_ms != 0 ?
		store->dovecot_lock_ms : DBOX_DOVECOT_LOCK_MS;
	int ret = dbox_path(log, sizeof(log), "%s.log", prefix);

	if (ret == 0)
		ret = dovi_loglock_take(log, lock_ms, lk_r, err);
	/* no log: no map, nothing names m.N after it */
	return ret == -ENOENT ? 1 : ret;
}

int mdbox_maplock_take(struct dbox_store *store, struct mdbox_maplock **ml_r,
		       uint32_t *highest_r, struct dbox_err *err)
{
	char prefix[PATH_MAX];
	struct dovi_loglock *lk = NULL;
	uint32_t rebuild;
	int ret = dbox_path(prefix, sizeof(prefix), "%s/%s/dovecot.map.index",
			    store->dovecot_index_dir != NULL ?
			    store->dovecot_index_dir : store->root,
			    DBOX_STORAGE_DIR);

	*ml_r = NULL;
	*highest_r = 0;
	if (ret < 0)
		return dbox_fail(err, ret, "%s: path too long", store->root);
	pthread_mutex_lock(&store->maplock_mutex);
	ret = map_lock(store, prefix, &lk, err);
	if (ret == 0) {
		*ml_r = calloc(1, sizeof(**ml_r));
		if (*ml_r == NULL) {
			dovi_loglock_release(lk);
			ret = dbox_fail(err, -ENOMEM, "out of memory");
		}
	}
	if (ret != 0) {
		pthread_mutex_unlock(&store->maplock_mutex);
		return ret < 0 ? ret : 0;
	}
	**ml_r = (struct mdbox_maplock){ .store = store, .lk = lk };
	/* a map we cannot read is one Dovecot cannot either: the lock is
	 * kept all the same, so that no save of its is naming a file */
	ret = map_read(store, prefix, &(*ml_r)->why);
	if (ret == 0 && !dovi_index_map_hdr(store->maplock_map, highest_r,
					    &rebuild))
		ret = dbox_fail(&(*ml_r)->why, -EBADMSG, "%s has no highest "
				"file id", prefix);
	(*ml_r)->unreadable = ret;
	return 0;
}

int mdbox_maplock_raise(struct mdbox_maplock *ml, uint32_t file_id,
			struct dbox_err *err)
{
	struct dovi_index *map = ml->store->maplock_map;
	struct dovi_logwrite *w = dovi_logwrite_new();
	struct dovi_header hdr;
	int ret;

	if (ml->unreadable < 0)
		return dbox_fail(err, -EBADMSG, "%s", ml->why.msg);
	if (w == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	dovi_index_header(map, &hdr);
	/* as Dovecot's map writes: a sync's, onto the log as just read */
	dovi_logwrite_set_synced(w);
	dovi_logwrite_expect(w, hdr.log_file_seq, hdr.log_file_head_offset,
			     hdr.log_file_head_offset);
	ret = dbox_dovecot_map_highest_records(map, w, file_id, err);
	if (ret == 0)
		ret = dovi_loglock_append(ml->lk, w, err);
	dovi_logwrite_free(w);
	return ret;
}

void mdbox_maplock_release(struct mdbox_maplock *ml)
{
	if (ml == NULL)
		return;
	dovi_loglock_release(ml->lk);
	pthread_mutex_unlock(&ml->store->maplock_mutex);
	free(ml);
}

void mdbox_maplock_free(struct dbox_store *store)
{
	if (store->maplock_map != NULL)
		dovi_index_free(store->maplock_map);
	store->maplock_map = NULL;
}
