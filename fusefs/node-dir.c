/* node-dir.c - cur/, new/ and tmp/ of a mailbox: the messages of cur/
 * and new/ from the index; the files of tmp/ and those pending in cur/
 * and new/ from the backing area. */
#include <errno.h>

#include "attr.h"
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

const struct node_ops node_dir_ops = {
	.lookup = dir_lookup,
	.getattr = dir_getattr,
	.setattr = node_dir_setattr,
	.list = readdir_sub,
	.open = node_dir_open,
	.read = node_dir_read,
};
