/* ops.c - the table of FUSE low-level operations of the maildir view:
 * the entry points decode the inode of a request, call the handler of its
 * kind (node.h: node-folder.c, node-dir.c, node-msg.c, node-kwfile.c,
 * node-plain.c) and reply; statfs, xattrs and the session's life cycle
 * are here; listings are in readdir.c, opens and reads in fileio.c, the
 * write side in ops-write.c, deliver.c, dirs.c, rename.c.
 *
 * Lookups, getattr and readdir are answered from the index (a few indexed
 * SQLite reads on the calling thread; WAL readers never wait for writers).
 * Message reads never touch the disk on the FUSE thread: they are submitted
 * to the store's async fs layer and the completion replies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <dirent.h>
#include <fcntl.h>

#include "attr.h"
#include "commit.h"
#include "flush.h"
#include "fileio.h"
#include "folders.h"
#include "kcache.h"
#include "loop.h"
#include "node.h"
#include "ops.h"
#include "readdir.h"
#include "reply.h"

/* The node of a request's inode; false: replied ENOENT. */
static bool decode(fuse_req_t req, fuse_ino_t ino, struct view_ino *v)
{
	if (view_ino_decode(ino, v))
		return true;
	fuse_reply_err(req, ENOENT);
	return false;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	struct view_ino dir;
	struct stat st;
	int ret;

	if (!view_ino_decode(parent, &dir))
		ret = -ENOENT;
	else
		ret = node_of(&dir)->lookup(fs, &dir, name, &st);
	if (ret == -ENOENT) {
		reply_negative(req);
	} else if (ret < 0) {
		fuse_reply_err(req, dboxfs_errno(ret));
	} else {
		reply_entry_param(fs, &e, &st);
		e.entry_timeout = kcache_add(fs, parent, name, st.st_ino);
		e.attr_timeout = fs->cache_timeout;
		fuse_reply_entry(req, &e);
	}
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct view_ino v;
	struct stat st;
	int ret;

	(void)fi;
	if (!decode(req, ino, &v))
		return;
	ret = node_of(&v)->getattr(fs, &v, &st);
	if (ret < 0) {
		fuse_reply_err(req, dboxfs_errno(ret));
		return;
	}
	st.st_ino = backing_shown_ino(fs, st.st_ino);
	fuse_reply_attr(req, &st, fs->cache_timeout);
}

/* ACCESS comes only without default_permissions (main.c: a mount made
 * by root without allow_other, so the caller is root) for access(2) and
 * chdir: root may read, write and search anything, and execute what has
 * an execute bit, as the kernel's own check gives root on a local
 * filesystem.  EROFS for W_OK on a read-only mount is the VFS's. */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct view_ino v;
	struct stat st;
	int ret;

	if (!(mask & X_OK)) {
		fuse_reply_err(req, 0);
		return;
	}
	if (!decode(req, ino, &v))
		return;
	ret = node_of(&v)->getattr(fs, &v, &st);
	if (ret == 0 && !S_ISDIR(st.st_mode) &&
	    !(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
		ret = -EACCES;
	fuse_reply_err(req, ret < 0 ? dboxfs_errno(ret) : 0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	const struct node_ops *node;
	struct view_ino v;
	struct stat st;
	int ret;

	if (!opw_begin_change(req, ino, &v))
		return;
	node = node_of(&v);
	ret = node->setattr(fs, &v, attr, to_set, fi);
	if (ret == 0)
		ret = node->getattr(fs, &v, &st);
	if (ret < 0) {
		fuse_reply_err(req, dboxfs_errno(ret));
		return;
	}
	st.st_ino = backing_shown_ino(fs, st.st_ino);
	fuse_reply_attr(req, &st, fs->attr_timeout);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct view_ino v;

	if (fs->no_open) {
		/* the kernel stops sending opens: reads come by inode */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (decode(req, ino, &v))
		node_of(&v)->open(fs, req, &v, fi);
}

/* Opens answered without the index (a refusal, a warm message, ENOSYS
 * read-only), and the releases of messages' opens (fileio_release):
 * the loop's reader runs them itself (loop.h).  A message that leaves
 * the verified table between this and its open takes the full path on
 * the reader: one indexed SQLite read, its check handed off as ever. */
bool dboxfs_quick(void *ctx, const struct loop_req *r)
{
	struct dboxfs *fs = ctx;
	struct view_ino v;

	switch (r->kind) {
	case LOOP_REQ_OPEN:
		if (fs->no_open)
			return true;
		return view_ino_decode(r->ino, &v) && v.kind == VK_MSG &&
			fileio_open_msg_quick(fs, v.ino, v.box, v.uid,
					      r->flags);
	case LOOP_REQ_RELEASE:
		/* a message's handle is freed; a file's may commit */
		return r->fh == 0 ||
			((const struct fh *)(uintptr_t)r->fh)->type == FH_MSG;
	default:
		return false;
	}
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct view_ino v;

	if (decode(req, ino, &v))
		readdir_reply(req, &v, size, off, fi, false, node_of(&v)->list);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct view_ino v;

	if (decode(req, ino, &v))
		readdir_reply(req, &v, size, off, fi, true, node_of(&v)->list);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct view_ino v;

	if (fi->fh != 0)
		fileio_read(req, ino, size, off, fi);
	else if (decode(req, ino, &v))
		node_of(&v)->read(fs, req, &v, size, off);
}


/* ------------------------------------------------------ statfs, xattrs */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct statvfs sv;

	(void)ino;
	if (statvfs(dbox_store_root(fs->store), &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct view_ino v;
	char buf[4200];
	int n;

	/* Like a filesystem without labels or ACLs: ls -l then stops asking
	 * security.* and system.* for the rest of the mount (spec 2). */
	if (strncmp(name, "user.", 5) != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	n = view_ino_decode(ino, &v) ?
		node_of(&v)->getxattr(fs, &v, name, buf, sizeof(buf)) :
		-ENODATA;
	if (n < 0)
		fuse_reply_err(req, -n == ENOENT ? ENODATA : dboxfs_errno(n));
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	const char *names = NULL;
	struct view_ino v;
	size_t len = view_ino_decode(ino, &v) ?
		node_of(&v)->listxattr(&v, &names) : 0;

	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names, len);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	(void)ino; (void)name; (void)value; (void)size; (void)flags;
	fuse_reply_err(req, fs->readonly ? EROFS : ENOTSUP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	(void)ino; (void)name;
	fuse_reply_err(req, fs->readonly ? EROFS : ENOTSUP);
}

/* ------------------------------------------------------------ lifecycle */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct dboxfs *fs = userdata;
	/* libfuse 3.14: capabilities are bits in conn->want */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* every directory read is a READDIRPLUS: with AUTO the kernel sends
	 * plain READDIRs once the first names are looked up, then looks most
	 * names up one by one, and the page-cache pushes of a message's mdbox
	 * neighbours (pagepush.c) find no inode to fill.  libfuse sets AUTO by
	 * default, so it is cleared, not just left out.  -o readdirplus_auto
	 * keeps the kernel's choice, for plain listings of huge folders. */
	if (fs->readdirplus_auto && (conn->capable & FUSE_CAP_READDIRPLUS_AUTO))
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	else
		conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* message bytes are spliced from the dbox files into replies */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* a read-only mount has no per-open state to keep: reads name the
	 * file by its inode (fileio.c) */
	if (fs->readonly && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT))
		fs->no_open = true;
	/* writes back of cached data never happen: messages are read-only */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void op_destroy(void *userdata)
{
	struct dboxfs *fs = userdata;
	fh_free_all(fs, readdir_handle_free);
	kcache_free_all(fs);
}

/* Inode numbers of the view come from the data and need nothing freed;
 * only backing inodes hold a descriptor (a message's number too, once
 * it was renamed into tmp/). */
static void forget_one(struct dboxfs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	kcache_forget(fs, ino, nlookup);
	if ((ino >> 60) == VK_PLAIN || (ino >> 60) == VK_MSG)
		backing_forget(fs, ino, nlookup);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(fuse_req_userdata(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct dboxfs *fs = fuse_req_userdata(req);

	for (size_t i = 0; i < count; i++)
		forget_one(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* Without opens (read-only mounts, fileio.c) files come with no handle:
 * nothing was written, nothing to flush or sync.  ENOSYS to FLUSH makes
 * the kernel stop sending it, one round trip fewer per close.  On a
 * read-write mount a message opened warm has no handle either
 * (open_warm), and comes with noflush; FLUSH must never be ENOSYS there
 * (opw_flush), and its fsync is a message's: it waits for the commits
 * before it, as with a handle (opw_fsync). */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);

	if (fi->fh == 0)
		fuse_reply_err(req, fs->readonly ? ENOSYS : 0);
	else
		opw_flush(req, ino, fi);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);

	if (fi->fh == 0 && fs->readonly)
		fuse_reply_err(req, 0);
	else if (fi->fh == 0)
		flush_request(fs, req);
	else
		opw_fsync(req, ino, datasync, fi);
}

/* Each entry point in its request's reply scope (reply.h): the handler
 * replies exactly once, or hands the request to a thread that does; at
 * the end its index connection goes back to the pool (the reply gave it
 * back already, unless the handler used the index after it). */
#define CHECKED(op, handler, params, args) \
	static void checked_##op params \
	{ \
		struct dboxfs *fs_ = fuse_req_userdata(req); \
		reply_scope_begin(req); \
		handler args; \
		reply_scope_end(req); \
		if (fs_->store != NULL) \
			dbox_store_release(fs_->store); \
	}

CHECKED(lookup, op_lookup,
	(fuse_req_t req, fuse_ino_t parent, const char *name),
	(req, parent, name))
CHECKED(forget, op_forget,
	(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup),
	(req, ino, nlookup))
CHECKED(forget_multi, op_forget_multi,
	(fuse_req_t req, size_t count, struct fuse_forget_data *forgets),
	(req, count, forgets))
CHECKED(getattr, op_getattr,
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
CHECKED(access, op_access,
	(fuse_req_t req, fuse_ino_t ino, int mask),
	(req, ino, mask))
CHECKED(opendir, readdir_open,
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
CHECKED(releasedir, readdir_release,
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
CHECKED(readdir, op_readdir,
	(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	 struct fuse_file_info *fi),
	(req, ino, size, off, fi))
CHECKED(readdirplus, op_readdirplus,
	(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	 struct fuse_file_info *fi),
	(req, ino, size, off, fi))
CHECKED(fsyncdir, readdir_fsync,
	(fuse_req_t req, fuse_ino_t ino, int datasync,
	 struct fuse_file_info *fi),
	(req, ino, datasync, fi))
CHECKED(open, op_open,
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
CHECKED(read, op_read,
	(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	 struct fuse_file_info *fi),
	(req, ino, size, off, fi))
CHECKED(release, fileio_release,
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
CHECKED(statfs, op_statfs,
	(fuse_req_t req, fuse_ino_t ino),
	(req, ino))
CHECKED(getxattr, op_getxattr,
	(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size),
	(req, ino, name, size))
CHECKED(listxattr, op_listxattr,
	(fuse_req_t req, fuse_ino_t ino, size_t size),
	(req, ino, size))
CHECKED(setxattr, op_setxattr,
	(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
	 size_t size, int flags),
	(req, ino, name, value, size, flags))
CHECKED(removexattr, op_removexattr,
	(fuse_req_t req, fuse_ino_t ino, const char *name),
	(req, ino, name))
CHECKED(create, opw_create,
	(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	 struct fuse_file_info *fi),
	(req, parent, name, mode, fi))
CHECKED(mknod, opw_mknod,
	(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	 dev_t rdev),
	(req, parent, name, mode, rdev))
CHECKED(mkdir, opw_mkdir,
	(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode),
	(req, parent, name, mode))
CHECKED(rmdir, opw_rmdir,
	(fuse_req_t req, fuse_ino_t parent, const char *name),
	(req, parent, name))
CHECKED(unlink, opw_unlink,
	(fuse_req_t req, fuse_ino_t parent, const char *name),
	(req, parent, name))
CHECKED(rename, opw_rename,
	(fuse_req_t req, fuse_ino_t parent, const char *name,
	 fuse_ino_t newparent, const char *newname, unsigned int flags),
	(req, parent, name, newparent, newname, flags))
CHECKED(link, opw_link,
	(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	 const char *newname),
	(req, ino, newparent, newname))
CHECKED(symlink, opw_symlink,
	(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name),
	(req, link, parent, name))
CHECKED(readlink, opw_readlink,
	(fuse_req_t req, fuse_ino_t ino),
	(req, ino))
CHECKED(setattr, op_setattr,
	(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
	 struct fuse_file_info *fi),
	(req, ino, attr, to_set, fi))
CHECKED(write_buf, opw_write_buf,
	(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf, off_t off,
	 struct fuse_file_info *fi),
	(req, ino, buf, off, fi))
CHECKED(fsync, op_fsync,
	(fuse_req_t req, fuse_ino_t ino, int datasync,
	 struct fuse_file_info *fi),
	(req, ino, datasync, fi))
CHECKED(flush, op_flush,
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
CHECKED(fallocate, opw_fallocate,
	(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
	 struct fuse_file_info *fi),
	(req, ino, mode, offset, length, fi))

const struct fuse_lowlevel_ops dboxfs_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = checked_lookup,
	.forget = checked_forget,
	.forget_multi = checked_forget_multi,
	.getattr = checked_getattr,
	.access = checked_access,
	.opendir = checked_opendir,
	.releasedir = checked_releasedir,
	.readdir = checked_readdir,
	.readdirplus = checked_readdirplus,
	.fsyncdir = checked_fsyncdir,
	.open = checked_open,
	.read = checked_read,
	.release = checked_release,
	.statfs = checked_statfs,
	.getxattr = checked_getxattr,
	.listxattr = checked_listxattr,
	.setxattr = checked_setxattr,
	.removexattr = checked_removexattr,
	.create = checked_create,
	.mknod = checked_mknod,
	.mkdir = checked_mkdir,
	.rmdir = checked_rmdir,
	.unlink = checked_unlink,
	.rename = checked_rename,
	.link = checked_link,
	.symlink = checked_symlink,
	.readlink = checked_readlink,
	.setattr = checked_setattr,
	.write_buf = checked_write_buf,
	.fsync = checked_fsync,
	.flush = checked_flush,
	.fallocate = checked_fallocate,
};
