/* ops-write.c - the write side of the maildir view (maildir-view.md
 * sections 3-5): delivery through tmp/, flags and moves by rename,
 * expunge by unlink, folders by mkdir/rmdir/rename, and plain files.
 *
 * Every change to a message or folder is one index transaction that is
 * durable when the request returns; deliveries go through the committer
 * (commit.c), which groups concurrent ones. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commit.h"
#include "folders.h"
#include "ops.h"
#include "prepare.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static const char *const sub_names[] = { "cur", "new", "tmp" };

/* ------------------------------------------------------- moved messages
 * A message moved to another folder gets a new uid and so a new inode
 * number, but the kernel keeps the old inode for the new name until it
 * looks the name up again: remember where recent moves went. */
#define MOVED_RING 4096
static struct { uint64_t from, to; } moved[MOVED_RING];
static unsigned int moved_next;
static pthread_mutex_t moved_lock = PTHREAD_MUTEX_INITIALIZER;

static void moved_add(uint64_t from, uint64_t to)
{
	pthread_mutex_lock(&moved_lock);
	moved[moved_next % MOVED_RING].from = from;
	moved[moved_next % MOVED_RING].to = to;
	moved_next++;
	pthread_mutex_unlock(&moved_lock);
}

uint64_t ops_moved_to(uint64_t from)
{
	uint64_t to = 0;

	pthread_mutex_lock(&moved_lock);
	for (unsigned int i = 0; i < MOVED_RING; i++) {
		if (moved[i].from == from)
			to = moved[i].to;
	}
	pthread_mutex_unlock(&moved_lock);
	return to;
}

/* ------------------------------------------------------------- helpers */

static bool refuse_readonly(fuse_req_t req)
{
	if (!dboxfs.readonly)
		return false;
	fuse_reply_err(req, EROFS);
	return true;
}

/* What every change starts with: refused on a read-only mount, and the
 * directory it happens in decoded.  false: the request has its reply. */
static bool begin_change(fuse_req_t req, fuse_ino_t parent, struct view_ino *v)
{
	if (refuse_readonly(req))
		return false;
	if (!view_ino_decode(parent, v)) {
		fuse_reply_err(req, ENOENT);
		return false;
	}
	return true;
}

static bool is_sub_name(const char *name, enum view_sub *sub_r)
{
	for (int i = 0; i < 3; i++) {
		if (strcmp(name, sub_names[i]) == 0) {
			*sub_r = (enum view_sub)i;
			return true;
		}
	}
	return false;
}

/* A name a message can have in cur/ or new/: base not empty, no '/',
 * and not starting with '.' (which rsync and friends use for files that
 * are not done yet). */
static bool final_name(const char *name, char *base, size_t blen,
		       const char **info_r)
{
	view_name_split(name, base, blen, info_r);
	return base[0] != '\0' && base[0] != '.' &&
		strlen(base) <= DBOX_NAME_MAX;
}

static int area_of(const struct view_ino *v, int *dirfd_r,
		   enum backing_area *area_r, int64_t *box_r)
{
	if (v->kind == VK_PLAIN) {
		struct binode *bi = backing_get(v->ino);

		if (bi == NULL)
			return -ENOENT;
		*dirfd_r = dup(backing_dirfd(bi));
		*area_r = bi->area;
		*box_r = bi->box;
		backing_put(bi);
		return *dirfd_r < 0 ? -errno : 0;
	}
	return ops_area_dirfd(v, dirfd_r, area_r, box_r);
}

static void reply_backing_entry(fuse_req_t req, int dirfd, const char *name,
				int64_t box, enum backing_area area)
{
	struct binode *bi;
	struct stat st;
	int ret = backing_lookup(dirfd, name, box, area, &bi, &st);

	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		ops_reply_entry(req, &st);
}

static int msg_by_name(int64_t box, const char *name, struct dbox_msg *m)
{
	char base[DBOX_NAME_MAX + 1];
	const char *info;

	view_name_split(name, base, sizeof(base), &info);
	return dbox_msg_lookup_base(dboxfs.store, box, base, m, NULL);
}

/* The message `name` in cur/ or new/ of a mailbox, under that exact name. */
static int msg_in_sub(int64_t box, enum view_sub sub, const char *name,
		      struct dbox_msg *m)
{
	char cur[DBOX_NAME_MAX + 48];
	int ret = msg_by_name(box, name, m);

	if (ret < 0)
		return ret;
	if ((sub == SUB_NEW) != m->in_new)
		return -ENOENT;
	view_msg_name(m, cur, sizeof(cur));
	return strcmp(cur, name) == 0 ? 0 : -ENOENT;
}

/* ------------------------------------------------------------- commits */

/* A message keeps the mode its file had, as on a local filesystem (rsync
 * -a sets it before its rename); 0 stands for the store's default. */
static uint32_t msg_mode(mode_t mode)
{
	mode &= 07777;
	return mode == dboxfs.file_mode ? 0 : (uint32_t)(S_IFREG | mode);
}

int ops_make_commit_job(int src_dirfd, const char *src_name, uint64_t src_ino,
			int64_t box, enum view_sub sub, const char *name,
			bool unlink_src, struct commit_job **job_r)
{
	struct commit_job *j = calloc(1, sizeof(*j));
	const char *info;
	struct stat st;

	if (j == NULL)
		return -ENOMEM;
	if (!final_name(name, j->base, sizeof(j->base), &info)) {
		free(j);
		return -EINVAL;
	}
	/* a link's source comes as /proc/self/fd/N, which must be
	 * followed; names in a backing directory must not be */
	j->fd = openat(src_dirfd, src_name, O_RDONLY | O_CLOEXEC |
		       (src_dirfd == AT_FDCWD ? 0 : O_NOFOLLOW));
	if (j->fd < 0 || fstat(j->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int ret = j->fd < 0 ? -errno : -EINVAL;

		if (j->fd >= 0)
			close(j->fd);
		free(j);
		return ret;
	}
	dbox_maildir_info_parse(info, false, &j->flags, &j->keywords);
	j->box = box;
	j->in_new = sub == SUB_NEW;
	j->new_info = j->in_new && info != NULL;
	j->mode = msg_mode(st.st_mode);
	j->received = st.st_mtim.tv_sec;
	j->received_ns = st.st_mtim.tv_nsec;
	j->src_dirfd = unlink_src ? dup(src_dirfd) : -1;
	snprintf(j->src_name, sizeof(j->src_name), "%s", src_name);
	j->src_ino = src_ino != 0 ? src_ino : backing_ino_of(st.st_ino);
	j->src = backing_get(j->src_ino);  /* put by the committer */
	*job_r = j;
	return 0;
}

/* ------------------------------------------------------------- create */

/* Where a new file in directory `parent` lives; reserved names of the
 * view cannot be created. */
static int create_target(const struct view_ino *v, const char *name,
			 int *dirfd_r, enum backing_area *area_r,
			 int64_t *box_r)
{
	enum view_sub sub;

	switch (v->kind) {
	case VK_ROOT:
	case VK_FOLDER:
		if (ops_dir_mailbox(v) != 0 &&
		    (is_sub_name(name, &sub) || strcmp(name, KWFILE_NAME) == 0))
			return -EEXIST;
		break;
	case VK_SUB:
	case VK_PLAIN:
		break;
	default:
		return -EPERM;
	}
	return area_of(v, dirfd_r, area_r, box_r);
}

void opw_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	enum backing_area area;
	struct view_ino v;
	struct binode *bi;
	struct fh *fh;
	int64_t box;
	int dirfd, fd, ret;

	if (!begin_change(req, parent, &v))
		return;
	ret = create_target(&v, name, &dirfd, &area, &box);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	fd = openat(dirfd, name, (fi->flags | O_CREAT | O_CLOEXEC) &
		    ~O_NOFOLLOW, mode & 07777);
	if (fd < 0) {
		ret = errno;
		close(dirfd);
		fuse_reply_err(req, ret);
		return;
	}
	memset(&e, 0, sizeof(e));
	ret = backing_lookup(dirfd, name, box, area, &bi, &e.attr);
	fh = calloc(1, sizeof(*fh));
	if (ret < 0 || fh == NULL) {
		close(fd);
		close(dirfd);
		free(fh);
		fuse_reply_err(req, ret < 0 ? -ret : ENOMEM);
		return;
	}
	close(dirfd);
	fh->type = FH_FD;
	fh->fd = fd;
	fh->ino = bi->ino;
	fh->box = box;
	fh->area = area;
	snprintf(fh->name, sizeof(fh->name), "%s", name);
	/* cp and a restore write straight into cur/ or new/: such a file
	 * becomes a message when its last handle closes */
	{
		char base[DBOX_NAME_MAX + 1];
		const char *info;

		fh->commit_on_release = (area == AREA_CUR || area == AREA_NEW) &&
			final_name(name, base, sizeof(base), &info);
	}
	fh_track(fh);
	/* only those get the closed mark at close(2): see opw_flush */
	fi->noflush = !fh->commit_on_release;
	e.ino = bi->ino;
	e.attr_timeout = dboxfs.attr_timeout;
	e.entry_timeout = dboxfs.entry_timeout;
	fi->fh = (uint64_t)(uintptr_t)fh;
	fuse_reply_create(req, &e, fi);
}

void opw_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, dev_t rdev)
{
	enum backing_area area;
	struct view_ino v;
	int64_t box;
	int dirfd = -1, ret;

	if (!begin_change(req, parent, &v))
		return;
	ret = create_target(&v, name, &dirfd, &area, &box);
	if (ret == 0 && !S_ISREG(mode) && area != AREA_FILES)
		ret = -EPERM;  /* only plain areas hold fifos and sockets */
	if (ret == 0 && mknodat(dirfd, name, mode, rdev) < 0)
		ret = -errno;
	if (ret < 0) {
		if (dirfd >= 0)
			close(dirfd);
		fuse_reply_err(req, -ret);
		return;
	}
	reply_backing_entry(req, dirfd, name, box, area);
	close(dirfd);
}

void opw_release_fd(struct fh *fh)
{
	struct commit_job *job;
	int dirfd;

	if (fh->commit_on_release &&
	    backing_area_dir(fh->box, fh->area, &dirfd) == 0) {
		enum view_sub sub = fh->area == AREA_NEW ? SUB_NEW : SUB_CUR;

		if (ops_make_commit_job(dirfd, fh->name, fh->ino, fh->box, sub,
					fh->name, true, &job) == 0)
			commit_submit(job);
		close(dirfd);
	}
	close(fh->fd);
	free(fh);
}

/* ------------------------------------------------------------- folders */

static int folder_prefix(const struct view_ino *v, char *buf, size_t len)
{
	struct folder_list fl;
	int depth, ret = folders_load(dboxfs.store, &fl);

	if (ret < 0)
		return ret;
	depth = folders_prefix(&fl, dboxfs.layout, v, buf, len);
	folders_free(&fl);
	return depth;
}

/* The mailbox a directory name in `v` stands for; false if the name is a
 * plain directory there instead. */
static int mailbox_for_dirname(const struct view_ino *v, const char *name,
			       char *mailbox, size_t len, bool *is_mailbox)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];
	int depth;

	*is_mailbox = false;
	if (dboxfs.layout == VIEW_MAILDIRPP) {
		if (v->kind != VK_ROOT || name[0] != '.')
			return 0;
		*is_mailbox = true;
		return view_pp_to_mailbox(name, mailbox, len);
	}
	if (name[0] == '.' || v->kind == VK_PLAIN || v->kind == VK_SUB)
		return 0;
	depth = folder_prefix(v, prefix, sizeof(prefix));
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

static void mkdir_sub(fuse_req_t req, int64_t box, enum view_sub sub)
{
	struct dbox_mailbox b;
	struct stat st;
	unsigned int bit = 1u << sub;
	int ret = dbox_mailbox_get(dboxfs.store, box, &b, NULL);

	if (ret == 0 && (b.subdirs & bit))
		ret = -EEXIST;
	if (ret == 0)
		ret = dbox_mailbox_set_subdirs(dboxfs.store, box,
					       b.subdirs | bit, NULL);
	if (ret == 0)
		ret = ops_get_attr(view_ino_sub(box, sub), &st);
	if (ret < 0)
		fuse_reply_err(req, dboxfs_errno(ret));
	else
		ops_reply_entry(req, &st);
}

static void mkdir_mailbox(fuse_req_t req, const char *mailbox)
{
	struct dbox_mailbox b;
	struct dbox_err err = { "" };
	struct stat st;
	int ret = dbox_mailbox_create(dboxfs.store, mailbox, &b, &err);

	/* as on a real maildir, cur/ new/ tmp/ come with their own mkdir */
	if (ret == 0)
		ret = dbox_mailbox_set_subdirs(dboxfs.store, b.id, 0, &err);
	if (ret == 0)
		ret = ops_get_attr(view_ino_folder(b.id), &st);
	if (ret < 0) {
		if (ret != -EEXIST && ret != -EINVAL)
			fuse_log(FUSE_LOG_ERR, "dboxfs: mkdir %s: %s\n",
				 mailbox, err.msg);
		fuse_reply_err(req, dboxfs_errno(ret));
	} else {
		ops_reply_entry(req, &st);
	}
}

void opw_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode)
{
	char mailbox[DBOX_NAME_MAX * 4 + 1];
	enum backing_area area;
	enum view_sub sub;
	struct view_ino v;
	bool is_mailbox;
	int64_t box;
	int dirfd = -1, ret;

	if (!begin_change(req, parent, &v))
		return;
	box = ops_dir_mailbox(&v);
	if (box != 0 && is_sub_name(name, &sub)) {
		mkdir_sub(req, box, sub);
		return;
	}
	if (v.kind == VK_SUB || v.kind == VK_MSG || v.kind == VK_KWFILE) {
		fuse_reply_err(req, v.kind == VK_SUB ? EPERM : ENOTDIR);
		return;
	}
	ret = mailbox_for_dirname(&v, name, mailbox, sizeof(mailbox),
				  &is_mailbox);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (is_mailbox) {
		mkdir_mailbox(req, mailbox);
		return;
	}
	ret = area_of(&v, &dirfd, &area, &box);
	if (ret == 0 && mkdirat(dirfd, name, mode & 07777) < 0)
		ret = -errno;
	if (ret < 0) {
		if (dirfd >= 0)
			close(dirfd);
		/* no plain area here (an fs-layout parent): no dirs */
		fuse_reply_err(req, ret == -ENOENT && dirfd < 0 ? EPERM : -ret);
		return;
	}
	reply_backing_entry(req, dirfd, name, box, area);
	close(dirfd);
}

static bool area_empty(int64_t box, enum backing_area area)
{
	char path[64];
	struct dirent *e;
	bool empty = true;
	DIR *d;
	int fd, dfd;

	if (backing_area_dir(box, area, &fd) < 0)
		return true;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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

static int rmdir_sub(int64_t box, enum view_sub sub)
{
	struct dbox_mailbox b;
	uint64_t count = 0;
	int ret = dbox_mailbox_get(dboxfs.store, box, &b, NULL);

	if (ret == 0 && !(b.subdirs & (1u << sub)))
		return -ENOENT;
	if (ret == 0 && sub != SUB_TMP)
		ret = dbox_msg_count(dboxfs.store, box, sub == SUB_NEW, &count,
				     NULL);
	if (ret == 0 && (count > 0 || !area_empty(box, sub == SUB_TMP ?
		AREA_TMP : sub == SUB_CUR ? AREA_CUR : AREA_NEW)))
		return -ENOTEMPTY;
	if (ret == 0)
		ret = dbox_mailbox_set_subdirs(dboxfs.store, box,
					       b.subdirs & ~(1u << sub), NULL);
	return ret;
}

static int rmdir_mailbox(int64_t box)
{
	struct dbox_mailbox b;
	struct dbox_err err = { "" };
	int ret = dbox_mailbox_get(dboxfs.store, box, &b, NULL);

	if (ret < 0)
		return ret;
	/* as Dovecot: INBOX stays (delivery goes there) */
	if (box == dboxfs.inbox_id)
		return -EPERM;
	if (b.subdirs != 0 || !area_empty(box, AREA_FILES))
		return -ENOTEMPTY;
	ret = dbox_mailbox_delete(dboxfs.store, b.name, &err);
	if (ret == 0)
		backing_forget_mailbox(box);
	if (ret < 0 && ret != -ENOTEMPTY)
		fuse_log(FUSE_LOG_ERR, "dboxfs: rmdir %s: %s\n", b.name,
			 err.msg);
	return ret;
}

/* An fs-layout directory that only holds other mailboxes. */
static bool is_vdir(const struct view_ino *v, const char *name)
{
	char prefix[DBOX_NAME_MAX * 4 + 1];
	struct folder_list fl;
	struct folder_child c;
	int depth;
	bool found = false;

	if (folders_load(dboxfs.store, &fl) < 0)
		return false;
	depth = folders_prefix(&fl, dboxfs.layout, v, prefix, sizeof(prefix));
	if (depth >= 0 && folders_lookup(&fl, dboxfs.layout, prefix,
					 (unsigned int)depth, dboxfs.inbox_id,
					 name, &c) == 0)
		found = (c.ino >> 60) == VK_VDIR;
	folders_free(&fl);
	return found;
}

void opw_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char mailbox[DBOX_NAME_MAX * 4 + 1];
	enum backing_area area;
	struct dbox_mailbox b;
	enum view_sub sub;
	struct view_ino v;
	bool is_mailbox;
	int64_t box;
	int dirfd = -1, ret;

	if (!begin_change(req, parent, &v))
		return;
	box = ops_dir_mailbox(&v);
	if (box != 0 && is_sub_name(name, &sub)) {
		ret = rmdir_sub(box, sub);
		fuse_reply_err(req, ret < 0 ? dboxfs_errno(ret) : 0);
		return;
	}
	ret = mailbox_for_dirname(&v, name, mailbox, sizeof(mailbox),
				  &is_mailbox);
	if (ret == 0 && is_mailbox) {
		if (dbox_mailbox_lookup(dboxfs.store, mailbox, &b, NULL) == 0)
			ret = rmdir_mailbox(b.id);
		else
			ret = is_vdir(&v, name) ? -ENOTEMPTY : -ENOENT;
		/* maildir++: a dot-name that is no mailbox may still be a
		 * plain directory */
		if (ret != -ENOENT || dboxfs.layout == VIEW_FS) {
			fuse_reply_err(req, ret < 0 ? dboxfs_errno(ret) : 0);
			return;
		}
	}
	ret = area_of(&v, &dirfd, &area, &box);
	if (ret == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		ret = -errno;
	if (dirfd >= 0)
		close(dirfd);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

/* ------------------------------------------------------------- unlink */

void opw_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	enum backing_area area;
	struct dbox_err err = { "" };
	struct view_ino v;
	struct dbox_msg m;
	int64_t box;
	int dirfd = -1, ret;

	if (!begin_change(req, parent, &v))
		return;
	if (v.kind == VK_SUB && v.sub != SUB_TMP &&
	    msg_in_sub(v.box, v.sub, name, &m) == 0) {
		/* unlink of a message is its expunge */
		ret = dbox_msg_expunge(dboxfs.store, v.box, m.uid, &err);
		if (ret < 0)
			fuse_log(FUSE_LOG_ERR, "dboxfs: expunge %s: %s\n",
				 name, err.msg);
		fuse_reply_err(req, ret < 0 ? dboxfs_errno(ret) : 0);
		return;
	}
	if ((v.kind == VK_ROOT || v.kind == VK_FOLDER) &&
	    ops_dir_mailbox(&v) != 0 && strcmp(name, KWFILE_NAME) == 0) {
		fuse_reply_err(req, EACCES);
		return;
	}
	ret = area_of(&v, &dirfd, &area, &box);
	if (ret < 0) {
		fuse_reply_err(req, ret == -ENOENT ? ENOENT : -ret);
		return;
	}
	ret = unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	close(dirfd);
	fuse_reply_err(req, -ret);
}

/* ------------------------------------------------------------- rename */

/* Flags, keywords, new/cur state and base of a message by rename; moved
 * to another mailbox when the target is another folder's cur/ or new/. */
static int rename_msg(const struct dbox_msg *m, const struct view_ino *dst,
		      const char *newname, fuse_ino_t *new_ino_r)
{
	char base[DBOX_NAME_MAX + 1];
	const char *info;
	uint32_t flags, kw, uid;
	struct dbox_msg old;
	struct dbox_err err = { "" };
	enum dbox_maildir_dir dir = DBOX_DIR_CUR;
	int ret;

	if (!final_name(newname, base, sizeof(base), &info))
		return -EINVAL;
	if (dst->sub == SUB_NEW)
		dir = info != NULL ? DBOX_DIR_NEW_INFO : DBOX_DIR_NEW;
	dbox_maildir_info_parse(info, false, &flags, &kw);
	/* rename(2) replaces an existing target */
	if (dbox_msg_lookup_base(dboxfs.store, dst->box, base, &old,
				 NULL) == 0 &&
	    !(old.mailbox_id == m->mailbox_id && old.uid == m->uid)) {
		ret = dbox_msg_expunge(dboxfs.store, dst->box, old.uid, &err);
		if (ret < 0)
			return ret;
	}
	*new_ino_r = view_ino_msg(m->mailbox_id, m->uid);
	if (dst->box == m->mailbox_id)
		return dbox_msg_update(dboxfs.store, m->mailbox_id, m->uid,
				       flags, kw, dir, base, &err);
	ret = dbox_msg_move(dboxfs.store, m->mailbox_id, m->uid, dst->box,
			    flags, kw, dir, base, &uid, &err);
	if (ret == 0) {
		*new_ino_r = view_ino_msg(dst->box, uid);
		moved_add(view_ino_msg(m->mailbox_id, m->uid), *new_ino_r);
	} else {
		fuse_log(FUSE_LOG_ERR, "dboxfs: move %s: %s\n", newname,
			 err.msg);
	}
	return ret;
}

/* What rename(2) does to the target directory: an empty one (one rmdir
 * would remove) is replaced, anything else stays. */
static int rename_folder_target(const struct view_ino *dst_dir,
				const char *newname, const char *to,
				unsigned int flags)
{
	struct dbox_mailbox b;

	if (dbox_mailbox_lookup(dboxfs.store, to, &b, NULL) == 0)
		return (flags & RENAME_NOREPLACE) ? -EEXIST : rmdir_mailbox(b.id);
	if (dboxfs.layout == VIEW_FS && is_vdir(dst_dir, newname))
		return (flags & RENAME_NOREPLACE) ? -EEXIST : -ENOTEMPTY;
	return 0;
}

/* A folder's rename renames what its directory is: in the fs layout the
 * mailbox with everything below it, in maildir++ that one mailbox (its
 * dot-children are siblings on disk and keep their names). */
static int rename_folder(const struct view_ino *src_dir, const char *name,
			 const struct view_ino *dst_dir, const char *newname,
			 unsigned int flags)
{
	char from[DBOX_NAME_MAX * 4 + 1], to[DBOX_NAME_MAX * 4 + 1];
	struct dbox_err err = { "" };
	struct dbox_mailbox b;
	bool a, c;
	int ret = mailbox_for_dirname(src_dir, name, from, sizeof(from), &a);

	if (ret == 0)
		ret = mailbox_for_dirname(dst_dir, newname, to, sizeof(to), &c);
	if (ret < 0)
		return ret;
	if (!a || !c)
		return -EXDEV;
	ret = dbox_mailbox_lookup(dboxfs.store, from, &b, NULL);
	/* fs layout: a parent that is no mailbox moves its children */
	if (ret < 0 && !(dboxfs.layout == VIEW_FS && is_vdir(src_dir, name)))
		return ret;
	/* as Dovecot's maildir: INBOX is no folder to rename */
	if (ret == 0 && b.id == dboxfs.inbox_id)
		return -EPERM;
	if (strcmp(from, to) == 0)
		return 0;
	if (dboxfs.layout == VIEW_FS && strncmp(to, from, strlen(from)) == 0 &&
	    to[strlen(from)] == '/')
		return -EINVAL;   /* into itself, as rename(2) */
	ret = rename_folder_target(dst_dir, newname, to, flags);
	if (ret < 0)
		return ret;
	if (dboxfs.layout == VIEW_MAILDIRPP)
		ret = dbox_mailbox_rename_one(dboxfs.store, from, to, &err);
	else
		ret = dbox_mailbox_rename(dboxfs.store, from, to, &err);
	if (ret < 0 && ret != -EEXIST && ret != -ENOENT && ret != -EINVAL &&
	    ret != -ENOTEMPTY)
		fuse_log(FUSE_LOG_ERR, "dboxfs: rename %s: %s\n", from,
			 err.msg);
	return ret;
}

/* A backing file moves into cur/ or new/ under a final name: a commit,
 * replied by the committer once durable. */
static int rename_commit(fuse_req_t req, int src_dirfd, const char *name,
			 fuse_ino_t newparent, const struct view_ino *dst,
			 const char *newname)
{
	struct commit_job *job;
	int ret = ops_make_commit_job(src_dirfd, name, 0, dst->box, dst->sub,
				      newname, true, &job);

	if (ret < 0)
		return ret;
	(void)newparent;
	job->req = req;
	commit_submit(job);
	return 1;
}

/* Whether RENAME_EXCHANGE of a file beside the store meets a message: a
 * file can trade places with a file still being written in cur/ or new/
 * (renameat2 below), not with a message, whose bytes are in the store
 * (see exchange_msg). */
static bool is_msg_name(const struct view_ino *dst, const char *newname)
{
	struct dbox_msg m;

	return dst->kind == VK_SUB && dst->sub != SUB_TMP &&
		msg_in_sub(dst->box, dst->sub, newname, &m) == 0;
}

static int rename_backing(fuse_req_t req, const struct view_ino *src,
			  const char *name, fuse_ino_t newparent,
			  const struct view_ino *dst, const char *newname,
			  unsigned int flags)
{
	enum backing_area sa, da;
	char base[DBOX_NAME_MAX + 1];
	const char *info;
	int64_t sbox, dbox;
	int sfd, dfd = -1, ret;

	if ((flags & RENAME_EXCHANGE) && is_msg_name(dst, newname))
		return -EXDEV;
	ret = area_of(src, &sfd, &sa, &sbox);
	if (ret < 0)
		return ret;
	if (!(flags & RENAME_EXCHANGE) && dst->kind == VK_SUB &&
	    dst->sub != SUB_TMP &&
	    final_name(newname, base, sizeof(base), &info)) {
		/* a mailbox holds one message per base name */
		if ((flags & RENAME_NOREPLACE) &&
		    dbox_msg_lookup_base(dboxfs.store, dst->box, base, NULL,
					 NULL) == 0)
			ret = -EEXIST;
		else
			ret = rename_commit(req, sfd, name, newparent, dst,
					    newname);
		close(sfd);
		return ret;
	}
	ret = area_of(dst, &dfd, &da, &dbox);
	if (ret == 0 && renameat2(sfd, name, dfd, newname, flags) < 0)
		ret = -errno;
	close(sfd);
	if (dfd >= 0)
		close(dfd);
	return ret;
}

/* RENAME_NOREPLACE of message m: refused if the target name exists (the
 * kernel checks that first) or if another message of the target mailbox
 * has its base name, which a local filesystem would keep as a second file
 * but a mailbox cannot (one message per base name).  The same message
 * under another flag suffix is no obstacle: that is a flag change. */
static int noreplace_msg(const struct dbox_msg *m, const struct view_ino *dst,
			 const char *newname)
{
	struct dbox_msg other;
	int ret = msg_by_name(dst->box, newname, &other);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (other.mailbox_id != m->mailbox_id || other.uid != m->uid)
		return -EEXIST;
	return msg_in_sub(dst->box, dst->sub, newname, &other) == 0 ?
		-EEXIST : 0;
}

static bool backing_has(const struct view_ino *dir, const char *name)
{
	enum backing_area area;
	struct stat st;
	int64_t box;
	int fd;
	bool found;

	if (area_of(dir, &fd, &area, &box) < 0)
		return false;
	found = fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(fd);
	return found;
}

/* RENAME_EXCHANGE of two messages of one mailbox: they trade names (base,
 * flags, new/ or cur/), so each name shows the other's bytes, as the two
 * files would on a local filesystem.  Messages of two mailboxes would
 * have to move both ways in one transaction, which the store has no
 * operation for: EXDEV, as for a message and a file of tmp/. */
static int exchange_msg(const struct dbox_msg *m, const struct view_ino *dst,
			const char *newname)
{
	struct dbox_err err = { "" };
	struct dbox_msg other;
	int ret;

	if (dst->kind != VK_SUB || dst->sub == SUB_TMP)
		return -EXDEV;
	ret = msg_in_sub(dst->box, dst->sub, newname, &other);
	if (ret == -ENOENT)
		/* no message by that name: a file being written, or nothing */
		return backing_has(dst, newname) ? -EXDEV : -ENOENT;
	if (ret < 0)
		return ret;
	if (other.mailbox_id != m->mailbox_id)
		return -EXDEV;
	ret = dbox_msg_exchange(dboxfs.store, m->mailbox_id, m->uid, other.uid,
				&err);
	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: exchange %s: %s\n", newname,
			 err.msg);
	return ret;
}

static int rename_of_msg(const struct dbox_msg *m, const struct view_ino *dst,
			 const char *newname, unsigned int flags)
{
	fuse_ino_t new_ino = 0;
	int ret = 0;

	if (flags & RENAME_EXCHANGE)
		return exchange_msg(m, dst, newname);
	if (dst->kind != VK_SUB || dst->sub == SUB_TMP)
		return -EXDEV;
	if (flags & RENAME_NOREPLACE)
		ret = noreplace_msg(m, dst, newname);
	if (ret == 0)
		ret = rename_msg(m, dst, newname, &new_ino);
	return ret;
}

/* RENAME_EXCHANGE of two folders is not offered: their mailboxes would
 * trade names and subtrees in one step, which the store cannot do. */
static bool is_mailbox_dir(const struct view_ino *dir, const char *name)
{
	char mailbox[DBOX_NAME_MAX * 4 + 1];
	struct dbox_mailbox b;
	bool is_mailbox;

	return mailbox_for_dirname(dir, name, mailbox, sizeof(mailbox),
				   &is_mailbox) == 0 && is_mailbox &&
		dbox_mailbox_lookup(dboxfs.store, mailbox, &b, NULL) == 0;
}

void opw_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct view_ino src, dst;
	struct dbox_msg m;
	enum view_sub sub;
	int ret;

	if (refuse_readonly(req))
		return;
	if (!view_ino_decode(parent, &src) || !view_ino_decode(newparent, &dst)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (src.kind == VK_SUB && src.sub != SUB_TMP &&
	    msg_in_sub(src.box, src.sub, name, &m) == 0) {
		ret = rename_of_msg(&m, &dst, newname, flags);
	} else if ((src.kind == VK_ROOT || src.kind == VK_FOLDER ||
		    src.kind == VK_VDIR) && ops_dir_mailbox(&src) != 0 &&
		   is_sub_name(name, &sub)) {
		ret = -EPERM;   /* cur/ new/ tmp/ stay where they are */
	} else if (flags & RENAME_EXCHANGE) {
		ret = is_mailbox_dir(&src, name) ||
			is_mailbox_dir(&dst, newname) ? -EINVAL :
			rename_backing(req, &src, name, newparent, &dst,
				       newname, flags);
	} else {
		ret = rename_folder(&src, name, &dst, newname, flags);
		if (ret == -EXDEV || ret == -ENOENT)
			ret = rename_backing(req, &src, name, newparent, &dst,
					     newname, flags);
	}
	if (ret == 1)
		return;  /* the committer replies */
	/* the kernel keeps the message's old inode for the new name: it
	 * answers through ops_moved_to until the entry times out */
	fuse_reply_err(req, ret < 0 ? dboxfs_errno(ret) : 0);
}

/* ------------------------------------------------------------- link */

static void link_binode(fuse_req_t req, struct binode *bi, fuse_ino_t ino,
			fuse_ino_t newparent, const char *newname);

void opw_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	      const char *newname)
{
	struct binode *bi;

	if (refuse_readonly(req))
		return;
	bi = backing_get(ino);
	link_binode(req, bi, ino, newparent, newname);
	backing_put(bi);
}

static void link_binode(fuse_req_t req, struct binode *bi, fuse_ino_t ino,
			fuse_ino_t newparent, const char *newname)
{
	enum backing_area area;
	struct view_ino dst;
	struct commit_job *job;
	char path[64];
	int64_t box, msg_box;
	uint32_t msg_uid;
	int dfd = -1, ret;

	if (bi == NULL || backing_msg_of(bi, &msg_box, &msg_uid) ||
	    !view_ino_decode(newparent, &dst)) {
		/* messages are linked nowhere: tools copy instead */
		fuse_reply_err(req, EXDEV);
		return;
	}
	if (dst.kind == VK_SUB && dst.sub != SUB_TMP) {
		/* qmail-style delivery: link tmp/X new/X, then unlink */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", bi->fd);
		ret = ops_make_commit_job(AT_FDCWD, path, ino, dst.box,
					  dst.sub, newname, false, &job);
		if (ret < 0) {
			fuse_reply_err(req, -ret);
			return;
		}
		job->req = req;
		job->reply_entry = true;
		commit_submit(job);
		return;
	}
	ret = area_of(&dst, &dfd, &area, &box);
	if (ret == 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", bi->fd);
		if (linkat(AT_FDCWD, path, dfd, newname, AT_SYMLINK_FOLLOW) < 0)
			ret = -errno;
	}
	if (ret < 0) {
		if (dfd >= 0)
			close(dfd);
		fuse_reply_err(req, -ret);
		return;
	}
	reply_backing_entry(req, dfd, newname, box, area);
	close(dfd);
}

/* ------------------------------------------------- symlinks, attributes */

void opw_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		 const char *name)
{
	enum backing_area area;
	struct view_ino v;
	int64_t box;
	int dirfd = -1, ret;

	if (!begin_change(req, parent, &v))
		return;
	ret = create_target(&v, name, &dirfd, &area, &box);
	if (ret == 0 && area != AREA_FILES) {
		close(dirfd);
		ret = -EPERM;
	}
	if (ret == 0 && symlinkat(link, dirfd, name) < 0) {
		ret = -errno;
		close(dirfd);
	}
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_backing_entry(req, dirfd, name, box, area);
	close(dirfd);
}

void opw_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct binode *bi = backing_get(ino);
	char buf[PATH_MAX + 1];
	ssize_t n;

	if (bi == NULL) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = readlinkat(bi->fd, "", buf, sizeof(buf) - 1);
	backing_put(bi);
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* Messages: the received time (mtime) and the mode change and persist,
 * so that rsync -a finds nothing to do the second time; the owner follows
 * the store, so chown succeeds without effect as rsync and cp -p expect;
 * the size of a message never changes. */
static int setattr_msg(int64_t box, uint32_t uid, const struct stat *attr,
		       int to_set)
{
	struct dbox_err err = { "" };
	struct timespec now;
	struct dbox_msg m;
	int ret = ops_msg_follow(box, uid, &m);

	if (ret < 0)
		return ret;
	box = m.mailbox_id;
	uid = m.uid;

	if (to_set & FUSE_SET_ATTR_SIZE)
		return -EACCES;
	if (to_set & FUSE_SET_ATTR_MODE) {
		ret = dbox_msg_set_mode(dboxfs.store, box, uid, S_IFREG |
					(attr->st_mode & 07777), &err);
		if (ret < 0)
			return ret;
	}
	if (!(to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)))
		return 0;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		clock_gettime(CLOCK_REALTIME, &now);
		return dbox_msg_set_received(dboxfs.store, box, uid, now.tv_sec,
					     now.tv_nsec, &err);
	}
	return dbox_msg_set_received(dboxfs.store, box, uid,
				     attr->st_mtim.tv_sec,
				     attr->st_mtim.tv_nsec, &err);
}

static int setattr_plain(struct binode *bi, const struct stat *attr,
			 int to_set, struct fuse_file_info *fi)
{
	struct fh *fh = fi != NULL ? (struct fh *)(uintptr_t)fi->fh : NULL;
	char path[64];

	if (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_MTIME_NOW))
		prepare_drop(bi->ino);
	if (to_set & FUSE_SET_ATTR_SIZE)
		backing_mark_drop(bi->ino);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", bi->fd);
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
		struct timespec tv[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };

		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (utimensat(AT_FDCWD, path, tv, 0) < 0)
			return -errno;
	}
	return 0;
}

void opw_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		 int to_set, struct fuse_file_info *fi)
{
	struct view_ino v;
	struct binode *bi;
	struct stat st;
	int64_t msg_box;
	uint32_t msg_uid;
	int ret = 0;

	if (!begin_change(req, ino, &v))
		return;
	switch (v.kind) {
	case VK_MSG:
		ret = setattr_msg(v.box, v.uid, attr, to_set);
		break;
	case VK_PLAIN:
		bi = backing_get(ino);
		if (bi == NULL)
			ret = -ENOENT;
		else if (backing_msg_of(bi, &msg_box, &msg_uid))
			ret = setattr_msg(msg_box, msg_uid, attr, to_set);
		else
			ret = setattr_plain(bi, attr, to_set, fi);
		backing_put(bi);
		break;
	case VK_KWFILE:
		ret = (to_set & FUSE_SET_ATTR_SIZE) ? -EACCES : 0;
		break;
	default:
		/* directories of the view: their times and modes derive
		 * from the store; rsync -a may try, and that is fine */
		ret = (to_set & FUSE_SET_ATTR_SIZE) ? -EISDIR : 0;
		break;
	}
	if (ret == 0)
		ret = ops_get_attr(ino, &st);
	if (ret < 0)
		fuse_reply_err(req, dboxfs_errno(ret));
	else
		fuse_reply_attr(req, &st, dboxfs.attr_timeout);
}

/* ------------------------------------------------------ data of files */

void opw_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf,
		   off_t off, struct fuse_file_info *fi)
{
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(buf));
	ssize_t n;

	(void)ino;
	if (fh->type != FH_FD) {
		fuse_reply_err(req, EBADF);
		return;
	}
	prepare_drop(fh->ino);
	if (fh->area == AREA_CUR || fh->area == AREA_NEW)
		backing_mark_drop(fh->ino);  /* written after a close */
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fh->fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, buf, 0);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	fh->wrote = true;
	fuse_reply_write(req, (size_t)n);
}

/* A file in tmp/ being synced is about to be delivered (prepare.h).  What
 * its writer opened may be write-only: the record is read from a
 * descriptor of our own.  Failure only means the rename does the work. */
static void prepare_delivery(const struct fh *fh)
{
	char base[DBOX_NAME_MAX + 1];
	struct binode *bi;
	const char *info;
	int fd;

	if (dboxfs.readonly || fh->box == 0 ||
	    !final_name(fh->name, base, sizeof(base), &info))
		return;
	bi = backing_get(fh->ino);
	fd = bi != NULL ? backing_open(bi, O_RDONLY | O_CLOEXEC) : -1;
	backing_put(bi);
	if (fd < 0)
		return;
	prepare_fsync(fh->ino, fd, fh->box, base);
	close(fd);
}

void opw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi)
{
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
	int r = 0;

	(void)ino;
	if (fh->type == FH_FD && fh->area == AREA_TMP && fh->wrote)
		prepare_delivery(fh);
	if (fh->type == FH_FD)
		r = datasync ? fdatasync(fh->fd) : fsync(fh->fd);
	fuse_reply_err(req, r < 0 ? errno : 0);
}

/* Nothing is buffered here (writes reach the file before they are
 * answered) and file locks are the kernel's own (no lock operations), so
 * close(2) has nothing to do for most files: they are opened with
 * noflush, one round trip fewer per close.  A file created in cur/ or
 * new/ under its final name gets its closed mark (backing.h) here, before
 * close(2) returns, so that a commit the daemon did not live to make is
 * made at the next start.  (Never ENOSYS: the kernel would stop sending
 * FLUSH for every file.) */
void opw_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (fh->type == FH_FD && fh->commit_on_release)
		backing_mark_closed(fh->ino, fh->fd);
	fuse_reply_err(req, 0);
}

void opw_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi)
{
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (fh->type != FH_FD) {
		fuse_reply_err(req, EACCES);
		return;
	}
	prepare_drop(fh->ino);
	if (fh->area == AREA_CUR || fh->area == AREA_NEW)
		backing_mark_drop(fh->ino);
	fuse_reply_err(req, fallocate(fh->fd, mode, offset, length) < 0 ?
		       errno : 0);
}
