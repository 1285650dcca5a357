/* fileio.h - open, read and release of files of the view. */
#ifndef DBOXFS_FILEIO_H
#define DBOXFS_FILEIO_H

#include "dboxfs.h"

/* Opens of each kind of file (node-*.c); each replies. */
void fileio_open_kwfile(struct dboxfs *fs, fuse_req_t req,
			struct fuse_file_info *fi);
void fileio_open_msg(struct dboxfs *fs, fuse_req_t req, int64_t box,
		     uint32_t uid, uint64_t ino, struct fuse_file_info *fi);
void fileio_open_plain(struct dboxfs *fs, fuse_req_t req, uint64_t ino,
		       struct fuse_file_info *fi);
/* Whether fileio_open_msg of the message of inode ino (uid of box; not
 * moved to a tmp/ file, node-msg.c) is answered without the index or
 * the disk: a refusal, or a warm open that does not move the checks
 * ahead on (loop.h).  Thread-safe. */
bool fileio_open_msg_quick(struct dboxfs *fs, uint64_t ino, int64_t box,
			   uint32_t uid, int flags);
/* Reads without a handle (read-only mounts answer opens with ENOSYS:
 * reads come by inode), by kind; each replies. */
void fileio_read_kwfile(struct dboxfs *fs, fuse_req_t req, fuse_ino_t ino,
			size_t size, off_t off);
void fileio_read_msg_ino(struct dboxfs *fs, fuse_req_t req, int64_t box,
			 uint32_t uid, uint64_t ino, size_t size, off_t off);
void fileio_read_plain_ino(struct dboxfs *fs, fuse_req_t req, uint64_t ino,
			   size_t size, off_t off);
/* A read through an open handle (fi->fh != 0). */
void fileio_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi);
void fileio_release(fuse_req_t req, fuse_ino_t ino,
		    struct fuse_file_info *fi);

#endif
