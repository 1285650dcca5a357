/* dindex-owed.c - changes owed to Dovecot (see dindex-owed.h). */
#include <errno.h>

#include "index/dindex-owed.h"
#include "index/dindex-private.h"

static const char sql_add[] = "INSERT INTO dovecot_owed"
	"(mailbox_id, uid, kind, guid, unref, base_flags, base_keywords) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
	"ON CONFLICT(mailbox_id, uid, kind) DO NOTHING";
static const char sql_delete[] = "DELETE FROM dovecot_owed "
	"WHERE mailbox_id = ?1 AND uid = ?2 AND kind = ?3";
static const char sql_forget[] = "DELETE FROM dovecot_owed "
	"WHERE mailbox_id = ?1";
static const char sql_list[] = "SELECT mailbox_id, uid, kind, guid, unref, "
	"base_flags, base_keywords FROM dovecot_owed WHERE ?1 = 0 OR mailbox_id = ?1 "
	"ORDER BY mailbox_id, uid, kind";
static const char sql_any[] = "SELECT 1 FROM dovecot_owed LIMIT 1";

int dindex_owed_add(struct dindex *idx, const struct dindex_owed *o,
		    struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_OWED_ADD, sql_add, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, o->mailbox_id);
	sqlite3_bind_int64(st, 2, o->uid);
	sqlite3_bind_int(st, 3, (int)o->kind);
	sqlite3_bind_text(st, 4, o->guid, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, o->unref);
	sqlite3_bind_int64(st, 6, o->base_flags);
	sqlite3_bind_int64(st, 7, o->base_keywords);
	return dindex_step_what(idx, st, "record a change owed to Dovecot",
				err);
}

int dindex_owed_delete(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		       enum dindex_owed_kind kind, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_OWED_DELETE, sql_delete,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int(st, 3, (int)kind);
	return dindex_step_what(idx, st, "delete a change owed to Dovecot",
				err);
}

int dindex_owed_forget(struct dindex *idx, int64_t mailbox_id,
		       struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_OWED_FORGET, sql_forget,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	return dindex_step_what(idx, st, "forget changes owed to Dovecot",
				err);
}

static void row_owed(sqlite3_stmt *st, struct dindex_owed *o)
{
	o->mailbox_id = sqlite3_column_int64(st, 0);
	o->uid = (uint32_t)sqlite3_column_int64(st, 1);
	o->kind = (enum dindex_owed_kind)sqlite3_column_int(st, 2);
	dindex_col_text(st, 3, o->guid, sizeof(o->guid));
	o->unref = sqlite3_column_int(st, 4) != 0;
	o->base_flags = (uint32_t)sqlite3_column_int64(st, 5);
	o->base_keywords = (uint32_t)sqlite3_column_int64(st, 6);
}

int dindex_owed_each(struct dindex *idx, int64_t mailbox_id,
		     int (*fn)(void *ctx, const struct dindex_owed *o),
		     void *ctx, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_OWED_LIST, sql_list, err);
	int rc, ret = 0;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct dindex_owed o;

		row_owed(st, &o);
		ret = fn(ctx, &o);
		if (ret != 0)
			break;
	}
	sqlite3_reset(st);
	if (ret == 0 && rc != SQLITE_DONE)
		return dindex_error(idx, rc, "changes owed to Dovecot", err);
	return ret;
}

int dindex_owed_any(struct dindex *idx, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_OWED_ANY, sql_any, err);
	int ret;

	if (st == NULL)
		return -EIO;
	ret = dindex_fetch_one(idx, st, NULL, NULL, "changes owed to Dovecot",
			       err);
	if (ret == -ENOENT)
		return 0;
	return ret < 0 ? ret : 1;
}
