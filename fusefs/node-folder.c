/* node-folder.c - the root, a mailbox's folder and an fs-layout vdir:
 * cur/ new/ tmp/, dovecot-keywords and child folders from the index,
 * and the plain files and directories clients keep beside them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "backing.h"
#include "dirmode.h"
#include "dirtime.h"
#include "folders.h"
#include "kwimport.h"
#include "node.h"
#include "rename.h"
#include "vdirs.h"

static int folder_lookup(struct dboxfs *fs, const struct view_ino *dir,
			 const char *name, struct stat *st)
{
	int ret;

	/* a plain dovecot-keywords an older daemon let a rename leave */
	if (kwimport_target(fs, dir, name) != 0)
		kwimport_shadow(fs, dir);
	ret = attr_resolve_folder(fs, dir, name, st);

	return ret == -ENOENT ? node_lookup_backing(fs, dir, name, st) : ret;
}

static int folder_getattr(struct dboxfs *fs, const struct view_ino *v,
			  struct stat *st)
{
	return attr_folder(fs, v, v->ino, st);
}

/* an fs-layout parent that is no mailbox keeps its mode and times in
 * its entry in files/vdirs, the root and folders in their plain-file
 * area */
static int folder_setattr(struct dboxfs *fs, const struct view_ino *v,
			  const struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	int ret;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_SIZE)
		return -EISDIR;
	ret = dirmode_set(fs, v, attr, to_set);
	if (ret < 0)
		return ret;
	return v->kind == VK_VDIR ? dirtime_set_vdir(fs, v, attr, to_set) :
		dirtime_set_folder(fs, v, attr, to_set);
}

/* a mailbox's folder: its cur/ new/ tmp/ and dovecot-keywords are
 * reserved names */
static int folder_may_create(struct dboxfs *fs, const struct view_ino *dir,
			     const char *name)
{
	enum view_sub sub;

	if (folders_dir_mailbox(fs->layout, fs->inbox_id, dir) != 0 &&
	    (view_sub_of_name(name, &sub) || strcmp(name, KWFILE_NAME) == 0))
		return -EEXIST;
	return 0;
}

/* a mailbox's dovecot-keywords is generated, not removable */
static int folder_unlink(struct dboxfs *fs, const struct view_ino *dir,
			 const char *name)
{
	if (folders_dir_mailbox(fs->layout, fs->inbox_id, dir) != 0 &&
	    strcmp(name, KWFILE_NAME) == 0)
		return -EACCES;
	return NODE_BACKING;
}

/* The mailbox a directory name in `v` stands for; false if the name is a
 * plain directory there instead. */
static int folder_mailbox_of(struct dboxfs *fs, const struct view_ino *v,
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
	if (name[0] == '.')
		return 0;
	depth = folders_prefix_now(fs, v, prefix, sizeof(prefix));
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

int node_folder_rmdir_mailbox(struct dboxfs *fs, int64_t box)
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
		vdirs_remove(dbox_store_vdirs_dir(fs->store), b.name);
	if (ret < 0 && ret != -ENOTEMPTY)
		fuse_log(FUSE_LOG_ERR, "dboxfs: rmdir %s: %s\n", b.name,
			 err.msg);
	return ret;
}

/* An fs-layout directory that only holds other mailboxes. */
bool node_folder_is_vdir(struct dboxfs *fs, const struct view_ino *v,
			 const char *name)
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

int node_folder_vdir_empty(struct dboxfs *fs, const struct view_ino *v,
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
	if (ret == 0 && (folders_count_children(&fl, fs->layout, full,
						(unsigned int)depth + 1,
						fs->inbox_id) > 0 ||
			 vdirs_has_files(dbox_store_vdirs_dir(fs->store),
					 full)))
		ret = -ENOTEMPTY;
	folders_free(&fl);
	return ret;
}

/* An empty fs-layout parent goes with its stored entry, as an empty
 * directory does (one with folders below it is ENOTEMPTY). */
static int rmdir_vdir(struct dboxfs *fs, const struct view_ino *v,
		      const char *name, const char *mailbox)
{
	int ret = node_folder_vdir_empty(fs, v, name);

	if (ret == 0)
		ret = vdirs_remove(dbox_store_vdirs_dir(fs->store), mailbox);
	return ret;
}

/* an empty parent kept after its last folder went is there (a name
 * starting with a dot is a plain directory) */
static int folder_may_mkdir(struct dboxfs *fs, const struct view_ino *dir,
			    const char *name)
{
	return fs->layout == VIEW_FS && name[0] != '.' &&
		node_folder_is_vdir(fs, dir, name) ? -EEXIST : 0;
}

/* rmdir of a mailbox's cur/ new/ tmp/ (a folder made by mkdir loses
 * them one by one, as a real maildir), of a folder (its mailbox, when
 * empty); anything else is a backing directory */
static int folder_rmdir(struct dboxfs *fs, const struct view_ino *v,
			const char *name)
{
	char mailbox[DBOX_NAME_MAX * 4 + 1];
	struct dbox_mailbox b;
	enum view_sub sub;
	bool is_mailbox;
	uint64_t own;
	int64_t box;
	int ret;

	box = folders_dir_mailbox(fs->layout, fs->inbox_id, v);
	if (box != 0 && view_sub_of_name(name, &sub))
		return rmdir_sub(fs, v, box, sub);
	ret = folder_mailbox_of(fs, v, name, mailbox, sizeof(mailbox),
				&is_mailbox);
	if (ret < 0 || !is_mailbox)
		return NODE_BACKING;
	own = dirtime_own_begin(fs, mailbox, DIRTIME_WENT);
	if (dbox_mailbox_lookup(fs->store, mailbox, &b, NULL) == 0)
		ret = node_folder_rmdir_mailbox(fs, b.id);
	else
		ret = fs->layout == VIEW_FS ?
			rmdir_vdir(fs, v, name, mailbox) : -ENOENT;
	dirtime_own_end(fs, own, ret == 0);
	if (ret == 0)
		dirtime_folder_changed(fs, v);
	/* maildir++: a dot-name that is no mailbox may still be a plain
	 * directory */
	return ret != -ENOENT || fs->layout == VIEW_FS ? ret : NODE_BACKING;
}

/* a mailbox's cur/ new/ tmp/ stay where they are */
static int folder_rename(fuse_req_t req, const struct view_ino *dir,
			 const char *name, fuse_ino_t newparent,
			 const struct view_ino *dst, const char *newname,
			 unsigned int flags)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	enum view_sub sub;

	if (folders_dir_mailbox(fs->layout, fs->inbox_id, dir) != 0 &&
	    view_sub_of_name(name, &sub))
		return -EPERM;
	return rename_entry(req, dir, name, newparent, dst, newname, flags);
}

/* an fs-layout vdir's plain files are in its entry in files/vdirs (a
 * read-write mount makes a missing one), a folder's in its area */
static int folder_area(struct dboxfs *fs, const struct view_ino *v,
		       int *dirfd_r, enum backing_area *area_r, int64_t *box_r)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];
	int ret;

	if (v->kind != VK_VDIR)
		return node_area_view(fs, v, dirfd_r, area_r, box_r);
	ret = folders_prefix_now(fs, v, prefix, sizeof(prefix));
	if (ret < 0)
		return ret;
	*area_r = AREA_FILES;
	*box_r = 0;   /* no mailbox's: as the fs layout's root */
	return vdirs_open(dbox_store_vdirs_dir(fs->store), prefix,
			  !fs->readonly, dirfd_r);
}

/* maildir++ keeps every folder in the root, the fs layout nests them */
static bool folder_holds_folders(struct dboxfs *fs, const struct view_ino *v)
{
	return fs->layout == VIEW_FS || v->kind == VK_ROOT;
}

/* The root's time until the view changes it: the newest of its entries
 * (fs layout: the top-level mailboxes; a folder made deeper is no entry
 * of the root). */
static int64_t newest_ns(struct dboxfs *fs, const struct folder_list *fl)
{
	int64_t t = 0;

	for (size_t i = 0; i < fl->count; i++) {
		if (fs->layout == VIEW_FS &&
		    strchr(fl->boxes[i].name, '/') != NULL)
			continue;
		if (fl->boxes[i].created * 1000000000 > t)
			t = fl->boxes[i].created * 1000000000;
	}
	return t;
}

/* An fs-layout parent that is no mailbox has no plain-file area: its
 * time is its entry's in files/vdirs, else its first child's creation. */
static int64_t vdir_base_ns(struct dboxfs *fs, const struct folder_list *fl,
			    const char *prefix)
{
	int64_t t = vdirs_mtime(dbox_store_vdirs_dir(fs->store), prefix);

	return t != 0 ? t : folders_first_created(fl, prefix) * 1000000000;
}

/* the root: its newest entry's time; a vdir: as above; a folder: its
 * mailbox's creation */
static int64_t folder_base_ns(struct dboxfs *fs, const struct view_ino *v,
			      const struct folder_list *fl, const char *prefix)
{
	if (v->kind == VK_ROOT)
		return newest_ns(fs, fl);
	if (v->kind == VK_VDIR)
		return vdir_base_ns(fs, fl, prefix);
	for (size_t i = 0; i < fl->count; i++) {
		if (fl->boxes[i].id == v->box)
			return fl->boxes[i].created * 1000000000;
	}
	return 0;
}

/* the root and folders keep their times in their plain-file area, a
 * vdir (which has none) in its entry in files/vdirs */
static void folder_changed(struct dboxfs *fs, const struct view_ino *dir)
{
	if (dir->kind == VK_VDIR)
		dirtime_vdir_changed(fs, dir);
	else
		dirtime_files_changed(fs, dir);
}

const struct node_ops node_folder_ops = {
	.lookup = folder_lookup,
	.getattr = folder_getattr,
	.setattr = folder_setattr,
	.list = readdir_folder,
	.open = node_dir_open,
	.read = node_dir_read,
	.may_create = folder_may_create,
	.may_mkdir = folder_may_mkdir,
	.unlink = folder_unlink,
	.rmdir = folder_rmdir,
	.rename = folder_rename,
	.msg_into = rename_msg_refused,
	.file_into = rename_file_to_area,
	.link_into = rename_link_to_area,
	.mailbox_of = folder_mailbox_of,
	.area = folder_area,
	.getxattr = node_no_xattr,
	.listxattr = node_no_xattrs,
	.resolve = attr_resolve_folder,
	.holds_folders = folder_holds_folders,
	.base_ns = folder_base_ns,
	.changed = folder_changed,
	.moved = node_no_moved,
	.followed = node_followed,
	.pending = node_no_pending,
	.in_scope = node_in_scope,
};
