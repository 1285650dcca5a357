/* dindex-salvage.c - what can still be read of a damaged index file.
 *
 * A damaged page makes every query that touches it fail, so a table scan
 * stops at the first one.  The rows are read instead by key: a seek to
 * the next key after the last row read, and where that meets damage,
 * point lookups of the keys that follow until one lands on a readable
 * page again; then seeking resumes from there.  So the damage costs the
 * rows on the damaged pages only. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "index/dindex-private.h"
#include "util/util.h"

/* Point lookups tried past damage before giving up on a key range. */
#define SALVAGE_PROBE_MAX (1 << 20)

struct walk {
	sqlite3_stmt *seek;     /* ?1 = k1, ?2 = last key: next row */
	sqlite3_stmt *point;    /* ?1 = k1, ?2 = key: that row */
	sqlite3_stmt *ins;
	int ncols, key_col;
	int64_t copied;
	int damaged;
};

struct table {
	const char *name;
	const char *cols;
	int ncols;
	const char *k1;         /* NULL: one key column */
	const char *k2;
	int key_col;            /* k2 in cols */
};

static const struct table mailboxes_tab = {
	"mailboxes", "id, name, guid, uidvalidity, next_uid, created, "
	"change_new_ns, change_cur_ns, subdirs", 9, NULL, "id", 0,
};
static const struct table keywords_tab = {
	"keywords", "mailbox_id, idx, name", 3, "mailbox_id", "idx", 1,
};
static const struct table messages_tab = {
	"messages", "mailbox_id, uid, guid, base, file_id, offset, hdr_size, "
	"body_size, rec_size, size, vsize, compression, received, "
	"received_ns, saved, flags, keywords, in_new, new_info, mode", 20,
	"mailbox_id", "uid", 1,
};

static void copy_row(struct walk *w, sqlite3_stmt *from)
{
	for (int i = 0; i < w->ncols; i++)
		sqlite3_bind_value(w->ins, i + 1,
				   sqlite3_column_value(from, i));
	/* a row the damage garbled may break a constraint: it is left */
	if (sqlite3_step(w->ins) == SQLITE_DONE)
		w->copied++;
	sqlite3_reset(w->ins);
}

/* 1: a row was copied (its key in *key_r), 0: no row, -1: unreadable */
static int step_at(struct walk *w, sqlite3_stmt *st, int64_t k1, int64_t k2,
		   int64_t *key_r)
{
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, k1);
	sqlite3_bind_int64(st, 2, k2);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*key_r = sqlite3_column_int64(st, w->key_col);
		copy_row(w, st);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Every readable row with k1 (if the table has one), keys above -1. */
static void walk_key(struct walk *w, int64_t k1, int64_t limit)
{
	int64_t k = -1, p, dummy;
	int r;

	for (;;) {
		int64_t last = k;

		r = step_at(w, w->seek, k1, k, &k);
		if (r == 0)
			return;
		if (r > 0 && k > last)
			continue;
		/* unreadable, or keys out of order on a garbled page (the
		 * walk must go forward to end): probe on from the last key */
		k = last;
		w->damaged++;
		for (p = k + 1, r = -1; r < 0 && p <= limit &&
		     p <= k + SALVAGE_PROBE_MAX; p++)
			r = step_at(w, w->point, k1, p, &dummy);
		if (r < 0)
			return;
		k = p - 1;
	}
}

static int walk_open(sqlite3 *from, sqlite3 *to, const struct table *t,
		     struct walk *w)
{
	char sql[640];
	const char *k1 = t->k1 != NULL ? t->k1 : "?1";
	size_t n;

	memset(w, 0, sizeof(*w));
	w->ncols = t->ncols;
	w->key_col = t->key_col;
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s = ?1 AND %s > ?2"
		 " ORDER BY %s LIMIT 1", t->cols, t->name, k1, t->k2, t->k2);
	if (sqlite3_prepare_v2(from, sql, -1, &w->seek, NULL) != SQLITE_OK)
		return -1;
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s = ?1 AND "
		 "%s = ?2", t->cols, t->name, k1, t->k2);
	if (sqlite3_prepare_v2(from, sql, -1, &w->point, NULL) != SQLITE_OK)
		return -1;
	n = (size_t)snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO %s(%s) "
			     "VALUES (", t->name, t->cols);
	for (int i = 1; i <= t->ncols && n < sizeof(sql); i++)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s?%d",
				      i > 1 ? ", " : "", i);
	if (n < sizeof(sql))
		snprintf(sql + n, sizeof(sql) - n, ")");
	return sqlite3_prepare_v2(to, sql, -1, &w->ins, NULL) == SQLITE_OK ?
		0 : -1;
}

static void walk_close(struct walk *w)
{
	sqlite3_finalize(w->seek);
	sqlite3_finalize(w->point);
	sqlite3_finalize(w->ins);
}

/* The key/value pairs of meta: a tiny table, read by a plain scan. */
static void salvage_meta(sqlite3 *from, sqlite3 *to)
{
	sqlite3_stmt *sel = NULL, *ins = NULL;

	if (sqlite3_prepare_v2(from, "SELECT key, value FROM meta", -1, &sel,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(to, "INSERT OR REPLACE INTO meta(key, value) "
			       "VALUES (?1, ?2)", -1, &ins, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(sel) == SQLITE_ROW) {
		sqlite3_bind_value(ins, 1, sqlite3_column_value(sel, 0));
		sqlite3_bind_value(ins, 2, sqlite3_column_value(sel, 1));
		sqlite3_step(ins);
		sqlite3_reset(ins);
	}
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
}

static int salvage_table(sqlite3 *from, sqlite3 *to, const struct table *t,
			 int64_t *copied_r, int *damaged_r)
{
	sqlite3_stmt *boxes = NULL;
	struct walk w;
	int ret = -1;

	if (walk_open(from, to, t, &w) < 0)
		goto out;
	if (t->k1 == NULL) {
		walk_key(&w, 0, INT32_MAX);
		ret = 0;
		goto out;
	}
	/* per mailbox found; its next_uid bounds its uids */
	if (sqlite3_prepare_v2(to, "SELECT id, next_uid FROM mailboxes", -1,
			       &boxes, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(boxes) == SQLITE_ROW)
		walk_key(&w, sqlite3_column_int64(boxes, 0),
			 sqlite3_column_int64(boxes, 1) > 64 ?
			 sqlite3_column_int64(boxes, 1) : 64);
	ret = 0;
out:
	*copied_r = w.copied;
	*damaged_r += w.damaged;
	sqlite3_finalize(boxes);
	walk_close(&w);
	return ret;
}

static int open_damaged(const char *path, sqlite3 **db_r,
			struct dbox_err *err)
{
	int rc = sqlite3_open_v2(path, db_r, SQLITE_OPEN_READWRITE, NULL);

	if (rc != SQLITE_OK) {
		rc = dbox_fail(err, -EIO, "index %s: %s", path, *db_r != NULL ?
			       sqlite3_errmsg(*db_r) : sqlite3_errstr(rc));
		sqlite3_close(*db_r);
		return rc;
	}
	/* read, never write: the damaged file and its WAL stay as found */
	sqlite3_db_config(*db_r, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_exec(*db_r, "PRAGMA query_only=1", NULL, NULL, NULL);
	return 0;
}

int dindex_salvage(struct dindex *idx, const char *damaged,
		   struct dbox_err *err)
{
	const struct table *tabs[] = { &mailboxes_tab, &keywords_tab,
				       &messages_tab };
	int64_t copied[3] = { 0, 0, 0 };
	sqlite3 *from, *to = dindex_db(idx, err);
	int damaged_pages = 0, ret;

	if (to == NULL)
		return -EIO;
	ret = open_damaged(damaged, &from, err);
	if (ret < 0)
		return ret;
	ret = dindex_write_begin(idx, err);
	if (ret == 0) {
		salvage_meta(from, to);
		for (size_t i = 0; i < 3; i++)
			if (salvage_table(from, to, tabs[i], &copied[i],
					  &damaged_pages) < 0)
				dbox_log(DBOX_LOG_WARNING, "index %s: table %s "
					 "cannot be read: %s", damaged,
					 tabs[i]->name, sqlite3_errmsg(from));
		ret = dindex_write_commit(idx, err);
	}
	sqlite3_close(from);
	if (ret < 0)
		return ret;
	dbox_log(DBOX_LOG_WARNING, "index %s: read %lld mailboxes, %lld "
		 "keywords and %lld messages; %d damaged places skipped",
		 damaged, (long long)copied[0], (long long)copied[1],
		 (long long)copied[2], damaged_pages);
	return (int)copied[2];
}
