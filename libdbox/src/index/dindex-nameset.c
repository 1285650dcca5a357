/* dindex-nameset.c - dbox/nameset.h: the names as keys of a private
 * temporary SQLite database.  An in-memory hash table took 8 bytes per
 * name, and twice that while it grew (24 MiB at a million names); the
 * names themselves are kept, not hashes of them, so that the answer is
 * exact. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "dbox/nameset.h"
#include "util/util.h"

struct dbox_nameset {
	sqlite3 *db;
	sqlite3_stmt *insert;
};

/* No journal and one transaction never committed: the file is scratch,
 * dropped with the connection.  The cache holds the B-tree's inner pages
 * of millions of keys, so that an insert reads at most its leaf from the
 * file. */
static const char nameset_setup[] =
	"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
	"PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-4096;"
	"CREATE TABLE names(name TEXT PRIMARY KEY) WITHOUT ROWID; BEGIN;";
static const char nameset_insert[] =
	"INSERT OR IGNORE INTO names(name) VALUES (?1)";

static int nameset_fail(struct dbox_nameset *set, const char *what,
			struct dbox_err *err)
{
	int ret = dbox_fail(err, -EIO, "name set: %s: %s", what,
			    set->db != NULL ? sqlite3_errmsg(set->db) :
			    "out of memory");

	dbox_nameset_close(set);
	return ret;
}

int dbox_nameset_open(struct dbox_nameset **set_r, struct dbox_err *err)
{
	struct dbox_nameset *set = calloc(1, sizeof(*set));

	*set_r = NULL;
	if (set == NULL)
		return dbox_fail(err, -ENOMEM, "name set: out of memory");
	/* "": a private on-disk database, deleted when closed */
	if (sqlite3_open_v2("", &set->db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		return nameset_fail(set, "open", err);
	if (sqlite3_exec(set->db, nameset_setup, NULL, NULL, NULL) !=
	    SQLITE_OK)
		return nameset_fail(set, "setup", err);
	if (sqlite3_prepare_v2(set->db, nameset_insert, -1, &set->insert,
			       NULL) != SQLITE_OK)
		return nameset_fail(set, "prepare", err);
	*set_r = set;
	return 0;
}

int dbox_nameset_add(struct dbox_nameset *set, const char *name,
		     struct dbox_err *err)
{
	int rc;

	sqlite3_bind_text(set->insert, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(set->insert);
	sqlite3_reset(set->insert);
	sqlite3_clear_bindings(set->insert);
	if (rc != SQLITE_DONE)
		return dbox_fail(err, -EIO, "name set: %s",
				 sqlite3_errmsg(set->db));
	return sqlite3_changes(set->db) == 1 ? 1 : 0;
}

void dbox_nameset_close(struct dbox_nameset *set)
{
	if (set == NULL)
		return;
	sqlite3_finalize(set->insert);
	sqlite3_close(set->db);
	free(set);
}
