/* mdbox-orig.h - a moved mdbox message's B (original mailbox) follows it.
 *
 * Dovecot, handed a store of ours, rebuilds its indexes from the m.N
 * files (force-resync) and puts every record that no index of its own
 * references into the mailbox its B key names (mdbox-storage-rebuild.c,
 * rebuild_restore_msg; dbox-format.md 5.8): a message moved through the
 * mount went back to the mailbox it was first saved to.  So a move
 * rewrites B in place, in the room our records keep for it
 * (DBOX_META_ORIG_ROOM, a pad line); the record keeps its length, so
 * nothing else in the file moves, and our own reindex (which also places
 * records by B) agrees. */
#ifndef MDBOX_ORIG_H
#define MDBOX_ORIG_H

#include "dbox/store.h"

/* Inside the move's index write, before its commit: B of msg's record
 * names mailbox_id, durable (fsync) before the commit can be, as every
 * record byte an index row relies on (fusefs/flush.h).  0 also when
 * there is nothing to do (sdbox, B already right); -ENOSPC when the
 * record has no room for the name (a Dovecot record, a long name: then
 * logged, and the caller goes on). */
int mdbox_orig_set(struct dbox_store *store, const struct dbox_msg *msg,
		   int64_t mailbox_id, struct dbox_err *err);

#endif
