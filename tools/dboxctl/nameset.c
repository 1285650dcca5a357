/* nameset.c - a set of names in bounded memory: 64-bit hashes as the keys
 * of a private temporary SQLite database, whose pages beyond a small cache
 * live in a temporary file (SQLite's temp directory: SQLITE_TMPDIR,
 * TMPDIR, /var/tmp, ...), not in the process.  An in-memory hash table
 * took 8 bytes per name, and twice that while it grew (24 MiB at a
 * million names). */
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>

#include "dboxctl.h"
#include "nameset.h"

struct nameset {
	sqlite3 *db;
	sqlite3_stmt *insert;
};

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;  /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int nameset_fail(struct nameset *set, const char *what)
{
	ctl_error("name set: %s: %s", what, set->db != NULL ?
		  sqlite3_errmsg(set->db) : "out of memory");
	nameset_close(set);
	return -EIO;
}

/* No journal and one transaction never committed: the file is scratch,
 * dropped with the connection.  The cache (4 MiB) holds the B-tree's
 * inner pages of tens of millions of keys, so that an insert reads at
 * most its leaf from the file. */
static const char nameset_setup[] =
	"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
	"PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-4096;"
	"CREATE TABLE names(h INTEGER PRIMARY KEY); BEGIN;";

int nameset_open(struct nameset **set_r)
{
	struct nameset *set = calloc(1, sizeof(*set));

	*set_r = NULL;
	if (set == NULL) {
		ctl_error("out of memory");
		return -ENOMEM;
	}
	/* "": a private on-disk database, deleted when closed */
	if (sqlite3_open_v2("", &set->db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		return nameset_fail(set, "open");
	if (sqlite3_exec(set->db, nameset_setup, NULL, NULL, NULL) !=
	    SQLITE_OK)
		return nameset_fail(set, "setup");
	if (sqlite3_prepare_v2(set->db, "INSERT OR IGNORE INTO names(h) "
			       "VALUES (?)", -1, &set->insert, NULL) !=
	    SQLITE_OK)
		return nameset_fail(set, "prepare");
	*set_r = set;
	return 0;
}

int nameset_add(struct nameset *set, const char *name)
{
	int rc;

	sqlite3_bind_int64(set->insert, 1, (sqlite3_int64)name_hash(name));
	rc = sqlite3_step(set->insert);
	sqlite3_reset(set->insert);
	if (rc != SQLITE_DONE) {
		ctl_error("name set: %s", sqlite3_errmsg(set->db));
		return -EIO;
	}
	return sqlite3_changes(set->db) == 1 ? 1 : 0;
}

void nameset_close(struct nameset *set)
{
	if (set == NULL)
		return;
	sqlite3_finalize(set->insert);
	sqlite3_close(set->db);
	free(set);
}
