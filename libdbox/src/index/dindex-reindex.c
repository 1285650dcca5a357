/* dindex-reindex.c - the index side of a rebuild from the dbox files.
 * Its statements name temp tables that live for one rebuild, so they are
 * prepared per use rather than cached. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "index/dindex-reindex.h"
#include "index/dindex-private.h"
#include "util/util.h"

/* old_messages has the stored columns of messages, in their order (not
 * the generated name) */
static const char reindex_prepare[] =
	"DROP TABLE IF EXISTS temp.old_messages;"
	"CREATE TEMP TABLE old_messages AS SELECT " DINDEX_MSG_COLS
	" FROM messages;"
	"CREATE INDEX temp.old_by_place ON old_messages(file_id, offset);"
	"CREATE INDEX temp.old_by_uid ON old_messages(mailbox_id, uid);"
	"DELETE FROM messages; DELETE FROM files;";

/* The marks of rows the rebuild did not find again (their records are
 * not in the files: a power cut took them) go, also those that
 * reindex_prepare's DELETE left for the mount's kept copies
 * (dindex_unconfirmed_attach): such a row was not expunged, so a mark
 * that said "removed" would make the mount drop the spool file of a
 * delivery that is nowhere else, rather than put it back into tmp/.
 * Then the mailboxes whose directory is gone and that hold nothing
 * now. */
static const char reindex_finish[] =
	"DELETE FROM unconfirmed WHERE EXISTS (SELECT 1 FROM "
	"temp.old_messages o WHERE o.mailbox_id = unconfirmed.mailbox_id "
	"AND o.uid = unconfirmed.uid) AND NOT EXISTS (SELECT 1 FROM "
	"messages m WHERE m.mailbox_id = unconfirmed.mailbox_id "
	"AND m.uid = unconfirmed.uid);"
	"DELETE FROM mailboxes WHERE id NOT IN (SELECT mailbox_id FROM "
	"messages) AND id NOT IN (SELECT id FROM temp.seen_mailboxes);"
	"DROP TABLE temp.old_messages; DROP TABLE temp.seen_mailboxes;";

#define OLD_COLS "mailbox_id, uid, base, flags, keywords, in_new, " \
	"received_ns, saved, new_info, mode"
static const char sql_take_mdbox[] = "SELECT " OLD_COLS " FROM "
	"old_messages WHERE file_id = ?1 AND offset = ?2 AND guid = ?3";
static const char sql_take_sdbox[] = "SELECT " OLD_COLS " FROM "
	"old_messages WHERE file_id = 0 AND mailbox_id = ?4 AND uid = ?5 "
	"AND guid = ?3";
/* the stored columns by name: a generated column (name) takes no value */
static const char sql_keep_mdbox[] = "INSERT OR IGNORE INTO messages("
	DINDEX_MSG_COLS ") SELECT " DINDEX_MSG_COLS " FROM temp.old_messages "
	"WHERE file_id = ?1 AND offset >= ?2";
static const char sql_keep_sdbox[] = "INSERT OR IGNORE INTO messages("
	DINDEX_MSG_COLS ") SELECT " DINDEX_MSG_COLS " FROM temp.old_messages "
	"WHERE file_id = 0 AND mailbox_id = ?3 AND uid = ?4";
static const char sql_seen[] =
	"INSERT OR IGNORE INTO temp.seen_mailboxes VALUES (?1)";

int dindex_reindex_begin(struct dindex *idx, struct dbox_err *err)
{
	int ret = dindex_exec(idx, reindex_prepare, err);

	if (ret == 0)
		ret = dindex_exec(idx, "CREATE TEMP TABLE IF NOT EXISTS "
				  "seen_mailboxes(id INTEGER PRIMARY KEY)",
				  err);
	return ret;
}

/* A one-off statement; NULL (err filled) on failure. */
static sqlite3_stmt *prepare_once(struct dindex *idx, const char *sql,
				  const char *what, struct dbox_err *err)
{
	sqlite3 *db = dindex_db(idx, err);
	sqlite3_stmt *st = NULL;
	int rc;

	if (db == NULL)
		return NULL;
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		dindex_error(idx, rc, what, err);
		return NULL;
	}
	return st;
}

/* Runs a one-off statement that returns no rows; *changes_r: rows it
 * changed. */
static int run_once(struct dindex *idx, sqlite3_stmt *st, int *changes_r,
		    struct dbox_err *err)
{
	int rc = sqlite3_step(st);

	if (changes_r != NULL)
		*changes_r = sqlite3_changes(dindex_db(idx, NULL));
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		int ret = dindex_error(idx, rc, "exec", err);

		sqlite3_finalize(st);
		return ret;
	}
	sqlite3_finalize(st);
	return 0;
}

int dindex_reindex_seen(struct dindex *idx, int64_t mailbox_id,
			struct dbox_err *err)
{
	sqlite3_stmt *st = prepare_once(idx, sql_seen, "exec", err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	return run_once(idx, st, NULL, err);
}

static void old_state(sqlite3_stmt *st, struct dbox_msg *m)
{
	const unsigned char *base = sqlite3_column_text(st, 2);

	m->mailbox_id = sqlite3_column_int64(st, 0);
	m->uid = (uint32_t)sqlite3_column_int64(st, 1);
	snprintf(m->base, sizeof(m->base), "%s",
		 base != NULL ? (const char *)base : "");
	m->flags = (uint32_t)sqlite3_column_int64(st, 3);
	m->keywords = (uint32_t)sqlite3_column_int64(st, 4);
	m->in_new = sqlite3_column_int(st, 5) != 0;
	m->received_ns = sqlite3_column_int64(st, 6);
	m->saved = sqlite3_column_int64(st, 7);
	m->new_info = sqlite3_column_int(st, 8) != 0;
	m->mode = (uint32_t)sqlite3_column_int64(st, 9);
}

int dindex_reindex_take_old(struct dindex *idx, const struct dbox_msg *found,
			    int64_t sdbox_box, dindex_msg_fn *fn, void *ctx,
			    int *taken_r, struct dbox_err *err)
{
	sqlite3_stmt *st = prepare_once(idx,
					dbox_msg_where(found)->file_id != 0 ?
					sql_take_mdbox : sql_take_sdbox,
					"reindex", err);
	int rc = SQLITE_DONE, ret = 0;

	*taken_r = 0;
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, dbox_msg_where(found)->file_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)dbox_msg_where(found)->offset);
	sqlite3_bind_text(st, 3, found->guid, -1, SQLITE_STATIC);
	if (dbox_msg_where(found)->file_id == 0) {
		sqlite3_bind_int64(st, 4, sdbox_box);
		sqlite3_bind_int64(st, 5, found->uid);
	}
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct dbox_msg m = *found;

		old_state(st, &m);
		ret = fn(ctx, &m);
		(*taken_r)++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = dindex_error(idx, rc, "reindex", err);
	sqlite3_finalize(st);
	return ret;
}

int dindex_reindex_keep_old(struct dindex *idx, uint32_t file_id,
			    uint64_t offset, int64_t mailbox_id, uint32_t uid,
			    int *count, struct dbox_err *err)
{
	sqlite3_stmt *st = prepare_once(idx, file_id != 0 ? sql_keep_mdbox :
					sql_keep_sdbox, "exec", err);
	int changes = 0, ret;

	if (st == NULL)
		return -EIO;
	if (file_id != 0) {
		sqlite3_bind_int64(st, 1, file_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)offset);
	} else {
		sqlite3_bind_int64(st, 3, mailbox_id);
		sqlite3_bind_int64(st, 4, uid);
	}
	ret = run_once(idx, st, &changes, err);
	if (ret == 0)
		*count += changes;
	return ret;
}

int dindex_reindex_finish(struct dindex *idx, struct dbox_err *err)
{
	return dindex_exec(idx, reindex_finish, err);
}

void dindex_reindex_abort(struct dindex *idx)
{
	dindex_write_rollback(idx);
	dindex_exec(idx, "DROP TABLE IF EXISTS temp.old_messages;"
		    "DROP TABLE IF EXISTS temp.seen_mailboxes", NULL);
}
