/* node-dir.c - cur/, new/ and tmp/ of a mailbox: the messages of cur/
 * and new/ from the index; the files of tmp/ and those pending in cur/
 * and new/ from the backing area. */
#include <errno.h>
#include <unistd.h>

#include "attr.h"
#include "dirmode.h"
#include "dirtime.h"
#include "kcache.h"
#include "msgname.h"
#include "node.h"
#include "rename.h"
#include "sweep-ro.h"
#include "totmp.h"

/* cur/ and new/ show their messages; tmp/ only backing files */
static int dir_resolve(struct dboxfs *fs, const struct view_ino *dir,
		       const char *name, struct stat *st)
{
	return dir->sub != SUB_TMP ? attr_resolve_msg(fs, dir, name, st) :
		-ENOENT;
}

/* the files of tmp/, and those pending in cur/ and new/ */
static int dir_area(struct dboxfs *fs, const struct view_ino *v,
		    int *dirfd_r, enum backing_area *area_r, int64_t *box_r)
{
	*area_r = backing_area_of_sub(v->sub);
	*box_r = v->box;
	return backing_area_dir(fs, v->box, *area_r, dirfd_r);
}

/* Read-only mounts: no sweep ran: the spool as the next one leaves it,
 * where files may come into a tmp/ that does not exist yet. */
static int dir_lookup_ro(struct dboxfs *fs, const struct view_ino *dir,
			 const char *name, struct stat *st)
{
	enum backing_area area;
	int64_t box;
	int dirfd = -1, ret = dir_area(fs, dir, &dirfd, &area, &box);

	if (ret < 0 && dir->sub != SUB_TMP)
		return ret == -EROFS ? -ENOENT : ret;
	ret = sweepro_lookup(fs, dir->box, area, ret == 0 ? dirfd : -1, name,
			     st);
	if (dirfd >= 0)
		close(dirfd);
	return ret;
}

static int dir_lookup(struct dboxfs *fs, const struct view_ino *dir,
		      const char *name, struct stat *st)
{
	int ret = dir_resolve(fs, dir, name, st);

	if (ret != -ENOENT)
		return ret;
	return fs->readonly ? dir_lookup_ro(fs, dir, name, st) :
		node_lookup_backing(fs, dir, name, st);
}

static int dir_getattr(struct dboxfs *fs, const struct view_ino *v,
		       struct stat *st)
{
	return attr_sub(fs, v, v->ino, st);
}

static int dir_setattr(struct dboxfs *fs, const struct view_ino *v,
		       const struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	int ret;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_SIZE)
		return -EISDIR;
	ret = dirmode_set(fs, v, attr, to_set);
	return ret < 0 ? ret : dirtime_set_sub(fs, v, attr, to_set);
}

/* cur/ new/ tmp/ hold no directories */
static int dir_may_mkdir(struct dboxfs *fs, const struct view_ino *dir,
			 const char *name)
{
	(void)fs; (void)dir; (void)name;
	return -EPERM;
}

/* unlink of a message is its expunge; tmp/'s files and those pending
 * are backing files */
static int dir_unlink(struct dboxfs *fs, const struct view_ino *dir,
		      const char *name)
{
	struct dbox_err err = { "" };
	struct dbox_msg m;
	int ret;

	if (dir->sub == SUB_TMP ||
	    msgname_in_sub(fs, dir->box, dir->sub, name, &m) != 0)
		return NODE_BACKING;
	ret = dbox_msg_expunge(fs->store, dir->box, m.uid, &err);
	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: expunge %s: %s\n", name,
			 err.msg);
	else
		flush_expunged(fs);
	return ret < 0 ? -dboxfs_errno(ret) : 0;
}

/* a message of cur/ or new/ is renamed as a message (by the target's
 * kind); tmp/'s files and those pending are backing files */
static int dir_rename(fuse_req_t req, const struct view_ino *dir,
		      const char *name, fuse_ino_t newparent,
		      const struct view_ino *dst, const char *newname,
		      unsigned int flags)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct dbox_msg m;
	int ret;

	/* a flag change: one write transaction finds and renames it */
	if (dir->sub != SUB_TMP && flags == 0 && dst->kind == VK_SUB &&
	    dst->box == dir->box && dst->sub != SUB_TMP) {
		ret = rename_msg_in_folder(fs, dir, name, dst, newname);
		if (ret != -ENOENT && ret != -EEXIST)
			return ret;
	}
	if (dir->sub == SUB_TMP ||
	    msgname_in_sub(fs, dir->box, dir->sub, name, &m) != 0)
		return rename_entry(req, dir, name, newparent, dst, newname,
				    flags);
	return node_of(dst)->msg_into(fs, &m, newparent, dst, newname,
				      flags);
}

/* a message renamed into tmp/ becomes a file there (totmp.c); none
 * trades places with a file of tmp/ */
static int dir_msg_into(struct dboxfs *fs, const struct dbox_msg *m,
			fuse_ino_t dir_ino, const struct view_ino *dir,
			const char *newname, unsigned int flags)
{
	int ret;

	if (dir->sub == SUB_TMP && (flags & RENAME_EXCHANGE))
		return -EXDEV;
	ret = dir->sub == SUB_TMP ?
		totmp_rename(fs, m, dir->box, newname, flags) :
		rename_msg_to_sub(fs, m, dir, newname, flags);
	/* moved to another folder, or a file in tmp/ now: the kernel's
	 * node may stand for the message it was before; it answers through
	 * moved_to until the follower drops the name */
	if (ret == 0 && !(flags & RENAME_EXCHANGE) &&
	    (dir->sub == SUB_TMP || dir->box != m->mailbox_id))
		kcache_drop_later(fs, dir_ino, newname);
	return ret;
}

/* a link into cur/ or new/ delivers; tmp/ holds backing files */
static int dir_link_into(fuse_req_t req, struct binode *bi, fuse_ino_t ino,
			 const struct view_ino *dir, const char *newname)
{
	return dir->sub != SUB_TMP ?
		rename_link_to_sub(req, bi, ino, dir, newname) :
		rename_link_to_area(req, bi, ino, dir, newname);
}

/* No sweep ran on a read-only mount: tmp/ as the next one leaves it. */
static void dir_moved(struct dboxfs *fs, const struct view_ino *v,
		      struct sweepro_list *out)
{
	enum backing_area area;
	int64_t box;
	int pfd = -1;

	if (!fs->readonly || v->sub != SUB_TMP)
		return;
	if (dir_area(fs, v, &pfd, &area, &box) < 0)
		pfd = -1;
	sweepro_moved(fs, v->box, pfd, out);
	if (pfd >= 0)
		close(pfd);
}

/* cur/ and new/ show the index; tmp/ only backing files */
static bool dir_followed(const struct view_ino *v)
{
	return v->sub != SUB_TMP;
}

/* a file in cur/ or new/ waits to become a message; tmp/ keeps its own */
static bool dir_pending(const struct view_ino *v)
{
	return v->sub != SUB_TMP;
}

/* only a change of v's own mailbox (or of any: n < 0) touches them */
static bool dir_in_scope(const struct view_ino *v, const int64_t *boxes,
			 int n)
{
	for (int i = 0; i < n; i++) {
		if (boxes[i] == v->box)
			return true;
	}
	return n < 0;
}

const struct node_ops node_dir_ops = {
	.lookup = dir_lookup,
	.getattr = dir_getattr,
	.setattr = dir_setattr,
	.list = readdir_sub,
	.open = node_dir_open,
	.read = node_dir_read,
	.may_create = node_create_backing,
	.may_mkdir = dir_may_mkdir,
	.unlink = dir_unlink,
	.rmdir = node_unlink_backing,
	.rename = dir_rename,
	.msg_into = dir_msg_into,
	.file_into = rename_file_to_sub,
	.link_into = dir_link_into,
	.mailbox_of = node_no_mailbox,
	.area = dir_area,
	.getxattr = node_no_xattr,
	.listxattr = node_no_xattrs,
	.resolve = dir_resolve,
	.holds_folders = node_no_folders,
	.base_ns = node_no_base,
	.changed = node_no_change,
	.moved = dir_moved,
	.followed = dir_followed,
	.pending = dir_pending,
	.in_scope = dir_in_scope,
};
