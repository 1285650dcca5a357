/* node-dir.c - cur/, new/ and tmp/ of a mailbox: the messages of cur/
 * and new/ from the index; the files of tmp/ and those pending in cur/
 * and new/ from the backing area. */
#include <errno.h>

#include "attr.h"
#include "msgname.h"
#include "node.h"

static int dir_lookup(struct dboxfs *fs, const struct view_ino *dir,
		      const char *name, struct stat *st)
{
	int ret = attr_resolve_view(fs, dir, name, st);

	return ret == -ENOENT ? node_lookup_backing(fs, dir, name, st) : ret;
}

static int dir_getattr(struct dboxfs *fs, const struct view_ino *v,
		       struct stat *st)
{
	return attr_sub(fs, v, v->ino, st);
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

const struct node_ops node_dir_ops = {
	.lookup = dir_lookup,
	.getattr = dir_getattr,
	.setattr = node_dir_setattr,
	.list = readdir_sub,
	.open = node_dir_open,
	.read = node_dir_read,
	.may_create = node_create_backing,
	.may_mkdir = dir_may_mkdir,
	.unlink = dir_unlink,
};
