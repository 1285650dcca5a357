/* ops.h - the write side's entry points (ops-write.c, deliver.c, dirs.c),
 * which ops.c's table names, and the helpers they share.
 * Nothing below them (the node kinds, attr.c, commit.c, ...) includes
 * this. */
#ifndef DBOXFS_OPS_H
#define DBOXFS_OPS_H

#include <sys/stat.h>

#include "attr.h"
#include "backing.h"
#include "dboxfs.h"
#include "deliver.h"
#include "handles.h"
#include "moved.h"
#include "msgname.h"
#include "reply.h"

/* ops-write.c: shared by the write side */
/* Refuses a change on a read-only mount; true: the request has its reply. */
bool opw_refuse_readonly(fuse_req_t req);
/* Refused on a read-only mount, and the directory it happens in decoded.
 * false: the request has its reply. */
bool opw_begin_change(fuse_req_t req, fuse_ino_t parent, struct view_ino *v);
/* The backing area directory v shows (its kind's area: a folder's plain
 * files, cur/ new/ tmp/'s, or a backing directory's own). */
int opw_area_of(struct dboxfs *fs, const struct view_ino *v, int *dirfd_r,
		enum backing_area *area_r, int64_t *box_r);
/* Gives a new backing entry to the requesting user (as a native
 * filesystem does) when the daemon runs as root; 0 or -errno. */
int opw_own(fuse_req_t req, int dirfd, const char *name);
/* Owns (opw_own) and replies with the entry of a new backing name. */
void opw_reply_backing_entry(fuse_req_t req, int dirfd, const char *name,
			     int64_t box, enum backing_area area);
int opw_create_target(struct dboxfs *fs, const struct view_ino *v,
		      const char *name, int *dirfd_r, enum backing_area *area_r,
		      int64_t *box_r);
void opw_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi);
void opw_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, dev_t rdev);
void opw_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode);
void opw_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void opw_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void opw_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned int flags);
void opw_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	      const char *newname);
void opw_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		 const char *name);
void opw_readlink(fuse_req_t req, fuse_ino_t ino);
void opw_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf,
		   off_t off, struct fuse_file_info *fi);
void opw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi);
void opw_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void opw_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi);

#endif
