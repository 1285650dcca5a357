/* node-msg.c - a message of cur/ or new/.  A message renamed back into
 * tmp/ is a file there (totmp.c): its node, or the node it had before a
 * move to another folder, then answers as that file (moved_file_node). */
#include <errno.h>

#include "attr.h"
#include "fileio.h"
#include "moved.h"
#include "node.h"
#include "ops.h"

static int msg_getattr(struct dboxfs *fs, const struct view_ino *v,
		       struct stat *st)
{
	return attr_message(fs, v, v->ino, st);
}

static int msg_setattr(struct dboxfs *fs, const struct view_ino *v,
		       const struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	uint64_t fino = moved_file_node(fs, v->ino);

	if (fino != 0)
		return opw_setattr_binode(fs, fino, attr, to_set, fi);
	return opw_setattr_msg(fs, v->box, v->uid, attr, to_set);
}

static void msg_open(struct dboxfs *fs, fuse_req_t req,
		     const struct view_ino *v, struct fuse_file_info *fi)
{
	uint64_t fino = moved_file_node(fs, v->ino);

	if (fino != 0)
		fileio_open_plain(fs, req, fino, fi);
	else
		fileio_open_msg(fs, req, v->box, v->uid, v->ino, fi);
}

static void msg_read(struct dboxfs *fs, fuse_req_t req,
		     const struct view_ino *v, size_t size, off_t off)
{
	uint64_t fino = moved_file_node(fs, v->ino);

	if (fino != 0)
		fileio_read_plain_ino(fs, req, fino, size, off);
	else
		fileio_read_msg_ino(fs, req, v->box, v->uid, v->ino, size, off);
}

const struct node_ops node_msg_ops = {
	.lookup = node_no_lookup,
	.getattr = msg_getattr,
	.setattr = msg_setattr,
	.open = msg_open,
	.read = msg_read,
};
