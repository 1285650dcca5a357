/* dindex-removed.h - the message rows this process removed, with the
 * names they had (private to libdbox).
 *
 * A reader that keeps names of messages (the daemon's record of the
 * names the kernel caches) cannot build the name of a message whose row
 * is gone.  A TEMP trigger on every connection of the index hands each
 * removed row (expunge, move, a followed Dovecot's sync, a reindex, a
 * deleted folder) to a bounded record in memory, which the reader takes
 * after each change.  Rows removed by another process are not seen; nor
 * are rows past the bound: the reader treats a message missing from the
 * record as it did without one.  A removal that is rolled back stays
 * recorded, which only costs the reader a needless invalidation. */
#ifndef DINDEX_REMOVED_H
#define DINDEX_REMOVED_H

#include <sqlite3.h>
#include <stddef.h>

#include "dbox/store.h"

/* Rows kept until taken; past it new ones are left out (~1.1 MiB). */
#define DINDEX_REMOVED_MAX 4096

struct dindex_removed;

/* A record, empty; NULL without memory. */
struct dindex_removed *dindex_removed_new(void);
void dindex_removed_free(struct dindex_removed *r);
/* Installs the trigger on db (a new connection of the index).  Fails
 * harmlessly: the reader then falls back as for rows it did not see. */
void dindex_removed_attach(struct dindex_removed *r, sqlite3 *db);
/* The rows recorded since the last take, oldest first (*rows_r: free()
 * it); their number, or -ENOMEM. */
int dindex_removed_take(struct dindex_removed *r,
			struct dbox_removed **rows_r);

#endif
