/* dbox-dovecot.c - the index of a store that Dovecot owns, taken from
 * Dovecot's own index files (dovecot.index*, the mdbox map), never written.
 *
 * Dovecot's indexes give uids, flags, keywords, uidvalidity, \Recent and,
 * for mdbox, which mailbox holds which map record; the dbox files give the
 * bytes, GUIDs and dates.  A full pass makes our index equal to that;
 * dbox_store_follow() re-reads only what the transaction logs added and
 * syncs the mailboxes that changed.  Where Dovecot's indexes cannot be
 * used at all, the store is indexed from its files alone, and the log
 * says so. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "dbox/dovecot-index.h"
#include "index/dindex-mailbox.h"
#include "index/dindex-msg.h"
#include "store/dbox-dovecot-private.h"
#include "store/dbox-rfile.h"
#include "store/dbox-scan.h"
#include "store/store-private.h"

/* ----------------------------------------------------- open, follow */

static void dovecot_free_boxes(struct dbox_dovecot *dv)
{
	for (size_t i = 0; i < dv->count; i++) {
		dovi_mailbox_free(dv->boxes[i].db);
		free(dv->boxes[i].name);
		free(dv->boxes[i].storage);
	}
	free(dv->boxes);
	dv->boxes = NULL;
	dv->count = 0;
}

void dbox_dovecot_free(struct dbox_dovecot *dv)
{
	if (dv == NULL)
		return;
	dovecot_free_boxes(dv);
	free(dv->renum);
	dovi_store_free(dv->ds);
	if (dv->inotify_fd >= 0)
		close(dv->inotify_fd);
	free(dv);
}

static int watch_dir(struct dbox_dovecot *dv, const char *dir)
{
	if (dv->inotify_fd < 0)
		return 0;
	/* log appends, rotations, new index files, new and removed
	 * mailbox directories */
	return inotify_add_watch(dv->inotify_fd, dir, IN_MODIFY | IN_CREATE |
				 IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM |
				 IN_CLOSE_WRITE) < 0 ? -errno : 0;
}

/* (Re)loads the mailbox list: opens new mailboxes, drops gone ones. */
static int load_boxes(struct dbox_store *store, struct dbox_dovecot *dv,
		      struct dbox_err *err)
{
	struct dovi_mailbox_name *names = NULL;
	struct dovecot_box *boxes;
	size_t n = 0, kept = 0;
	int ret = dovi_store_list(dv->ds, &names, &n, err);

	if (ret < 0)
		return ret;
	boxes = calloc(n + 1, sizeof(*boxes));
	if (boxes == NULL) {
		dovi_mailbox_names_free(names, n);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct dovecot_box *b = &boxes[kept];

		if (!names[i].name_valid ||
		    !dbox_mailbox_name_valid(names[i].name)) {
			dbox_log(DBOX_LOG_WARNING, "mailbox directory %s: name "
				 "not usable, left out", names[i].storage_name);
			continue;
		}
		/* reuse the reader of a mailbox we follow already */
		for (size_t j = 0; j < dv->count; j++) {
			if (dv->boxes[j].name != NULL &&
			    strcmp(dv->boxes[j].name, names[i].name) == 0) {
				*b = dv->boxes[j];
				memset(&dv->boxes[j], 0, sizeof(dv->boxes[j]));
			}
		}
		if (b->name == NULL) {
			b->name = strdup(names[i].name);
			b->storage = strdup(names[i].storage_name);
		}
		if (b->db == NULL && dovi_mailbox_open_storage_name(dv->ds,
				names[i].storage_name, &b->db, err) < 0) {
			b->db = NULL;
			if (store->format == DBOX_FORMAT_MDBOX)
				dv->unusable = true;
			if (!b->warned)
				dbox_log(DBOX_LOG_WARNING, "mailbox %s: Dovecot's "
					 "index cannot be used (%s)", b->name,
					 err != NULL ? err->msg : "unreadable");
		}
		if (b->db != NULL)
			watch_dir(dv, dovi_mailbox_dir(b->db));
		/* INDEX=: Dovecot's logs change there */
		if (b->db != NULL && store->dovecot_index_dir != NULL)
			watch_dir(dv, dovi_mailbox_index_dir(b->db));
		b->ds = dv->ds;
		b->dv = dv;
		kept++;
	}
	dovi_mailbox_names_free(names, n);
	dovecot_free_boxes(dv);
	dv->boxes = boxes;
	dv->count = kept;
	return 0;
}

static int delete_other_mailboxes(struct dbox_store *store,
				  struct dbox_dovecot *dv,
				  struct dbox_err *err)
{
	int64_t *ids = calloc(dv->count + 1, sizeof(*ids));
	int ret;

	if (ids == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < dv->count; i++)
		ids[i] = dv->boxes[i].id;
	ret = dindex_mailbox_keep_only(store->idx, ids, dv->count, err);
	free(ids);
	return ret;
}

/* A mailbox made through a takeover mount that now has Dovecot's index
 * (dbox_dovecot_back_created) is followed at once: the hand-back knows
 * only followed boxes (box_of), so a delivery or move into it before the
 * follower's next reload of the list was not handed back.  Under the
 * write lock, as the follower's sync: the reload reallocates dv->boxes,
 * which nothing holds between two writes. */
void dbox_dovecot_follow_created(struct dbox_store *store, const char *name)
{
	struct dbox_dovecot *dv = store->dovecot;
	struct dbox_mailbox box;
	struct dbox_err err = { "" };

	if (dv == NULL || store->readonly ||
	    dbox_mailbox_lookup(store, name, &box, NULL) < 0)
		return;
	if (load_boxes(store, dv, &err) < 0) {
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: not followed until "
			 "the next check: %s", name, err.msg);
		return;
	}
	for (size_t i = 0; i < dv->count; i++) {
		struct dovecot_box *b = &dv->boxes[i];

		if (b->id == 0 && b->name != NULL &&
		    strcmp(b->name, name) == 0) {
			b->id = box.id;
			b->resync = true;   /* the follower's full sync of it */
		}
	}
}

/* What the follower hands back (dbox_dovecot_adopt_pending): a mailbox
 * that Dovecot has no index of, new or changed; and one Dovecot has just
 * indexed (its own mailbox create, our adoption): a delivery through the
 * mount before that is in no index of Dovecot's. */
static void note_unindexed(struct dbox_dovecot *dv, struct dovecot_box *b,
			   bool changed)
{
	bool none = b->db != NULL && dovi_mailbox_index(b->db) == NULL;

	if (none && (b->id == 0 || changed))
		atomic_store(&dv->adopt_due, true);
	if (!none && b->unindexed && b->id != 0) {
		b->behind = true;
		atomic_store(&dv->adopt_due, true);
	}
	b->unindexed = none;
}

static int sync_all(struct dbox_store *store, struct dbox_dovecot *dv,
		    bool only_changed, int64_t *changed, size_t max,
		    size_t *nchanged, struct dbox_err *err)
{
	size_t before;
	bool list_changed;
	/* the mailbox directories are listed under the write lock: a
	 * mailbox made, renamed or removed through the mount changes its
	 * directory and its row in one transaction, so the list and our rows
	 * agree (and dbox_dovecot_follow_created reloads it under that lock) */
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	before = dv->count;
	ret = load_boxes(store, dv, err);
	if (ret == 0 && dv->unusable && !only_changed)
		ret = -EOPNOTSUPP;   /* mdbox: which mailbox has what is lost */
	list_changed = dv->count != before;
	for (size_t i = 0; ret == 0 && i < dv->count; i++) {
		struct dovecot_box *b = &dv->boxes[i];
		bool box_changed = true;

		if (b->db != NULL &&
		    dovi_mailbox_refresh(b->db, &box_changed, err) < 0) {
			dbox_log(DBOX_LOG_WARNING, "mailbox %s: %s", b->name,
				 err != NULL ? err->msg : "refresh failed");
			continue;  /* keep what we had */
		}
		note_unindexed(dv, b, box_changed);
		if (dbox_dovecot_sdbox_unusable(store, b)) {
			ret = dbox_dovecot_sync_box_files(store, b, err);
			if (ret == 0 && !only_changed)
				ret = dbox_dovecot_adopt(store, b, err);
			if (ret == 0 && *nchanged < max)
				changed[(*nchanged)++] = b->id;
			continue;
		}
		box_changed |= b->resync;
		b->resync = false;
		if (b->db == NULL || (only_changed && !box_changed && b->id != 0))
			continue;
		/* a new name (a rename by Dovecot keeps the count) */
		list_changed |= b->id == 0;
		ret = dbox_dovecot_sync_box(store, b, err);
		/* the store opens: Dovecot gets an index of ours it lacks */
		if (ret == 0 && !only_changed)
			ret = dbox_dovecot_adopt(store, b, err);
		if (ret == 0 && *nchanged < max)
			changed[(*nchanged)++] = b->id;
	}
	if (ret == 0 && (!only_changed || list_changed))
		ret = delete_other_mailboxes(store, dv, err);
	if (ret == 0)
		ret = dindex_write_commit(store->idx, err);
	else
		dindex_write_rollback(store->idx);
	dbox_dovecot_renumbered_done(store, dv, ret == 0);
	return ret;
}

/* The first full pass.  Returns 0, or -EOPNOTSUPP when Dovecot's indexes
 * cannot be used at all (the caller then indexes the files alone). */
int dbox_dovecot_reindex(struct dbox_store *store, struct dbox_err *err)
{
	struct dbox_dovecot *dv = calloc(1, sizeof(*dv));
	enum dovi_format fmt = store->format == DBOX_FORMAT_MDBOX ?
		DOVI_MDBOX : DOVI_SDBOX;
	int64_t changed[1];
	size_t n = 0;
	char dir[PATH_MAX];
	int ret;

	if (dv == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	dv->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	dv->lock_ms = store->dovecot_lock_ms != 0 ? store->dovecot_lock_ms :
		DBOX_DOVECOT_LOCK_MS;
	ret = dovi_store_open(store->root, fmt, &dv->ds, err);
	if (ret == 0 && store->dovecot_index_dir != NULL)
		ret = dovi_store_set_index_root(dv->ds,
						store->dovecot_index_dir, err);
	if (ret == 0 && fmt == DOVI_MDBOX && dovi_store_map(dv->ds, err) == NULL)
		ret = -EBADMSG;
	if (ret < 0) {
		dbox_log(DBOX_LOG_WARNING, "Dovecot's indexes of %s cannot be "
			 "used (%s); indexing the dbox files alone: flags and "
			 "keywords are lost and expunged mdbox messages that "
			 "were not purged come back", store->root,
			 err != NULL ? err->msg : "");
		dbox_dovecot_free(dv);
		return -EOPNOTSUPP;
	}
	dbox_path(dir, sizeof(dir), "%s/%s", store->root, DBOX_MAILBOX_DIR);
	watch_dir(dv, dir);
	if (fmt == DOVI_MDBOX) {
		dbox_path(dir, sizeof(dir), "%s/%s", store->root,
			  DBOX_STORAGE_DIR);
		watch_dir(dv, dir);
	}
	if (store->dovecot_index_dir != NULL) {
		dbox_path(dir, sizeof(dir), "%s/%s", store->dovecot_index_dir,
			  DBOX_MAILBOX_DIR);
		watch_dir(dv, dir);
		dbox_path(dir, sizeof(dir), "%s/%s", store->dovecot_index_dir,
			  DBOX_STORAGE_DIR);
		if (fmt == DOVI_MDBOX)
			watch_dir(dv, dir);
	}
	ret = sync_all(store, dv, false, changed, 0, &n, err);
	if (ret == -EOPNOTSUPP)
		dbox_log(DBOX_LOG_WARNING, "Dovecot's indexes of %s cannot be "
			 "used (a mailbox index is unreadable); indexing the "
			 "dbox files alone: flags and keywords are lost and "
			 "expunged mdbox messages that were not purged come "
			 "back", store->root);
	if (ret < 0) {
		dbox_dovecot_free(dv);
		return ret;
	}
	dbox_dovecot_free(store->dovecot);
	store->dovecot = dv;
	return 0;
}

int dbox_store_follow(struct dbox_store *store, int64_t *changed, size_t max,
		      struct dbox_err *err)
{
	char buf[4096];
	size_t n = 0;
	int ret;

	if (store->dovecot == NULL)
		return 0;
	/* drain the events; the refresh below finds what they were */
	while (read(store->dovecot->inotify_fd, buf, sizeof(buf)) > 0)
		;
	ret = sync_all(store, store->dovecot, true, changed, max, &n, err);
	return ret < 0 ? ret : (int)n;
}

int dbox_store_watch_fd(struct dbox_store *store)
{
	return store->dovecot != NULL ? store->dovecot->inotify_fd : -1;
}
