/* node.c - the handler table of each kind of node, and what the kinds
 * share (see node.h). */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "attr.h"
#include "backing.h"
#include "folders.h"
#include "node.h"

const struct node_ops *node_of(const struct view_ino *v)
{
	static const struct node_ops *const kinds[16] = {
		[VK_ROOT] = &node_folder_ops,
		[VK_FOLDER] = &node_folder_ops,
		[VK_VDIR] = &node_folder_ops,
		[VK_SUB] = &node_dir_ops,
		[VK_MSG] = &node_msg_ops,
		[VK_KWFILE] = &node_kwfile_ops,
		[VK_PLAIN] = &node_plain_ops,
	};
	const struct node_ops *ops = kinds[v->kind & 15];

	/* view_ino_decode accepts only the kinds above */
	assert(ops != NULL);
	return ops;
}

int node_lookup_backing(struct dboxfs *fs, const struct view_ino *dir,
			const char *name, struct stat *st)
{
	enum backing_area area;
	struct binode *bi;
	int64_t box;
	int dirfd = -1, ret;

	ret = node_of(dir)->area(fs, dir, &dirfd, &area, &box);
	if (ret < 0)
		return ret == -EROFS ? -ENOENT : ret;
	ret = backing_lookup(fs, dirfd, name, box, area, &bi, st);
	close(dirfd);
	return ret;
}

int node_no_lookup(struct dboxfs *fs, const struct view_ino *dir,
		   const char *name, struct stat *st)
{
	(void)dir; (void)name; (void)st;
	return -ENOENT;
}

int node_not_dir(struct dirbuf *d, const struct view_ino *v, off_t off)
{
	(void)d; (void)v; (void)off;
	return -ENOTDIR;
}

int node_create_backing(struct dboxfs *fs, const struct view_ino *dir,
			const char *name)
{
	(void)fs; (void)dir; (void)name;
	return 0;
}

int node_no_create(struct dboxfs *fs, const struct view_ino *dir,
		   const char *name)
{
	(void)fs; (void)dir; (void)name;
	return -EPERM;
}

int node_mkdir_backing(struct dboxfs *fs, const struct view_ino *dir,
		       const char *name)
{
	(void)fs; (void)dir; (void)name;
	return 0;
}

int node_no_mkdir(struct dboxfs *fs, const struct view_ino *dir,
		  const char *name)
{
	(void)fs; (void)dir; (void)name;
	return -ENOTDIR;
}

int node_unlink_backing(struct dboxfs *fs, const struct view_ino *dir,
			const char *name)
{
	(void)fs; (void)dir; (void)name;
	return NODE_BACKING;
}

/* Directories of the view: their modes derive from the store (rsync -a
 * may try, and that is fine); their times are set as on any
 * filesystem. */
void node_dir_open(struct dboxfs *fs, fuse_req_t req, const struct view_ino *v,
		   struct fuse_file_info *fi)
{
	(void)v; (void)fi;
	fuse_reply_err(req, EISDIR);
}

void node_dir_read(struct dboxfs *fs, fuse_req_t req, const struct view_ino *v,
		   size_t size, off_t off)
{
	(void)v; (void)size; (void)off;
	fuse_reply_err(req, EISDIR);
}

int node_no_mailbox(struct dboxfs *fs, const struct view_ino *dir,
		    const char *name, char *mailbox, size_t len,
		    bool *is_mailbox)
{
	(void)fs; (void)dir; (void)name; (void)mailbox; (void)len;
	*is_mailbox = false;
	return 0;
}

int node_area_view(struct dboxfs *fs, const struct view_ino *v, int *dirfd_r,
		   enum backing_area *area_r, int64_t *box_r)
{
	int64_t box = folders_files_box(fs->layout, fs->inbox_id, v);

	if (box < 0)
		return -ENOENT;
	*area_r = AREA_FILES;
	*box_r = box;
	return backing_area_dir(fs, box, AREA_FILES, dirfd_r);
}

bool node_no_folders(struct dboxfs *fs, const struct view_ino *v)
{
	(void)fs; (void)v;
	return false;
}

int64_t node_no_base(struct dboxfs *fs, const struct view_ino *v,
		     const struct folder_list *fl, const char *prefix)
{
	(void)fs; (void)v; (void)fl; (void)prefix;
	return 0;
}

void node_no_change(struct dboxfs *fs, const struct view_ino *dir)
{
	(void)fs; (void)dir;
}

void node_no_moved(struct dboxfs *fs, const struct view_ino *v,
		   struct sweepro_list *out)
{
	(void)fs; (void)v; (void)out;
}

bool node_followed(const struct view_ino *v)
{
	(void)v;
	return true;
}

bool node_no_pending(const struct view_ino *v)
{
	(void)v;
	return false;
}

bool node_in_scope(const struct view_ino *v, const int64_t *boxes, int n)
{
	(void)v; (void)boxes; (void)n;
	return true;
}

int node_no_xattr(struct dboxfs *fs, const struct view_ino *v,
		  const char *name, char *buf, size_t len)
{
	return -ENODATA;
}

size_t node_no_xattrs(const struct view_ino *v, const char **names_r)
{
	*names_r = NULL;
	return 0;
}
