/* dindex-msg.c - message rows of the index. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "index/dindex-msg.h"
#include "index/dindex-private.h"
#include "util/util.h"

#define MSG_COLS DINDEX_MSG_COLS

static const char sql_get[] = "SELECT " MSG_COLS " FROM messages "
	"WHERE mailbox_id = ?1 AND uid = ?2";
static const char sql_by_base[] = "SELECT " MSG_COLS " FROM messages "
	"WHERE mailbox_id = ?1 AND base = ?2 ORDER BY uid LIMIT 1";
static const char sql_by_name[] = "SELECT " MSG_COLS " FROM messages "
	"WHERE mailbox_id = ?1 AND in_new = ?2 AND name = ?3";
static const char sql_list[] = "SELECT " MSG_COLS " FROM messages "
	"WHERE mailbox_id = ?1 AND uid > ?2 ORDER BY uid LIMIT ?3";
static const char sql_list_new[] = "SELECT " MSG_COLS " FROM messages "
	"WHERE mailbox_id = ?1 AND uid > ?2 AND in_new = ?4 "
	"ORDER BY uid LIMIT ?3";
static const char sql_count[] =
	"SELECT count(*) FROM messages WHERE mailbox_id = ?1";
static const char sql_count_new[] =
	"SELECT count(*) FROM messages WHERE mailbox_id = ?1 AND in_new = ?2";
static const char sql_total[] = "SELECT count(*) FROM messages";
static const char sql_insert[] = "INSERT INTO messages(" MSG_COLS ") "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
	" ?15, ?16, ?17, ?18, ?19, ?20)";
static const char sql_delete[] =
	"DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2";
static const char sql_set_flags[] = "UPDATE messages SET flags = ?3, "
	"keywords = ?4, in_new = ?5 WHERE mailbox_id = ?1 AND uid = ?2";
static const char sql_set_name[] = "UPDATE messages SET base = ?3, "
	"flags = ?4, keywords = ?5, in_new = ?6, new_info = ?7 "
	"WHERE mailbox_id = ?1 AND uid = ?2";
/* the name without its base: SQLite rewrites an index whose column an
 * UPDATE sets, even to the same value (messages_by_base: one page more
 * per flag change) */
static const char sql_set_info[] = "UPDATE messages SET flags = ?3, "
	"keywords = ?4, in_new = ?5, new_info = ?6 "
	"WHERE mailbox_id = ?1 AND uid = ?2";
static const char sql_set_received[] = "UPDATE messages SET received = ?3,"
	" received_ns = ?4 WHERE mailbox_id = ?1 AND uid = ?2";
static const char sql_set_mode[] = "UPDATE messages SET mode = ?3 "
	"WHERE mailbox_id = ?1 AND uid = ?2";
static const char sql_set_uid[] = "UPDATE messages SET uid = ?3 "
	"WHERE mailbox_id = ?1 AND uid = ?2";

static void row_to_msg(sqlite3_stmt *st, void *out)
{
	struct dbox_msg *msg = out;

	memset(msg, 0, sizeof(*msg));
	msg->mailbox_id = sqlite3_column_int64(st, 0);
	msg->uid = (uint32_t)sqlite3_column_int64(st, 1);
	dindex_col_text(st, 2, msg->guid, sizeof(msg->guid));
	dindex_col_text(st, 3, msg->base, sizeof(msg->base));
	dbox_msg_where(msg)->file_id = (uint32_t)sqlite3_column_int64(st, 4);
	dbox_msg_where(msg)->offset = (uint64_t)sqlite3_column_int64(st, 5);
	dbox_msg_where(msg)->hdr_size = (uint32_t)sqlite3_column_int64(st, 6);
	dbox_msg_where(msg)->body_size = (uint64_t)sqlite3_column_int64(st, 7);
	dbox_msg_where(msg)->rec_size = (uint64_t)sqlite3_column_int64(st, 8);
	msg->size = (uint64_t)sqlite3_column_int64(st, 9);
	msg->vsize = (uint64_t)sqlite3_column_int64(st, 10);
	dbox_msg_where(msg)->compression =
		(enum dbox_compression)sqlite3_column_int(st, 11);
	msg->received = sqlite3_column_int64(st, 12);
	msg->received_ns = sqlite3_column_int64(st, 13);
	msg->saved = sqlite3_column_int64(st, 14);
	msg->flags = (uint32_t)sqlite3_column_int64(st, 15);
	msg->keywords = (uint32_t)sqlite3_column_int64(st, 16);
	msg->in_new = sqlite3_column_int(st, 17) != 0;
	msg->new_info = sqlite3_column_int(st, 18) != 0;
	msg->mode = (uint32_t)sqlite3_column_int64(st, 19);
}

static int bind_msg(sqlite3_stmt *st, const struct dbox_msg *msg)
{
	int rc = 0;

	rc |= sqlite3_bind_int64(st, 1, msg->mailbox_id);
	rc |= sqlite3_bind_int64(st, 2, msg->uid);
	rc |= sqlite3_bind_text(st, 3, msg->guid, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_text(st, 4, msg->base, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_int64(st, 5, dbox_msg_where(msg)->file_id);
	rc |= sqlite3_bind_int64(st, 6,
				 (sqlite3_int64)dbox_msg_where(msg)->offset);
	rc |= sqlite3_bind_int64(st, 7, dbox_msg_where(msg)->hdr_size);
	rc |= sqlite3_bind_int64(st, 8,
				 (sqlite3_int64)dbox_msg_where(msg)->body_size);
	rc |= sqlite3_bind_int64(st, 9,
				 (sqlite3_int64)dbox_msg_where(msg)->rec_size);
	rc |= sqlite3_bind_int64(st, 10, (sqlite3_int64)msg->size);
	rc |= sqlite3_bind_int64(st, 11, (sqlite3_int64)msg->vsize);
	rc |= sqlite3_bind_int(st, 12, (int)dbox_msg_where(msg)->compression);
	rc |= sqlite3_bind_int64(st, 13, msg->received);
	rc |= sqlite3_bind_int64(st, 14, msg->received_ns);
	rc |= sqlite3_bind_int64(st, 15, msg->saved);
	rc |= sqlite3_bind_int64(st, 16, msg->flags);
	rc |= sqlite3_bind_int64(st, 17, msg->keywords);
	rc |= sqlite3_bind_int(st, 18, msg->in_new ? 1 : 0);
	rc |= sqlite3_bind_int(st, 19, msg->in_new && msg->new_info ? 1 : 0);
	rc |= sqlite3_bind_int64(st, 20, msg->mode);
	return rc == SQLITE_OK ? 0 : -EIO;
}

static int fetch_msg(struct dindex *idx, sqlite3_stmt *st,
		     struct dbox_msg *msg_r, struct dbox_err *err)
{
	int ret = dindex_fetch_one(idx, st, row_to_msg, msg_r,
				   "message lookup", err);

	if (ret == -ENOENT)
		return dbox_fail(err, -ENOENT, "no such message");
	return ret;
}

int dindex_msg_get(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		   struct dbox_msg *msg_r, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MSG_GET, sql_get, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	return fetch_msg(idx, st, msg_r, err);
}

int dindex_msg_by_base(struct dindex *idx, int64_t mailbox_id,
		       const char *base, struct dbox_msg *msg_r,
		       struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MSG_BY_BASE, sql_by_base,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_text(st, 2, base, -1, SQLITE_STATIC);
	return fetch_msg(idx, st, msg_r, err);
}

int dindex_msg_by_name(struct dindex *idx, int64_t mailbox_id, bool in_new,
		       const char *name, struct dbox_msg *msg_r,
		       struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MSG_BY_NAME, sql_by_name,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int(st, 2, in_new);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	return fetch_msg(idx, st, msg_r, err);
}

int dindex_msgs_page(struct dindex *idx, int64_t mailbox_id,
		     uint32_t after_uid, int in_new, unsigned int limit,
		     int (*fn)(void *ctx, const struct dbox_msg *msg),
		     void *ctx, struct dbox_err *err)
{
	sqlite3_stmt *st = in_new < 0 ?
		dindex_prepare(idx, DSTMT_MSG_LIST, sql_list, err) :
		dindex_prepare(idx, DSTMT_MSG_LIST_NEW, sql_list_new, err);
	struct dbox_msg msg;
	int rc, count = 0;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, after_uid);
	sqlite3_bind_int64(st, 3, limit == 0 ? -1 : (sqlite3_int64)limit);
	if (in_new >= 0)
		sqlite3_bind_int(st, 4, in_new);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_msg(st, &msg);
		count++;
		if (fn(ctx, &msg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return dindex_error(idx, rc, "message list", err);
	return count;
}

static void row_count(sqlite3_stmt *st, void *out)
{
	*(uint64_t *)out = (uint64_t)sqlite3_column_int64(st, 0);
}

int dindex_msg_count(struct dindex *idx, int64_t mailbox_id, int in_new,
		     uint64_t *count_r, struct dbox_err *err)
{
	sqlite3_stmt *st = in_new < 0 ?
		dindex_prepare(idx, DSTMT_MSG_COUNT, sql_count, err) :
		dindex_prepare(idx, DSTMT_MSG_COUNT_NEW, sql_count_new, err);
	int ret;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (in_new >= 0)
		sqlite3_bind_int(st, 2, in_new);
	*count_r = 0;
	ret = dindex_fetch_one(idx, st, row_count, count_r, "count", err);
	/* count(*) always has its row */
	return ret == -ENOENT ? dindex_error(idx, SQLITE_DONE, "count", err) :
		ret;
}

int dindex_msgs_total(struct dindex *idx, int *count_r, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MSG_TOTAL, sql_total,
					  err);

	*count_r = 0;
	if (st == NULL)
		return dindex_error(idx, SQLITE_ERROR, "count", err);
	if (sqlite3_step(st) == SQLITE_ROW)
		*count_r = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return 0;
}

int dindex_msg_insert(struct dindex *idx, const struct dbox_msg *msg,
		      struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MSG_INSERT, sql_insert,
					  err);
	int ret;

	if (st == NULL)
		return -EIO;
	if (bind_msg(st, msg) < 0) {
		sqlite3_reset(st);
		return dbox_fail(err, -ENOMEM, "bind message");
	}
	ret = dindex_step_done(idx, st, err);
	if (ret == -EEXIST)
		return dbox_fail(err, -EEXIST, "a message of the same name as"
				 " %s or with uid %u exists", msg->base,
				 msg->uid);
	return ret;
}

/* The statement of one message's row with (mailbox_id, uid) bound. */
static sqlite3_stmt *row_stmt(struct dindex *idx, enum dindex_stmt id,
			      const char *sql, int64_t mailbox_id,
			      uint32_t uid, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, id, sql, err);

	if (st != NULL) {
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, uid);
	}
	return st;
}

/* Runs an update of one message's row: -ENOENT when there was none. */
static int update_row(struct dindex *idx, sqlite3_stmt *st,
		      struct dbox_err *err)
{
	int ret = dindex_step_done(idx, st, err);

	if (ret == 0 && sqlite3_changes(dindex_db(idx, NULL)) == 0)
		ret = dbox_fail(err, -ENOENT, "no such message");
	return ret;
}

int dindex_msg_delete(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		      struct dbox_err *err)
{
	sqlite3_stmt *st = row_stmt(idx, DSTMT_MSG_DELETE, sql_delete,
				    mailbox_id, uid, err);

	return st == NULL ? -EIO : dindex_step_done(idx, st, err);
}

int dindex_msg_set_name(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
			const char *base, uint32_t flags, uint32_t keywords,
			bool in_new, bool new_info, struct dbox_err *err)
{
	sqlite3_stmt *st = base != NULL ?
		row_stmt(idx, DSTMT_MSG_SET_NAME, sql_set_name, mailbox_id,
			 uid, err) :
		row_stmt(idx, DSTMT_MSG_SET_INFO, sql_set_info, mailbox_id,
			 uid, err);
	int n = 3, ret;

	if (st == NULL)
		return -EIO;
	if (base != NULL)
		sqlite3_bind_text(st, n++, base, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, n++, flags);
	sqlite3_bind_int64(st, n++, keywords);
	sqlite3_bind_int(st, n++, in_new);
	sqlite3_bind_int(st, n, new_info);
	ret = update_row(idx, st, err);
	if (ret == -EEXIST)
		return dbox_fail(err, -EEXIST, "a message of the same name "
				 "exists (uid %u renamed)", uid);
	return ret;
}

int dindex_msg_set_flags(struct dindex *idx, int64_t mailbox_id,
			 uint32_t uid, uint32_t flags, uint32_t keywords,
			 bool in_new, struct dbox_err *err)
{
	sqlite3_stmt *st = row_stmt(idx, DSTMT_MSG_SET_FLAGS, sql_set_flags,
				    mailbox_id, uid, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 3, flags);
	sqlite3_bind_int64(st, 4, keywords);
	sqlite3_bind_int(st, 5, in_new);
	return update_row(idx, st, err);
}

int dindex_msg_set_mode(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
			uint32_t mode, struct dbox_err *err)
{
	sqlite3_stmt *st = row_stmt(idx, DSTMT_MSG_SET_MODE, sql_set_mode,
				    mailbox_id, uid, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 3, mode);
	return update_row(idx, st, err);
}

int dindex_msg_set_received(struct dindex *idx, int64_t mailbox_id,
			    uint32_t uid, int64_t received,
			    int64_t received_ns, struct dbox_err *err)
{
	sqlite3_stmt *st = row_stmt(idx, DSTMT_MSG_SET_RECEIVED,
				    sql_set_received, mailbox_id, uid, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 3, received);
	sqlite3_bind_int64(st, 4, received_ns);
	return update_row(idx, st, err);
}

int dindex_msg_set_uid(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		       uint32_t new_uid, struct dbox_err *err)
{
	sqlite3_stmt *st = row_stmt(idx, DSTMT_MSG_SET_UID, sql_set_uid,
				    mailbox_id, uid, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 3, new_uid);
	return dindex_step_what(idx, st, "exec", err);
}
