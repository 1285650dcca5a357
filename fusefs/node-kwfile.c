/* node-kwfile.c - a mailbox's dovecot-keywords: text generated from the
 * index, read-only (a file renamed or linked onto it gives the index its
 * names: kwimport.c, from the folder's rename and link handlers). */
#include <errno.h>

#include "attr.h"
#include "fileio.h"
#include "node.h"
#include "rename.h"

static int kwfile_getattr(struct dboxfs *fs, const struct view_ino *v,
			  struct stat *st)
{
	return attr_keywords(fs, v, v->ino, st);
}

static int kwfile_setattr(struct dboxfs *fs, const struct view_ino *v,
			  const struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	(void)v; (void)attr; (void)fi;
	return (to_set & FUSE_SET_ATTR_SIZE) ? -EACCES : 0;
}

static void kwfile_open(struct dboxfs *fs, fuse_req_t req,
			const struct view_ino *v, struct fuse_file_info *fi)
{
	(void)v;
	fileio_open_kwfile(fs, req, fi);
}

static void kwfile_read(struct dboxfs *fs, fuse_req_t req,
			const struct view_ino *v, size_t size, off_t off)
{
	fileio_read_kwfile(fs, req, v->ino, size, off);
}

const struct node_ops node_kwfile_ops = {
	.lookup = node_no_lookup,
	.getattr = kwfile_getattr,
	.setattr = kwfile_setattr,
	.list = node_not_dir,
	.open = kwfile_open,
	.read = kwfile_read,
	.may_create = node_no_create,
	.may_mkdir = node_no_mkdir,
	.unlink = node_unlink_backing,
	RENAME_BACKING_OPS,
	.area = node_area_view,
	.getxattr = node_no_xattr,
	.listxattr = node_no_xattrs,
	.resolve = node_no_lookup,
	.holds_folders = node_no_folders,
	.base_ns = node_no_base,
	.changed = node_no_change,
	.moved = node_no_moved,
	.followed = node_followed,
	.pending = node_no_pending,
	.in_scope = node_in_scope,
};
