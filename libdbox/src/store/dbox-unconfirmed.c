/* dbox-unconfirmed.c - rows committed before their record was durable:
 * the group flush that confirms them, and their check after a power cut
 * (store-private.h, index/dindex-unconfirmed.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "index/dindex-file.h"
#include "index/dindex-msg.h"
#include "index/dindex-unconfirmed.h"
#include "store/store-private.h"

struct mark {
	int64_t box;
	uint32_t uid;
};

struct marks {
	struct mark *v;
	size_t n, cap;
};

static int collect(void *ctx, int64_t box, uint32_t uid)
{
	struct marks *mk = ctx;

	if (mk->n == mk->cap) {
		size_t cap = mk->cap == 0 ? 64 : mk->cap * 2;
		struct mark *v = realloc(mk->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		mk->v = v;
		mk->cap = cap;
	}
	mk->v[mk->n++] = (struct mark){ box, uid };
	return 0;
}

/* The marks up to the newest at this moment, or to upto if that is
 * older (*max_r, 0: none). */
static int load(struct dbox_store *store, int64_t upto, int64_t *max_r,
		struct marks *mk, struct dbox_err *err)
{
	int ret = dindex_unconfirmed_max(store->idx, max_r, err);

	if (ret == 0 && *max_r > upto)
		*max_r = upto;
	if (ret < 0 || *max_r <= 0)
		return ret;
	ret = dindex_unconfirmed_each(store->idx, *max_r, collect, mk, err);
	if (ret == -ENOMEM)
		return dbox_fail(err, ret, "out of memory");
	return ret;
}

/* The record's file made durable, and for sdbox its name (the link to
 * u.N is made at the commit).  Consecutive records of one m.N sync it
 * once. */
static int sync_record(struct dbox_store *store, const struct dbox_msg *m,
		       uint32_t *last_file, struct dbox_err *err)
{
	char path[PATH_MAX];
	struct dfs_file *f;
	int ret;

	if (dbox_msg_where(m)->file_id != 0 && dbox_msg_where(m)->file_id == *last_file)
		return 0;
	ret = dbox_msg_file_path(store, m, path, sizeof(path));
	if (ret < 0)
		return dbox_fail(err, ret, "message path");
	ret = dbox_fcache_get(store, path, &f);
	if (ret == -ENOENT)
		return 0;   /* expunged and removed since */
	if (ret < 0)
		return dbox_fail(err, ret, "open %s: %s", path,
				 strerror(-ret));
	ret = dfs_sync_fsync(f);
	dbox_fcache_put(store, f);
	if (ret == 0 && dbox_msg_where(m)->file_id == 0)
		ret = dbox_fsync_parent(path);
	if (ret < 0)
		return dbox_fail(err, ret, "fsync %s: %s", path,
				 strerror(-ret));
	*last_file = dbox_msg_where(m)->file_id;
	return 0;
}

/* Deletes the marks up to max in a write of their own. */
static int confirm(struct dbox_store *store, int64_t max,
		   struct dbox_err *err)
{
	int ret = dindex_write_begin_unseen(store->idx, err);

	if (ret < 0)
		return ret;
	ret = dindex_unconfirmed_confirm(store->idx, max, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

int dbox_unconfirmed_flush(struct dbox_store *store, int64_t upto,
			   struct dbox_err *err)
{
	struct marks mk = { 0 };
	uint32_t last_file = 0;
	int64_t max = 0;
	int ret;

	if (store->readonly || !atomic_exchange(&store->unconfirmed, false))
		return 0;
	ret = load(store, upto, &max, &mk, err);
	/* the marks after upto wait for the next flush */
	if (max == upto)
		atomic_store(&store->unconfirmed, true);
	for (size_t i = 0; ret == 0 && i < mk.n; i++) {
		struct dbox_msg m;

		ret = dindex_msg_get(store->idx, mk.v[i].box, mk.v[i].uid, &m,
				     err);
		if (ret == -ENOENT) {
			ret = 0;   /* expunged since */
			continue;
		}
		if (ret == 0)
			ret = sync_record(store, &m, &last_file, err);
	}
	free(mk.v);
	if (ret == 0 && max > 0)
		ret = confirm(store, max, err);
	if (ret < 0)
		atomic_store(&store->unconfirmed, true);   /* next flush */
	return ret;
}

int dbox_unconfirmed_sync_one(struct dbox_store *store, int64_t mailbox_id,
			      uint32_t uid, struct dbox_err *err)
{
	struct dbox_msg m;
	uint32_t last_file = 0;
	int ret = dindex_unconfirmed_has(store->idx, mailbox_id, uid, err);

	if (ret <= 0)
		return ret;
	ret = dindex_msg_get(store->idx, mailbox_id, uid, &m, err);
	if (ret == -ENOENT)
		return 0;   /* expunged since */
	if (ret < 0)
		return ret;
	/* its mark stays: the next flush deletes it */
	return sync_record(store, &m, &last_file, err);
}

int dbox_store_unconfirmed_seq(struct dbox_store *store, int64_t *seq_r,
			       struct dbox_err *err)
{
	*seq_r = 0;
	return store->readonly ? 0 :
		dindex_unconfirmed_max(store->idx, seq_r, err);
}

int dbox_store_unconfirmed_removed(struct dbox_store *store, int64_t box,
				   uint32_t uid)
{
	struct dbox_err err = { "" };

	return dindex_unconfirmed_gone(store->idx, box, uid, &err) == 1;
}

void dbox_store_set_kept(struct dbox_store *store, dbox_store_kept_fn fn,
			 void *ctx)
{
	if (!store->readonly)
		dindex_set_kept(store->idx, fn, ctx);
}

void dbox_store_set_renumbered(struct dbox_store *store,
			       dbox_store_renumbered_fn fn, void *ctx)
{
	if (!store->readonly) {
		store->renumbered = fn;
		store->renumbered_ctx = ctx;
	}
}

int dbox_store_unconfirmed_forget(struct dbox_store *store, int64_t box,
				  uint32_t uid, struct dbox_err *err)
{
	int ret;

	if (store->readonly)
		return 0;
	ret = dindex_write_begin_unseen(store->idx, err);
	if (ret < 0)
		return ret;
	ret = dindex_unconfirmed_forget(store->idx, box, uid, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

/* ------------------------------------------------------ after a cut */

/* The m.N of a dropped row takes no appends any more; one the cut took
 * whole (created within the commit interval), with no row left in it,
 * goes from the files table too (else its row stays for ever: purge
 * and check meet no file). */
static int seal_or_forget(struct dbox_store *store, const struct dbox_msg *m,
			  struct dbox_err *err)
{
	uint32_t id = dbox_msg_where(m)->file_id;
	char path[PATH_MAX];
	struct stat st;

	if (dbox_mdbox_path(store, id, path, sizeof(path)) >= 0 &&
	    stat(path, &st) < 0 && errno == ENOENT &&
	    !dindex_file_referenced(store->idx, id))
		return dindex_file_delete(store->idx, id, err);
	return dindex_file_seal(store->idx, id, err);
}

/* A marked row whose record did not survive: gone, as if its commit had
 * not happened (the spool file it came from is still kept: the mount
 * puts it back into tmp/).  Its m.N is sealed: its committed end may now
 * lie beyond the bytes it has. */
static int drop_row(struct dbox_store *store, const struct dbox_msg *m,
		    struct dbox_err *err)
{
	int ret = dindex_msg_delete(store->idx, m->mailbox_id, m->uid, err);

	/* its mark goes with it: one left with its message gone would say
	 * "expunged since", and the mount would drop the spool file */
	if (ret == 0)
		ret = dindex_unconfirmed_forget(store->idx, m->mailbox_id,
						m->uid, err);
	if (ret == 0 && dbox_msg_where(m)->file_id != 0)
		ret = seal_or_forget(store, m, err);
	if (ret == 0)
		ret = dbox_mailbox_touch(store, m->mailbox_id, m->in_new,
					 !m->in_new, err);
	return ret;
}

/* The row of a mark and whether its record is intact: 1 intact, 0 not
 * (verr says why), -ENOENT the row is gone, else an error. */
static int mark_verdict(struct dbox_store *store, const struct mark *k,
			struct dbox_msg *m, struct dbox_err *verr,
			struct dbox_err *err)
{
	int ret = dindex_msg_get(store->idx, k->box, k->uid, m, err);

	if (ret < 0)
		return ret;
	ret = dbox_msg_verify(store, m, verr);
	if (ret == -ENOMEM)
		return dbox_fail(err, ret, "out of memory");
	return ret == 0 ? 1 : 0;
}

/* Sorts the marked rows into intact (made durable now) and not (their
 * rows dropped, inside the caller's write); bad: the sdbox files to
 * remove once that write is durable. */
static int check_marks(struct dbox_store *store, const struct marks *mk,
		       struct marks *bad, struct dbox_err *err)
{
	uint32_t last_file = 0;
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < mk->n; i++) {
		struct dbox_err verr = { "" };
		struct dbox_msg m;
		int intact = mark_verdict(store, &mk->v[i], &m, &verr, err);

		if (intact == -ENOENT)
			continue;
		if (intact < 0)
			return intact;
		if (intact) {
			ret = sync_record(store, &m, &last_file, err);
			continue;
		}
		dbox_log(DBOX_LOG_WARNING, "message %u of mailbox %lld: its "
			 "record was not durable at a power cut (%s): its "
			 "delivery is undone", m.uid, (long long)m.mailbox_id,
			 verr.msg);
		ret = drop_row(store, &m, err);
		if (ret == 0 && dbox_msg_where(&m)->file_id == 0)
			ret = collect(bad, m.mailbox_id, m.uid);
	}
	return ret;
}

static void remove_files(struct dbox_store *store, const struct marks *bad)
{
	for (size_t i = 0; i < bad->n; i++) {
		struct dbox_msg m = { .mailbox_id = bad->v[i].box,
				      .uid = bad->v[i].uid };
		char path[PATH_MAX];

		if (dbox_msg_file_path(store, &m, path, sizeof(path)) < 0)
			continue;
		dbox_fcache_drop(store, path);
		unlink(path);
	}
}

int dbox_unconfirmed_recover(struct dbox_store *store, struct dbox_err *err)
{
	struct marks mk = { 0 }, bad = { 0 };
	int64_t max = 0;
	/* nearly always none: no write lock taken for nothing */
	int ret = dindex_unconfirmed_max(store->idx, &max, err);

	if (ret < 0 || max == 0)
		return ret;
	ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	ret = load(store, INT64_MAX, &max, &mk, err);
	if (ret == 0 && max > 0)
		ret = check_marks(store, &mk, &bad, err);
	if (ret == 0 && max > 0)
		ret = dindex_unconfirmed_confirm(store->idx, max, err);
	if (ret == 0 && max > 0)
		ret = dindex_write_commit(store->idx, err);
	else
		dindex_write_rollback(store->idx);
	/* the rows go before their files: a cut in between leaves no row
	 * without its file */
	if (ret == 0 && max > 0)
		ret = dindex_sync(store->idx, err);
	if (ret == 0)
		remove_files(store, &bad);
	free(mk.v);
	free(bad.v);
	return ret;
}

/* ------------------------------------------------- read-only: hidden */

static int cmp_hidden(const void *a, const void *b)
{
	const struct dbox_hidden_row *x = a, *y = b;

	if (x->box != y->box)
		return x->box < y->box ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int add_hidden(struct dbox_store *store, const struct dbox_msg *m)
{
	size_t n = store->nhidden + 1;
	struct dbox_hidden_row *v = realloc(store->hidden, n * sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	store->hidden = v;
	v[store->nhidden++] = (struct dbox_hidden_row){ m->mailbox_id, m->uid,
							m->in_new };
	return 0;
}

/* check_marks' verdict, without its writes: a row whose record is not
 * intact is one recover drops */
static int hide_marks(struct dbox_store *store, const struct marks *mk,
		      struct dbox_err *err)
{
	for (size_t i = 0; i < mk->n; i++) {
		struct dbox_err verr = { "" };
		struct dbox_msg m;
		int intact = mark_verdict(store, &mk->v[i], &m, &verr, err);

		if (intact == -ENOENT || intact == 1)
			continue;
		if (intact < 0)
			return intact;
		dbox_log(DBOX_LOG_WARNING, "message %u of mailbox %lld: its "
			 "record was not durable at a power cut (%s): not "
			 "shown (the next read-write open undoes its delivery)",
			 m.uid, (long long)m.mailbox_id, verr.msg);
		if (add_hidden(store, &m) < 0)
			return dbox_fail(err, -ENOMEM, "out of memory");
	}
	return 0;
}

int dbox_unconfirmed_hide(struct dbox_store *store, struct dbox_err *err)
{
	struct marks mk = { 0 };
	int64_t max = 0;
	int ret = load(store, INT64_MAX, &max, &mk, err);

	if (ret == 0 && max > 0)
		ret = hide_marks(store, &mk, err);
	free(mk.v);
	if (ret == 0 && store->nhidden > 1)
		qsort(store->hidden, store->nhidden, sizeof(*store->hidden),
		      cmp_hidden);
	return ret;
}

bool dbox_unconfirmed_hidden(const struct dbox_store *store, int64_t box,
			     uint32_t uid)
{
	struct dbox_hidden_row key = { box, uid, false };

	return store->nhidden > 0 &&
		bsearch(&key, store->hidden, store->nhidden,
			sizeof(key), cmp_hidden) != NULL;
}

uint64_t dbox_unconfirmed_hidden_count(const struct dbox_store *store,
				       int64_t box, int in_new)
{
	uint64_t n = 0;

	for (size_t i = 0; i < store->nhidden; i++) {
		const struct dbox_hidden_row *h = &store->hidden[i];

		if (h->box == box && (in_new < 0 || h->in_new == (in_new > 0)))
			n++;
	}
	return n;
}

bool dbox_store_kept_name(const char *s, int64_t *box_r, uint32_t *uid_r,
			  const char **name_r)
{
	char *end;
	long long box = strtoll(s, &end, 10);
	unsigned long uid;

	if (end == s || *end != '.' || box <= 0)
		return false;
	s = end + 1;
	uid = strtoul(s, &end, 10);
	if (end == s || *end != '.' || uid == 0 || uid > UINT32_MAX ||
	    end[1] == '\0')
		return false;
	*box_r = box;
	*uid_r = (uint32_t)uid;
	*name_r = end + 1;
	return true;
}
