/* dirmode.c - st_mode of the view's directories (see dirmode.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backing.h"
#include "dboxfs.h"
#include "dirmode.h"
#include "folders.h"
#include "node.h"
#include "vdirs.h"

/* The mode kept on the backing directory fd (O_PATH, closed here), or
 * -1 if none was set. */
static int kept_mode(int fd)
{
	char path[32];
	struct stat st;
	int mode = -1;

	backing_fd_path(fd, path, sizeof(path));
	if (getxattr(path, DIRMODE_XATTR, NULL, 0) >= 0 &&
	    stat(path, &st) == 0)
		mode = (int)(st.st_mode & 07777);
	close(fd);
	return mode;
}

/* chmod(2) of the backing directory fd (O_PATH, closed here), then the
 * mark (a crash between shows the store root's mode: no mode lost that
 * the client saw kept). */
static int keep_mode(int fd, mode_t mode)
{
	char path[32];
	int ret = 0;

	backing_fd_path(fd, path, sizeof(path));
	if (chmod(path, mode & 07777) < 0 ||
	    setxattr(path, DIRMODE_XATTR, "1", 1, 0) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* The backing directory of v as it is (none made): its O_PATH fd.  The
 * one a change needs, made if missing, is v's kind's area (node.h). */
static int backing_dir(struct dboxfs *fs, const struct view_ino *v,
		       const char *prefix, int *fd_r)
{
	char buf[DBOX_NAME_MAX * 4 + 1];
	int64_t box;
	int ret;

	if (v->kind == VK_SUB)
		return backing_area_peek(fs, v->box,
					 backing_area_of_sub(v->sub), fd_r);
	if (v->kind == VK_VDIR) {
		if (prefix == NULL) {
			ret = folders_prefix_now(fs, v, buf, sizeof(buf));
			if (ret < 0)
				return ret;
			prefix = buf;
		}
		return vdirs_open(dbox_store_vdirs_dir(fs->store), prefix,
				  false, fd_r);
	}
	box = folders_files_box(fs->layout, fs->inbox_id, v);
	if (box < 0)
		return -ENOENT;
	return backing_area_peek(fs, box, AREA_FILES, fd_r);
}

mode_t dirmode_of(struct dboxfs *fs, const struct view_ino *v,
		  const char *prefix)
{
	int fd, mode = -1;

	if (backing_dir(fs, v, prefix, &fd) == 0)
		mode = kept_mode(fd);
	return mode < 0 ? fs->dir_mode : (mode_t)mode;
}

int dirmode_set(struct dboxfs *fs, const struct view_ino *v,
		const struct stat *attr, int to_set)
{
	enum backing_area area;
	int64_t box;
	int fd, ret;

	if (!(to_set & FUSE_SET_ATTR_MODE))
		return 0;
	ret = node_of(v)->area(fs, v, &fd, &area, &box);
	return ret < 0 ? ret : keep_mode(fd, attr->st_mode);
}

void dirmode_made(struct dboxfs *fs, const struct view_ino *v, mode_t mode)
{
	struct stat attr = { .st_mode = mode & 07777 };

	/* failing loses nothing the client relies on yet: it shows the
	 * store root's mode, as before */
	if (dirmode_of(fs, v, NULL) != (mode & 07777))
		dirmode_set(fs, v, &attr, FUSE_SET_ATTR_MODE);
}
