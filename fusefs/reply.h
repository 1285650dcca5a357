/* reply.h - replies shared by the operations (besides dboxfs.h's
 * dboxfs_errno and reply_entry). */
#ifndef DBOXFS_REPLY_H
#define DBOXFS_REPLY_H

#include <sys/stat.h>

#include "dboxfs.h"

/* The entry of a node with attributes st and the mount's timeouts. */
void reply_entry_param(struct dboxfs *fs, struct fuse_entry_param *e,
		       const struct stat *st);
/* "No such name", cached by the kernel for the negative timeout. */
void reply_negative(fuse_req_t req);
/* Replies with the entry of a node with attributes st. */
void reply_entry(fuse_req_t req, const struct stat *st);

/* Before each reply (reply-wrap.c): the thread's index connection goes
 * back to the store's pool, so that the client's next request, on
 * whichever thread, finds it with this one's commit in its page cache
 * (dbox_store_release). */
void reply_release_store(fuse_req_t req);

/* Reply-once, asserted (as passthrough_ll and Dovecot's i_assert do):
 * each entry point runs in a scope of its request (ops.c); every
 * fuse_reply_* of that request is counted (reply-wrap.c, linked with
 * --wrap); at the end the request has had exactly one reply, or none
 * when it was handed to a thread that replies (the committer, the
 * flusher, an async read or open). */
void reply_scope_begin(fuse_req_t req);
void reply_scope_end(fuse_req_t req);
void reply_handed_off(fuse_req_t req);
void reply_counted(fuse_req_t req);

#endif
