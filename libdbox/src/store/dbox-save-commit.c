/* dbox-save-commit.c - the commit of a save transaction: its files made
 * durable, uids assigned, the owner journal, sdbox files linked to
 * u.<uid>, the index rows in one write; and the undo of a commit that
 * failed, the rollback, the transaction freed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbox/save.h"
#include "index/dindex-msg.h"
#include "index/dindex-unconfirmed.h"
#include "store/dbox-save-private.h"
#include "store/mdbox-file.h"
#include "store/store-private.h"

/* ------------------------------------------------------------- commit */

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int pending;
	int err;
};

static void sync_done(void *ctx, const struct dfs_result *res)
{
	struct sync_wait *w = ctx;

	pthread_mutex_lock(&w->lock);
	if (res->err < 0 && w->err == 0)
		w->err = res->err;
	if (--w->pending == 0)
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void sync_submit(struct sync_wait *w, struct dfs_file *f)
{
	pthread_mutex_lock(&w->lock);
	w->pending++;
	pthread_mutex_unlock(&w->lock);
	dfs_fsync(f, sync_done, w);
}

/* The one file of the window that needs a sync (NULL: none, or more). */
static struct dfs_file *sole_unsynced(struct dbox_save_txn *txn, bool apps)
{
	struct dfs_file *one = NULL;
	unsigned int n = 0;

	for (struct mdbox_append *a = txn->apps; apps && a != NULL;
	     a = a->next) {
		/* a closed file was synced when it was closed */
		if (a->synced_end != a->end && a->file != NULL) {
			one = a->file;
			n++;
		}
	}
	for (unsigned int i = txn->spilled; i < txn->count; i++) {
		struct save_msg *m = dbox_save_msg_at(txn, i);

		if (m->app == NULL && !m->synced && m->file != NULL) {
			one = m->file;
			n++;
		}
	}
	return n == 1 ? one : NULL;
}

/* fdatasync every file of the window (and of the m.N appends if apps) at
 * once: the fs layer runs them in parallel, so N files cost about one
 * flush, not N in a row.  Files made durable before are not synced again.
 * A single file (a delivery, nearly always) has nothing to run beside:
 * its sync is a blocking call, run on this thread where the fs lets it
 * (dfs_settings.sync_inline), not handed to a worker and waited for. */
int dbox_save_sync_files(struct dbox_save_txn *txn, bool apps,
			 struct dbox_err *err)
{
	struct sync_wait w = { PTHREAD_MUTEX_INITIALIZER,
			       PTHREAD_COND_INITIALIZER, 1, 0 };
	struct dfs_file *one = sole_unsynced(txn, apps);

	if (one != NULL) {
		w.err = dfs_sync_fsync(one);
	} else {
		for (struct mdbox_append *a = txn->apps; apps && a != NULL;
		     a = a->next) {
			if (a->synced_end != a->end && a->file != NULL)
				sync_submit(&w, a->file);
		}
		for (unsigned int i = txn->spilled; i < txn->count; i++) {
			struct save_msg *m = dbox_save_msg_at(txn, i);

			if (m->app == NULL && !m->synced && m->file != NULL)
				sync_submit(&w, m->file);
		}
	}
	pthread_mutex_lock(&w.lock);
	w.pending--;
	while (w.pending > 0)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	if (w.err < 0)
		return dbox_fail(err, w.err, "fsync: %s", strerror(-w.err));
	for (struct mdbox_append *a = txn->apps; apps && a != NULL;
	     a = a->next)
		a->synced_end = a->end;
	for (unsigned int i = txn->spilled; i < txn->count; i++)
		dbox_save_msg_at(txn, i)->synced = true;
	return 0;
}

int dbox_save_sync(struct dbox_save_txn *txn, struct dbox_err *err)
{
	int ret = dbox_save_settle(txn, err);

	return ret < 0 ? ret : dbox_save_sync_files(txn, true, err);
}

/* One uid range per mailbox, in the order messages were added. */
static int assign_uids(struct dbox_save_txn *txn, struct dbox_err *err)
{
	for (unsigned int i = 0; i < txn->box_count; i++) {
		struct save_box *b = &txn->boxes[i];
		int ret;

		if (b->count == 0)
			continue;
		if (b->preset != 0 && b->count > 1)
			return dbox_fail(err, -EINVAL, "uid %u given to %u "
					 "messages", b->preset, b->count);
		b->first = b->preset;
		ret = b->preset != 0 ? 0 :
			dbox_mailbox_alloc_uids(txn->store, b->id, b->count,
						&b->first, err);
		if (ret < 0)
			return ret;
		b->next = b->first;
	}
	return 0;
}

static int prepare_expunges(struct dbox_save_txn *txn, struct dbox_err *err)
{
	for (unsigned int i = 0; i < txn->expunge_count; i++) {
		struct save_expunge *e = &txn->expunges[i];
		struct dbox_msg msg;
		int ret = dbox_msg_get(txn->store, e->mailbox_id, e->uid, &msg,
				       err);

		if (ret < 0)
			return ret;
		e->file_id = dbox_msg_where(&msg)->file_id;
		e->in_new = msg.in_new;
		if (dbox_msg_where(&msg)->file_id == 0)
			dbox_msg_file_path(txn->store, &msg, e->path,
					   sizeof(e->path));
	}
	return 0;
}

struct journal_pos {
	struct dbox_save_txn *txn;
	unsigned int box, expunge;
	uint32_t uid;
};

static bool journal_next(void *ctx, int64_t *box_r, uint32_t *uid_r)
{
	struct journal_pos *p = ctx;
	struct dbox_save_txn *txn = p->txn;

	while (p->box < txn->box_count) {
		struct save_box *b = &txn->boxes[p->box];

		if (p->uid < b->count) {
			*box_r = b->id;
			*uid_r = b->first + p->uid++;
			return true;
		}
		p->box++;
		p->uid = 0;
	}
	for (; p->expunge < txn->expunge_count; p->expunge++) {
		struct save_expunge *e = &txn->expunges[p->expunge];

		if (e->file_id != 0)
			continue;
		*box_r = e->mailbox_id;
		*uid_r = e->uid;
		p->expunge++;
		return true;
	}
	return false;
}

/* The owner journal names every u.N this commit creates or removes, so
 * that recovery can finish or undo it: a u.N in the journal whose row is
 * not in the index must not exist.  New uids are ranges per mailbox. */
static int write_journal(struct dbox_save_txn *txn, struct dbox_err *err)
{
	struct journal_pos p = { txn, 0, 0, 0 };

	return dbox_journal_write_each(txn->store, journal_next, &p, err);
}

/* State of the commit's pass over the messages (sdbox: the directory of
 * the last link, fsynced when the pass leaves it). */
struct commit_pass {
	uint32_t *uids_r;
	/* deferred: bytes not synced before the index; rows whose record
	 * is not known durable are marked unconfirmed instead (and sdbox
	 * links are not synced) */
	bool deferred;
	int64_t now;
	int64_t box_id;
	char box_name[DBOX_NAME_MAX * 4 + 1];
	char dir_of[PATH_MAX];    /* a path in the directory to fsync */
	unsigned int done;        /* messages linked (sdbox) */
};

static int fsync_pending_dir(struct commit_pass *c, struct dbox_err *err)
{
	int ret;

	if (c->dir_of[0] == '\0' || c->deferred)
		return 0;
	ret = dbox_fsync_parent(c->dir_of);
	if (ret < 0)
		return dbox_fail(err, ret, "fsync dir of %s: %s", c->dir_of,
				 strerror(-ret));
	c->dir_of[0] = '\0';
	return 0;
}

static int final_path(struct dbox_save_txn *txn, struct commit_pass *c,
		      const struct save_msg *m, char *path, size_t size,
		      struct dbox_err *err)
{
	int ret = 0;

	if (c->box_id != m->mailbox_id) {
		ret = dbox_mailbox_name_of(txn->store, m->mailbox_id,
					   c->box_name, sizeof(c->box_name),
					   err);
		if (ret < 0)
			return ret;
		c->box_id = m->mailbox_id;
	}
	return dbox_sdbox_path(txn->store, c->box_name, m->uid, path, size);
}

static int sdbox_link(struct dbox_save_txn *txn, struct commit_pass *c,
		      const struct save_msg *m, struct dbox_err *err)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int64_t box = c->box_id;
	int ret = final_path(txn, c, m, path, sizeof(path), err);

	if (ret == 0 && box != c->box_id)
		ret = fsync_pending_dir(c, err);
	if (ret == 0 &&
	    dbox_save_tmp_path(txn, m->tmp_seq, tmp, sizeof(tmp)) < 0)
		ret = dbox_fail(err, -ENAMETOOLONG, "path too long");
	if (ret < 0)
		return ret;
	/* link, not rename: an existing u.N (a foreign file) must make the
	 * commit fail instead of being replaced */
	if (link(tmp, path) < 0)
		return dbox_fail(err, -errno, "link %s: %m", path);
	c->done++;
	unlink(tmp);
	snprintf(c->dir_of, sizeof(c->dir_of), "%s", path);
	return 0;
}

static int insert_row(struct dbox_save_txn *txn, const struct save_msg *m,
		      int64_t now, struct dbox_err *err)
{
	struct dbox_msg msg = { 0 };
	int ret;

	msg.mailbox_id = m->mailbox_id;
	msg.uid = m->uid;
	snprintf(msg.guid, sizeof(msg.guid), "%s", m->guid);
	dbox_msg_where(&msg)->file_id = m->file_id;
	dbox_msg_where(&msg)->offset = m->offset;
	dbox_msg_where(&msg)->hdr_size = DBOX_MSG_HEADER_SIZE;
	dbox_msg_where(&msg)->body_size = m->vs.size;
	dbox_msg_where(&msg)->rec_size = m->end - m->offset;
	msg.size = m->vs.size;
	msg.vsize = m->vs.vsize;
	msg.received = m->received;
	msg.received_ns = m->received_ns;
	msg.saved = now;
	msg.flags = m->flags;
	msg.keywords = m->keywords;
	msg.in_new = m->in_new;
	msg.new_info = m->new_info;
	msg.mode = m->mode;
	if (m->has_base)
		snprintf(msg.base, sizeof(msg.base), "%s", m->base);
	else
		dbox_msg_derive_base(&msg, msg.base, sizeof(msg.base));
	ret = dbox_msg_insert(txn->store, &msg, err);
	if (ret == 0)
		ret = dbox_dovecot_back_saved(txn->store, &msg);
	if (ret == 0 && !m->keep_dir_mtime)
		ret = dbox_mailbox_touch(txn->store, m->mailbox_id, m->in_new,
					 !m->in_new, err);
	return ret;
}

/* Known durable: an m.N synced beyond the record (a delivery prepared
 * at the fsync of its file, or a file closed when full).  An sdbox
 * file's link is made by this commit, whose directory is not synced. */
static bool record_durable(const struct dbox_save_txn *txn,
			   const struct save_msg *m)
{
	if (dbox_save_is_sdbox(txn))
		return false;
	return m->app == NULL || m->app->synced_end >= m->end;
}

static int commit_msg(struct dbox_save_txn *txn, struct save_msg *m,
		      unsigned int i, void *ctx, struct dbox_err *err)
{
	struct commit_pass *c = ctx;
	struct save_box *b = dbox_save_box_find(txn, m->mailbox_id,
						m->preset_uid);
	int ret = 0;

	if (b == NULL || b->next - b->first >= b->count)
		return dbox_fail(err, -EIO, "save: message count mismatch");
	m->uid = b->next++;
	if (c->uids_r != NULL)
		c->uids_r[i] = m->uid;
	if (dbox_save_is_sdbox(txn))
		ret = sdbox_link(txn, c, m, err);
	if (ret == 0)
		ret = insert_row(txn, m, c->now, err);
	if (ret == 0 && c->deferred && !record_durable(txn, m))
		ret = dindex_unconfirmed_add(txn->store->idx, m->mailbox_id,
					     m->uid, err);
	return ret;
}

static int delete_expunged(struct dbox_save_txn *txn, struct dbox_err *err)
{
	for (unsigned int i = 0; i < txn->expunge_count; i++) {
		struct save_expunge *e = &txn->expunges[i];
		struct dbox_msg gone = { .mailbox_id = e->mailbox_id,
					 .uid = e->uid };
		int ret = dindex_msg_delete(txn->store->idx, e->mailbox_id,
					    e->uid, err);

		if (ret == 0)
			ret = dbox_dovecot_back_expunge(txn->store, &gone);
		if (ret == 0 && e->file_id != 0)
			ret = dbox_purge_mark(txn->store, e->file_id, err);
		if (ret == 0)
			ret = dbox_mailbox_touch(txn->store, e->mailbox_id,
						 e->in_new, !e->in_new, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int commit_index(struct dbox_save_txn *txn, struct commit_pass *c,
			struct dbox_err *err)
{
	struct dbox_store *store = txn->store;
	bool sdbox = dbox_save_is_sdbox(txn);
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	ret = assign_uids(txn, err);
	if (ret == 0)
		ret = prepare_expunges(txn, err);
	if (ret == 0 && sdbox)
		ret = write_journal(txn, err);
	for (struct mdbox_append *a = txn->apps; ret == 0 && a != NULL;
	     a = a->next)
		ret = mdbox_append_record(store, a, err);
	/* the replaced messages go first: a new one may take the name of
	 * one it replaces (rename(2) onto a message), which the index
	 * holds once per mailbox */
	if (ret == 0)
		ret = delete_expunged(txn, err);
	if (ret == 0)
		ret = dbox_save_each_msg(txn, txn->count, commit_msg, c, err);
	if (ret == 0)
		ret = fsync_pending_dir(c, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

/* A failed sdbox commit: the u.N linked so far go again (same uids, the
 * pass replayed). */
static int unlink_msg(struct dbox_save_txn *txn, struct save_msg *m,
		      unsigned int i, void *ctx, struct dbox_err *err)
{
	struct commit_pass *c = ctx;
	struct save_box *b = dbox_save_box_find(txn, m->mailbox_id,
						m->preset_uid);
	char path[PATH_MAX];

	(void)i;
	m->uid = b->next++;
	if (final_path(txn, c, m, path, sizeof(path), err) == 0)
		unlink(path);
	return 0;
}

static void undo_links(struct dbox_save_txn *txn, struct commit_pass *c)
{
	struct dbox_err err;

	for (unsigned int i = 0; i < txn->box_count; i++)
		txn->boxes[i].next = txn->boxes[i].first;
	c->box_id = 0;
	dbox_save_each_msg(txn, c->done, unlink_msg, c, &err);
}

/* Only once the commit that dropped their rows is durable: a power cut
 * must not leave a row whose file is gone. */
static void remove_expunged_files(struct dbox_save_txn *txn)
{
	struct dbox_err err;

	if (txn->expunge_count > 0 && dindex_sync(txn->store->idx, &err) < 0) {
		dbox_log(DBOX_LOG_WARNING, "expunged files kept: %s", err.msg);
		return;
	}
	for (unsigned int i = 0; i < txn->expunge_count; i++) {
		if (txn->expunges[i].file_id != 0)
			continue;
		dbox_fcache_drop(txn->store, txn->expunges[i].path);
		unlink(txn->expunges[i].path);
	}
}

static int unlink_tmp(struct dbox_save_txn *txn, struct save_msg *m,
		      unsigned int i, void *ctx, struct dbox_err *err)
{
	char path[PATH_MAX];

	(void)i;
	(void)ctx;
	(void)err;
	if (dbox_save_tmp_path(txn, m->tmp_seq, path, sizeof(path)) == 0)
		unlink(path);
	return 0;
}

void dbox_save_txn_free(struct dbox_save_txn *txn, bool rollback)
{
	struct dbox_err err;

	dbox_save_wait_idle(txn);
	if (rollback && dbox_save_is_sdbox(txn))
		dbox_save_each_msg(txn, txn->count, unlink_tmp, NULL, &err);
	for (unsigned int i = txn->spilled; i < txn->count; i++) {
		struct save_msg *m = dbox_save_msg_at(txn, i);

		free(m->stage);
		if (m->app == NULL && m->file != NULL)
			dfs_sync_close(m->file);
	}
	while (txn->apps != NULL) {
		struct mdbox_append *a = txn->apps;

		txn->apps = a->next;
		mdbox_append_release(txn->store, a, rollback);
	}
	if (txn->spool != NULL)
		fclose(txn->spool);
	pthread_mutex_destroy(&txn->lock);
	pthread_cond_destroy(&txn->idle);
	free(txn->msgs);
	free(txn->boxes);
	free(txn->expunges);
	free(txn);
}

int dbox_save_commit(struct dbox_save_txn *txn, uint32_t *uids_r,
		     struct dbox_err *err)
{
	struct commit_pass c = { .uids_r = uids_r, .now = dbox_now() };
	int ret = dbox_save_settle(txn, err);

	/* a transaction small enough to have every message in memory may
	 * leave its bytes to the flush (the deliveries of a mount); not one
	 * that replaces messages: undone after a power cut, it would have
	 * removed them */
	c.deferred = txn->store->deferred && txn->spilled == 0 &&
		txn->expunge_count == 0;
	if (ret == 0 && !c.deferred)
		ret = dbox_save_sync_files(txn, true, err);
	if (ret == 0)
		ret = commit_index(txn, &c, err);
	if (ret == 0 && c.deferred)
		atomic_store(&txn->store->unconfirmed, true);
	if (dbox_save_is_sdbox(txn)) {
		if (ret < 0)
			undo_links(txn, &c);
		dbox_journal_remove(txn->store);
	}
	if (ret == 0)
		remove_expunged_files(txn);
	dbox_save_txn_free(txn, ret < 0);
	return ret;
}

void dbox_save_rollback(struct dbox_save_txn *txn)
{
	dbox_save_txn_free(txn, true);
}
