/* dindex-msg.h - message rows of the index. */
#ifndef DINDEX_MSG_H
#define DINDEX_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "dbox/store.h"

struct dindex;

int dindex_msg_delete(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		      struct dbox_err *err);
/* What a maildir name says: flags, keywords, new/ or cur/. */
int dindex_msg_set_flags(struct dindex *idx, int64_t mailbox_id,
			 uint32_t uid, uint32_t flags, uint32_t keywords,
			 bool in_new, struct dbox_err *err);
/* The message at uid of the mailbox takes new_uid. */
int dindex_msg_set_uid(struct dindex *idx, int64_t mailbox_id, uint32_t uid,
		       uint32_t new_uid, struct dbox_err *err);
/* Messages of every mailbox. */
int dindex_msgs_total(struct dindex *idx, int *count_r, struct dbox_err *err);

#endif
