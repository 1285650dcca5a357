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

#endif
