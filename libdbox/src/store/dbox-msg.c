/* dbox-msg.c - message rows: lookups, listing, flags, expunge, move, reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/dindex-msg.h"
#include "store/dbox-attach.h"
#include "store/dbox-decompress.h"
#include "store/mdbox-orig.h"
#include "store/store-private.h"

int dbox_msg_get(struct dbox_store *store, int64_t mailbox_id, uint32_t uid,
		 struct dbox_msg *msg_r, struct dbox_err *err)
{
	return dindex_msg_get(store->idx, mailbox_id, uid, msg_r, err);
}

int dbox_msg_lookup_base(struct dbox_store *store, int64_t mailbox_id,
			 const char *base, struct dbox_msg *msg_r,
			 struct dbox_err *err)
{
	return dindex_msg_by_base(store->idx, mailbox_id, base, msg_r, err);
}

int dbox_msg_lookup_name(struct dbox_store *store, int64_t mailbox_id,
			 bool in_new, const char *name, struct dbox_msg *msg_r,
			 struct dbox_err *err)
{
	return dindex_msg_by_name(store->idx, mailbox_id, in_new, name, msg_r,
				  err);
}

int dbox_msg_list(struct dbox_store *store, int64_t mailbox_id,
		  uint32_t after_uid, int in_new, unsigned int limit,
		  int (*cb)(void *ctx, const struct dbox_msg *msg), void *ctx,
		  struct dbox_err *err)
{
	return dindex_msgs_page(store->idx, mailbox_id, after_uid, in_new,
				limit, cb, ctx, err);
}

int dbox_msg_count(struct dbox_store *store, int64_t mailbox_id, int in_new,
		   uint64_t *count_r, struct dbox_err *err)
{
	return dindex_msg_count(store->idx, mailbox_id, in_new, count_r, err);
}

int dbox_msg_file_path(struct dbox_store *store, const struct dbox_msg *msg,
		       char *buf, size_t buflen)
{
	char name[DBOX_NAME_MAX * 4 + 1];
	int ret;

	if (msg->file_id != 0)
		return dbox_mdbox_path(store, msg->file_id, buf, buflen);
	ret = dbox_mailbox_name_of(store, msg->mailbox_id, name, sizeof(name),
				   NULL);
	if (ret < 0)
		return ret;
	return dbox_sdbox_path(store, name, msg->uid, buf, buflen);
}

int dbox_msg_insert(struct dbox_store *store, const struct dbox_msg *msg,
		    struct dbox_err *err)
{
	return dindex_msg_insert(store->idx, msg, err);
}

void dbox_msg_from_record(struct dbox_msg *msg, const struct dbox_record *rec)
{
	const struct dbox_meta *m = &rec->meta;

	msg->offset = rec->offset;
	msg->hdr_size = rec->hdr_size;
	msg->body_size = rec->body_size;
	msg->rec_size = rec->end - rec->offset;
	msg->compression = rec->compression;
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
	if (ret == 0)
		ret = dbox_mailbox_touch(store, mailbox_id, new_dir, cur_dir,
					 err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

/* A message's maildir name (base, flags, keywords, new/ or cur/) in one
 * statement: the index keeps names unique per directory, which a change
 * of one part at a time could break halfway. */
static int set_name(struct dbox_store *store, int64_t mailbox_id,
		    uint32_t uid, const char *base, uint32_t flags,
		    uint32_t keywords, enum dbox_maildir_dir dir,
		    struct dbox_err *err)
{
	if (base[0] == '\0' || strlen(base) > DBOX_NAME_MAX ||
	    strchr(base, '/') != NULL || !dbox_meta_value_valid(base))
		return dbox_fail(err, -EINVAL, "invalid maildir name");
	return dindex_msg_set_name(store->idx, mailbox_id, uid, base,
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
	if (ret == 0 && msg->file_id != 0)
		ret = dbox_purge_mark(store, msg->file_id, err);
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

	if (msg->file_id != 0)
		return 0;
	ret = dindex_sync(store->idx, err);
	if (ret < 0)
		return ret;
	dbox_fcache_drop(store, path);
	if (unlink(path) < 0 && errno != ENOENT)
		return dbox_fail(err, -errno, "unlink %s: %m", path);
	return 0;
}

/* dbox_msg_update in an open write transaction, which it ends. */
static int update_in_txn(struct dbox_store *store, int64_t mailbox_id,
			 uint32_t uid, uint32_t flags, uint32_t keywords,
			 enum dbox_maildir_dir dir, const char *base,
			 struct dbox_err *err)
{
	bool in_new = dir != DBOX_DIR_CUR;
	struct dbox_msg old;
	int ret = dbox_msg_get(store, mailbox_id, uid, &old, err);

	if (ret == 0)
		ret = set_name(store, mailbox_id, uid,
			       base != NULL ? base : old.base, flags, keywords,
			       dir, err);
	return end_update(store, ret, mailbox_id, old.in_new || in_new,
			  !old.in_new || !in_new, err);
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

int dbox_msg_move(struct dbox_store *store, int64_t mailbox_id, uint32_t uid,
		  int64_t dest_mailbox_id, uint32_t flags, uint32_t keywords,
		  enum dbox_maildir_dir dir, const char *new_base,
		  uint32_t *new_uid_r, struct dbox_err *err)
{
	bool in_new = dir != DBOX_DIR_CUR;
	char old_path[PATH_MAX] = "";
	struct dbox_msg msg, moved;
	int ret;

	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
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
		ret = delete_row(store, mailbox_id, uid, err);
	}
	if (ret == 0)
		ret = dbox_msg_insert(store, &moved, err);
	if (ret == 0)
		ret = dbox_mailbox_touch(store, mailbox_id, msg.in_new,
					 !msg.in_new, err);
	if (ret == 0)
		ret = dbox_mailbox_touch(store, dest_mailbox_id, in_new,
					 !in_new, err);
	if (ret == 0 && msg.file_id == 0)
		ret = move_sdbox_file(store, &msg, dest_mailbox_id, moved.uid,
				      old_path, err);
	/* mdbox: Dovecot's rebuild places the record by its B key */
	if (ret == 0 && msg.file_id != 0 && dest_mailbox_id != mailbox_id)
		ret = mdbox_orig_set(store, &msg, dest_mailbox_id, err);
	if (ret == -ENOSPC)
		ret = 0;  /* logged; the move itself stands */
	if (ret == 0)
		ret = dindex_write_commit(store->idx, err);
	else
		dindex_write_rollback(store->idx);
	dbox_journal_remove(store);
	if (ret == 0 && old_path[0] != '\0' &&
	    dindex_sync(store->idx, err) == 0) {
		struct dbox_err scratch;

		/* its attachments' old names: garbage at worst if this fails */
		dbox_attach_move(store, &msg, dest_mailbox_id, moved.uid, true,
				 &scratch);
		dbox_fcache_drop(store, old_path);
		unlink(old_path);
	}
	if (ret == 0 && new_uid_r != NULL)
		*new_uid_r = moved.uid;
	return ret;
}

/* The checks of a record's framing on what was read of it: the message
 * header (hdr_n bytes) and the 4 bytes after the body (post_n). */
static int check_framing(const char *path, const struct dbox_msg *m,
			 const unsigned char *hdr, size_t hdr_n,
			 const unsigned char *post, size_t post_n,
			 struct dbox_err *err)
{
	char reason[128];
	uint64_t size;

	if (hdr_n < m->hdr_size)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): EOF reading msg header", path,
				 (unsigned long long)m->offset);
	if (dbox_msg_hdr_parse(hdr, m->hdr_size, &size, reason,
			       sizeof(reason)) < 0)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): %s", path,
				 (unsigned long long)m->offset, reason);
	if (size != m->body_size)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): size %llu, index says %llu",
				 path, (unsigned long long)m->offset,
				 (unsigned long long)size,
				 (unsigned long long)m->body_size);
	if (post_n < DBOX_MAGIC_POST_LEN ||
	    memcmp(post, DBOX_MAGIC_POST, DBOX_MAGIC_POST_LEN) != 0)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): metadata header has bad magic "
				 "value", path, (unsigned long long)(m->offset +
				 m->hdr_size + m->body_size));
	return 0;
}

/* The metadata region of a record: from the post magic to the record's
 * end; its length per the index (0: the row does not say, only the post
 * magic is read). */
#define VERIFY_META_MAX (64u * 1024)

static size_t meta_len(const struct dbox_msg *m)
{
	uint64_t before = (uint64_t)m->hdr_size + m->body_size;

	if (m->rec_size < before + DBOX_MAGIC_POST_LEN)
		return DBOX_MAGIC_POST_LEN;
	if (m->rec_size - before > VERIFY_META_MAX)
		return VERIFY_META_MAX;
	return (size_t)(m->rec_size - before);
}

/* The record's GUID (metadata G) must be the index's: a file swapped with
 * another message's (same sizes, so the framing checks pass) must not be
 * served as this message.  meta: n bytes from the post magic on. */
static int check_guid(const char *path, const struct dbox_msg *m,
		      const unsigned char *meta, size_t n, struct dbox_err *err)
{
	struct dbox_meta md;
	size_t used;
	int ret;

	if (m->guid[0] == '\0' || n <= DBOX_MAGIC_POST_LEN)
		return 0;
	ret = dbox_meta_parse((const char *)meta + DBOX_MAGIC_POST_LEN,
			      n - DBOX_MAGIC_POST_LEN, &md, &used);
	if (ret == -EAGAIN && m->rec_size - m->hdr_size - m->body_size > n)
		return 0;  /* metadata longer than we read: not judged */
	if (ret < 0)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): metadata cannot be read", path,
				 (unsigned long long)m->offset);
	ret = md.guid == NULL || strcmp(md.guid, m->guid) != 0 ?
		dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around "
			  "offset=%llu): GUID %s, index says %s", path,
			  (unsigned long long)m->offset, md.guid != NULL ?
			  md.guid : "(none)", m->guid) : 0;
	dbox_meta_clear(&md);
	return ret;
}

int dbox_msg_verify(struct dbox_store *store, const struct dbox_msg *msg,
		    struct dbox_err *err)
{
	unsigned char hdr[4096], *meta;
	char path[PATH_MAX];
	struct dfs_file *file;
	size_t hdr_n = 0, meta_n = 0, mlen = meta_len(msg);
	int ret;

	if (msg->hdr_size < DBOX_MSG_HEADER_SIZE || msg->hdr_size > sizeof(hdr))
		return dbox_fail(err, -EBADMSG, "bad header size in index");
	ret = dbox_msg_file_path(store, msg, path, sizeof(path));
	if (ret < 0)
		return dbox_fail(err, ret, "message path");
	meta = malloc(mlen);
	if (meta == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	ret = dbox_fcache_get(store, path, &file);
	if (ret < 0) {
		free(meta);
		return dbox_fail(err, ret, "open %s", path);
	}
	ret = dfs_sync_pread(file, hdr, msg->hdr_size, (off_t)msg->offset,
			     &hdr_n);
	if (ret == 0)
		ret = dfs_sync_pread(file, meta, mlen, (off_t)(msg->offset +
			msg->hdr_size + msg->body_size), &meta_n);
	dbox_fcache_put(store, file);
	if (ret < 0)
		ret = dbox_fail(err, ret, "read %s: %s", path, strerror(-ret));
	if (ret == 0)
		ret = check_framing(path, msg, hdr, hdr_n, meta, meta_n, err);
	if (ret == 0)
		ret = check_guid(path, msg, meta, meta_n, err);
	free(meta);
	return ret;
}

ssize_t dbox_msg_read_cached(struct dbox_store *store,
			     const struct dbox_msg *msg, void *buf, size_t len,
			     uint64_t off)
{
	unsigned char hdr[256], *meta;
	size_t mlen = meta_len(msg);
	char path[PATH_MAX];
	uint64_t body_at = msg->offset + msg->hdr_size;
	int ret;

	if (!dbox_msg_is_plain(msg) || msg->hdr_size < DBOX_MSG_HEADER_SIZE ||
	    msg->hdr_size > sizeof(hdr) ||
	    dbox_msg_file_path(store, msg, path, sizeof(path)) < 0)
		return -ENOENT;
	if (off >= msg->body_size)
		return 0;
	if (len > msg->body_size - off)
		len = (size_t)(msg->body_size - off);
	meta = malloc(mlen);
	if (meta == NULL)
		return -ENOENT;
	ret = dbox_rcache_get(store, path, msg->offset, msg->hdr_size, hdr);
	if (ret == 0)
		ret = dbox_rcache_get(store, path, body_at + msg->body_size,
				      mlen, meta);
	if (ret == 0 &&
	    (check_framing(path, msg, hdr, msg->hdr_size, meta, mlen,
			   NULL) < 0 ||
	     check_guid(path, msg, meta, mlen, NULL) < 0)) {
		/* bytes a writer rolled back, or a file replaced: not what
		 * the index says is there; the disk decides */
		dbox_rcache_drop(store, path, false);
		ret = -ENOENT;
	}
	free(meta);
	if (ret == 0)
		ret = dbox_rcache_get(store, path, body_at + off, len, buf);
	return ret < 0 ? ret : (ssize_t)len;
}

static ssize_t msg_pread_once(struct dbox_store *store,
			      const struct dbox_msg *msg, void *buf,
			      size_t len, uint64_t off, struct dbox_err *err)
{
	char path[PATH_MAX];
	struct dfs_file *file;
	size_t n;
	int ret;

	if (msg->compression != DBOX_COMP_NONE) {
		ssize_t got = dbox_decompress_pread(store, msg, buf, len, off,
						    err);

		/* whole but short: Dovecot compresses what remains of a
		 * message whose attachments went to mail_attachment_dir */
		return got == -ERANGE ? dbox_attach_pread(store, msg, buf, len,
							  off, err) : got;
	}
	if (!dbox_msg_is_plain(msg))
		return dbox_attach_pread(store, msg, buf, len, off, err);
	if (off >= msg->body_size)
		return 0;
	if (len > msg->body_size - off)
		len = (size_t)(msg->body_size - off);
	ret = dbox_msg_file_path(store, msg, path, sizeof(path));
	if (ret < 0)
		return dbox_fail(err, ret, "message path");
	ret = dbox_fcache_get(store, path, &file);
	if (ret < 0)
		return dbox_fail(err, ret, "open %s", path);
	ret = dfs_sync_pread(file, buf, len,
			     (off_t)(msg->offset + msg->hdr_size + off), &n);
	dbox_fcache_put(store, file);
	if (ret < 0)
		return dbox_fail(err, ret, "read %s: %s", path, strerror(-ret));
	if (n < len)
		return dbox_fail(err, -EBADMSG, "Corrupted dbox file %s (around"
				 " offset=%llu): file ends inside the message",
				 path, (unsigned long long)msg->offset);
	return (ssize_t)n;
}

bool dbox_msg_is_plain(const struct dbox_msg *msg)
{
	/* a physical size beyond the stored body: the rest is in external
	 * attachments (or the record is corrupted; either way the body alone
	 * is not the message) */
	return msg->compression == DBOX_COMP_NONE &&
		msg->size == msg->body_size;
}

/* A purge may have moved the message to another file since the caller
 * read its row: then the old file is gone, and the index knows where the
 * message is now. */
static bool moved_by_purge(struct dbox_store *store, const struct dbox_msg *msg,
			   struct dbox_msg *now)
{
	return msg->file_id != 0 &&
		dbox_msg_get(store, msg->mailbox_id, msg->uid, now, NULL) == 0 &&
		(now->file_id != msg->file_id || now->offset != msg->offset);
}

ssize_t dbox_msg_pread(struct dbox_store *store, const struct dbox_msg *msg,
		       void *buf, size_t len, uint64_t off,
		       struct dbox_err *err)
{
	ssize_t ret = msg_pread_once(store, msg, buf, len, off, err);
	struct dbox_msg now;

	if (ret < 0 && moved_by_purge(store, msg, &now))
		ret = msg_pread_once(store, &now, buf, len, off, err);
	return ret;
}

struct async_read {
	struct dbox_store *store;
	struct dfs_file *file;
	dbox_read_cb *cb;
	void *ctx;
	size_t want;
	struct dbox_msg msg;
	void *buf;              /* NULL: fd_reader moves the bytes */
	dfs_fd_reader *fd_reader;
	void *fd_reader_arg;
	uint64_t off;
	bool retried;
	bool fd_reader_ran;     /* its bytes may be on their way: no retry */
	char path[PATH_MAX];
};

static void async_read_submit(struct async_read *ar);

static ssize_t fd_reader_trampoline(void *arg, int fd, size_t len, off_t off)
{
	struct async_read *ar = arg;

	ar->fd_reader_ran = true;
	return ar->fd_reader(ar->fd_reader_arg, fd, len, off);
}

static void async_read_done(void *ctx, const struct dfs_result *res)
{
	struct async_read *ar = ctx;
	struct dbox_err err = { "" };
	ssize_t ret = res->err < 0 ? res->err : res->n;
	struct dbox_msg now;

	if (res->err < 0 && !ar->retried && !ar->fd_reader_ran &&
	    moved_by_purge(ar->store, &ar->msg, &now)) {
		dbox_fcache_put(ar->store, ar->file);
		ar->msg = now;
		ar->retried = true;
		async_read_submit(ar);
		return;
	}
	if (res->err < 0)
		dbox_fail(&err, res->err, "read %s: %s", ar->path,
			  strerror(-res->err));
	else if (ar->buf != NULL && (size_t)res->n < ar->want)
		ret = dbox_fail(&err, -EBADMSG, "Corrupted dbox file %s: file "
				"ends inside a message", ar->path);
	dbox_fcache_put(ar->store, ar->file);
	ar->cb(ar->ctx, ret, &err);
	free(ar);
}

void dbox_msg_pread_async(struct dbox_store *store, const struct dbox_msg *msg,
			  void *buf, size_t len, uint64_t off,
			  dbox_read_cb *cb, void *ctx)
{
	struct dbox_err err = { "" };
	struct async_read *ar;
	ssize_t ret;

	if (!dbox_msg_is_plain(msg) || off >= msg->body_size) {
		/* decompression is CPU work on an in-memory stream; EOF
		 * needs no I/O at all; external attachments are read from
		 * several files */
		ret = dbox_msg_pread(store, msg, buf, len, off, &err);
		cb(ctx, ret, &err);
		return;
	}
	if (len > msg->body_size - off)
		len = (size_t)(msg->body_size - off);
	ar = calloc(1, sizeof(*ar));
	if (ar == NULL) {
		cb(ctx, -ENOMEM, &err);
		return;
	}
	ar->store = store;
	ar->cb = cb;
	ar->ctx = ctx;
	ar->want = len;
	ar->msg = *msg;
	ar->buf = buf;
	ar->off = off;
	async_read_submit(ar);
}

static void async_read_submit(struct async_read *ar)
{
	struct dbox_err err = { "" };
	const struct dbox_msg *msg = &ar->msg;

	if (dbox_msg_file_path(ar->store, msg, ar->path, sizeof(ar->path)) < 0 ||
	    dbox_fcache_get(ar->store, ar->path, &ar->file) < 0) {
		dbox_fail(&err, -ENAMETOOLONG, "path of message");
		ar->cb(ar->ctx, -ENAMETOOLONG, &err);
		free(ar);
		return;
	}
	if (ar->buf == NULL)
		dfs_read_fd(ar->file, ar->want, (off_t)(msg->offset +
			    msg->hdr_size + ar->off), fd_reader_trampoline, ar,
			    async_read_done, ar);
	else
		dfs_pread(ar->file, ar->buf, ar->want, (off_t)(msg->offset +
			  msg->hdr_size + ar->off), async_read_done, ar);
}

void dbox_msg_read_fd_async(struct dbox_store *store,
			    const struct dbox_msg *msg, size_t len,
			    uint64_t off,
			    ssize_t (*fn)(void *arg, int fd, size_t len,
					  off_t file_off),
			    void *arg, dbox_read_cb *cb, void *ctx)
{
	struct dbox_err err = { "" };
	struct async_read *ar;

	if (!dbox_msg_is_plain(msg)) {
		dbox_fail(&err, -EOPNOTSUPP, "compressed message or external "
			  "attachments");
		cb(ctx, -EOPNOTSUPP, &err);
		return;
	}
	if (off >= msg->body_size) {
		cb(ctx, 0, &err);
		return;
	}
	if (len > msg->body_size - off)
		len = (size_t)(msg->body_size - off);
	ar = calloc(1, sizeof(*ar));
	if (ar == NULL) {
		cb(ctx, -ENOMEM, &err);
		return;
	}
	*ar = (struct async_read){ .store = store, .cb = cb, .ctx = ctx,
				   .want = len, .msg = *msg, .fd_reader = fn,
				   .fd_reader_arg = arg, .off = off };
	async_read_submit(ar);
}

/* Async verification: one read covering the message header, and one of
 * the metadata (post magic and GUID); both are submitted at once and the
 * last completion decides. */
struct async_verify;

struct verify_part {
	struct async_verify *av;
	bool is_hdr;
};

struct async_verify {
	struct verify_part parts[2];
	struct dbox_store *store;
	struct dfs_file *file;
	dbox_verify_cb *cb;
	void *ctx;
	struct dbox_msg msg;
	char path[PATH_MAX];
	unsigned char hdr[256];
	unsigned char *meta;    /* into whole, or its own buffer */
	size_t meta_len;
	pthread_mutex_t lock;
	int pending;
	int err;
	size_t hdr_n, meta_n;
	/* a small message is read whole: one I/O checks both ends and
	 * leaves the body in the page cache for the reads that follow */
	unsigned char *whole;
	size_t whole_len, whole_n;
};

#define VERIFY_READAHEAD_MAX (128u * 1024)

static int verify_result(struct async_verify *av, struct dbox_err *err)
{
	int ret;

	if (av->err < 0)
		return dbox_fail(err, av->err, "read %s: %s", av->path,
				 strerror(-av->err));
	ret = check_framing(av->path, &av->msg, av->hdr, av->hdr_n, av->meta,
			    av->meta_n, err);
	return ret < 0 ? ret : check_guid(av->path, &av->msg, av->meta,
					  av->meta_n, err);
}

static void whole_done(struct async_verify *av, size_t n)
{
	size_t h = av->msg.hdr_size, before = h + av->msg.body_size;

	memcpy(av->hdr, av->whole, n < h ? n : h);
	av->hdr_n = n < h ? n : h;
	av->meta = av->whole + before;
	av->meta_n = n > before ? n - before : 0;
	/* the window goes on past the record: its neighbours' bytes */
	if (av->meta_n > av->meta_len)
		av->meta_n = av->meta_len;
	av->whole_n = n;
}

static void async_verify_done(void *ctx, const struct dfs_result *res)
{
	struct verify_part *part = ctx;
	struct async_verify *av = part->av;
	struct dbox_err err = { "" };
	bool last;
	int ret;

	pthread_mutex_lock(&av->lock);
	if (res->err < 0 && av->err == 0)
		av->err = res->err;
	else if (res->err == 0 && av->whole != NULL)
		whole_done(av, (size_t)res->n);
	else if (res->err == 0 && part->is_hdr)
		av->hdr_n = (size_t)res->n;
	else if (res->err == 0)
		av->meta_n = (size_t)res->n;
	last = --av->pending == 0;
	pthread_mutex_unlock(&av->lock);
	if (!last)
		return;
	ret = verify_result(av, &err);
	dbox_fcache_put(av->store, av->file);
	/* kept for the reads that follow, this message's and (mdbox) its
	 * neighbours' */
	if (ret == 0 && av->whole != NULL) {
		dbox_rcache_put(av->store, av->path, av->msg.offset, av->whole,
				av->whole_n);
		av->whole = NULL;
		av->meta = NULL;
	}
	av->cb(av->ctx, ret, &err);
	pthread_mutex_destroy(&av->lock);
	if (av->whole == NULL)
		free(av->meta);
	free(av->whole);
	free(av);
}

static void verify_fail(struct async_verify *av, int ret, const char *what,
			dbox_verify_cb *cb, void *ctx)
{
	struct dbox_err err = { "" };

	dbox_fail(&err, ret, "%s", what);
	free(av->meta);
	free(av);
	cb(ctx, ret, &err);
}

void dbox_msg_verify_async(struct dbox_store *store, const struct dbox_msg *msg,
			   dbox_verify_cb *cb, void *ctx)
{
	struct async_verify *av = calloc(1, sizeof(*av));
	struct dbox_err err = { "" };

	if (av == NULL) {
		cb(ctx, -ENOMEM, &err);
		return;
	}
	if (msg->hdr_size < DBOX_MSG_HEADER_SIZE ||
	    msg->hdr_size > sizeof(av->hdr)) {
		verify_fail(av, -EBADMSG, "bad header size in index", cb, ctx);
		return;
	}
	av->store = store;
	av->cb = cb;
	av->ctx = ctx;
	av->msg = *msg;
	av->meta_len = meta_len(msg);
	if (dbox_msg_file_path(store, msg, av->path, sizeof(av->path)) < 0 ||
	    dbox_fcache_get(store, av->path, &av->file) < 0) {
		verify_fail(av, -ENOENT, "no file for message", cb, ctx);
		return;
	}
	pthread_mutex_init(&av->lock, NULL);
	av->whole_len = msg->hdr_size + msg->body_size + av->meta_len;
	/* mdbox: the messages after it in m.N come along (dbox-rcache.c) */
	if (av->whole_len <= VERIFY_READAHEAD_MAX && msg->file_id != 0)
		av->whole_len = DBOX_RCACHE_WINDOW;
	if (av->whole_len <= DBOX_RCACHE_WINDOW &&
	    (av->whole = malloc(av->whole_len)) != NULL) {
		av->pending = 1;
		av->parts[0] = (struct verify_part){ av, true };
		dfs_pread(av->file, av->whole, av->whole_len, (off_t)msg->offset,
			  async_verify_done, &av->parts[0]);
		return;
	}
	av->meta = malloc(av->meta_len);
	if (av->meta == NULL) {
		dbox_fcache_put(store, av->file);
		pthread_mutex_destroy(&av->lock);
		verify_fail(av, -ENOMEM, "out of memory", cb, ctx);
		return;
	}
	av->pending = 2;
	av->parts[0] = (struct verify_part){ av, false };
	av->parts[1] = (struct verify_part){ av, true };
	dfs_pread(av->file, av->meta, av->meta_len, (off_t)(msg->offset +
		  msg->hdr_size + msg->body_size), async_verify_done,
		  &av->parts[0]);
	dfs_pread(av->file, av->hdr, msg->hdr_size, (off_t)msg->offset,
		  async_verify_done, &av->parts[1]);
}
