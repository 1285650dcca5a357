/* dbox-msg-private.h - what the message files share: the checks of a
 * record's framing and GUID (dbox-msg-verify.c) that a read of bytes the
 * store read ahead makes too (dbox-msg-read.c).  Not public. */
#ifndef DBOX_MSG_PRIVATE_H
#define DBOX_MSG_PRIVATE_H

#include <stddef.h>

#include "dbox/store.h"

/* The checks of a record's framing on what was read of it: the message
 * header (hdr_n bytes) and the 4 bytes after the body (post_n). */
int dbox_msg_check_framing(const char *path, const struct dbox_msg *m,
			   const unsigned char *hdr, size_t hdr_n,
			   const unsigned char *post, size_t post_n,
			   struct dbox_err *err);
/* The length of the metadata region of a record to read (from the post
 * magic on). */
size_t dbox_msg_meta_len(const struct dbox_msg *m);
/* The record's GUID (metadata G) must be the index's.  meta: n bytes
 * from the post magic on. */
int dbox_msg_check_guid(const char *path, const struct dbox_msg *m,
			const unsigned char *meta, size_t n,
			struct dbox_err *err);

#endif
