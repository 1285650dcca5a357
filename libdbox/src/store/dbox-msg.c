/* dbox-msg.c - message rows: lookups, listing, flags, expunge, move, reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "dbox/save.h"
#include "index/dindex-msg.h"
#include "index/dindex-unconfirmed.h"
#include "store/dbox-attach.h"
#include "store/dbox-decompress.h"
#include "store/mdbox-orig.h"
#include "store/store-private.h"

/* A row the read-only view does not show (dbox_unconfirmed_hide) is no
 * such message. */
static int shown(struct dbox_store *store, int ret, const struct dbox_msg *m,
		 struct dbox_err *err)
{
	if (ret == 0 && m != NULL &&
	    dbox_unconfirmed_hidden(store, m->mailbox_id, m->uid))
		return dbox_fail(err, -ENOENT, "no such message");
	return ret;
}

int dbox_msg_get(struct dbox_store *store, int64_t mailbox_id, uint32_t uid,
		 struct dbox_msg *msg_r, struct dbox_err *err)
{
	if (dbox_unconfirmed_hidden(store, mailbox_id, uid))
		return dbox_fail(err, -ENOENT, "no such message");
	return dindex_msg_get(store->idx, mailbox_id, uid, msg_r, err);
}

int dbox_msg_lookup_base(struct dbox_store *store, int64_t mailbox_id,
			 const char *base, struct dbox_msg *msg_r,
			 struct dbox_err *err)
{
	struct dbox_msg m;
	int ret = dindex_msg_by_base(store->idx, mailbox_id, base, &m, err);

	ret = shown(store, ret, &m, err);
	if (ret == 0 && msg_r != NULL)
		*msg_r = m;
	return ret;
}

int dbox_msg_lookup_name(struct dbox_store *store, int64_t mailbox_id,
			 bool in_new, const char *name, struct dbox_msg *msg_r,
			 struct dbox_err *err)
{
	struct dbox_msg m;
	int ret = dindex_msg_by_name(store->idx, mailbox_id, in_new, name,
				     &m, err);

	ret = shown(store, ret, &m, err);
	if (ret == 0 && msg_r != NULL)
		*msg_r = m;
	return ret;
}

struct list_shown {
	struct dbox_store *store;
	int (*cb)(void *ctx, const struct dbox_msg *msg);
	void *ctx;
	uint32_t last_uid;   /* of the rows met, shown or not */
	int passed, stop;
};

static int list_shown_row(void *ctx, const struct dbox_msg *msg)
{
	struct list_shown *l = ctx;

	l->last_uid = msg->uid;
	if (dbox_unconfirmed_hidden(l->store, msg->mailbox_id, msg->uid))
		return 0;
	l->passed++;
	l->stop = l->cb(l->ctx, msg);
	return l->stop;
}

/* A page of `limit` shown rows: the hidden ones do not count, so that
 * a caller paging on "a full page: maybe more" neither stops early nor
 * meets a page of hidden rows only. */
static int list_hiding(struct dbox_store *store, int64_t mailbox_id,
		       uint32_t after_uid, int in_new, unsigned int limit,
		       int (*cb)(void *ctx, const struct dbox_msg *msg),
		       void *ctx, struct dbox_err *err)
{
	struct list_shown l = { store, cb, ctx, after_uid, 0, 0 };
	unsigned int want;
	int got;

	do {
		want = limit == 0 ? 0 : limit - (unsigned int)l.passed;
		got = dindex_msgs_page(store->idx, mailbox_id, l.last_uid,
				       in_new, want, list_shown_row, &l, err);
		if (got < 0)
			return got;
	} while (limit != 0 && !l.stop && got == (int)want &&
		 l.passed < (int)limit);
	return l.passed;
}

int dbox_msg_list(struct dbox_store *store, int64_t mailbox_id,
		  uint32_t after_uid, int in_new, unsigned int limit,
		  int (*cb)(void *ctx, const struct dbox_msg *msg), void *ctx,
		  struct dbox_err *err)
{
	if (store->nhidden > 0)
		return list_hiding(store, mailbox_id, after_uid, in_new, limit,
				   cb, ctx, err);
	return dindex_msgs_page(store->idx, mailbox_id, after_uid, in_new,
				limit, cb, ctx, err);
}

int dbox_msg_count(struct dbox_store *store, int64_t mailbox_id, int in_new,
		   uint64_t *count_r, struct dbox_err *err)
{
	int ret = dindex_msg_count(store->idx, mailbox_id, in_new, count_r,
				   err);

	if (ret == 0 && store->nhidden > 0)
		*count_r -= dbox_unconfirmed_hidden_count(store, mailbox_id,
							  in_new);
	return ret;
}

int dbox_msg_file_path(struct dbox_store *store, const struct dbox_msg *msg,
		       char *buf, size_t buflen)
{
	char name[DBOX_NAME_MAX * 4 + 1];
	int ret;

	if (dbox_msg_where(msg)->file_id != 0)
		return dbox_mdbox_path(store, dbox_msg_where(msg)->file_id,
				       buf, buflen);
	ret = dbox_mailbox_name_of(store, msg->mailbox_id, name, sizeof(name),
				   NULL);
	if (ret < 0)
		return ret;
	return dbox_sdbox_path(store, name, msg->uid, buf, buflen);
}

uint64_t dbox_msg_file_offset(const struct dbox_msg *msg)
{
	return dbox_msg_where(msg)->offset;
}

uint32_t dbox_msg_file_id(const struct dbox_msg *msg)
{
	return dbox_msg_where(msg)->file_id;
}

int dbox_msg_insert(struct dbox_store *store, const struct dbox_msg *msg,
		    struct dbox_err *err)
{
	return dindex_msg_insert(store->idx, msg, err);
}

void dbox_msg_from_record(struct dbox_msg *msg, const struct dbox_record *rec)
{
	const struct dbox_meta *m = &rec->meta;

	dbox_msg_where(msg)->offset = rec->offset;
	dbox_msg_where(msg)->hdr_size = rec->hdr_size;
	dbox_msg_where(msg)->body_size = rec->body_size;
	dbox_msg_where(msg)->rec_size = rec->end - rec->offset;
	dbox_msg_where(msg)->compression = rec->compression;
	msg->size = m->has_psize ? m->psize : rec->body_size;
	msg->vsize = m->has_vsize ? m->vsize : msg->size;
	msg->received = m->has_received ? m->received : 0;
	snprintf(msg->guid, sizeof(msg->guid), "%s",
		 m->guid != NULL ? m->guid : "");
}

static void sanitize_copy(char *dst, size_t dlen, const char *src)
{
	size_t o = 0;

	for (const char *p = src; *p != '\0' && o + 1 < dlen; p++) {
		if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z'))
			dst[o++] = *p;
	}
	dst[o] = '\0';
}

void dbox_msg_derive_base(const struct dbox_msg *msg, char *buf, size_t len)
{
	char guid[9];

	sanitize_copy(guid, sizeof(guid), msg->guid);
	snprintf(buf, len, "%lld.M%uG%s.dboxfs,S=%llu,W=%llu",
		 (long long)msg->received, msg->uid, guid,
		 (unsigned long long)msg->size,
		 (unsigned long long)msg->vsize);
}

/* The end of a write transaction that changed one message's row (ret:
 * how that went). */
static int end_update(struct dbox_store *store, int ret, int64_t mailbox_id,
		      bool new_dir, bool cur_dir, struct dbox_err *err)
{
	struct dbox_mailbox box;

	if (ret == 0)
		ret = dbox_mailbox_touch(store, mailbox_id, new_dir, cur_dir,
					 err);
	if (ret == 0) {
		/* read after its last change: the commit leaves the row
		 * remembered (dindex.c) for the GETATTR of cur/ that comes
		 * after each flag rename */
		(void)dbox_mailbox_get(store, mailbox_id, &box, NULL);
		return dindex_write_commit(store->idx, err);
	}
	dindex_write_rollback(store->idx);
	return ret;
}

/* A message's maildir name (base, flags, keywords, new/ or cur/) in one
 * statement: the index keeps names unique per directory, which a change
 * of one part at a time could break halfway. */
static int set_name(struct dbox_store *store, const struct dbox_msg *old,
		    const char *base, uint32_t flags, uint32_t keywords,
		    enum dbox_maildir_dir dir, struct dbox_err *err)
{
	if (base[0] == '\0' || strlen(base) > DBOX_NAME_MAX ||
	    strchr(base, '/') != NULL || !dbox_meta_value_valid(base))
		return dbox_fail(err, -EINVAL, "invalid maildir name");
	/* a flag change keeps the base: not set again (its index entry
	 * would be rewritten, one page more in the commit) */
	return dindex_msg_set_name(store->idx, old->mailbox_id, old->uid,
				   strcmp(base, old->base) != 0 ? base : NULL,
				   flags & DBOX_FLAGS_MASK, keywords,
				   dir != DBOX_DIR_CUR, dir == DBOX_DIR_NEW_INFO,
				   err);
}

static int delete_row(struct dbox_store *store, int64_t mailbox_id,
		      uint32_t uid, struct dbox_err *err);

/* The rows of an expunge, inside the caller's write transaction; path
 * gets the sdbox file to unlink once committed. */
static int expunge_rows(struct dbox_store *store, int64_t mailbox_id,
			uint32_t uid, struct dbox_msg *msg, char *path,
			struct dbox_err *err)
{
	int ret = dbox_msg_get(store, mailbox_id, uid, msg, err);

	if (ret == 0)
		ret = dbox_msg_file_path(store, msg, path, PATH_MAX);
	if (ret == 0)
		ret = delete_row(store, mailbox_id, uid, err);
	if (ret == 0)
		ret = dbox_dovecot_back_expunge(store, msg);
	if (ret == 0 && dbox_msg_where(msg)->file_id != 0)
		ret = dbox_purge_mark(store, dbox_msg_where(msg)->file_id, err);
	if (ret == 0)
		ret = dbox_mailbox_touch(store, mailbox_id, msg->in_new,
					 !msg->in_new, err);
	return ret;
}

/* as Dovecot: the index commit is the expunge; the sdbox file goes
 * afterwards, once that commit is durable (a crash in between leaves an
 * orphan, never a hole, also across a power cut) */
static int expunge_file(struct dbox_store *store, const struct dbox_msg *msg,
			const char *path, struct dbox_err *err)
{
	int ret;

	if (dbox_msg_where(msg)->file_id != 0)
		return 0;
	ret = dindex_sync(store->idx, err);
	if (ret < 0)
		return ret;
	dbox_fcache_drop(store, path);
	if (unlink(path) < 0 && errno != ENOENT)
		return dbox_fail(err, -errno, "unlink %s: %m", path);
	return 0;
}

/* The update of old (found in the open write transaction unless ret <
 * 0) to its new name and flags; ends the transaction. */
static int finish_update(struct dbox_store *store, int ret,
			 struct dbox_msg *old, int64_t mailbox_id,
			 uint32_t flags, uint32_t keywords,
			 enum dbox_maildir_dir dir, const char *base,
			 struct dbox_err *err)
{
	bool in_new = dir != DBOX_DIR_CUR;

	if (ret == 0)
		ret = set_name(store, old, base != NULL ? base : old->base,
			       flags, keywords, dir, err);
	if (ret == 0)
		ret = dbox_dovecot_back_flags(store, old, flags, keywords);
	return end_update(store, ret, mailbox_id, old->in_new || in_new,
			  !old->in_new || !in_new, err);
}

/* dbox_msg_update in an open write transaction, which it ends. */
static int update_in_txn(struct dbox_store *store, int64_t mailbox_id,
			 uint32_t uid, uint32_t flags, uint32_t keywords,
			 enum dbox_maildir_dir dir, const char *base,
			 struct dbox_err *err)
{
	struct dbox_msg old = { .in_new = false };
	int ret = dbox_msg_get(store, mailbox_id, uid, &old, err);

	return finish_update(store, ret, &old, mailbox_id, flags, keywords,
			     dir, base, err);
}

int dbox_msg_update(struct dbox_store *store, int64_t mailbox_id,
		    uint32_t uid, uint32_t flags, uint32_t keywords,
		    enum dbox_maildir_dir dir, const char *base,
		    struct dbox_err *err)
{
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	return update_in_txn(store, mailbox_id, uid, flags, keywords, dir,
			     base, err);
}

int dbox_msg_update_named(struct dbox_store *store, int64_t mailbox_id,
			  bool from_new, const char *name,
			  bool (*is_it)(void *ctx, const struct dbox_msg *m),
			  void *ctx, uint32_t flags, uint32_t keywords,
			  enum dbox_maildir_dir dir, const char *base,
			  struct dbox_msg *msg_r, struct dbox_err *err)
{
	struct dbox_msg old = { .in_new = from_new };
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	/* found under the write lock: the row is the one updated, with no
	 * read transaction of its own and no second read by uid */
	ret = dbox_msg_lookup_name(store, mailbox_id, from_new, name, &old,
				   err);
	if (ret == 0 && is_it != NULL && !is_it(ctx, &old))
		ret = dbox_fail(err, -ENOENT, "no such message");
	if (ret == 0)
		*msg_r = old;
	return finish_update(store, ret, &old, mailbox_id, flags, keywords,
			     dir, base, err);
}

int dbox_msg_replace(struct dbox_store *store, int64_t mailbox_id,
		     uint32_t uid, uint32_t replaced_uid, uint32_t flags,
		     uint32_t keywords, enum dbox_maildir_dir dir,
		     const char *base, struct dbox_err *err)
{
	char path[PATH_MAX];
	struct dbox_msg gone;
	int ret;

	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	/* undone after a power cut, it would have removed the other */
	ret = dbox_msg_sync_record(store, mailbox_id, uid, err);
	if (ret == 0)
		ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	ret = expunge_rows(store, mailbox_id, replaced_uid, &gone, path, err);
	if (ret < 0) {
		dindex_write_rollback(store->idx);
		return ret;
	}
	ret = update_in_txn(store, mailbox_id, uid, flags, keywords, dir,
			    base, err);
	return ret < 0 ? ret : expunge_file(store, &gone, path, err);
}

int dbox_msg_sync_record(struct dbox_store *store, int64_t mailbox_id,
			 uint32_t uid, struct dbox_err *err)
{
	if (store->readonly)
		return 0;
	return dbox_unconfirmed_sync_one(store, mailbox_id, uid, err);
}

int dbox_msg_set_flags(struct dbox_store *store, int64_t mailbox_id,
		       uint32_t uid, uint32_t flags, uint32_t keywords,
		       enum dbox_maildir_dir dir, struct dbox_err *err)
{
	return dbox_msg_update(store, mailbox_id, uid, flags, keywords, dir,
			       NULL, err);
}

int dbox_msg_set_mode(struct dbox_store *store, int64_t mailbox_id,
		      uint32_t uid, uint32_t mode, struct dbox_err *err)
{
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return -EIO;
	ret = dindex_msg_set_mode(store->idx, mailbox_id, uid, mode, err);
	/* attribute change only: directory listings are unchanged */
	return end_update(store, ret, mailbox_id, false, false, err);
}

int dbox_msg_set_received(struct dbox_store *store, int64_t mailbox_id,
			  uint32_t uid, int64_t received, int64_t received_ns,
			  struct dbox_err *err)
{
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return -EIO;
	ret = dindex_msg_set_received(store->idx, mailbox_id, uid, received,
				      received_ns, err);
	/* attribute change only: directory listings are unchanged */
	return end_update(store, ret, mailbox_id, false, false, err);
}

static int delete_row(struct dbox_store *store, int64_t mailbox_id,
		      uint32_t uid, struct dbox_err *err)
{
	return dindex_msg_delete(store->idx, mailbox_id, uid, err);
}

/* What a maildir name says of a message goes from `from` to `to`. */
static void take_name(struct dbox_msg *to, const struct dbox_msg *from)
{
	memcpy(to->base, from->base, sizeof(to->base));
	to->flags = from->flags;
	to->keywords = from->keywords;
	to->in_new = from->in_new;
	to->new_info = from->new_info;
}

int dbox_msg_exchange(struct dbox_store *store, int64_t mailbox_id,
		      uint32_t uid1, uint32_t uid2, struct dbox_err *err)
{
	struct dbox_msg a = { 0 }, b = { 0 }, a2, b2;
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	ret = dbox_msg_get(store, mailbox_id, uid1, &a, err);
	if (ret == 0)
		ret = dbox_msg_get(store, mailbox_id, uid2, &b, err);
	a2 = a;
	b2 = b;
	take_name(&a2, &b);
	take_name(&b2, &a);
	/* both rows go before either comes back: names are unique */
	if (ret == 0 && uid1 != uid2)
		ret = delete_row(store, mailbox_id, uid1, err);
	if (ret == 0 && uid1 != uid2)
		ret = delete_row(store, mailbox_id, uid2, err);
	if (ret == 0 && uid1 != uid2)
		ret = dbox_msg_insert(store, &a2, err);
	if (ret == 0 && uid1 != uid2)
		ret = dbox_msg_insert(store, &b2, err);
	if (ret == 0 && uid1 != uid2)
		ret = dbox_dovecot_back_flags(store, &a, a2.flags, a2.keywords);
	if (ret == 0 && uid1 != uid2)
		ret = dbox_dovecot_back_flags(store, &b, b2.flags, b2.keywords);
	if (ret == 0)
		ret = dbox_mailbox_touch(store, mailbox_id,
					 a.in_new || b.in_new,
					 !a.in_new || !b.in_new, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

int dbox_msg_expunge(struct dbox_store *store, int64_t mailbox_id,
		     uint32_t uid, struct dbox_err *err)
{
	char path[PATH_MAX];
	struct dbox_msg msg;
	int ret;

	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	ret = expunge_rows(store, mailbox_id, uid, &msg, path, err);
	if (ret == 0)
		ret = dindex_write_commit(store->idx, err);
	else
		dindex_write_rollback(store->idx);
	return ret < 0 ? ret : expunge_file(store, &msg, path, err);
}

/* sdbox: the message gets a second name in the destination mailbox
 * (Dovecot copies the same way: dbox-format.md 4.4). */
static int move_sdbox_file(struct dbox_store *store, const struct dbox_msg *m,
			   int64_t dest, uint32_t new_uid, char *old_path,
			   struct dbox_err *err)
{
	char name[DBOX_NAME_MAX * 4 + 1], new_path[PATH_MAX];
	int ret = dbox_msg_file_path(store, m, old_path, PATH_MAX);

	if (ret == 0)
		ret = dbox_mailbox_name_of(store, dest, name, sizeof(name), err);
	if (ret == 0)
		ret = dbox_sdbox_path(store, name, new_uid, new_path,
				      sizeof(new_path));
	if (ret < 0)
		return dbox_fail(err, ret, "path of message");
	ret = dbox_journal_write(store, &dest, &new_uid, 1, err);
	if (ret < 0)
		return ret;
	ret = dbox_attach_move(store, m, dest, new_uid, false, err);
	if (ret < 0)
		return ret;
	if (link(old_path, new_path) < 0)
		return dbox_fail(err, -errno, "link %s: %m", new_path);
	ret = dbox_fsync_parent(new_path);
	if (ret < 0)
		return dbox_fail(err, ret, "fsync %s: %s", new_path,
				 strerror(-ret));
	return 0;
}

/* The bytes a reader gets of msg, into a new anonymous file (at 0). */
static int whole_copy(struct dbox_store *store, const struct dbox_msg *msg,
		      int *fd_r, struct dbox_err *err)
{
	char buf[65536];
	uint64_t off = 0;
	int fd = memfd_create("dbox-move", MFD_CLOEXEC);

	if (fd < 0)
		return dbox_fail(err, -errno, "memfd_create: %m");
	while (off < msg->size) {
		ssize_t n = dbox_msg_pread(store, msg, buf, sizeof(buf), off,
					   err);

		if (n == 0)
			n = dbox_fail(err, -EIO, "uid %u: short read", msg->uid);
		if (n > 0 && write(fd, buf, (size_t)n) != n)
			n = dbox_fail(err, -errno, "memfd write: %m");
		if (n < 0) {
			close(fd);
			return (int)n;
		}
		off += (uint64_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return dbox_fail(err, -errno, "memfd seek: %m");
	}
	*fd_r = fd;
	return 0;
}

/* A move that could not give the message's attachment files names its
 * destination's reader would find (dbox_attach_move: -EXDEV) writes it
 * whole there instead, its parts inline, under its GUID and received
 * time, and expunges it from its mailbox: one save transaction, which
 * (it expunges) syncs the new record before its commit, so it needs no
 * unconfirmed mark (its source, a record Dovecot wrote, had none). */
static int move_whole(struct dbox_store *store, const struct dbox_msg *msg,
		      int64_t dest, uint32_t flags, uint32_t keywords,
		      enum dbox_maildir_dir dir, const char *new_base,
		      uint32_t *new_uid_r, struct dbox_err *err)
{
	struct dbox_save_opts o = {
		.mailbox_id = dest,
		.received = msg->received,
		.received_ns = msg->received_ns,
		.guid = msg->guid[0] != '\0' ? msg->guid : NULL,
		.base = new_base != NULL ? new_base : msg->base,
		.flags = flags & DBOX_FLAGS_MASK,
		.keywords = keywords,
		.in_new = dir != DBOX_DIR_CUR,
		.new_info = dir == DBOX_DIR_NEW_INFO,
		.mode = msg->mode,
		.size_hint = msg->size,
	};
	struct dbox_save_txn *txn = NULL;
	uint32_t uid = 0;
	int fd, ret = whole_copy(store, msg, &fd, err);

	if (ret < 0)
		return ret;
	ret = dbox_save_begin(store, &txn, err);
	if (ret == 0)
		ret = dbox_save_add_fd(txn, fd, &o, err);
	if (ret == 0)
		ret = dbox_save_expunge(txn, msg->mailbox_id, msg->uid, err);
	if (ret == 0)
		ret = dbox_save_commit(txn, &uid, err);
	else if (txn != NULL)
		dbox_save_rollback(txn);
	close(fd);
	if (ret == 0 && new_uid_r != NULL)
		*new_uid_r = uid;
	return ret;
}

int dbox_msg_move(struct dbox_store *store, int64_t mailbox_id, uint32_t uid,
		  int64_t dest_mailbox_id, uint32_t flags, uint32_t keywords,
		  enum dbox_maildir_dir dir, const char *new_base,
		  uint32_t *new_uid_r, struct dbox_err *err)
{
	bool in_new = dir != DBOX_DIR_CUR, carried = false;
	char old_path[PATH_MAX] = "";
	struct dbox_msg msg, moved;
	int ret;

	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	/* a record not durable yet is made so first: the source's mark
	 * stays after the move (dindex_unconfirmed_move), telling the
	 * mount that the spool file kept for it is this message's, so a
	 * cut must not take the moved message's record */
	ret = dbox_unconfirmed_sync_one(store, mailbox_id, uid, err);
	if (ret < 0)
		return ret;
	ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	ret = dbox_msg_get(store, mailbox_id, uid, &msg, err);
	moved = msg;
	if (ret == 0)
		ret = dbox_mailbox_alloc_uids(store, dest_mailbox_id, 1,
					      &moved.uid, err);
	if (ret == 0) {
		moved.mailbox_id = dest_mailbox_id;
		moved.flags = flags & DBOX_FLAGS_MASK;
		moved.keywords = keywords;
		moved.in_new = in_new;
		moved.new_info = dir == DBOX_DIR_NEW_INFO;
		if (new_base != NULL)
			snprintf(moved.base, sizeof(moved.base), "%s", new_base);
		/* a record not yet durable stays checked after a cut; before
		 * the delete, whose mark for a kept copy (dindex_set_kept)
		 * the moved message does not need */
		ret = dindex_unconfirmed_move(store->idx, mailbox_id, uid,
					      dest_mailbox_id, moved.uid,
					      &carried, err);
	}
	if (ret == 0)
		ret = delete_row(store, mailbox_id, uid, err);
	if (ret == 0)
		ret = dbox_msg_insert(store, &moved, err);
	if (ret == 0)
		ret = dbox_mailbox_touch(store, mailbox_id, msg.in_new,
					 !msg.in_new, err);
	if (ret == 0)
		ret = dbox_mailbox_touch(store, dest_mailbox_id, in_new,
					 !in_new, err);
	if (ret == 0 && dbox_msg_where(&msg)->file_id == 0)
		ret = move_sdbox_file(store, &msg, dest_mailbox_id, moved.uid,
				      old_path, err);
	/* mdbox: Dovecot's rebuild places the record by its B key */
	if (ret == 0 && dbox_msg_where(&msg)->file_id != 0 &&
	    dest_mailbox_id != mailbox_id)
		ret = mdbox_orig_set(store, &msg, dest_mailbox_id, err);
	if (ret == -ENOSPC)
		ret = 0;  /* logged; the move itself stands */
	if (ret == 0)
		ret = dbox_dovecot_back_move(store, &msg, &moved);
	if (ret == 0)
		ret = dindex_write_commit(store->idx, err);
	else
		dindex_write_rollback(store->idx);
	dbox_journal_remove(store);
	if (ret == -EXDEV) {
		err->msg[0] = '\0';
		return move_whole(store, &msg, dest_mailbox_id, flags,
				  keywords, dir, new_base, new_uid_r, err);
	}
	if (ret == 0 && old_path[0] != '\0' &&
	    dindex_sync(store->idx, err) == 0) {
		struct dbox_err scratch;

		/* its attachments' old names: garbage at worst if this fails */
		dbox_attach_move(store, &msg, dest_mailbox_id, moved.uid, true,
				 &scratch);
		dbox_fcache_drop(store, old_path);
		unlink(old_path);
	}
	if (ret == 0 && carried)
		atomic_store(&store->unconfirmed, true);   /* its flush */
	if (ret == 0 && new_uid_r != NULL)
		*new_uid_r = moved.uid;
	return ret;
}

