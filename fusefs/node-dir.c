/* node-dir.c - cur/, new/ and tmp/ of a mailbox: the messages of cur/
 * and new/ from the index; the files of tmp/ and those pending in cur/
 * and new/ from the backing area. */
#include <errno.h>

#include "attr.h"
#include "node.h"

static int dir_lookup(const struct view_ino *dir, const char *name,
		      struct stat *st)
{
	int ret = attr_resolve_view(dir, name, st);

	return ret == -ENOENT ? node_lookup_backing(dir, name, st) : ret;
}

static int dir_getattr(const struct view_ino *v, struct stat *st)
{
	return attr_sub(v, v->ino, st);
}

const struct node_ops node_dir_ops = {
	.lookup = dir_lookup,
	.getattr = dir_getattr,
	.setattr = node_dir_setattr,
	.open = node_dir_open,
	.read = node_dir_read,
};
