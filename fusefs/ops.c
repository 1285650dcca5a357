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

static int msg_xattr(struct dboxfs *fs, uint64_t ino, const char *name,
		     char *buf, size_t len)
{
	struct view_ino v;
	struct dbox_msg m;
	char path[4096], box[DBOX_NAME_MAX * 4 + 1];
	int ret;

	if (!view_ino_decode(ino, &v) || v.kind != VK_MSG)
		return -ENODATA;
	ret = dbox_msg_get(fs->store, v.box, v.uid, &m, NULL);
	if (ret < 0)
		return ret;
	if (strcmp(name, "user.dbox.guid") == 0)
		return snprintf(buf, len, "%s", m.guid);
	if (strcmp(name, "user.dbox.uid") == 0)
		return snprintf(buf, len, "%u", m.uid);
	if (strcmp(name, "user.dbox.saved") == 0)
		return snprintf(buf, len, "%lld", (long long)m.saved);
	if (strcmp(name, "user.dbox.mailbox") == 0) {
		struct dbox_mailbox b;

		ret = dbox_mailbox_get(fs->store, v.box, &b, NULL);
		if (ret < 0)
			return ret;
		snprintf(box, sizeof(box), "%s", b.name);
		return snprintf(buf, len, "%s", box);
	}
	if (strcmp(name, "user.dbox.file") == 0) {
		ret = dbox_msg_file_path(fs->store, &m, path, sizeof(path));
		if (ret < 0)
			return ret;
		return snprintf(buf, len, "%s:%llu", path,
				(unsigned long long)dbox_msg_file_offset(&m));
	}
	return -ENODATA;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	char buf[4200];
	int n;

	/* Like a filesystem without labels or ACLs: ls -l then stops asking
	 * security.* and system.* for the rest of the mount (spec 2). */
	if (strncmp(name, "user.", 5) != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	n = msg_xattr(fs, ino, name, buf, sizeof(buf));
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
	static const char names[] = "user.dbox.guid\0user.dbox.uid\0"
		"user.dbox.mailbox\0user.dbox.file\0user.dbox.saved";
	struct view_ino v;

	if (!view_ino_decode(ino, &v) || v.kind != VK_MSG) {
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size == 0)
		fuse_reply_xattr(req, sizeof(names));
	else if (size < sizeof(names))
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names, sizeof(names));
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
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
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

const struct fuse_lowlevel_ops dboxfs_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.opendir = readdir_open,
	.releasedir = readdir_release,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.fsyncdir = readdir_fsync,
	.open = op_open,
	.read = op_read,
	.release = fileio_release,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.create = opw_create,
	.mknod = opw_mknod,
	.mkdir = opw_mkdir,
	.rmdir = opw_rmdir,
	.unlink = opw_unlink,
	.rename = opw_rename,
	.link = opw_link,
	.symlink = opw_symlink,
	.readlink = opw_readlink,
	.setattr = op_setattr,
	.write_buf = opw_write_buf,
	.fsync = op_fsync,
	.flush = op_flush,
	.fallocate = opw_fallocate,
};

