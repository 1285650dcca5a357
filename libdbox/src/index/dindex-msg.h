/* dindex-msg.h - message rows of the index.  Writes are made inside the
 * caller's write transaction. */
#ifndef DINDEX_MSG_H
#define DINDEX_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "dbox/store.h"

struct dindex;

/* -ENOENT ("no such message") when there is none; msg_r may be NULL. */
int dindex_msg_get(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		   struct dbox_msg *msg_r, struct dbox_err *err);
/* The lowest uid of those with this base (names, not bases, are
 * unique). */
int dindex_msg_by_base(struct dindex *idx, int64_t mailbox_id,
		       const char *base, struct dbox_msg *msg_r,
		       struct dbox_err *err);
/* By the exact name the maildir view shows in new/ (in_new) or cur/. */
int dindex_msg_by_name(struct dindex *idx, int64_t mailbox_id, bool in_new,
		       const char *name, struct dbox_msg *msg_r,
		       struct dbox_err *err);
/* One page of a mailbox's messages, as dbox_msg_list: uid > after_uid in
 * uid order, at most limit (0 = all), in_new -1 all, 0 cur/, 1 new/.
 * Returns how many were passed to fn (a non-zero return stops). */
int dindex_msgs_page(struct dindex *idx, int64_t mailbox_id,
		     uint32_t after_uid, int in_new, unsigned int limit,
		     int (*fn)(void *ctx, const struct dbox_msg *msg),
		     void *ctx, struct dbox_err *err);
int dindex_msg_count(struct dindex *idx, int64_t mailbox_id, int in_new,
		     uint64_t *count_r, struct dbox_err *err);
/* Messages of every mailbox. */
int dindex_msgs_total(struct dindex *idx, int *count_r, struct dbox_err *err);

/* -EEXIST if the uid or the maildir name is taken in its directory. */
int dindex_msg_insert(struct dindex *idx, const struct dbox_msg *msg,
		      struct dbox_err *err);
int dindex_msg_delete(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		      struct dbox_err *err);
/* A message's maildir name (base, flags, keywords, new/ or cur/) in one
 * statement: names are unique per directory, which a change of one part
 * at a time could break halfway.  -EEXIST if another message of the
 * directory has the resulting name, -ENOENT if there is no such row.
 * base NULL: the row keeps its base. */
int dindex_msg_set_name(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
			const char *base, uint32_t flags, uint32_t keywords,
			bool in_new, bool new_info, struct dbox_err *err);
/* These three: -ENOENT ("no such message") when there is no such row. */
/* What a maildir name says: flags, keywords, new/ or cur/. */
int dindex_msg_set_flags(struct dindex *idx, int64_t mailbox_id,
			 uint32_t uid, uint32_t flags, uint32_t keywords,
			 bool in_new, struct dbox_err *err);
int dindex_msg_set_mode(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
			uint32_t mode, struct dbox_err *err);
int dindex_msg_set_received(struct dindex *idx, int64_t mailbox_id,
			    uint32_t uid, int64_t received,
			    int64_t received_ns, struct dbox_err *err);
/* The message at uid of the mailbox takes new_uid. */
int dindex_msg_set_uid(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		       uint32_t new_uid, struct dbox_err *err);

#endif
