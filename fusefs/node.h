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

#include "dboxfs.h"
#include "readdir.h"

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
};

#define NODE_BACKING 1

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
int node_dir_setattr(struct dboxfs *fs, const struct view_ino *v,
		     const struct stat *attr, int to_set,
		     struct fuse_file_info *fi);
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
