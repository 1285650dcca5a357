/* dirs.c - folders and their cur/ new/ tmp/ made and removed by mkdir
 * and rmdir (maildir-view.md section 4). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "commit.h"
#include "dirmode.h"
#include "dirtime.h"
#include "folders.h"
#include "node.h"
#include "ops.h"
#include "prepare.h"

/* ------------------------------------------------------------- folders */

/* the mode mkdir(2) gave the new directory ino (dirmode.h) */
static void keep_made_mode(struct dboxfs *fs, uint64_t ino, mode_t mode)
{
	struct view_ino v;

	if (view_ino_decode(ino, &v))
		dirmode_made(fs, &v, mode);
}

static void mkdir_sub(fuse_req_t req, const struct view_ino *parent,
		      int64_t box, enum view_sub sub, mode_t mode)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct dbox_mailbox b;
	struct stat st;
	unsigned int bit = 1u << sub;
	int ret = dbox_mailbox_get(fs->store, box, &b, NULL);

	if (ret == 0 && (b.subdirs & bit))
		ret = -EEXIST;
	if (ret == 0)
		ret = dbox_mailbox_set_subdirs(fs->store, box,
					       b.subdirs | bit, NULL);
	if (ret == 0 && sub == SUB_TMP)
		dirtime_tmp_changed(fs, box);
	if (ret == 0) {
		dirtime_folder_changed(fs, parent);
		keep_made_mode(fs, view_ino_sub(box, sub), mode);
	}
	if (ret == 0)
		ret = attr_get(fs, view_ino_sub(box, sub), &st);
	if (ret < 0)
		fuse_reply_err(req, dboxfs_errno(ret));
	else
		reply_entry(req, &st);
}

static void mkdir_mailbox(fuse_req_t req, const struct view_ino *parent,
			  const char *mailbox, mode_t mode)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct dbox_mailbox b;
	struct dbox_err err = { "" };
	struct stat st;
	uint64_t own = dirtime_own_begin(fs, mailbox, DIRTIME_CAME);
	int ret = dbox_mailbox_create(fs->store, mailbox, &b, &err);

	dirtime_own_end(fs, own, ret == 0);

	/* as on a real maildir, cur/ new/ tmp/ come with their own mkdir */
	if (ret == 0)
		ret = dbox_mailbox_set_subdirs(fs->store, b.id, 0, &err);
	if (ret == 0) {
		dirtime_folder_made(fs, b.id);
		dirtime_folder_changed(fs, parent);
		keep_made_mode(fs, view_ino_folder(b.id), mode);
	}
	if (ret == 0)
		ret = attr_get(fs, view_ino_folder(b.id), &st);
	if (ret < 0) {
		if (ret != -EEXIST && ret != -EINVAL)
			fuse_log(FUSE_LOG_ERR, "dboxfs: mkdir %s: %s\n",
				 mailbox, err.msg);
		fuse_reply_err(req, dboxfs_errno(ret));
	} else {
		reply_entry(req, &st);
	}
}

void opw_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	char mailbox[DBOX_NAME_MAX * 4 + 1];
	enum backing_area area;
	enum view_sub sub;
	struct view_ino v;
	bool is_mailbox;
	int64_t box;
	int dirfd = -1, ret;

	if (!opw_begin_change(req, parent, &v))
		return;
	box = folders_dir_mailbox(fs->layout, fs->inbox_id, &v);
	if (box != 0 && view_sub_of_name(name, &sub)) {
		mkdir_sub(req, &v, box, sub, mode);
		return;
	}
	ret = node_of(&v)->may_mkdir(fs, &v, name);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	ret = node_of(&v)->mailbox_of(fs, &v, name, mailbox, sizeof(mailbox),
				      &is_mailbox);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (is_mailbox) {
		mkdir_mailbox(req, &v, mailbox, mode);
		return;
	}
	ret = opw_area_of(fs, &v, &dirfd, &area, &box);
	if (ret == 0 && mkdirat(dirfd, name, mode & 07777) < 0)
		ret = -errno;
	if (ret < 0) {
		if (dirfd >= 0)
			close(dirfd);
		/* no plain area here (an fs-layout parent): no dirs */
		fuse_reply_err(req, ret == -ENOENT && dirfd < 0 ? EPERM : -ret);
		return;
	}
	opw_reply_backing_entry(req, dirfd, name, box, area);
	close(dirfd);
}

void opw_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	enum backing_area area;
	struct view_ino v;
	int64_t box;
	int dirfd = -1, ret;

	if (!opw_begin_change(req, parent, &v))
		return;
	ret = node_of(&v)->rmdir(fs, &v, name);
	if (ret != NODE_BACKING) {
		fuse_reply_err(req, ret < 0 ? dboxfs_errno(ret) : 0);
		return;
	}
	ret = opw_area_of(fs, &v, &dirfd, &area, &box);
	if (ret == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		ret = -errno;
	if (dirfd >= 0)
		close(dirfd);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}
