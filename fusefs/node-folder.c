/* node-folder.c - the root, a mailbox's folder and an fs-layout vdir:
 * cur/ new/ tmp/, dovecot-keywords and child folders from the index,
 * and the plain files and directories clients keep beside them. */
#include <errno.h>
#include <string.h>

#include "attr.h"
#include "folders.h"
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

/* a mailbox's folder: its cur/ new/ tmp/ and dovecot-keywords are
 * reserved names; an fs-layout vdir has no backing area for files */
static int folder_may_create(struct dboxfs *fs, const struct view_ino *dir,
			     const char *name)
{
	enum view_sub sub;

	if (dir->kind == VK_VDIR)
		return -EPERM;
	if (folders_dir_mailbox(fs->layout, fs->inbox_id, dir) != 0 &&
	    (view_sub_of_name(name, &sub) || strcmp(name, KWFILE_NAME) == 0))
		return -EEXIST;
	return 0;
}

/* a mailbox's dovecot-keywords is generated, not removable */
static int folder_unlink(struct dboxfs *fs, const struct view_ino *dir,
			 const char *name)
{
	if (folders_dir_mailbox(fs->layout, fs->inbox_id, dir) != 0 &&
	    strcmp(name, KWFILE_NAME) == 0)
		return -EACCES;
	return NODE_BACKING;
}

const struct node_ops node_folder_ops = {
	.lookup = folder_lookup,
	.getattr = folder_getattr,
	.setattr = node_dir_setattr,
	.list = readdir_folder,
	.open = node_dir_open,
	.read = node_dir_read,
	.may_create = folder_may_create,
	.may_mkdir = node_mkdir_backing,
	.unlink = folder_unlink,
};
