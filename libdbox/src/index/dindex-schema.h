/* dindex-schema.h - the index's schema: each version's SQL, and the
 * migrations from any older version to DINDEX_SCHEMA_VERSION (the file's
 * PRAGMA user_version says which it has).  Called by dindex.c's open
 * only. */
#ifndef DINDEX_SCHEMA_H
#define DINDEX_SCHEMA_H

#include <sqlite3.h>

#include "dbox/store.h"

struct dindex;

/* Read-write open: turns on WAL and runs every migration from the file's
 * version to ours, each in its own transaction with its version bump;
 * -EPROTONOSUPPORT for a file newer than this dboxfs. */
int dindex_schema_migrate(struct dindex *idx, sqlite3 *db,
			  struct dbox_err *err);
/* Read-only open: -EPROTONOSUPPORT unless the file has our version (it
 * cannot be migrated). */
int dindex_schema_check_readonly(struct dindex *idx, sqlite3 *db,
				 struct dbox_err *err);

#endif
