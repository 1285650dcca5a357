/* node-msg.c - a message of cur/ or new/.  A message renamed back into
 * tmp/ is a file there (totmp.c): its node, or the node it had before a
 * move to another folder, then answers as that file (moved_file_node). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attr.h"
#include "fileio.h"
#include "moved.h"
#include "node.h"
#include "rename.h"

/* Messages: the received time (mtime) and the mode change and persist,
 * so that rsync -a finds nothing to do the second time; the owner follows
 * the store, so chown succeeds without effect as rsync and cp -p expect;
 * the size of a message never changes. */
int node_msg_setattr_of(struct dboxfs *fs, int64_t box, uint32_t uid,
		    const struct stat *attr, int to_set)
{
	struct dbox_err err = { "" };
	struct timespec now;
	struct dbox_msg m;
	int ret = attr_msg_follow(fs, box, uid, &m);

	if (ret < 0)
		return ret;
	box = m.mailbox_id;
	uid = m.uid;

	if (to_set & FUSE_SET_ATTR_SIZE)
		return -EACCES;
	if (to_set & FUSE_SET_ATTR_MODE) {
		ret = dbox_msg_set_mode(fs->store, box, uid, S_IFREG |
					(attr->st_mode & 07777), &err);
		if (ret < 0)
			return ret;
	}
	if (!(to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)))
		return 0;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		clock_gettime(CLOCK_REALTIME, &now);
		return dbox_msg_set_received(fs->store, box, uid, now.tv_sec,
					     now.tv_nsec, &err);
	}
	return dbox_msg_set_received(fs->store, box, uid,
				     attr->st_mtim.tv_sec,
				     attr->st_mtim.tv_nsec, &err);
}

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
		return node_plain_setattr_of(fs, fino, attr, to_set, fi);
	return node_msg_setattr_of(fs, v->box, v->uid, attr, to_set);
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

/* what a message tells about itself: its GUID, uid, save time, mailbox
 * and where its bytes are */
static int msg_getxattr(struct dboxfs *fs, const struct view_ino *v,
			const char *name, char *buf, size_t len)
{
	struct dbox_msg m;
	char path[4096], box[DBOX_NAME_MAX * 4 + 1];
	int ret;

	ret = dbox_msg_get(fs->store, v->box, v->uid, &m, NULL);
	if (ret < 0)
		return ret;
	if (strcmp(name, "user.dbox.guid") == 0)
		return snprintf(buf, len, "%s", m.guid);
	if (strcmp(name, "user.dbox.uid") == 0)
		return snprintf(buf, len, "%u", m.uid);
	if (strcmp(name, "user.dbox.saved") == 0)
		return snprintf(buf, len, "%lld", (long long)m.saved);
	if (strcmp(name, "user.dbox.mailbox") == 0) {
		struct dbox_mailbox b;

		ret = dbox_mailbox_get(fs->store, v->box, &b, NULL);
		if (ret < 0)
			return ret;
		snprintf(box, sizeof(box), "%s", b.name);
		return snprintf(buf, len, "%s", box);
	}
	if (strcmp(name, "user.dbox.file") == 0) {
		ret = dbox_msg_file_path(fs->store, &m, path, sizeof(path));
		if (ret < 0)
			return ret;
		return snprintf(buf, len, "%s:%llu", path,
				(unsigned long long)dbox_msg_file_offset(&m));
	}
	return -ENODATA;
}

static size_t msg_listxattr(const struct view_ino *v, const char **names_r)
{
	static const char names[] = "user.dbox.guid\0user.dbox.uid\0"
		"user.dbox.mailbox\0user.dbox.file\0user.dbox.saved";

	*names_r = names;
	return sizeof(names);
}

const struct node_ops node_msg_ops = {
	.lookup = node_no_lookup,
	.getattr = msg_getattr,
	.setattr = msg_setattr,
	.list = node_not_dir,
	.open = msg_open,
	.read = msg_read,
	.may_create = node_no_create,
	.may_mkdir = node_no_mkdir,
	.unlink = node_unlink_backing,
	RENAME_BACKING_OPS,
	.area = node_area_view,
	.getxattr = msg_getxattr,
	.listxattr = msg_listxattr,
	.resolve = node_no_lookup,
	.holds_folders = node_no_folders,
	.base_ns = node_no_base,
	.changed = node_no_change,
	.moved = node_no_moved,
	.followed = node_followed,
	.pending = node_no_pending,
	.in_scope = node_in_scope,
};
