/* dirs.c - folders and their cur/ new/ tmp/ made and removed by mkdir
 * and rmdir (maildir-view.md section 4). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "commit.h"
#include "dirtime.h"
#include "folders.h"
#include "node.h"
#include "ops.h"
#include "prepare.h"
#include "vdirs.h"

/* ------------------------------------------------------------- folders */

static int folder_prefix(struct dboxfs *fs, const struct view_ino *v, char *buf,
			 size_t len)
{
	struct folder_list fl;
	int depth, ret = folders_load(fs, &fl);

	if (ret < 0)
		return ret;
	depth = folders_prefix(&fl, fs->layout, v, buf, len);
	folders_free(&fl);
	return depth;
}

/* The mailbox a directory name in `v` stands for; false if the name is a
 * plain directory there instead. */
int opw_mailbox_for_dirname(struct dboxfs *fs, const struct view_ino *v,
			    const char *name, char *mailbox, size_t len,
			    bool *is_mailbox)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];
	int depth;

	*is_mailbox = false;
	if (fs->layout == VIEW_MAILDIRPP) {
		if (v->kind != VK_ROOT || name[0] != '.')
			return 0;
		*is_mailbox = true;
		return view_pp_to_mailbox(name, mailbox, len);
	}
	if (name[0] == '.' || v->kind == VK_PLAIN || v->kind == VK_SUB)
		return 0;
	depth = folder_prefix(fs, v, prefix, sizeof(prefix));
	if (depth < 0)
		return depth;
	*is_mailbox = true;
	if (strlen(name) > VIEW_NAME_MAX)
		return -ENAMETOOLONG;
	/* a folder called cur would be its parent's cur/ */
	if (folders_reserved_part(name, strlen(name)))
		return -EINVAL;
	if (snprintf(mailbox, len, "%s%s%s", prefix, depth > 0 ? "/" : "",
		     name) >= (int)len)
		return -ENAMETOOLONG;
	return dbox_mailbox_name_valid(mailbox) ? 0 : -EINVAL;
}

static void mkdir_sub(fuse_req_t req, const struct view_ino *parent,
		      int64_t box, enum view_sub sub)
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
	if (ret == 0)
		dirtime_folder_changed(fs, parent);
	if (ret == 0)
		ret = attr_get(fs, view_ino_sub(box, sub), &st);
	if (ret < 0)
		fuse_reply_err(req, dboxfs_errno(ret));
	else
		reply_entry(req, &st);
}

static void mkdir_mailbox(fuse_req_t req, const struct view_ino *parent,
			  const char *mailbox)
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
		mkdir_sub(req, &v, box, sub);
		return;
	}
	ret = node_of(&v)->may_mkdir(fs, &v, name);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	ret = opw_mailbox_for_dirname(fs, &v, name, mailbox, sizeof(mailbox),
				  &is_mailbox);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	/* an empty parent kept after its last folder went is there */
	if (is_mailbox && fs->layout == VIEW_FS && opw_is_vdir(fs, &v, name)) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	if (is_mailbox) {
		mkdir_mailbox(req, &v, mailbox);
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

static bool area_empty(struct dboxfs *fs, int64_t box, enum backing_area area)
{
	struct dirent *e;
	bool empty = true;
	DIR *d;
	int fd, dfd;

	if (backing_area_dir(fs, box, area, &fd) < 0)
		return true;
	dfd = backing_reopen(fd, O_RDONLY | O_DIRECTORY);
	close(fd);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return true;
	}
	while (empty && (e = readdir(d)) != NULL)
		empty = strcmp(e->d_name, ".") == 0 ||
			strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

static int rmdir_sub(struct dboxfs *fs, const struct view_ino *parent,
		     int64_t box, enum view_sub sub)
{
	struct dbox_mailbox b;
	uint64_t count = 0;
	int ret = dbox_mailbox_get(fs->store, box, &b, NULL);

	if (ret == 0 && !(b.subdirs & (1u << sub)))
		return -ENOENT;
	if (ret == 0 && sub != SUB_TMP)
		ret = dbox_msg_count(fs->store, box, sub == SUB_NEW, &count,
				     NULL);
	if (ret == 0 && (count > 0 ||
			 !area_empty(fs, box, backing_area_of_sub(sub))))
		return -ENOTEMPTY;
	if (ret == 0)
		ret = dbox_mailbox_set_subdirs(fs->store, box,
					       b.subdirs & ~(1u << sub), NULL);
	if (ret == 0)
		dirtime_folder_changed(fs, parent);
	return ret;
}

int opw_rmdir_mailbox(struct dboxfs *fs, int64_t box)
{
	struct dbox_mailbox b;
	struct dbox_err err = { "" };
	int ret = dbox_mailbox_get(fs->store, box, &b, NULL);

	if (ret < 0)
		return ret;
	/* as Dovecot: INBOX stays (delivery goes there) */
	if (box == fs->inbox_id)
		return -EPERM;
	if (b.subdirs != 0 || !area_empty(fs, box, AREA_FILES))
		return -ENOTEMPTY;
	/* maildir++: .A.B is a sibling of .A on disk and stays */
	ret = fs->layout == VIEW_MAILDIRPP ?
		dbox_mailbox_delete_one(fs->store, b.name, &err) :
		dbox_mailbox_delete(fs->store, b.name, &err);
	if (ret == 0)
		backing_forget_mailbox(fs, box);
	/* an entry of a parent of that name (made by another program in
	 * a stored parent) would bring it back as an empty parent */
	if (ret == 0 && fs->layout == VIEW_FS)
		vdirs_remove(dbox_store_files_dir(fs->store), b.name);
	if (ret < 0 && ret != -ENOTEMPTY)
		fuse_log(FUSE_LOG_ERR, "dboxfs: rmdir %s: %s\n", b.name,
			 err.msg);
	return ret;
}

/* An fs-layout directory that only holds other mailboxes. */
bool opw_is_vdir(struct dboxfs *fs, const struct view_ino *v, const char *name)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];
	struct folder_list fl;
	struct folder_child c;
	int depth;
	bool found = false;

	if (folders_load(fs, &fl) < 0)
		return false;
	depth = folders_prefix(&fl, fs->layout, v, prefix, sizeof(prefix));
	if (depth >= 0 && folders_lookup(&fl, fs->layout, prefix,
					 (unsigned int)depth, fs->inbox_id,
					 name, &c) == 0)
		found = (c.ino >> 60) == VK_VDIR;
	folders_free(&fl);
	return found;
}

int opw_vdir_empty(struct dboxfs *fs, const struct view_ino *v,
		   const char *name)
{
	char prefix[DBOX_NAME_MAX * 4 + 1], full[DBOX_NAME_MAX * 8 + 2];
	struct folder_list fl;
	struct folder_child c;
	int depth, ret = folders_load(fs, &fl);

	if (ret < 0)
		return ret;
	depth = folders_prefix(&fl, fs->layout, v, prefix, sizeof(prefix));
	ret = depth < 0 ? depth : folders_lookup(&fl, fs->layout, prefix,
						 (unsigned int)depth,
						 fs->inbox_id, name, &c);
	if (ret == 0 && (c.ino >> 60) != VK_VDIR)
		ret = -ENOENT;
	snprintf(full, sizeof(full), "%s%s%s", prefix, depth > 0 ? "/" : "",
		 name);
	if (ret == 0 && folders_count_children(&fl, fs->layout, full,
					       (unsigned int)depth + 1,
					       fs->inbox_id) > 0)
		ret = -ENOTEMPTY;
	folders_free(&fl);
	return ret;
}

/* An empty fs-layout parent goes with its stored entry, as an empty
 * directory does (one with folders below it is ENOTEMPTY). */
static int rmdir_vdir(struct dboxfs *fs, const struct view_ino *v,
		      const char *name, const char *mailbox)
{
	int ret = opw_vdir_empty(fs, v, name);

	if (ret == 0)
		ret = vdirs_remove(dbox_store_files_dir(fs->store), mailbox);
	return ret;
}

void opw_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	char mailbox[DBOX_NAME_MAX * 4 + 1];
	enum backing_area area;
	struct dbox_mailbox b;
	enum view_sub sub;
	struct view_ino v;
	bool is_mailbox;
	int64_t box;
	int dirfd = -1, ret;

	if (!opw_begin_change(req, parent, &v))
		return;
	box = folders_dir_mailbox(fs->layout, fs->inbox_id, &v);
	if (box != 0 && view_sub_of_name(name, &sub)) {
		ret = rmdir_sub(fs, &v, box, sub);
		fuse_reply_err(req, ret < 0 ? dboxfs_errno(ret) : 0);
		return;
	}
	ret = opw_mailbox_for_dirname(fs, &v, name, mailbox, sizeof(mailbox),
				  &is_mailbox);
	if (ret == 0 && is_mailbox) {
		uint64_t own = dirtime_own_begin(fs, mailbox, DIRTIME_WENT);

		if (dbox_mailbox_lookup(fs->store, mailbox, &b, NULL) == 0)
			ret = opw_rmdir_mailbox(fs, b.id);
		else
			ret = fs->layout == VIEW_FS ?
				rmdir_vdir(fs, &v, name, mailbox) : -ENOENT;
		dirtime_own_end(fs, own, ret == 0);
		if (ret == 0)
			dirtime_folder_changed(fs, &v);
		/* maildir++: a dot-name that is no mailbox may still be a
		 * plain directory */
		if (ret != -ENOENT || fs->layout == VIEW_FS) {
			fuse_reply_err(req, ret < 0 ? dboxfs_errno(ret) : 0);
			return;
		}
	}
	ret = opw_area_of(fs, &v, &dirfd, &area, &box);
	if (ret == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		ret = -errno;
	if (dirfd >= 0)
		close(dirfd);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}
