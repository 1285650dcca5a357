/* dindex-meta.c - the meta table. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "index/dindex-meta.h"
#include "index/dindex-private.h"
#include "util/util.h"

static const char sql_meta_get[] = "SELECT value FROM meta WHERE key = ?1";
static const char sql_meta_set[] = "INSERT INTO meta(key, value) VALUES "
	"(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value";

int dindex_meta_get(struct dindex *idx, const char *key, char *buf,
		    size_t buflen, struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_META_GET, sql_meta_get,
					  err);
	int rc;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(buf, buflen, "%s",
			 (const char *)sqlite3_column_text(st, 0));
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return dbox_fail(err, -ENOENT, "index %s: no %s",
				 dindex_path(idx), key);
	return dindex_error(idx, rc, "read meta", err);
}

/* file: URI of path ('%', '?' and '#' escaped). */
static int peek_uri(const char *path, char *buf, size_t len)
{
	size_t o = snprintf(buf, len, "file:");

	for (const char *p = path; *p != '\0'; p++) {
		if (o + 4 >= len)
			return -ENAMETOOLONG;
		o += *p == '%' || *p == '?' || *p == '#' ?
			(size_t)snprintf(buf + o, len - o, "%%%02X",
					 (unsigned char)*p) :
			(size_t)snprintf(buf + o, len - o, "%c", *p);
	}
	return snprintf(buf + o, len - o, "?immutable=1") >= (int)(len - o) ?
		-ENAMETOOLONG : 0;
}

int dindex_peek_open(const char *path, sqlite3 **db_r)
{
	char uri[PATH_MAX * 3 + 32];
	int rc, ret = peek_uri(path, uri, sizeof(uri));

	*db_r = NULL;
	if (ret < 0)
		return ret;
	rc = sqlite3_open_v2(uri, db_r, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
			     NULL);
	if (rc == SQLITE_OK)
		return 0;
	sqlite3_close(*db_r);
	*db_r = NULL;
	return -EIO;
}

int dindex_meta_peek(const char *path, const char *key, char *buf,
		     size_t buflen)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc, ret = dindex_peek_open(path, &db);

	if (ret < 0)
		return ret;
	rc = sqlite3_prepare_v2(db, sql_meta_get, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	if (rc == SQLITE_ROW)
		snprintf(buf, buflen, "%s",
			 (const char *)sqlite3_column_text(st, 0));
	ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

int dindex_meta_set(struct dindex *idx, const char *key, const char *value,
		    struct dbox_err *err)
{
	sqlite3_stmt *st = dindex_prepare(idx, DSTMT_META_SET, sql_meta_set,
					  err);

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	return dindex_step_done(idx, st, err);
}

int dindex_seq(struct dindex *idx, uint64_t *seq_r, struct dbox_err *err)
{
	char buf[32];
	int ret = dindex_meta_get(idx, "seq", buf, sizeof(buf), err);

	if (ret == 0)
		*seq_r = strtoull(buf, NULL, 10);
	return ret;
}
