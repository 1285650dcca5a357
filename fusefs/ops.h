/* ops.h - what the read-side (ops.c) and write-side (ops-write.c)
 * operations share. */
#ifndef DBOXFS_OPS_H
#define DBOXFS_OPS_H

#include <sys/stat.h>

#include "backing.h"
#include "dboxfs.h"

#define KWFILE_NAME "dovecot-keywords"

/* Open file handles (fi->fh). */
enum fh_type { FH_MSG = 1, FH_FD, FH_KWFILE, FH_DIR };

struct fh {
	enum fh_type type;
	int fd;                   /* FH_FD */
	bool wrote;
	/* FH_FD of a file created in cur/ or new/ under its final name:
	 * committed as a message when it is closed */
	bool commit_on_release;
	int64_t box;
	enum backing_area area;
	char name[DBOX_NAME_MAX + 48];
	uint64_t ino;
	struct fh *prev, *next;   /* list of open handles */
};

/* Every open handle is on a list, so that those the kernel never releases
 * (a lazy unmount with files open) are freed at exit. */
void fh_track(struct fh *fh);
void fh_untrack(struct fh *fh);
/* At exit: frees every handle left on the list (handles.c). */
void fh_free_all(void);

/* The mailbox whose cur/new/tmp a directory holds (0: none). */
int64_t ops_dir_mailbox(const struct view_ino *v);
/* The mailbox whose plain-file area a directory is (0 for the fs-layout
 * root, -1 for directories that cannot hold plain files). */
int64_t ops_files_box(const struct view_ino *v);
int ops_get_attr(uint64_t ino, struct stat *st);
/* What name in dir is in the view itself (a message, cur/ new/ tmp/, a
 * folder, dovecot-keywords), without the backing files: lookup's first
 * step, and kcache.c's check, which must not take backing references. */
int ops_resolve_view(const struct view_ino *dir, const char *name,
		     struct stat *st);
/* The message the kernel knows as (box, uid), following moves. */
int ops_msg_follow(int64_t box, uint32_t uid, struct dbox_msg *m);
void ops_reply_entry(fuse_req_t req, const struct stat *st);
void ops_attr_msg(struct stat *st, const struct dbox_msg *m);
/* Directory fd (O_PATH) of the backing area that directory `v` shows
 * (AREA_FILES of a folder, tmp/, pending cur/ or new/); -ENOENT if none. */
int ops_area_dirfd(const struct view_ino *v, int *fd_r,
		   enum backing_area *area_r, int64_t *box_r);
/* Commit job from a backing file now named src_name in src_dirfd. */
struct commit_job;
int ops_make_commit_job(int src_dirfd, const char *src_name, uint64_t src_ino,
			int64_t box, enum view_sub sub, const char *name,
			bool unlink_src, struct commit_job **job_r);

/* ops-write.c */

/* Shared by the write side (ops-write.c, deliver.c, dirs.c, rename.c) */
void opw_moved_add(uint64_t from, uint64_t to);
/* Refuses a change on a read-only mount; true: the request has its reply. */
bool opw_refuse_readonly(fuse_req_t req);
/* Refused on a read-only mount, and the directory it happens in decoded.
 * false: the request has its reply. */
bool opw_begin_change(fuse_req_t req, fuse_ino_t parent, struct view_ino *v);
/* The backing area directory v shows (ops_area_dirfd, or a backing
 * directory's own). */
int opw_area_of(const struct view_ino *v, int *dirfd_r,
		enum backing_area *area_r, int64_t *box_r);
void opw_reply_backing_entry(fuse_req_t req, int dirfd, const char *name,
			     int64_t box, enum backing_area area);
int opw_msg_in_sub(int64_t box, enum view_sub sub, const char *name,
		   struct dbox_msg *m);
int opw_msg_named_like(int64_t box, const struct dbox_msg *t,
		       struct dbox_msg *m);
int opw_msg_at_target(int64_t box, enum view_sub sub, const char *base,
		      const char *info, struct dbox_msg *m);
uint32_t opw_msg_mode(mode_t mode);
/* dirs.c, for rename.c: the mailbox a directory named name in v stands
 * for; removing an empty mailbox; whether name in v is a virtual dir. */
int opw_mailbox_for_dirname(const struct view_ino *v, const char *name,
			    char *mailbox, size_t len, bool *is_mailbox);
int opw_rmdir_mailbox(int64_t box);
bool opw_is_vdir(const struct view_ino *v, const char *name);
int opw_create_target(const struct view_ino *v, const char *name,
		      int *dirfd_r, enum backing_area *area_r,
		      int64_t *box_r);
/* Where a message that was recently moved to another folder went (its
 * new inode number), 0 if it was not. */
uint64_t ops_moved_to(uint64_t from);
/* The binode that answers for the message node ino when that message
 * was renamed into tmp/ (a file there): ino itself, or, since the kernel
 * keeps the node of a message moved to another folder, the number the
 * message had when it was renamed; 0 while ino stands for a message. */
uint64_t ops_file_node(uint64_t ino);
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
void opw_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		 int to_set, struct fuse_file_info *fi);
void opw_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf,
		   off_t off, struct fuse_file_info *fi);
void opw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi);
void opw_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void opw_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi);
/* Called on release of an FH_FD handle; frees it. */
void opw_release_fd(struct fh *fh);

#endif
