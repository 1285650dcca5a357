/* dirmode.c - st_mode of the view's directories (see dirmode.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
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

static int64_t ns_of(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct dirmode_seen *slot_of(struct dboxfs *fs, int64_t box, int area)
{
	uint64_t h = ((uint64_t)box * 3 + (uint64_t)area) * 0x9e3779b97f4a7c15u;

	return &fs->dirmode.seen[h >> 58];
}

/* 1 or 0: the kept mark as last read of this very state of the area; -1
 * unknown. */
static int seen_kept(struct dboxfs *fs, int64_t box, int area,
		     const struct stat *st)
{
	struct dirmode_seen *s = slot_of(fs, box, area);
	int kept = -1;

	pthread_mutex_lock(&fs->dirmode.lock);
	if (s->box == box && s->area == area && s->dev == st->st_dev &&
	    s->ino == st->st_ino && s->ctime_ns == ns_of(st->st_ctim))
		kept = s->kept;
	pthread_mutex_unlock(&fs->dirmode.lock);
	return kept;
}

/* A ctime the filesystem's clock (coarse: a tick of a few ms) could give
 * a change made after the reading began (at read_ns) as well is not
 * recorded: that change would leave the ctime as it is. */
#define DIRMODE_SETTLED_NS 50000000

static void seen_set(struct dboxfs *fs, int64_t box, int area,
		     const struct stat *st, bool kept, int64_t read_ns)
{
	struct dirmode_seen *s = slot_of(fs, box, area);

	if (ns_of(st->st_ctim) > read_ns - DIRMODE_SETTLED_NS)
		return;
	pthread_mutex_lock(&fs->dirmode.lock);
	*s = (struct dirmode_seen){ .box = box, .area = area,
		.dev = st->st_dev, .ino = st->st_ino,
		.ctime_ns = ns_of(st->st_ctim), .kept = kept };
	pthread_mutex_unlock(&fs->dirmode.lock);
}

/* The kept mark and the mode as kept_mode reads them (the mark first:
 * keep_mode sets the mode before it), and recorded with the ctime they
 * had if it did not change meanwhile. */
static mode_t area_mode_read(struct dboxfs *fs, int64_t box, int area)
{
	struct stat before, after;
	struct timespec now;
	char path[32];
	bool kept;
	int fd;

	clock_gettime(CLOCK_REALTIME, &now);
	if (backing_area_peek(fs, box, (enum backing_area)area, &fd) < 0)
		return fs->dir_mode;
	backing_fd_path(fd, path, sizeof(path));
	if (fstat(fd, &before) < 0) {
		close(fd);
		return fs->dir_mode;
	}
	kept = getxattr(path, DIRMODE_XATTR, NULL, 0) >= 0;
	if (fstat(fd, &after) < 0)
		kept = false;
	else if (ns_of(after.st_ctim) == ns_of(before.st_ctim))
		seen_set(fs, box, area, &after, kept, ns_of(now));
	close(fd);
	return kept ? after.st_mode & 07777 : fs->dir_mode;
}

mode_t dirmode_of_area(struct dboxfs *fs, int64_t box, int area,
		       const struct stat *st)
{
	int kept;

	if (st == NULL || !S_ISDIR(st->st_mode))
		return fs->dir_mode;
	/* kept or not, such an area shows the store root's mode: the mark
	 * need not be read (an area is made 0700, and so is a store, so
	 * this is every GETATTR of a tmp/ that nobody chmod'ed: two a
	 * delivery, whose creates and renames keep moving the area's
	 * ctime, by which the mark's state is remembered) */
	if ((st->st_mode & 07777) == fs->dir_mode)
		return fs->dir_mode;
	kept = seen_kept(fs, box, area, st);
	if (kept < 0)
		return area_mode_read(fs, box, area);
	return kept ? st->st_mode & 07777 : fs->dir_mode;
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
