/* node.h - what each kind of node of the view does (Dovecot's vfuncs,
 * libfuse's passthrough_hp): ops.c decodes the inode of a request, takes
 * the handler table of its kind (node_of) and calls the handler; the
 * handlers replying themselves (open, read) reply exactly once, the
 * others return 0 or -errno and ops.c replies.
 *
 * Kinds: node-folder.c (the root, folders, fs-layout vdirs), node-dir.c
 * (cur/ new/ tmp/), node-msg.c (messages), node-kwfile.c
 * (dovecot-keywords), node-plain.c (backing files and directories). */
#ifndef DBOXFS_NODE_H
#define DBOXFS_NODE_H

#include <sys/stat.h>

#include "backing.h"
#include "dboxfs.h"
#include "readdir.h"

struct folder_list;
struct sweepro_list;

struct node_ops {
	/* name in this directory: 0 and *st (with a lookup count taken
	 * on a binode), -ENOENT, or -errno */
	int (*lookup)(struct dboxfs *fs, const struct view_ino *dir,
		      const char *name, struct stat *st);
	int (*getattr)(struct dboxfs *fs, const struct view_ino *v,
		       struct stat *st);
	/* after a successful setattr ops.c replies with getattr's */
	int (*setattr)(struct dboxfs *fs, const struct view_ino *v,
		       const struct stat *attr, int to_set,
		       struct fuse_file_info *fi);
	/* reply themselves */
	void (*open)(struct dboxfs *fs, fuse_req_t req,
		     const struct view_ino *v, struct fuse_file_info *fi);
	/* the entries of a directory (readdir.h); -ENOTDIR for files */
	readdir_lister *list;
	/* a read without a handle (read-only mounts have no opens) */
	void (*read)(struct dboxfs *fs, fuse_req_t req,
		     const struct view_ino *v, size_t size, off_t off);
	/* The write side (ops-write.c, deliver.c, dirs.c) asks the kind of
	 * the parent directory.  May name be created (create, mknod,
	 * symlink) in dir's backing area: 0 or -errno. */
	int (*may_create)(struct dboxfs *fs, const struct view_ino *dir,
			  const char *name);
	/* May a directory other than a folder's cur/ new/ tmp/ be made in
	 * dir: 0 or -errno. */
	int (*may_mkdir)(struct dboxfs *fs, const struct view_ino *dir,
			 const char *name);
	/* Removes name from dir: 0, -errno, or NODE_BACKING: a file of
	 * dir's backing area, which the caller unlinks. */
	int (*unlink)(struct dboxfs *fs, const struct view_ino *dir,
		      const char *name);
	/* Removes directory name from dir: as unlink. */
	int (*rmdir)(struct dboxfs *fs, const struct view_ino *dir,
		     const char *name);
	/* rename(2) of name out of dir (to newname in dst, newparent's
	 * view): 0, -errno, or NODE_REPLIED (the committer replies).  The
	 * source's kind says what moves; the target's (msg_into,
	 * file_into) what it becomes there. */
	int (*rename)(fuse_req_t req, const struct view_ino *dir,
		      const char *name, fuse_ino_t newparent,
		      const struct view_ino *dst, const char *newname,
		      unsigned int flags);
	/* Message m renamed into dir (inode dir_ino) as newname: 0 or
	 * -errno. */
	int (*msg_into)(struct dboxfs *fs, const struct dbox_msg *m,
			fuse_ino_t dir_ino, const struct view_ino *dir,
			const char *newname, unsigned int flags);
	/* Backing file name of directory src renamed into dir as newname:
	 * as rename. */
	int (*file_into)(fuse_req_t req, const struct view_ino *src,
			 const char *name, const struct view_ino *dir,
			 const char *newname, unsigned int flags);
	/* link(2) of backing file bi (inode ino) into dir as newname:
	 * NODE_REPLIED (the request has its reply) or -errno. */
	int (*link_into)(fuse_req_t req, struct binode *bi, fuse_ino_t ino,
			 const struct view_ino *dir, const char *newname);
	/* The mailbox a directory named name in dir stands for (0 and
	 * *is_mailbox false: a plain directory there instead). */
	int (*mailbox_of)(struct dboxfs *fs, const struct view_ino *dir,
			  const char *name, char *mailbox, size_t len,
			  bool *is_mailbox);
	/* The backing area directory v shows (O_PATH fd). */
	int (*area)(struct dboxfs *fs, const struct view_ino *v, int *dirfd_r,
		    enum backing_area *area_r, int64_t *box_r);
	/* Extended attribute name of v into buf: its length, or -errno
	 * (-ENODATA: none by that name). */
	int (*getxattr)(struct dboxfs *fs, const struct view_ino *v,
			const char *name, char *buf, size_t len);
	/* The names of v's extended attributes (each NUL-terminated): the
	 * length of *names_r. */
	size_t (*listxattr)(const struct view_ino *v, const char **names_r);
	/* What name in dir is in the view itself (attr_resolve_view): 0
	 * and *st, -ENOENT, or -errno. */
	int (*resolve)(struct dboxfs *fs, const struct view_ino *dir,
		       const char *name, struct stat *st);
	/* Whether directory v holds child folders (the root; any
	 * folder-level directory in the fs layout). */
	bool (*holds_folders)(struct dboxfs *fs, const struct view_ino *v);
	/* The mtime (ns) of folder-level directory v (mailbox-name prefix
	 * prefix in fl) when its plain-file area has none (dirtime_dir_ns);
	 * 0 if none. */
	int64_t (*base_ns)(struct dboxfs *fs, const struct view_ino *v,
			   const struct folder_list *fl, const char *prefix);
	/* An entry of dir was made, removed or renamed by the view
	 * (dirtime_folder_changed): its mtime moves. */
	void (*changed)(struct dboxfs *fs, const struct view_ino *dir);
	/* Read-only mounts: the files the next sweep moves into directory
	 * v (no sweep ran), into *out. */
	void (*moved)(struct dboxfs *fs, const struct view_ino *v,
		      struct sweepro_list *out);
	/* Whether the names in directory v change outside the mount (the
	 * store's index), where the follower drops what the kernel keeps of
	 * them (kcache.c): the kernel may keep its listing (readdir_open).
	 * tmp/ and plain directories change only through the mount. */
	bool (*followed)(const struct view_ino *v);
	/* Whether the backing files of directory v are files pending for
	 * its messages (cur/ new/), which readdir skips once it listed
	 * their message; the others (tmp/, plain files) are all shown. */
	bool (*pending)(const struct view_ino *v);
	/* Whether a change of mailboxes boxes (n of them; n < 0: any) can
	 * change a name the kernel caches in directory v (kcache_check):
	 * folder-level directories always (they are few), cur/ new/ tmp/
	 * of a changed mailbox, plain directories never (only the mount
	 * changes them). */
	bool (*in_scope)(const struct view_ino *v, const int64_t *boxes, int n);
};

#define NODE_BACKING 1
#define NODE_REPLIED 2

extern const struct node_ops node_folder_ops, node_dir_ops, node_msg_ops,
	node_kwfile_ops, node_plain_ops;

/* The handlers of v's kind. */
const struct node_ops *node_of(const struct view_ino *v);

/* Shared by the kinds: a name among the backing files of directory dir
 * (tmp/, files pending in cur/ and new/, plain files and dirs). */
int node_lookup_backing(struct dboxfs *fs, const struct view_ino *dir,
			const char *name, struct stat *st);
/* What files do in a directory, and directories as files. */
int node_no_lookup(struct dboxfs *fs, const struct view_ino *dir,
		   const char *name, struct stat *st);
readdir_lister node_not_dir;
/* The write side's defaults: files go to the backing area; files cannot
 * hold files (EPERM, as an unknown kind) nor directories. */
int node_create_backing(struct dboxfs *fs, const struct view_ino *dir,
			const char *name);
int node_no_create(struct dboxfs *fs, const struct view_ino *dir,
		   const char *name);
int node_mkdir_backing(struct dboxfs *fs, const struct view_ino *dir,
		       const char *name);
int node_no_mkdir(struct dboxfs *fs, const struct view_ino *dir,
		  const char *name);
int node_unlink_backing(struct dboxfs *fs, const struct view_ino *dir,
			const char *name);
/* Directories that stand for no mailbox; the backing area of any node
 * but a backing directory or cur/ new/ tmp/: a folder's plain files
 * (-ENOENT for nodes without). */
int node_no_mailbox(struct dboxfs *fs, const struct view_ino *dir,
		    const char *name, char *mailbox, size_t len,
		    bool *is_mailbox);
/* Nodes without extended attributes. */
int node_no_xattr(struct dboxfs *fs, const struct view_ino *v,
		  const char *name, char *buf, size_t len);
size_t node_no_xattrs(const struct view_ino *v, const char **names_r);
/* Nodes without child folders, times of their own or files a sweep
 * moves in (resolve: node_no_lookup); the names of the view follow the
 * store. */
bool node_no_folders(struct dboxfs *fs, const struct view_ino *v);
int64_t node_no_base(struct dboxfs *fs, const struct view_ino *v,
		     const struct folder_list *fl, const char *prefix);
void node_no_change(struct dboxfs *fs, const struct view_ino *dir);
void node_no_moved(struct dboxfs *fs, const struct view_ino *v,
		   struct sweepro_list *out);
bool node_followed(const struct view_ino *v);
bool node_no_pending(const struct view_ino *v);
/* Files hold no names; kcache_check looks them up as before. */
bool node_in_scope(const struct view_ino *v, const int64_t *boxes, int n);
int node_area_view(struct dboxfs *fs, const struct view_ino *v, int *dirfd_r,
		   enum backing_area *area_r, int64_t *box_r);
/* node-folder.c, for the rename of folders: removing an empty mailbox;
 * whether name in dir is an fs-layout directory that only holds
 * mailboxes (a parent that is no mailbox); whether that parent holds
 * nothing: 0, -ENOTEMPTY, or -ENOENT if it is none (a folder, or
 * nothing). */
int node_folder_rmdir_mailbox(struct dboxfs *fs, int64_t box);
bool node_folder_is_vdir(struct dboxfs *fs, const struct view_ino *dir,
			 const char *name);
int node_folder_vdir_empty(struct dboxfs *fs, const struct view_ino *dir,
			   const char *name);
void node_dir_open(struct dboxfs *fs, fuse_req_t req, const struct view_ino *v,
		   struct fuse_file_info *fi);
void node_dir_read(struct dboxfs *fs, fuse_req_t req, const struct view_ino *v,
		   size_t size, off_t off);
/* setattr of a message (its received time and mode; the size never
 * changes), and of a binode (a backing file, or the message it became):
 * also for a message renamed into tmp/ (node-msg.c). */
int node_msg_setattr_of(struct dboxfs *fs, int64_t box, uint32_t uid,
			const struct stat *attr, int to_set);
int node_plain_setattr_of(struct dboxfs *fs, uint64_t ino,
			  const struct stat *attr, int to_set,
			  struct fuse_file_info *fi);

#endif
