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

#include <stdbool.h>

#include <sqlite3.h>

#include "dbox/store.h"

struct dindex;

/* The copies a caller keeps of messages (dbox_store_set_kept). */
struct dindex_kept {
	dbox_store_kept_fn fn;
	void *ctx;
};

/* On one read-write connection: a TEMP trigger gives every message row
 * deleted that k->fn says yes for a mark in the same statement, unless
 * it has one.  A trigger, not each caller: a row goes in many ways (an
 * expunge, a move, a followed Dovecot's sync, a reindex, a folder
 * deleted), and a way without the mark would let the start-up sweep
 * bring the copy back (the mount's pending/ files). */
void dindex_unconfirmed_attach(struct dindex_kept *k, sqlite3 *db);

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
/* The mark of a message moved to (to_box, to_uid), if it has one, is
 * copied to it under a new seq (a flush that listed the old one before
 * the move confirms up to its max, not this one); the old one stays,
 * its message gone.  *carried_r: there was one. */
int dindex_unconfirmed_move(struct dindex *idx, int64_t mailbox_id,
			    uint32_t uid, int64_t to_box, uint32_t to_uid,
			    bool *carried_r, struct dbox_err *err);
/* Whether message (mailbox_id, uid) has a mark: 1 yes, 0 no. */
int dindex_unconfirmed_has(struct dindex *idx, int64_t mailbox_id,
			   uint32_t uid, struct dbox_err *err);
/* A mark whose message was expunged or moved away stays until the
 * spool file its delivery kept is removed (the mount's pending/ area):
 * it tells "committed, then removed" from "never committed" for that
 * file.  gone: 1 message (mailbox_id, uid) has such a mark, 0 not.
 * forget: deletes that mark (mailbox_id 0: every such mark). */
int dindex_unconfirmed_gone(struct dindex *idx, int64_t mailbox_id,
			    uint32_t uid, struct dbox_err *err);
int dindex_unconfirmed_forget(struct dindex *idx, int64_t mailbox_id,
			      uint32_t uid, struct dbox_err *err);
/* Deletes every mark with seq <= max whose message is there. */
int dindex_unconfirmed_confirm(struct dindex *idx, int64_t max,
			       struct dbox_err *err);

#endif
