/* dindex-meta.c - the meta table. */
#include <errno.h>
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
