/* dindex-unconfirmed.h - messages whose index row was committed before
 * their record was durable (schema v4, table unconfirmed).
 *
 * A deferred commit (the maildir view without -o sync) writes a
 * message's record and its row without a device flush; the row is
 * marked here in the same transaction.  The group flush makes the
 * marked records durable, then deletes the marks up to what it synced
 * (dindex_unconfirmed_confirm); a read-write open after a power cut
 * verifies the records still marked.  Writes are made inside the
 * caller's write transaction. */
#ifndef DINDEX_UNCONFIRMED_H
#define DINDEX_UNCONFIRMED_H

#include <stdint.h>

#include "dbox/store.h"

struct dindex;

int dindex_unconfirmed_add(struct dindex *idx, int64_t mailbox_id,
			   uint32_t uid, struct dbox_err *err);
/* The newest mark's seq (0: none). */
int dindex_unconfirmed_max(struct dindex *idx, int64_t *seq_r,
			   struct dbox_err *err);
/* Every mark with seq <= max, oldest first; a non-zero return of fn
 * stops the walk and is returned. */
int dindex_unconfirmed_each(struct dindex *idx, int64_t max,
			    int (*fn)(void *ctx, int64_t mailbox_id,
				      uint32_t uid),
			    void *ctx, struct dbox_err *err);
/* Deletes every mark with seq <= max. */
int dindex_unconfirmed_confirm(struct dindex *idx, int64_t max,
			       struct dbox_err *err);

#endif
