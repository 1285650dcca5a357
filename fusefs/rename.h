/* rename.h - what rename(2) and link(2) do, shared by the node kinds'
 * handlers (node.h): each kind's table names the ones that fit it. */
#ifndef DBOXFS_RENAME_H
#define DBOXFS_RENAME_H

#include <stdio.h>

#include "node.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* The source side (node_ops.rename) of any directory: a folder's rename
 * (its mailbox), else the backing file or directory, given to the target's
 * file_into. */
int rename_entry(fuse_req_t req, const struct view_ino *src,
		 const char *name, fuse_ino_t newparent,
		 const struct view_ino *dst, const char *newname,
		 unsigned int flags);
/* node_ops.msg_into: into cur/ or new/ (flags, keywords, new/cur state,
 * base; a move when dst is another mailbox's; RENAME_EXCHANGE trades two
 * messages' names); into anything but cur/ new/ tmp/: EXDEV. */
int rename_msg_to_sub(struct dboxfs *fs, const struct dbox_msg *m,
		      const struct view_ino *dst, const char *newname,
		      unsigned int flags);
/* A message of src (cur/ or new/) renamed into dst, cur/ or new/ of the
 * same folder, with no flags: a flag change, the message found inside
 * the update's own transaction.  -ENOENT (no message of that name) and
 * -EEXIST (the target's name is another message's) change nothing: the
 * caller takes the general way (rename_msg_to_sub, rename_entry). */
int rename_msg_in_folder(struct dboxfs *fs, const struct view_ino *src,
			 const char *name, const struct view_ino *dst,
			 const char *newname);
int rename_msg_refused(struct dboxfs *fs, const struct dbox_msg *m,
		       fuse_ino_t dir_ino, const struct view_ino *dir,
		       const char *newname, unsigned int flags);
/* node_ops.file_into: into cur/ new/ tmp/ (a final name in cur/ or new/
 * is a delivery: NODE_REPLIED, the committer replies); into a backing
 * area (renameat2). */
int rename_file_to_sub(fuse_req_t req, const struct view_ino *src,
		       const char *name, const struct view_ino *dst,
		       const char *newname, unsigned int flags);
int rename_file_to_area(fuse_req_t req, const struct view_ino *src,
			const char *name, const struct view_ino *dst,
			const char *newname, unsigned int flags);
/* node_ops.link_into: a delivery into cur/ or new/ (the committer
 * replies); a hard link in a backing area (replied with its entry). */
int rename_link_to_sub(fuse_req_t req, struct binode *bi, fuse_ino_t ino,
		       const struct view_ino *dst, const char *newname);
int rename_link_to_area(fuse_req_t req, struct binode *bi, fuse_ino_t ino,
			const struct view_ino *dst, const char *newname);

/* The handler table's entries of a node that holds no mailboxes and takes
 * no messages (messages, dovecot-keywords, backing files and
 * directories): what is removed, renamed or linked there is a backing
 * file. */
#define RENAME_BACKING_OPS \
	.rmdir = node_unlink_backing, \
	.rename = rename_entry, \
	.msg_into = rename_msg_refused, \
	.file_into = rename_file_to_area, \
	.link_into = rename_link_to_area, \
	.mailbox_of = node_no_mailbox

#endif
