/* dindex-unconfirmed.c - marks of messages whose record was not durable
 * at their commit (see dindex-unconfirmed.h). */
#include <errno.h>

#include "index/dindex-private.h"
#include "index/dindex-unconfirmed.h"
#include "util/util.h"

static const char sql_add[] =
	"INSERT INTO unconfirmed(mailbox_id, uid) VALUES (?1, ?2)";
static const char sql_max[] = "SELECT coalesce(max(seq), 0) FROM unconfirmed";
static const char sql_list[] = "SELECT mailbox_id, uid FROM unconfirmed "
	"WHERE seq <= ?1 ORDER BY seq";
/* a mark whose message is gone stays (dindex_unconfirmed_gone) */
#define MSG_GONE "NOT EXISTS (SELECT 1 FROM messages m " \
	"WHERE m.mailbox_id = unconfirmed.mailbox_id " \
	"AND m.uid = unconfirmed.uid)"
static const char sql_confirm[] = "DELETE FROM unconfirmed WHERE seq <= ?1 "
	"AND NOT " MSG_GONE;
static const char sql_gone[] = "SELECT 1 FROM unconfirmed "
	"WHERE mailbox_id = ?1 AND uid = ?2 AND " MSG_GONE " LIMIT 1";
static const char sql_forget[] = "DELETE FROM unconfirmed "
	"WHERE (?1 = 0 OR (mailbox_id = ?1 AND uid = ?2)) AND " MSG_GONE;
static const char sql_carry[] = "INSERT INTO unconfirmed(mailbox_id, uid) "
	"SELECT ?3, ?4 WHERE EXISTS (SELECT 1 FROM unconfirmed "
	"WHERE mailbox_id = ?1 AND uid = ?2)";
static const char sql_has[] = "SELECT 1 FROM unconfirmed "
	"WHERE mailbox_id = ?1 AND uid = ?2 LIMIT 1";

int dindex_unconfirmed_add(struct dindex *idx, int64_t mailbox_id,
			   uint32_t uid, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_UNCONF_ADD, sql_add, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	return dindex_step_what(idx, st, "mark unconfirmed", err);
}

static void row_seq(sqlite3_stmt *st, void *out)
{
	*(int64_t *)out = sqlite3_column_int64(st, 0);
}

int dindex_unconfirmed_max(struct dindex *idx, int64_t *seq_r,
			   struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_UNCONF_MAX, sql_max, err);
	int ret;

	*seq_r = 0;
	if (st == NULL)
		return -EIO;
	ret = dindex_fetch_one(idx, st, row_seq, seq_r, "unconfirmed rows",
			       err);
	return ret == -ENOENT ? 0 : ret;
}

int dindex_unconfirmed_each(struct dindex *idx, int64_t max,
			    int (*fn)(void *ctx, int64_t mailbox_id,
				      uint32_t uid),
			    void *ctx, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_UNCONF_LIST, sql_list,
					  err);
	int rc, ret = 0;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = fn(ctx, sqlite3_column_int64(st, 0),
			 (uint32_t)sqlite3_column_int64(st, 1));
		if (ret != 0)
			break;
	}
	sqlite3_reset(st);
	if (ret == 0 && rc != SQLITE_DONE)
		return dindex_error(idx, rc, "unconfirmed rows", err);
	return ret;
}

int dindex_unconfirmed_confirm(struct dindex *idx, int64_t max,
			       struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_UNCONF_CONFIRM,
					  sql_confirm, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, max);
	return dindex_step_what(idx, st, "confirm rows", err);
}

int dindex_unconfirmed_move(struct dindex *idx, int64_t mailbox_id,
			    uint32_t uid, int64_t to_box, uint32_t to_uid,
			    bool *carried_r, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_UNCONF_CARRY, sql_carry,
					  err);
	int ret;

	*carried_r = false;
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, to_box);
	sqlite3_bind_int64(st, 4, to_uid);
	ret = dindex_step_what(idx, st, "move mark", err);
	/* the old mark stays, its message gone: the spool file kept for
	 * it is the moved message's (dindex_unconfirmed_gone) */
	*carried_r = ret == 0 && sqlite3_changes(dindex_db(idx, NULL)) > 0;
	return ret;
}

static int mark_query(struct dindex *idx, enum dindex_stmt which,
		      const char *sql, int64_t mailbox_id, uint32_t uid,
		      struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, which, sql, err);
	int ret;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	ret = dindex_fetch_one(idx, st, NULL, NULL, "unconfirmed row", err);
	if (ret == -ENOENT)
		return 0;
	return ret < 0 ? ret : 1;
}

int dindex_unconfirmed_gone(struct dindex *idx, int64_t mailbox_id,
			    uint32_t uid, struct dbox_err *err)
{
	return mark_query(idx, DSTMT_UNCONF_GONE, sql_gone, mailbox_id, uid,
			  err);
}

int dindex_unconfirmed_forget(struct dindex *idx, int64_t mailbox_id,
			      uint32_t uid, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_UNCONF_FORGET,
					  sql_forget, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	return dindex_step_what(idx, st, "forget marks", err);
}

int dindex_unconfirmed_has(struct dindex *idx, int64_t mailbox_id,
			   uint32_t uid, struct dbox_err *err)
{
	return mark_query(idx, DSTMT_UNCONF_HAS, sql_has, mailbox_id, uid,
			  err);
}

/* TEMP: on this connection only, and never in the file.  Unqualified
 * names in a TEMP trigger's body are looked up in main too. */
static const char sql_kept_trigger[] =
	"CREATE TEMP TRIGGER IF NOT EXISTS dbox_kept_rows "
	"AFTER DELETE ON main.messages "
	"WHEN dbox_kept(old.mailbox_id, old.uid) AND NOT EXISTS "
	"(SELECT 1 FROM unconfirmed WHERE mailbox_id = old.mailbox_id "
	"AND uid = old.uid) BEGIN "
	"INSERT INTO unconfirmed(mailbox_id, uid) "
	"VALUES (old.mailbox_id, old.uid); END";

/* The trigger's function: dbox_kept(mailbox_id, uid). */
static void kept_fn(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
	const struct dindex_kept *k = sqlite3_user_data(ctx);

	(void)argc;
	sqlite3_result_int(ctx, k->fn(k->ctx, sqlite3_value_int64(v[0]),
				      (uint32_t)sqlite3_value_int64(v[1])));
}

void dindex_unconfirmed_attach(struct dindex_kept *k, sqlite3 *db)
{
	int rc = sqlite3_create_function(db, "dbox_kept", 2, SQLITE_UTF8,
					 k, kept_fn, NULL, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql_kept_trigger, NULL, NULL, NULL);
	/* without it, a removed message's copy could come back */
	if (rc != SQLITE_OK)
		dbox_log(DBOX_LOG_WARNING, "index: no marks for removed "
			 "messages' kept copies: %s", sqlite3_errmsg(db));
}
