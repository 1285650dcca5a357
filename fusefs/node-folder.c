/* node-folder.c - the root, a mailbox's folder and an fs-layout vdir:
 * cur/ new/ tmp/, dovecot-keywords and child folders from the index,
 * and the plain files and directories clients keep beside them. */
#include <errno.h>

#include "attr.h"
#include "node.h"

static int folder_lookup(struct dboxfs *fs, const struct view_ino *dir,
			 const char *name, struct stat *st)
{
	int ret = attr_resolve_view(fs, dir, name, st);

	return ret == -ENOENT ? node_lookup_backing(fs, dir, name, st) : ret;
}

static int folder_getattr(struct dboxfs *fs, const struct view_ino *v,
			  struct stat *st)
{
	return attr_folder(fs, v, v->ino, st);
}

const struct node_ops node_folder_ops = {
	.lookup = folder_lookup,
	.getattr = folder_getattr,
	.setattr = node_dir_setattr,
	.list = readdir_folder,
	.open = node_dir_open,
	.read = node_dir_read,
};
