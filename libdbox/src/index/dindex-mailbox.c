/* dindex-mailbox.c - mailbox rows of the index. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "index/dindex-mailbox.h"
#include "index/dindex.h"
#include "util/util.h"

static const char sql_raise_next_uid[] = "UPDATE mailboxes SET "
	"next_uid = ?3 WHERE id = ?1 AND next_uid <= ?2";
static const char sql_resync[] = "UPDATE mailboxes SET uidvalidity = ?2, "
	"next_uid = max(ifnull(?3, next_uid), (SELECT ifnull(max(uid), 0) + 1"
	" FROM messages WHERE mailbox_id = ?1)), guid = ifnull(?4, guid) "
	"WHERE id = ?1";
static const char sql_msg_delete_box[] =
	"DELETE FROM messages WHERE mailbox_id = ?1";
static const char sql_kw_delete_box[] =
	"DELETE FROM keywords WHERE mailbox_id = ?1";

int dindex_mailbox_raise_next_uid(struct dindex *idx, int64_t mailbox_id,
				  uint32_t uid, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_RAISE_NEXT_UID,
					  sql_raise_next_uid, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (uint32_t)(uid + 1));
	return dindex_step_what(idx, st, "exec", err);
}

int dindex_mailbox_resync(struct dindex *idx, int64_t mailbox_id,
			  uint32_t uidvalidity, uint32_t next_uid,
			  const char *guid, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_RESYNC, sql_resync,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uidvalidity);
	if (next_uid != 0)
		sqlite3_bind_int64(st, 3, next_uid);
	if (guid != NULL)
		sqlite3_bind_text(st, 4, guid, -1, SQLITE_TRANSIENT);
	return dindex_step_what(idx, st, "exec", err);
}

static int delete_box_rows(struct dindex *idx, enum dindex_stmt id,
			   const char *sql, int64_t mailbox_id,
			   struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, id, sql, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	return dindex_step_what(idx, st, "exec", err);
}

int dindex_mailbox_forget(struct dindex *idx, int64_t mailbox_id,
			  struct dbox_err *err)
{
	int ret = delete_box_rows(idx, DSTMT_MSG_DELETE_BOX,
				  sql_msg_delete_box, mailbox_id, err);

	if (ret == 0)
		ret = delete_box_rows(idx, DSTMT_KW_DELETE_BOX,
				      sql_kw_delete_box, mailbox_id, err);
	return ret;
}

/* The ids go into a temp table, prepared per call (it lives with the
 * connection, not the schema). */
int dindex_mailbox_keep_only(struct dindex *idx, const int64_t *ids,
			     size_t count, struct dbox_err *err)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	int rc, ret = dindex_exec(idx, "CREATE TEMP TABLE IF NOT EXISTS "
				  "dv_keep(id INTEGER PRIMARY KEY);"
				  "DELETE FROM temp.dv_keep;", err);

	if (ret < 0)
		return ret;
	db = dindex_db(idx, err);
	rc = sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO temp.dv_keep "
				"VALUES (?1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return dindex_error(idx, rc, "exec", err);
	for (size_t i = 0; ret == 0 && i < count; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			ret = dindex_error(idx, rc, "exec", err);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (ret == 0)
		ret = dindex_exec(idx, "DELETE FROM messages WHERE mailbox_id "
				  "NOT IN (SELECT id FROM temp.dv_keep); DELETE "
				  "FROM mailboxes WHERE id NOT IN (SELECT id "
				  "FROM temp.dv_keep);", err);
	return ret;
}
