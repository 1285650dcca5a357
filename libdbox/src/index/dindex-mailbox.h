/* dindex-mailbox.h - mailbox rows (and their keywords) of the index. */
#ifndef DINDEX_MAILBOX_H
#define DINDEX_MAILBOX_H

#include <stddef.h>
#include <stdint.h>

#include "dbox/store.h"

struct dindex;

/* next_uid of the mailbox becomes uid + 1 unless it is above uid. */
int dindex_mailbox_raise_next_uid(struct dindex *idx, int64_t mailbox_id,
				  uint32_t uid, struct dbox_err *err);
/* Dovecot's view of a mailbox: its uidvalidity, a next_uid of at least
 * next_uid (0: the row's own) and above every uid the mailbox holds, and
 * its GUID (NULL: the row's own). */
int dindex_mailbox_resync(struct dindex *idx, int64_t mailbox_id,
			  uint32_t uidvalidity, uint32_t next_uid,
			  const char *guid, struct dbox_err *err);
/* Drops every message and keyword row of the mailbox (it was made anew
 * elsewhere); the mailbox row stays. */
int dindex_mailbox_forget(struct dindex *idx, int64_t mailbox_id,
			  struct dbox_err *err);
/* Drops every mailbox, with its messages, but those in ids[]. */
int dindex_mailbox_keep_only(struct dindex *idx, const int64_t *ids,
			     size_t count, struct dbox_err *err);

#endif
