/* ops.c - the table of FUSE low-level operations of the maildir view,
 * with lookup, getattr, statfs, xattrs and the session's life cycle;
 * listings are in readdir.c, open/read/release in fileio.c, attributes
 * in attr.c, the write side in ops-write.c, deliver.c, dirs.c, rename.c.
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
#include "fileio.h"
#include "folders.h"
#include "kcache.h"
#include "ops.h"
#include "readdir.h"
#include "reply.h"
#include "sweep.h"
#include "totmp.h"

static int lookup_msg(const struct view_ino *dir, const char *name,
		      struct stat *st)
{
	struct dbox_msg m;
	int ret;

	if (strlen(name) > DBOX_NAME_MAX + 40)
		return -ENOENT;
	ret = opw_msg_in_sub(dir->box, dir->sub, name, &m);
	if (ret < 0)
		return ret;
	ops_attr_msg(st, &m);
	return 0;
}

static int lookup_backing(const struct view_ino *dir, const char *name,
			  struct stat *st)
{
	char shown[NAME_MAX + 1];
	enum backing_area area;
	struct binode *bi;
	int64_t box;
	int dirfd, ret;

	if (dir->kind == VK_PLAIN) {
		struct binode *parent = backing_get(view_ino_plain(dir));

		if (parent == NULL)
			return -ENOENT;
		ret = backing_lookup(backing_dirfd(parent), name, parent->box,
				     parent->area, &bi, st);
		backing_put(parent);
		return ret;
	}
	ret = ops_area_dirfd(dir, &dirfd, &area, &box);
	if (ret < 0)
		return ret == -EROFS ? -ENOENT : ret;
	/* no sweep ran: tmp/ as the next one leaves it */
	if (dboxfs.readonly && area == AREA_TMP)
		name = totmp_ro_backing(dirfd, name, shown, sizeof(shown));
	if (name != NULL && dboxfs.readonly && area != AREA_FILES &&
	    sweep_ro_leftover(box, dirfd, name))
		name = NULL;
	ret = name == NULL ? -ENOENT :
		backing_lookup(dirfd, name, box, area, &bi, st);
	close(dirfd);
	return ret;
}

static int lookup_in_folder(const struct view_ino *dir, const char *name,
			    struct stat *st)
{
	int64_t box = ops_dir_mailbox(dir);
	unsigned int subdirs = attr_subdirs_of(box);
	struct folder_list fl;
	struct folder_child c;
	char prefix[DBOX_NAME_MAX * 4 + 1];
	struct view_ino cv;
	int depth, ret;

	for (int i = 0; box != 0 && i < 3; i++) {
		if (strcmp(name, view_sub_names[i]) != 0)
			continue;
		if (!(subdirs & (1u << i)))
			return -ENOENT;
		cv = (struct view_ino){ .kind = VK_SUB, .box = box,
					.sub = (enum view_sub)i };
		return attr_sub(&cv, view_ino_sub(box, cv.sub), st);
	}
	if (box != 0 && strcmp(name, KWFILE_NAME) == 0 && attr_has_keywords(box))
		return ops_get_attr(view_ino_kwfile(box), st);
	ret = -ENOENT;
	if (dboxfs.layout == VIEW_FS || dir->kind == VK_ROOT) {
		ret = folders_load(dboxfs.store, &fl);
		if (ret < 0)
			return ret;
		depth = folders_prefix(&fl, dboxfs.layout, dir, prefix,
				       sizeof(prefix));
		ret = depth < 0 ? depth : folders_lookup(&fl, dboxfs.layout,
			prefix, (unsigned int)depth, dboxfs.inbox_id, name, &c);
		folders_free(&fl);
		if (ret == 0)
			return ops_get_attr(c.ino, st);
	}
	return ret;
}

int ops_resolve_view(const struct view_ino *dir, const char *name,
		     struct stat *st)
{
	if (dir->kind == VK_SUB && dir->sub != SUB_TMP)
		return lookup_msg(dir, name, st);
	if (dir->kind == VK_ROOT || dir->kind == VK_FOLDER ||
	    dir->kind == VK_VDIR)
		return lookup_in_folder(dir, name, st);
	return -ENOENT;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct view_ino dir;
	struct stat st;
	int ret;

	if (!view_ino_decode(parent, &dir))
		ret = -ENOENT;
	else
		ret = ops_resolve_view(&dir, name, &st);
	/* tmp/, files pending in cur/ and new/, plain files and dirs */
	if (ret == -ENOENT && (dir.kind == VK_SUB || dir.kind == VK_PLAIN ||
			       dir.kind == VK_ROOT || dir.kind == VK_FOLDER ||
			       dir.kind == VK_VDIR))
		ret = lookup_backing(&dir, name, &st);
	if (ret == -ENOENT) {
		reply_negative(req);
	} else if (ret < 0) {
		fuse_reply_err(req, dboxfs_errno(ret));
	} else {
		reply_entry_param(&e, &st);
		e.entry_timeout = kcache_add(parent, name, st.st_ino);
		e.attr_timeout = dboxfs.cache_timeout;
		fuse_reply_entry(req, &e);
	}
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int ret = ops_get_attr(ino, &st);

	(void)fi;
	st.st_ino = backing_shown_ino(st.st_ino);
	if (ret < 0)
		fuse_reply_err(req, dboxfs_errno(ret));
	else
		fuse_reply_attr(req, &st, dboxfs.cache_timeout);
}


/* ------------------------------------------------------ statfs, xattrs */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (statvfs(dbox_store_root(dboxfs.store), &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static int msg_xattr(uint64_t ino, const char *name, char *buf, size_t len)
{
	struct view_ino v;
	struct dbox_msg m;
	char path[4096], box[DBOX_NAME_MAX * 4 + 1];
	int ret;

	if (!view_ino_decode(ino, &v) || v.kind != VK_MSG)
		return -ENODATA;
	ret = dbox_msg_get(dboxfs.store, v.box, v.uid, &m, NULL);
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

		ret = dbox_mailbox_get(dboxfs.store, v.box, &b, NULL);
		if (ret < 0)
			return ret;
		snprintf(box, sizeof(box), "%s", b.name);
		return snprintf(buf, len, "%s", box);
	}
	if (strcmp(name, "user.dbox.file") == 0) {
		ret = dbox_msg_file_path(dboxfs.store, &m, path, sizeof(path));
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
	char buf[4200];
	int n;

	/* Like a filesystem without labels or ACLs: ls -l then stops asking
	 * security.* and system.* for the rest of the mount (spec 2). */
	if (strncmp(name, "user.", 5) != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	n = msg_xattr(ino, name, buf, sizeof(buf));
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
	(void)ino; (void)name; (void)value; (void)size; (void)flags;
	fuse_reply_err(req, dboxfs.readonly ? EROFS : ENOTSUP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino; (void)name;
	fuse_reply_err(req, dboxfs.readonly ? EROFS : ENOTSUP);
}

/* ------------------------------------------------------------ lifecycle */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
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
	if (dboxfs.readonly && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT))
		dboxfs.no_open = true;
	/* writes back of cached data never happen: messages are read-only */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void op_destroy(void *userdata)
{
	(void)userdata;
	fh_free_all();
	kcache_free_all();
}

/* Inode numbers of the view come from the data and need nothing freed;
 * only backing inodes hold a descriptor (a message's number too, once
 * it was renamed into tmp/). */
static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	kcache_forget(ino, nlookup);
	if ((ino >> 60) == VK_PLAIN || (ino >> 60) == VK_MSG)
		backing_forget(ino, nlookup);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* Without opens (read-only mounts, fileio.c) files come with no handle:
 * nothing was written, nothing to flush or sync.  ENOSYS to FLUSH makes
 * the kernel stop sending it, one round trip fewer per close. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh == 0)
		fuse_reply_err(req, ENOSYS);
	else
		opw_flush(req, ino, fi);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	if (fi->fh == 0)
		fuse_reply_err(req, 0);
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
	.readdir = readdir_list,
	.readdirplus = readdir_list_plus,
	.fsyncdir = readdir_fsync,
	.open = fileio_open,
	.read = fileio_read,
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
	.setattr = opw_setattr,
	.write_buf = opw_write_buf,
	.fsync = op_fsync,
	.flush = op_flush,
	.fallocate = opw_fallocate,
};

