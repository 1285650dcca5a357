/* dbox-reindex.c - rebuild the index from the dbox files (force-resync).
 *
 * Everything is done in one index transaction: readers see the old index
 * until the new one is complete.  What the files cannot tell (flags,
 * keywords, maildir names, which mailbox a moved mdbox message is in, uids
 * of mdbox messages) is taken from the old index for every message found
 * at the same place with the same GUID; mailboxes keep their ids, so inode
 * numbers on a mount stay the same.  Messages new to the index go where
 * Dovecot's rebuild would put them: sdbox by file, mdbox to the mailbox
 * named by B (INBOX without one), with new uids. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/dbox-scan.h"
#include "store/store-private.h"

struct reindex_ctx {
	struct dbox_store *store;
	struct dbox_err *err;
	int count;
	int problems;
	uint32_t broken_file;   /* the mdbox file just scanned was damaged */
};

static void reindex_problem(void *ctx, const char *path, uint64_t offset,
			    const char *what)
{
	struct reindex_ctx *rc = ctx;

	rc->problems++;
	dbox_log(DBOX_LOG_WARNING, "reindex: %s (offset %llu): %s", path,
		 (unsigned long long)offset, what);
}

static int ensure_mailbox(struct reindex_ctx *rc, const char *name,
			  struct dbox_mailbox *box_r)
{
	char guid[33];
	uint32_t uidv;
	int ret = dbox_mailbox_lookup(rc->store, name, box_r, NULL);

	if (ret != -ENOENT)
		return ret;
	if (!dbox_mailbox_name_valid(name)) {
		dbox_log(DBOX_LOG_WARNING, "reindex: skipping mailbox with an "
			 "unusable name: %s", name);
		return -EINVAL;
	}
	dbox_guid_generate(guid);
	uidv = rc->store->readonly ? (uint32_t)dbox_now() :
		dbox_uidvalidity_next(rc->store->root);
	return dbox_mailbox_insert(rc->store, name, guid, uidv, 1, box_r,
				   rc->err);
}

/* Old rows are moved aside into a temp table at the start; a found record
 * takes over the old state of the row(s) at the same place. */
static int take_old(struct reindex_ctx *rc, const struct dbox_msg *found,
		    int64_t sdbox_box, int *taken_r)
{
	sqlite3 *db = dindex_db(rc->store->idx, rc->err);
	sqlite3_stmt *st;
	int rcode, ret = 0;

	*taken_r = 0;
	rcode = sqlite3_prepare_v2(db, found->file_id != 0 ?
		"SELECT mailbox_id, uid, base, flags, keywords, in_new, "
		"received_ns, saved, new_info, mode FROM old_messages WHERE "
		"file_id = ?1 AND offset = ?2 AND guid = ?3" :
		"SELECT mailbox_id, uid, base, flags, keywords, in_new, "
		"received_ns, saved, new_info, mode FROM old_messages WHERE "
		"file_id = 0 AND mailbox_id = ?4 AND uid = ?5 AND guid = ?3",
		-1, &st, NULL);
	if (rcode != SQLITE_OK)
		return dindex_error(rc->store->idx, rcode, "reindex", rc->err);
	sqlite3_bind_int64(st, 1, found->file_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)found->offset);
	sqlite3_bind_text(st, 3, found->guid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, sdbox_box);
	sqlite3_bind_int64(st, 5, found->uid);
	while (ret == 0 && (rcode = sqlite3_step(st)) == SQLITE_ROW) {
		struct dbox_msg m = *found;

		m.mailbox_id = sqlite3_column_int64(st, 0);
		m.uid = (uint32_t)sqlite3_column_int64(st, 1);
		snprintf(m.base, sizeof(m.base), "%s",
			 (const char *)sqlite3_column_text(st, 2));
		m.flags = (uint32_t)sqlite3_column_int64(st, 3);
		m.keywords = (uint32_t)sqlite3_column_int64(st, 4);
		m.in_new = sqlite3_column_int(st, 5) != 0;
		m.received_ns = sqlite3_column_int64(st, 6);
		m.saved = sqlite3_column_int64(st, 7);
		m.new_info = sqlite3_column_int(st, 8) != 0;
		m.mode = (uint32_t)sqlite3_column_int64(st, 9);
		ret = dbox_msg_insert(rc->store, &m, NULL);
		if (ret == -EEXIST) {
			/* its name was taken by a message found earlier */
			dbox_msg_derive_base(&m, m.base, sizeof(m.base));
			ret = dbox_msg_insert(rc->store, &m, rc->err);
		}
		(*taken_r)++;
	}
	sqlite3_finalize(st);
	if (ret == 0 && rcode != SQLITE_DONE)
		ret = dindex_error(rc->store->idx, rcode, "reindex", rc->err);
	return ret;
}

static int raise_next_uid(struct reindex_ctx *rc, int64_t box, uint32_t uid)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "UPDATE mailboxes SET next_uid = %u WHERE "
		 "id = %lld AND next_uid <= %u", uid + 1, (long long)box, uid);
	return dindex_exec(rc->store->idx, sql, rc->err);
}

static int new_message(struct reindex_ctx *rc, struct dbox_msg *m,
		       const char *mailbox, const struct dbox_record *rec)
{
	char name[PATH_MAX];
	struct dbox_mailbox box;
	int ret;

	if (mailbox == NULL) {
		/* mdbox: B names the mailbox (storage name) */
		if (rec->meta.orig_mailbox == NULL ||
		    dbox_storage_to_name(rec->meta.orig_mailbox, name,
					 sizeof(name)) < 0 ||
		    !dbox_mailbox_name_valid(name))
			snprintf(name, sizeof(name), "INBOX");
		mailbox = name;
	}
	ret = ensure_mailbox(rc, mailbox, &box);
	if (ret == -EINVAL)
		ret = ensure_mailbox(rc, "INBOX", &box);
	if (ret < 0)
		return ret;
	m->mailbox_id = box.id;
	if (m->uid == 0) {
		ret = dbox_mailbox_alloc_uids(rc->store, box.id, 1, &m->uid,
					      rc->err);
		if (ret < 0)
			return ret;
	}
	m->saved = dbox_now();
	m->in_new = false;
	if (rec->meta.maildir_base != NULL && rec->meta.maildir_base[0] &&
	    strchr(rec->meta.maildir_base, '/') == NULL &&
	    dbox_msg_lookup_base(rc->store, box.id, rec->meta.maildir_base,
				 NULL, NULL) == -ENOENT)
		snprintf(m->base, sizeof(m->base), "%s", rec->meta.maildir_base);
	else
		dbox_msg_derive_base(m, m->base, sizeof(m->base));
	ret = dbox_msg_insert(rc->store, m, rc->err);
	if (ret == 0 && m->file_id == 0)
		ret = raise_next_uid(rc, box.id, m->uid);
	return ret;
}

static int reindex_record(void *ctx, const char *mailbox, uint32_t file_id,
			  uint32_t uid, const struct dbox_record *rec)
{
	struct reindex_ctx *rc = ctx;
	struct dbox_mailbox box;
	struct dbox_msg m = { 0 };
	int taken, ret;

	if (rec->meta.guid == NULL) {
		reindex_problem(rc, mailbox ? mailbox : "storage", rec->offset,
				"record without GUID");
	}
	dbox_msg_from_record(&m, rec);
	m.file_id = file_id;
	m.uid = uid;
	box.id = 0;
	if (mailbox != NULL && (ret = ensure_mailbox(rc, mailbox, &box)) < 0)
		return ret == -EINVAL ? 0 : ret;
	ret = take_old(rc, &m, box.id, &taken);
	if (ret == 0 && taken == 0)
		ret = new_message(rc, &m, mailbox, rec);
	if (ret == 0)
		rc->count++;
	return ret;
}

/* What lies beyond damage cannot be found by walking the file, but the
 * old index knew where its messages were: keep those rows, so the damage
 * costs only the damaged message (reads of it fail, the rest still read).
 * Nothing is dropped that a later repair could still recover. */
static int reindex_broken(void *ctx, const char *mailbox, uint32_t file_id,
			  uint32_t uid, uint64_t offset)
{
	struct reindex_ctx *rc = ctx;
	struct dbox_mailbox box;
	char sql[256];
	int ret;

	if (file_id != 0) {
		rc->broken_file = file_id;
		snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO messages "
			 "SELECT * FROM temp.old_messages WHERE file_id = %u "
			 "AND offset >= %llu", file_id,
			 (unsigned long long)offset);
	} else {
		ret = ensure_mailbox(rc, mailbox, &box);
		if (ret < 0)
			return ret == -EINVAL ? 0 : ret;
		snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO messages "
			 "SELECT * FROM temp.old_messages WHERE file_id = 0 AND"
			 " mailbox_id = %lld AND uid = %u", (long long)box.id,
			 uid);
	}
	ret = dindex_exec(rc->store->idx, sql, rc->err);
	if (ret == 0)
		rc->count += sqlite3_changes(dindex_db(rc->store->idx, NULL));
	return ret;
}

static int reindex_file(void *ctx, uint32_t file_id, uint64_t good_end,
			int64_t create_time)
{
	struct reindex_ctx *rc = ctx;
	sqlite3_stmt *st = dindex_stmt(rc->store->idx, DSTMT_FILE_INSERT,
				       rc->err);
	bool sealed = rc->broken_file == file_id;
	uint64_t size = good_end;
	char path[PATH_MAX];
	struct stat sb;

	if (st == NULL)
		return -EIO;
	if (sealed) {
		/* recovery must not cut the damaged file back to its last
		 * good record, and nothing may be appended after damage */
		dbox_mdbox_path(rc->store, file_id, path, sizeof(path));
		if (stat(path, &sb) == 0 && (uint64_t)sb.st_size > size)
			size = (uint64_t)sb.st_size;
	}
	sqlite3_bind_int64(st, 1, file_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 3, create_time);
	sqlite3_bind_int(st, 4, sealed);
	return dindex_step_done(rc->store->idx, st, rc->err);
}

/* old_messages has the stored columns of messages, in their order (not
 * the generated name): its rows go back with INSERT ... SELECT *. */
static const char reindex_prepare[] =
	"DROP TABLE IF EXISTS temp.old_messages;"
	"CREATE TEMP TABLE old_messages AS SELECT mailbox_id, uid, guid, "
	"base, file_id, offset, hdr_size, body_size, rec_size, size, vsize, "
	"compression, received, received_ns, saved, flags, keywords, in_new, "
	"new_info, mode FROM messages;"
	"CREATE INDEX temp.old_by_place ON old_messages(file_id, offset);"
	"CREATE INDEX temp.old_by_uid ON old_messages(mailbox_id, uid);"
	"DELETE FROM messages; DELETE FROM files;";

/* Mailboxes whose directory is gone and that hold nothing now. */
static const char reindex_finish[] =
	"DELETE FROM mailboxes WHERE id NOT IN (SELECT mailbox_id FROM "
	"messages) AND id NOT IN (SELECT id FROM temp.seen_mailboxes);"
	"DROP TABLE temp.old_messages; DROP TABLE temp.seen_mailboxes;";

static int mark_seen(void *ctx, const char *name)
{
	struct reindex_ctx *rc = ctx;
	struct dbox_mailbox box;
	char sql[96];
	int ret = ensure_mailbox(rc, name, &box);

	if (ret == -EINVAL)
		return 0;
	if (ret < 0)
		return ret;
	snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO temp.seen_mailboxes "
		 "VALUES (%lld)", (long long)box.id);
	return dindex_exec(rc->store->idx, sql, rc->err);
}

static int reindex_files(struct dbox_store *store, struct dbox_err *err);

static int count_messages(struct dbox_store *store, struct dbox_err *err)
{
	sqlite3 *db = dindex_db(store->idx, err);
	sqlite3_stmt *st;
	int n = 0;

	if (db == NULL)
		return -EIO;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &st,
			       NULL) != SQLITE_OK)
		return dindex_error(store->idx, SQLITE_ERROR, "count", err);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

int dbox_store_reindex(struct dbox_store *store, struct dbox_err *err)
{
	int ret;

	if (store->origin == DBOX_ORIGIN_DOVECOT) {
		ret = dbox_dovecot_reindex(store, err);
		if (ret != -EOPNOTSUPP)
			return ret < 0 ? ret : count_messages(store, err);
	}
	return reindex_files(store, err);
}

static int reindex_files(struct dbox_store *store, struct dbox_err *err)
{
	struct reindex_ctx rc = { .store = store, .err = err };
	struct dbox_scan_ops ops = {
		.mailbox = mark_seen,
		.record = reindex_record,
		.file = reindex_file,
		.broken = reindex_broken,
		.problem = reindex_problem,
	};
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	ret = dindex_exec(store->idx, reindex_prepare, err);
	if (ret == 0)
		ret = dindex_exec(store->idx, "CREATE TEMP TABLE IF NOT EXISTS "
				  "seen_mailboxes(id INTEGER PRIMARY KEY)", err);
	if (ret == 0)
		ret = dbox_scan_mailboxes(store, &ops, &rc);
	if (ret == 0)
		ret = dbox_scan_records(store, &ops, &rc);
	if (ret == 0)
		ret = dindex_exec(store->idx, reindex_finish, err);
	if (ret < 0) {
		dindex_write_rollback(store->idx);
		dindex_exec(store->idx, "DROP TABLE IF EXISTS temp.old_messages;"
			    "DROP TABLE IF EXISTS temp.seen_mailboxes", NULL);
		return ret;
	}
	ret = dindex_write_commit(store->idx, err);
	return ret < 0 ? ret : rc.count;
}
