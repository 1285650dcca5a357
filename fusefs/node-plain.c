/* node-plain.c - a file or directory of the backing tree (a binode):
 * tmp/'s files, files pending in cur/ and new/, the plain files and
 * directories clients keep in folders; once committed as a message, a
 * delivered file's node answers for the message (backing.h). */
#include <errno.h>

#include "attr.h"
#include "backing.h"
#include "fileio.h"
#include "node.h"
#include "ops.h"

static int plain_lookup(struct dboxfs *fs, const struct view_ino *dir,
			const char *name, struct stat *st)
{
	struct binode *parent = backing_get(view_ino_plain(dir)), *bi;
	int ret;

	if (parent == NULL)
		return -ENOENT;
	ret = backing_lookup(backing_dirfd(parent), name, parent->box,
			     parent->area, &bi, st);
	backing_put(parent);
	return ret;
}

static int plain_getattr(struct dboxfs *fs, const struct view_ino *v,
			 struct stat *st)
{
	return attr_plain(fs, v->ino, st);
}

static int plain_setattr(struct dboxfs *fs, const struct view_ino *v,
			 const struct stat *attr, int to_set,
			 struct fuse_file_info *fi)
{
	return opw_setattr_binode(fs, v->ino, attr, to_set, fi);
}

static void plain_open(struct dboxfs *fs, fuse_req_t req,
		       const struct view_ino *v, struct fuse_file_info *fi)
{
	fileio_open_plain(fs, req, v->ino, fi);
}

static void plain_read(struct dboxfs *fs, fuse_req_t req,
		       const struct view_ino *v, size_t size, off_t off)
{
	fileio_read_plain_ino(fs, req, v->ino, size, off);
}

const struct node_ops node_plain_ops = {
	.lookup = plain_lookup,
	.getattr = plain_getattr,
	.setattr = plain_setattr,
	.open = plain_open,
	.read = plain_read,
};
