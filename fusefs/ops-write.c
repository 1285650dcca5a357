/* ops-write.c - the write side of the maildir view (maildir-view.md
 * sections 3-5): the helpers every change starts with, unlink (what it
 * does in each kind of directory: node.h) and symlinks.  Delivery is in
 * deliver.c, mkdir/rmdir in dirs.c, rename and link by the node kinds
 * (node.h, rename.c),
 * setattr in the node kinds (node-msg.c, node-plain.c, node.c).
 *
 * Every change to a message or folder is one index transaction that is
 * durable when the request returns; deliveries go through the committer
 * (commit.c), which groups concurrent ones. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "node.h"
#include "ops.h"

/* ------------------------------------------------------------- helpers */

bool opw_refuse_readonly(fuse_req_t req)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	if (!fs->readonly)
		return false;
	fuse_reply_err(req, EROFS);
	return true;
}

/* What every change starts with: refused on a read-only mount, and the
 * directory it happens in decoded.  false: the request has its reply. */
bool opw_begin_change(fuse_req_t req, fuse_ino_t parent, struct view_ino *v)
{
	if (opw_refuse_readonly(req))
		return false;
	if (!view_ino_decode(parent, v)) {
		fuse_reply_err(req, ENOENT);
		return false;
	}
	return true;
}

int opw_area_of(struct dboxfs *fs, const struct view_ino *v, int *dirfd_r,
		   enum backing_area *area_r, int64_t *box_r)
{
	return node_of(v)->area(fs, v, dirfd_r, area_r, box_r);
}

/* A file, directory or link made in the backing tree belongs to the
 * process that made it, as on a native filesystem: the daemon runs as
 * root, and a client running as the mail user (Dovecot's maildir driver,
 * notmuch) must be able to open, and link(), what it created; the kernel
 * checks the owner (default_permissions, protected_hardlinks). */
int opw_own(fuse_req_t req, int dirfd, const char *name)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat parent;
	gid_t gid = ctx->gid;

	if (geteuid() != 0 || (ctx->uid == 0 && ctx->gid == 0))
		return 0;
	/* the group of a setgid directory, as the kernel gives it */
	if (fstat(dirfd, &parent) == 0 && (parent.st_mode & S_ISGID))
		gid = parent.st_gid;
	if (fchownat(dirfd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

void opw_reply_backing_entry(fuse_req_t req, int dirfd, const char *name,
			     int64_t box, enum backing_area area)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct binode *bi;
	struct stat st;
	int ret = opw_own(req, dirfd, name);

	if (ret == 0)
		ret = backing_lookup(fs, dirfd, name, box, area, &bi, &st);

	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		reply_entry(req, &st);
}

/* ------------------------------------------------------------- unlink */

void opw_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	enum backing_area area;
	struct dbox_err err = { "" };
	struct view_ino v;
	int64_t box;
	int dirfd = -1, ret;

	if (!opw_begin_change(req, parent, &v))
		return;
	ret = node_of(&v)->unlink(fs, &v, name);
	if (ret != NODE_BACKING) {
		fuse_reply_err(req, -ret);
		return;
	}
	ret = opw_area_of(fs, &v, &dirfd, &area, &box);
	if (ret < 0) {
		fuse_reply_err(req, ret == -ENOENT ? ENOENT : -ret);
		return;
	}
	/* a link()ed delivery's tmp/ file is its only durable copy until
	 * its commit is durable (flush.h) */
	if (area == AREA_TMP && dbox_store_sync_pending(fs->store) &&
	    dbox_store_sync(fs->store, &err) < 0)
		fuse_log(FUSE_LOG_WARNING, "dboxfs: flush before unlink of "
			 "%s: %s\n", name, err.msg);
	ret = unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	close(dirfd);
	fuse_reply_err(req, -ret);
}


/* ------------------------------------------------------ rename, link */

/* The kind of the source directory decides (node.h: rename), the kind of
 * the target what the entry becomes there; replied here unless the
 * committer replies. */
void opw_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct view_ino src, dst;
	int ret;

	if (opw_refuse_readonly(req))
		return;
	if (!view_ino_decode(parent, &src) || !view_ino_decode(newparent, &dst)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ret = node_of(&src)->rename(req, &src, name, newparent, &dst, newname,
				    flags);
	if (ret == NODE_REPLIED)
		return;
	fuse_reply_err(req, ret < 0 ? dboxfs_errno(ret) : 0);
}

void opw_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	      const char *newname)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct view_ino dst;
	struct binode *bi;
	int64_t msg_box;
	uint32_t msg_uid;
	int ret;

	if (opw_refuse_readonly(req))
		return;
	bi = backing_get(fs, ino);
	/* messages are linked nowhere: tools copy instead */
	if (bi == NULL || backing_msg_of(fs, bi, &msg_box, &msg_uid) ||
	    !view_ino_decode(newparent, &dst))
		ret = -EXDEV;
	else
		ret = node_of(&dst)->link_into(req, bi, ino, &dst, newname);
	backing_put(fs, bi);
	if (ret != NODE_REPLIED)
		fuse_reply_err(req, -ret);
}

/* ------------------------------------------------- symlinks, attributes */

void opw_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		 const char *name)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	enum backing_area area;
	struct view_ino v;
	int64_t box;
	int dirfd = -1, ret;

	if (!opw_begin_change(req, parent, &v))
		return;
	ret = opw_create_target(fs, &v, name, &dirfd, &area, &box);
	if (ret == 0 && area != AREA_FILES) {
		close(dirfd);
		ret = -EPERM;
	}
	if (ret == 0 && symlinkat(link, dirfd, name) < 0) {
		ret = -errno;
		close(dirfd);
	}
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	opw_reply_backing_entry(req, dirfd, name, box, area);
	close(dirfd);
}

void opw_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct binode *bi = backing_get(fs, ino);
	char buf[PATH_MAX + 1];
	ssize_t n;

	if (bi == NULL) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = readlinkat(bi->fd, "", buf, sizeof(buf) - 1);
	backing_put(fs, bi);
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}
