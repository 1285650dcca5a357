/* dindex-file.c - the files table and the index side of a purge. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/dindex-file.h"
#include "index/dindex-meta.h"
#include "index/dindex-private.h"
#include "util/util.h"

#define PURGE_KEY "purge."

static const char sql_file_get[] =
	"SELECT size, created FROM files WHERE file_id = ?1";
static const char sql_file_insert[] = "INSERT INTO files(file_id, size, "
	"created, sealed) VALUES (?1, ?2, ?3, ?4)";
static const char sql_file_set_size[] =
	"UPDATE files SET size = ?2 WHERE file_id = ?1";
static const char sql_file_list[] =
	"SELECT file_id, size FROM files ORDER BY file_id";
static const char sql_file_refs_at[] =
	"SELECT count(*) FROM messages WHERE file_id = ?1 AND offset = ?2";
static const char sql_file_msg_at[] = "SELECT mailbox_id, uid FROM messages "
	"WHERE file_id = ?1 AND offset = ?2 LIMIT 1";
static const char sql_file_newest[] =
	"SELECT file_id, size, sealed FROM files ORDER BY file_id DESC";
static const char sql_file_delete[] = "DELETE FROM files WHERE file_id = ?1";
static const char sql_file_referenced[] =
	"SELECT 1 FROM messages WHERE file_id = ?1";
static const char sql_file_move_rec[] = "UPDATE messages SET file_id = ?3, "
	"offset = ?4 WHERE file_id = ?1 AND offset = ?2";
static const char sql_purge_marks[] =
	"SELECT key, value FROM meta WHERE key LIKE '" PURGE_KEY "%'";
/* ?2 NULL: whatever token the mark has */
static const char sql_purge_unmark[] =
	"DELETE FROM meta WHERE key = ?1 AND (?2 IS NULL OR value = ?2)";

int dindex_file_size(struct dindex *idx, uint32_t file_id, uint64_t *size_r,
		     struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_GET, sql_file_get,
					  err);
	int rc;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, file_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*size_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT :
		dindex_error(idx, rc, "file size", err);
}

/* Runs st's rows through fn; the statement is reset after. */
static int walk_files(struct dindex *idx, sqlite3_stmt *st, bool has_sealed,
		      dindex_file_fn *fn, void *ctx, const char *what,
		      struct dbox_err *err)
{
	int rc, ret = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = fn(ctx, (uint32_t)sqlite3_column_int64(st, 0),
			 (uint64_t)sqlite3_column_int64(st, 1),
			 has_sealed && sqlite3_column_int(st, 2) != 0);
		if (ret != 0)
			break;
	}
	sqlite3_reset(st);
	if (ret != 0)
		return ret;
	return rc == SQLITE_DONE ? 0 : dindex_error(idx, rc, what, err);
}

int dindex_files_newest(struct dindex *idx, dindex_file_fn *fn, void *ctx,
			struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_NEWEST,
					  sql_file_newest, err);

	if (st == NULL)
		return -EIO;
	return walk_files(idx, st, true, fn, ctx, "files", err);
}

int dindex_files_each(struct dindex *idx, dindex_file_fn *fn, void *ctx,
		      struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_LIST, sql_file_list,
					  err);

	if (st == NULL)
		return -EIO;
	return walk_files(idx, st, false, fn, ctx, "files", err);
}

int dindex_file_insert(struct dindex *idx, uint32_t file_id, uint64_t size,
		       int64_t created, bool sealed, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_INSERT,
					  sql_file_insert, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, file_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 3, created);
	sqlite3_bind_int(st, 4, sealed);
	return dindex_step_done(idx, st, err);
}

int dindex_file_set_size(struct dindex *idx, uint32_t file_id, uint64_t size,
			 struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_SET_SIZE,
					  sql_file_set_size, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, file_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	return dindex_step_done(idx, st, err);
}

static const char sql_file_seal[] =
	"UPDATE files SET sealed = 1 WHERE file_id = ?1";

int dindex_file_seal(struct dindex *idx, uint32_t file_id,
		     struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_SEAL, sql_file_seal,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, file_id);
	return dindex_step_done(idx, st, err);
}

int dindex_file_delete(struct dindex *idx, uint32_t file_id,
		       struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_DELETE,
					  sql_file_delete, err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, file_id);
	return dindex_step_what(idx, st, "exec", err);
}

int dindex_file_refs_at(struct dindex *idx, uint32_t file_id,
			uint64_t offset, int64_t *count_r)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_REFS_AT,
					  sql_file_refs_at, NULL);
	int rc;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, file_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)offset);
	rc = sqlite3_step(st);
	*count_r = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

struct msg_at {
	int64_t mailbox_id;
	uint32_t uid;
};

static void row_msg_at(sqlite3_stmt *st, void *out)
{
	struct msg_at *m = out;

	m->mailbox_id = sqlite3_column_int64(st, 0);
	m->uid = (uint32_t)sqlite3_column_int64(st, 1);
}

int dindex_file_msg_at(struct dindex *idx, uint32_t file_id, uint64_t offset,
		       int64_t *mailbox_id_r, uint32_t *uid_r)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_MSG_AT,
					  sql_file_msg_at, NULL);
	struct msg_at m;
	int ret;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, file_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)offset);
	ret = dindex_fetch_one(idx, st, row_msg_at, &m, "message at", NULL);
	if (ret == 0) {
		*mailbox_id_r = m.mailbox_id;
		*uid_r = m.uid;
	}
	return ret;
}

bool dindex_file_referenced(struct dindex *idx, uint32_t file_id)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_REFERENCED,
					  sql_file_referenced, NULL);
	bool yes;

	if (st == NULL)
		return false;
	sqlite3_bind_int64(st, 1, file_id);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return yes;
}

int dindex_file_move_rec(struct dindex *idx, uint32_t old_id,
			 uint64_t old_offset, uint32_t new_id,
			 uint64_t new_offset, bool *moved_r,
			 struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_FILE_MOVE_REC,
					  sql_file_move_rec, NULL);
	int rc;

	if (st == NULL)
		return dindex_error(idx, SQLITE_ERROR, "purge", err);
	sqlite3_bind_int64(st, 1, old_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)old_offset);
	sqlite3_bind_int64(st, 3, new_id);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)new_offset);
	rc = sqlite3_step(st);
	*moved_r = rc == SQLITE_DONE &&
		sqlite3_changes(dindex_db(idx, NULL)) != 0;
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return dindex_error(idx, SQLITE_ERROR, "purge", err);
	return 0;
}

int dindex_purge_marks(struct dindex *idx, dindex_mark_fn *fn, void *ctx,
		       struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_PURGE_MARKS,
					  sql_purge_marks, err);
	int rc, ret = 0;

	if (st == NULL)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		const char *token = (const char *)sqlite3_column_text(st, 1);

		ret = fn(ctx, (uint32_t)strtoul(key + strlen(PURGE_KEY), NULL,
						10), token);
		if (ret != 0)
			break;
	}
	sqlite3_reset(st);
	if (ret != 0)
		return ret;
	return rc == SQLITE_DONE ? 0 :
		dindex_error(idx, rc, "purge marks", err);
}

int dindex_purge_mark(struct dindex *idx, uint32_t file_id,
		      const char *token, struct dbox_err *err)
{
	char key[32];

	snprintf(key, sizeof(key), PURGE_KEY "%u", file_id);
	return dindex_meta_set(idx, key, token, err);
}

int dindex_purge_unmark(struct dindex *idx, uint32_t file_id,
			const char *token, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_PURGE_UNMARK,
					  sql_purge_unmark, err);
	char key[32];

	if (st == NULL)
		return -EIO;
	snprintf(key, sizeof(key), PURGE_KEY "%u", file_id);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	if (token != NULL)
		sqlite3_bind_text(st, 2, token, -1, SQLITE_TRANSIENT);
	return dindex_step_what(idx, st, "exec", err);
}
