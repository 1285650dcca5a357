/* dindex-reindex.h - the index side of a rebuild from the dbox files
 * (dbox_store_reindex): the old message rows are moved aside at the
 * start, and every record found takes over the state of the old row(s)
 * at its place.  All of it runs inside one index write. */
#ifndef DINDEX_REINDEX_H
#define DINDEX_REINDEX_H

#include <stdint.h>

#include "dbox/store.h"

struct dindex;

typedef int dindex_msg_fn(void *ctx, const struct dbox_msg *msg);

/* Moves the message and file rows aside (temp tables). */
int dindex_reindex_begin(struct dindex *idx, struct dbox_err *err);
/* A mailbox whose directory was found: it stays even if empty. */
int dindex_reindex_seen(struct dindex *idx, int64_t mailbox_id,
			struct dbox_err *err);
/* Calls fn with `found` carrying the old state (mailbox, uid, maildir
 * name, flags, keywords, dates, mode) of each old row at its place:
 * mdbox by (file, offset), sdbox by (sdbox_box, uid), and the same GUID.
 * *taken_r: how many there were. */
int dindex_reindex_take_old(struct dindex *idx, const struct dbox_msg *found,
			    int64_t sdbox_box, dindex_msg_fn *fn, void *ctx,
			    int *taken_r, struct dbox_err *err);
/* Keeps the old rows that lie beyond damage: mdbox (file_id != 0) from
 * offset on in that file, sdbox the row of (mailbox_id, uid).  Adds the
 * rows kept to *count. */
int dindex_reindex_keep_old(struct dindex *idx, uint32_t file_id,
			    uint64_t offset, int64_t mailbox_id, uint32_t uid,
			    int *count, struct dbox_err *err);
/* Removes the mailboxes that were not seen and hold nothing now, and the
 * temp tables. */
int dindex_reindex_finish(struct dindex *idx, struct dbox_err *err);
/* Rolls the write back and drops the temp tables. */
void dindex_reindex_abort(struct dindex *idx);

#endif
