/* dindex-mailbox.c - mailbox rows of the index. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "index/dindex-mailbox.h"
#include "index/dindex-private.h"
#include "util/util.h"

#define MBOX_COLS "m.id, m.name, m.guid, m.uidvalidity, m.next_uid, " \
	"m.change_new_ns, m.change_cur_ns, m.created, m.subdirs"

static const char sql_by_name[] =
	"SELECT " MBOX_COLS " FROM mailboxes m WHERE m.name = ?1";
static const char sql_by_id[] =
	"SELECT " MBOX_COLS " FROM mailboxes m WHERE m.id = ?1";
static const char sql_list[] =
	"SELECT " MBOX_COLS " FROM mailboxes m ORDER BY m.name";
static const char sql_insert[] = "INSERT INTO mailboxes(name, guid, "
	"uidvalidity, next_uid, created, change_new_ns, change_cur_ns) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
static const char sql_next_uid[] =
	"SELECT next_uid FROM mailboxes WHERE id = ?1";
static const char sql_set_next_uid[] =
	"UPDATE mailboxes SET next_uid = ?2 WHERE id = ?1";
static const char sql_touch[] = "UPDATE mailboxes SET "
	"change_new_ns = CASE WHEN ?2 THEN ?4 ELSE change_new_ns END, "
	"change_cur_ns = CASE WHEN ?3 THEN ?4 ELSE change_cur_ns END "
	"WHERE id = ?1";
static const char sql_has_children[] = "SELECT 1 FROM mailboxes WHERE "
	"substr(name, 1, length(?1) + 1) = ?1 || '/' LIMIT 1";
static const char sql_delete[] = "DELETE FROM mailboxes WHERE id = ?1";
static const char sql_rename[] =
	"UPDATE mailboxes SET name = ?2 WHERE name = ?1";
static const char sql_rename_tree[] = "UPDATE mailboxes SET name = "
	"CASE WHEN name = ?1 THEN ?2 ELSE ?2 || substr(name, length(?1) + 1)"
	" END WHERE name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '/'";
static const char sql_set_subdirs[] =
	"UPDATE mailboxes SET subdirs = ?2 WHERE id = ?1";
static const char sql_kw_list[] =
	"SELECT idx, name FROM keywords WHERE mailbox_id = ?1 ORDER BY idx";
static const char sql_kw_insert[] =
	"INSERT INTO keywords(mailbox_id, idx, name) VALUES (?1, ?2, ?3)";
static const char sql_raise_next_uid[] = "UPDATE mailboxes SET "
	"next_uid = ?3 WHERE id = ?1 AND next_uid <= ?2";
static const char sql_resync[] = "UPDATE mailboxes SET uidvalidity = ?2, "
	"next_uid = max(ifnull(?3, next_uid), (SELECT ifnull(max(uid), 0) + 1"
	" FROM messages WHERE mailbox_id = ?1)), guid = ifnull(?4, guid) "
	"WHERE id = ?1";
/* only what every schema version has: the index may be an older one's */
static const char sql_peek[] = "SELECT id, name, guid FROM mailboxes";
static const char sql_msg_delete_box[] =
	"DELETE FROM messages WHERE mailbox_id = ?1";
static const char sql_kw_delete_box[] =
	"DELETE FROM keywords WHERE mailbox_id = ?1";

static void row_to_mailbox(sqlite3_stmt *st, void *out)
{
	struct dbox_mailbox *box = out;

	memset(box, 0, sizeof(*box));
	box->id = sqlite3_column_int64(st, 0);
	dindex_col_text(st, 1, box->name, sizeof(box->name));
	dindex_col_text(st, 2, box->guid, sizeof(box->guid));
	box->uidvalidity = (uint32_t)sqlite3_column_int64(st, 3);
	box->next_uid = (uint32_t)sqlite3_column_int64(st, 4);
	box->change_new_ns = sqlite3_column_int64(st, 5);
	box->change_cur_ns = sqlite3_column_int64(st, 6);
	box->created = sqlite3_column_int64(st, 7);
	box->subdirs = (unsigned int)sqlite3_column_int(st, 8);
}

static int fetch_mailbox(struct dindex *idx, sqlite3_stmt *st,
			 struct dbox_mailbox *box_r, const char *what,
			 struct dbox_err *err)
{
	int ret = dindex_fetch_one(idx, st, row_to_mailbox, box_r,
				   "mailbox lookup", err);

	if (ret == -ENOENT)
		return dbox_fail(err, -ENOENT, "no mailbox %s", what);
	return ret;
}

int dindex_mailbox_by_name(struct dindex *idx, const char *name,
			   struct dbox_mailbox *box_r, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_BY_NAME, sql_by_name,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return fetch_mailbox(idx, st, box_r, name, err);
}

/* As remembered while the index is in the state it was read in
 * (dindex_box_get): a flag rename's GETATTR of cur/ reads nothing. */
int dindex_mailbox_by_id(struct dindex *idx, int64_t id,
			 struct dbox_mailbox *box_r, struct dbox_err *err)
{
	struct dindex_walhdr hdr;
	sqlite3_stmt *st;
	char what[32];
	bool hdr_ok;
	int ret;

	if (dindex_box_get(idx, id, box_r, &hdr, &hdr_ok))
		return 0;
	st = dindex_prepare(idx, DSTMT_MBOX_BY_ID, sql_by_id, err);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	snprintf(what, sizeof(what), "#%lld", (long long)id);
	ret = fetch_mailbox(idx, st, box_r, what, err);
	if (ret == 0)
		dindex_box_read(idx, box_r, &hdr, hdr_ok);
	return ret;
}

int dindex_mailboxes_each(struct dindex *idx,
			  int (*fn)(void *ctx, const struct dbox_mailbox *box),
			  void *ctx, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_LIST, sql_list, err);
	struct dbox_mailbox box;
	int rc;

	if (st == NULL)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_mailbox(st, &box);
		if (fn(ctx, &box) != 0) {
			sqlite3_reset(st);
			return 0;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return dindex_error(idx, rc, "mailbox list", err);
	return 0;
}

static int peek_rows(sqlite3 *db,
		     int (*fn)(void *ctx, const struct dbox_mailbox *box),
		     void *ctx)
{
	struct dbox_mailbox box;
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql_peek, -1, &st, NULL), ret = 0;

	if (rc != SQLITE_OK)
		return -EIO;
	memset(&box, 0, sizeof(box));
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		box.id = sqlite3_column_int64(st, 0);
		dindex_col_text(st, 1, box.name, sizeof(box.name));
		dindex_col_text(st, 2, box.guid, sizeof(box.guid));
		ret = fn(ctx, &box);
	}
	sqlite3_finalize(st);
	return ret != 0 ? ret : rc == SQLITE_DONE ? 0 : -EIO;
}

int dindex_mailboxes_peek(const char *path,
			  int (*fn)(void *ctx, const struct dbox_mailbox *box),
			  void *ctx)
{
	sqlite3 *db;
	int ret = dindex_peek_open(path, &db);

	if (ret < 0)
		return ret;
	ret = peek_rows(db, fn, ctx);
	sqlite3_close(db);
	return ret;
}

int dindex_mailbox_insert(struct dindex *idx, const char *name,
			  const char *guid, uint32_t uidvalidity,
			  uint32_t next_uid, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_INSERT, sql_insert,
					  err);
	int ret;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, guid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, uidvalidity);
	sqlite3_bind_int64(st, 4, next_uid);
	sqlite3_bind_int64(st, 5, dbox_now());
	sqlite3_bind_int64(st, 6, dbox_now_ns());
	ret = dindex_step_done(idx, st, err);
	if (ret == -EEXIST)
		return dbox_fail(err, -EEXIST, "mailbox %s exists", name);
	return ret;
}

int dindex_mailbox_has_children(struct dindex *idx, const char *name,
				struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_HAS_CHILDREN,
					  sql_has_children, NULL);
	int ret;

	if (st == NULL)
		return dindex_error(idx, SQLITE_ERROR, "children", err);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	ret = dindex_fetch_one(idx, st, NULL, NULL, "children", err);
	return ret == 0 ? 1 : ret == -ENOENT ? 0 : ret;
}

int dindex_mailbox_delete(struct dindex *idx, int64_t id,
			  struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_DELETE, sql_delete,
					  NULL);
	int rc;

	if (st == NULL)
		return dindex_error(idx, SQLITE_ERROR, "delete", err);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 :
		dindex_error(idx, SQLITE_ERROR, "delete", err);
}

int dindex_mailbox_rename(struct dindex *idx, const char *from,
			  const char *to, bool subtree, struct dbox_err *err)
{
	sqlite3_stmt *st = subtree ?
		dindex_prepare(idx, DSTMT_MBOX_RENAME_TREE, sql_rename_tree,
			       err) :
		dindex_prepare(idx, DSTMT_MBOX_RENAME, sql_rename, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	return dindex_step_what(idx, st, "rename", err);
}

int dindex_mailbox_touch(struct dindex *idx, int64_t mailbox_id,
			 bool new_dir, bool cur_dir, int64_t ns,
			 struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_TOUCH, sql_touch,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int(st, 2, new_dir);
	sqlite3_bind_int(st, 3, cur_dir);
	sqlite3_bind_int64(st, 4, ns);
	return dindex_step_done(idx, st, err);
}

int dindex_mailbox_set_dir_mtime(struct dindex *idx, int64_t mailbox_id,
				 bool new_dir, int64_t ns, struct dbox_err *err)
{
	int ret = dindex_mailbox_touch(idx, mailbox_id, new_dir, !new_dir, ns,
				       err);

	if (ret == 0 && sqlite3_changes(dindex_db(idx, NULL)) == 0)
		ret = dbox_fail(err, -ENOENT, "no mailbox #%lld",
				(long long)mailbox_id);
	return ret;
}

static void row_int64(sqlite3_stmt *st, void *out)
{
	*(int64_t *)out = sqlite3_column_int64(st, 0);
}

int dindex_mailbox_alloc_uids(struct dindex *idx, int64_t mailbox_id,
			      uint32_t count, uint32_t *first_r,
			      struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_NEXT_UID,
					  sql_next_uid, err);
	int64_t next = 0;
	int ret;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	ret = dindex_fetch_one(idx, st, row_int64, &next, "next uid", err);
	if (ret == -ENOENT)
		return dbox_fail(err, -ENOENT, "mailbox #%lld vanished",
				 (long long)mailbox_id);
	if (ret < 0)
		return ret;
	if (next < 1)
		next = 1;   /* uid 0 is no uid (an index of an older version) */
	if (next + count > UINT32_MAX)
		return dbox_fail(err, -EOVERFLOW, "mailbox #%lld ran out of "
				 "UIDs", (long long)mailbox_id);
	st = dindex_prepare(idx, DSTMT_MBOX_SET_NEXT_UID, sql_set_next_uid,
			    err);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, next + count);
	*first_r = (uint32_t)next;
	return dindex_step_done(idx, st, err);
}

int dindex_mailbox_set_subdirs(struct dindex *idx, int64_t mailbox_id,
			       unsigned int subdirs, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MBOX_SET_SUBDIRS,
					  sql_set_subdirs, err);
	int ret;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int(st, 2, (int)(subdirs & 7));
	ret = dindex_step_what(idx, st, "exec", err);
	if (ret == 0 && sqlite3_changes(dindex_db(idx, NULL)) == 0)
		ret = dbox_fail(err, -ENOENT, "no mailbox #%lld",
				(long long)mailbox_id);
	return ret;
}

int dindex_keywords(struct dindex *idx, int64_t mailbox_id,
		    char *names[DBOX_MAX_KEYWORDS], char *buf, size_t buflen,
		    struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_KW_LIST, sql_kw_list,
					  err);
	size_t used = 0;
	int count = 0, rc;

	if (st == NULL)
		return -EIO;
	for (int i = 0; i < DBOX_MAX_KEYWORDS; i++)
		names[i] = NULL;
	sqlite3_bind_int64(st, 1, mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int i = sqlite3_column_int(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		size_t n = strlen(name) + 1;

		if (i < 0 || i >= DBOX_MAX_KEYWORDS || used + n > buflen)
			continue;
		memcpy(buf + used, name, n);
		names[i] = buf + used;
		used += n;
		if (i + 1 > count)
			count = i + 1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return dindex_error(idx, rc, "keywords", err);
	return count;
}

int dindex_keyword_insert(struct dindex *idx, int64_t mailbox_id,
			  int kw_idx, const char *name, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_KW_INSERT, sql_kw_insert,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int(st, 2, kw_idx);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	return dindex_step_done(idx, st, err);
}

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

int dindex_keywords_clear(struct dindex *idx, int64_t mailbox_id,
			  struct dbox_err *err)
{
	return delete_box_rows(idx, DSTMT_KW_DELETE_BOX, sql_kw_delete_box,
			       mailbox_id, err);
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
		ret = dindex_exec(idx, "DELETE FROM messages WHERE "
				  "mailbox_id NOT IN (SELECT id FROM "
				  "temp.dv_keep); DELETE FROM mailboxes WHERE "
				  "id NOT IN (SELECT id FROM temp.dv_keep);",
				  err);
	return ret;
}
