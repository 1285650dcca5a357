/* readdir.h - open directories and their listings.  A directory handle
 * snapshots the names of its backing entries at the first readdir, so
 * that their cookies stay valid for the life of the handle. */
#ifndef DBOXFS_READDIR_H
#define DBOXFS_READDIR_H

#include "dboxfs.h"

void readdir_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void readdir_release(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi);
void readdir_list(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi);
void readdir_list_plus(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi);
void readdir_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		   struct fuse_file_info *fi);
/* Frees an FH_DIR handle (already untracked). */
void readdir_handle_free(struct fh *fh);

#endif
