/* fileio.h - open, read and release of files of the view. */
#ifndef DBOXFS_FILEIO_H
#define DBOXFS_FILEIO_H

#include "ops.h"

void fileio_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fileio_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi);
void fileio_release(fuse_req_t req, fuse_ino_t ino,
		    struct fuse_file_info *fi);

#endif
