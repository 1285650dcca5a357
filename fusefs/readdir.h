/* readdir.h - open directories and their listings.  A directory handle
 * snapshots the names of its backing entries at the first readdir, so
 * that their cookies stay valid for the life of the handle. */
#ifndef DBOXFS_READDIR_H
#define DBOXFS_READDIR_H

#include "dboxfs.h"

void readdir_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void readdir_release(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi);
/* A listing of directory v from cookie off: the entries list (the
 * handler of v's kind, passed down by the entry point) puts in the
 * buffer; 0 or -errno (an error after entries fitted is not reported). */
struct dirbuf;
typedef int readdir_lister(struct dirbuf *d, const struct view_ino *v,
			   off_t off);
/* Replies to READDIR(PLUS) with what list gives. */
void readdir_reply(fuse_req_t req, const struct view_ino *v, size_t size,
		   off_t off, struct fuse_file_info *fi, bool plus,
		   readdir_lister *list);
/* The listers of the kinds: cur/ new/ tmp/; the root, a folder or a
 * vdir; a backing directory. */
readdir_lister readdir_sub, readdir_folder, readdir_plain;
void readdir_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		   struct fuse_file_info *fi);
/* Frees an FH_DIR handle (already untracked). */
void readdir_handle_free(struct fh *fh);

#endif
