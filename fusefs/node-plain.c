/* node-plain.c - a file or directory of the backing tree (a binode):
 * tmp/'s files, files pending in cur/ and new/, the plain files and
 * directories clients keep in folders; once committed as a message, a
 * delivered file's node answers for the message (backing.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "attr.h"
#include "backing.h"
#include "dirtime.h"
#include "fileio.h"
#include "handles.h"
#include "node.h"
#include "rename.h"
#include "prepare.h"

static int plain_lookup(struct dboxfs *fs, const struct view_ino *dir,
			const char *name, struct stat *st)
{
	struct binode *parent = backing_get(fs, view_ino_plain(dir)), *bi;
	int ret;

	if (parent == NULL)
		return -ENOENT;
	ret = backing_lookup(fs, backing_dirfd(parent), name, parent->box,
			     parent->area, &bi, st);
	backing_put(fs, parent);
	return ret;
}

static int setattr_plain(struct dboxfs *fs, struct binode *bi,
			 const struct stat *attr, int to_set,
			 struct fuse_file_info *fi)
{
	struct fh *fh = fi != NULL ? (struct fh *)(uintptr_t)fi->fh : NULL;
	char path[64];

	if (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_MTIME_NOW))
		prepare_drop(fs, bi->ino);
	if (to_set & FUSE_SET_ATTR_SIZE)
		backing_mark_drop(fs, bi->ino);
	backing_fd_path(bi->fd, path, sizeof(path));
	if ((to_set & FUSE_SET_ATTR_MODE) &&
	    chmod(path, attr->st_mode & 07777) < 0)
		return -errno;
	if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchownat(bi->fd, "", (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid :
		     (uid_t)-1, (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid :
		     (gid_t)-1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		int r = fh != NULL && fh->type == FH_FD ?
			ftruncate(fh->fd, attr->st_size) :
			truncate(path, attr->st_size);
		if (r < 0)
			return -errno;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2];

		dirtime_requested(attr, to_set, tv);
		if (utimensat(AT_FDCWD, path, tv, 0) < 0)
			return -errno;
	}
	return 0;
}

int node_plain_setattr_of(struct dboxfs *fs, uint64_t ino,
			  const struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	struct binode *bi = backing_get(fs, ino);
	int64_t msg_box;
	uint32_t msg_uid;
	int ret;

	if (bi == NULL)
		return -ENOENT;
	/* not while its commit hands it over to its message (commit.c) */
	pthread_mutex_lock(&fs->commit.attr_lock);
	if (backing_msg_of(fs, bi, &msg_box, &msg_uid))
		ret = node_msg_setattr_of(fs, msg_box, msg_uid, attr, to_set);
	else
		ret = setattr_plain(fs, bi, attr, to_set, fi);
	pthread_mutex_unlock(&fs->commit.attr_lock);
	backing_put(fs, bi);
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
	return node_plain_setattr_of(fs, v->ino, attr, to_set, fi);
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

/* a backing directory's own files */
static int plain_area(struct dboxfs *fs, const struct view_ino *v,
		      int *dirfd_r, enum backing_area *area_r, int64_t *box_r)
{
	struct binode *bi = backing_get(fs, v->ino);

	if (bi == NULL)
		return -ENOENT;
	*dirfd_r = dup(backing_dirfd(bi));
	*area_r = bi->area;
	*box_r = bi->box;
	backing_put(fs, bi);
	return *dirfd_r < 0 ? -errno : 0;
}

/* backing files change only through the mount */
static bool plain_followed(const struct view_ino *v)
{
	(void)v;
	return false;
}

/* for the same reason no change of the store touches their names */
static bool plain_in_scope(const struct view_ino *v, const int64_t *boxes,
			   int n)
{
	(void)v; (void)boxes; (void)n;
	return false;
}

const struct node_ops node_plain_ops = {
	.lookup = plain_lookup,
	.getattr = plain_getattr,
	.setattr = plain_setattr,
	.list = readdir_plain,
	.open = plain_open,
	.read = plain_read,
	.may_create = node_create_backing,
	.may_mkdir = node_mkdir_backing,
	.unlink = node_unlink_backing,
	RENAME_BACKING_OPS,
	.area = plain_area,
	.getxattr = node_no_xattr,
	.listxattr = node_no_xattrs,
	.resolve = node_no_lookup,
	.holds_folders = node_no_folders,
	.base_ns = node_no_base,
	.changed = node_no_change,
	.moved = node_no_moved,
	.followed = plain_followed,
	.pending = node_no_pending,
	.in_scope = plain_in_scope,
};
