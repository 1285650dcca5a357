/* dbox-store-sync.c - a store's syncs: the records and index made
 * durable, and the purge of expunged mdbox records that follows them. */
#include <pthread.h>
#include <stdatomic.h>

#include "store/mdbox-file.h"
#include "store/store-private.h"

/* Dovecot's rebuild restores every record it finds in an m.N (a mark's
 * expunge is only ours until the bytes are gone), so an expunge is
 * durable for Dovecot once its file is purged: at the sync that makes
 * it durable for us, not only at close (a killed daemon's expunges came
 * back for a Dovecot handed the store before our next open).  A purge
 * that fails or finds a file busy leaves its mark for the next close or
 * open. */
static int purge_locked(struct dbox_store *store, struct dbox_err *err)
{
	int ret;

	/* our kept append file is locked: purge could not take it */
	mdbox_append_cache_clear(store);
	ret = dbox_purge_pending(store, err);
	if (ret < 0)
		dbox_log(DBOX_LOG_WARNING, "purge of expunged messages left "
			 "for the next open: %s", err->msg);
	return ret;
}

static void purge_marked(struct dbox_store *store)
{
	struct dbox_err err = { "" };

	if (!atomic_load(&store->purge_marked))
		return;
	pthread_mutex_lock(&store->purge_lock);
	if (atomic_exchange(&store->purge_marked, false))
		purge_locked(store, &err);
	pthread_mutex_unlock(&store->purge_lock);
}

int dbox_store_purge_expunged(struct dbox_store *store, struct dbox_err *err)
{
	int ret;

	if (store->readonly || store->format != DBOX_FORMAT_MDBOX)
		return 0;
	/* the flag may be another's purge's already, which listed the marks
	 * before the caller's commit: list them again, after it */
	pthread_mutex_lock(&store->purge_lock);
	atomic_store(&store->purge_marked, false);
	ret = purge_locked(store, err);
	pthread_mutex_unlock(&store->purge_lock);
	return ret;
}

int dbox_store_sync(struct dbox_store *store, struct dbox_err *err)
{
	return dbox_store_sync_upto(store, INT64_MAX, err);
}

int dbox_store_sync_upto(struct dbox_store *store, int64_t marks,
			 struct dbox_err *err)
{
	int ret;

	if (store->readonly)
		return 0;
	/* records before the index rows that point at them */
	ret = dbox_unconfirmed_flush(store, marks, err);
	if (ret == 0)
		ret = dindex_sync(store->idx, err);
	if (ret == 0)
		purge_marked(store);
	return ret;
}

int dbox_store_checkpoint(struct dbox_store *store, struct dbox_err *err)
{
	if (store->readonly)
		return 0;
	return dindex_checkpoint(store->idx, err);
}

void dbox_store_release(struct dbox_store *store)
{
	dindex_release(store->idx);
}

bool dbox_store_sync_pending(struct dbox_store *store)
{
	return !store->readonly && (dindex_dirty(store->idx) ||
				    atomic_load(&store->purge_marked) ||
				    atomic_load(&store->unconfirmed));
}
