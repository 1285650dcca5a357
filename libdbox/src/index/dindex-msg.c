/* dindex-msg.c - message rows of the index. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "index/dindex-msg.h"
#include "index/dindex.h"
#include "util/util.h"

static const char sql_msg_set_uid[] = "UPDATE messages SET uid = ?3 "
	"WHERE mailbox_id = ?1 AND uid = ?2";
static const char sql_msg_total[] = "SELECT count(*) FROM messages";

int dindex_msg_delete(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		      struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_stmt(idx, DSTMT_MSG_DELETE, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	return dindex_step_done(idx, st, err);
}

int dindex_msg_set_flags(struct dindex *idx, int64_t mailbox_id,
			 uint32_t uid, uint32_t flags, uint32_t keywords,
			 bool in_new, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_stmt(idx, DSTMT_MSG_SET_FLAGS, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, flags);
	sqlite3_bind_int64(st, 4, keywords);
	sqlite3_bind_int(st, 5, in_new);
	return dindex_step_done(idx, st, err);
}

int dindex_msg_set_uid(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		       uint32_t new_uid, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MSG_SET_UID,
					  sql_msg_set_uid, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, new_uid);
	return dindex_step_what(idx, st, "exec", err);
}

int dindex_msgs_total(struct dindex *idx, int *count_r, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_MSG_TOTAL, sql_msg_total,
					  err);

	*count_r = 0;
	if (st == NULL)
		return dindex_error(idx, SQLITE_ERROR, "count", err);
	if (sqlite3_step(st) == SQLITE_ROW)
		*count_r = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return 0;
}
