/* dindex-owed.h - changes a takeover mount owes Dovecot (schema v5, table
 * dovecot_owed): made to messages of a mailbox of Dovecot's while its
 * transaction log could not take them (missing, damaged, locked too
 * long).  The follower hands them back later and deletes the rows in the
 * same transaction (dbox_dovecot_back_owed); until then its sync of the
 * mailbox keeps our state of those messages.  Writes are made inside the
 * caller's write transaction. */
#ifndef DINDEX_OWED_H
#define DINDEX_OWED_H

#include <stdbool.h>
#include <stdint.h>

#include "dbox/store.h"

struct dindex;

enum dindex_owed_kind {
	DINDEX_OWED_FLAGS = 1,     /* the row's current flags and keywords */
	DINDEX_OWED_EXPUNGE = 2,   /* the message is gone */
	DINDEX_OWED_APPEND = 3,    /* delivered or moved in */
};

struct dindex_owed {
	int64_t mailbox_id;
	uint32_t uid;
	enum dindex_owed_kind kind;
	char guid[DBOX_GUID_MAX + 1];   /* expunge: the message's GUID */
	bool unref;                     /* expunge, mdbox: one reference less */
	/* flags: the message's flags and keywords before the first owed
	 * change; only what differs from them is ours to hand back */
	uint32_t base_flags, base_keywords;
};

/* Records o; one of the same message and kind there already stays (its
 * base is the older). */
int dindex_owed_add(struct dindex *idx, const struct dindex_owed *o,
		    struct dbox_err *err);
int dindex_owed_delete(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		       enum dindex_owed_kind kind, struct dbox_err *err);
/* Every row of mailbox_id (its uids name other messages now). */
int dindex_owed_forget(struct dindex *idx, int64_t mailbox_id,
		       struct dbox_err *err);
/* Every row of mailbox_id (0: of all), by mailbox, uid and kind; a
 * non-zero return of fn stops the walk and is returned. */
int dindex_owed_each(struct dindex *idx, int64_t mailbox_id,
		     int (*fn)(void *ctx, const struct dindex_owed *o),
		     void *ctx, struct dbox_err *err);
/* 1 if there is any row, 0 if not, -errno. */
int dindex_owed_any(struct dindex *idx, struct dbox_err *err);

#endif
