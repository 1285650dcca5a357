/* readdir.c - open directories and their listings (readdir, readdirplus). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "cookie.h"
#include "flush.h"
#include "folders.h"
#include "handles.h"
#include "kcache.h"
#include "kwimport.h"
#include "msgname.h"
#include "node.h"
#include "readdir.h"
#include "reply.h"
#include "sweep.h"
#include "sweep-ro.h"
#include "totmp.h"


/* An open directory: the names of its backing entries, read once at the
 * first readdir so that their cookies (indexes) stay valid for the life
 * of the handle whatever happens in the backing directory meanwhile.
 * In cur/ and new/ those are the files pending there; listed[i] says
 * that the message phase listed a message under names[i] (see
 * readdir_sub). */
/* A struct fh first: open directories are on the list of open handles,
 * so that those whose releasedir never came are freed at destroy. */
struct dirhandle {
	struct fh fh;
	bool loaded;
	char **names;           /* sorted */
	bool *listed;
	size_t count;
	/* tmp/ of a read-only mount: the files the next sweep moves in
	 * (sweep-ro.h), listed after names */
	struct sweepro_list moved;
};

struct dirbuf {
	struct dboxfs *fs;
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
	bool full;
	struct dirhandle *dh;
	const struct view_ino *dir;
};

/* Adds one entry; false when the buffer is full (the entry is not added
 * and the kernel asks again from the previous cookie). */
static bool dir_add(struct dirbuf *d, const char *name, const struct stat *st,
		    uint64_t cookie)
{
	bool counted = false;
	size_t n;

	if (d->plus) {
		struct fuse_entry_param e;

		reply_entry_param(d->fs, &e, st);
		e.attr_timeout = d->fs->cache_timeout;
		/* the kernel takes a lookup of every entry but . and .. */
		counted = strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
		if (counted)
			e.entry_timeout = kcache_add(d->fs, d->dir->ino, name,
						     st->st_ino);
		n = fuse_add_direntry_plus(d->req, d->buf + d->used,
					   d->size - d->used, name, &e,
					   (off_t)cookie);
	} else {
		n = fuse_add_direntry(d->req, d->buf + d->used,
				      d->size - d->used, name, st,
				      (off_t)cookie);
	}
	if (n > d->size - d->used) {
		if (counted)
			kcache_forget(d->fs, st->st_ino, 1);
		d->full = true;
		return false;
	}
	d->used += n;
	return true;
}

static bool add_dots(struct dirbuf *d, uint64_t ino, off_t off)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR;
	st.st_ino = ino;
	if (off < CK_DOT && !dir_add(d, ".", &st, CK_DOT))
		return false;
	/* the kernel fills in ".." itself; no lookup count is taken */
	st.st_ino = VIEW_ROOT_INO;
	if (off < CK_DOTDOT && !dir_add(d, "..", &st, CK_DOTDOT))
		return false;
	return true;
}

static int backing_dir_open(struct dboxfs *fs, const struct view_ino *v,
			    int *fd_r)
{
	enum backing_area area;
	int64_t box;
	int pfd, ret;

	ret = node_of(v)->area(fs, v, &pfd, &area, &box);
	if (ret < 0)
		return ret;
	*fd_r = backing_reopen(pfd, O_RDONLY | O_DIRECTORY);
	close(pfd);
	return *fd_r < 0 ? *fd_r : 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dirhandle_load(struct dboxfs *fs, struct dirhandle *dh,
			   const struct view_ino *v)
{
	struct dirent *e;
	DIR *d;
	int fd;

	dh->loaded = true;
	node_of(v)->moved(fs, v, &dh->moved);
	if (backing_dir_open(fs, v, &fd) < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char **p;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = realloc(dh->names, (dh->count + 1) * sizeof(*p));
		if (p == NULL)
			break;
		dh->names = p;
		dh->names[dh->count] = strdup(e->d_name);
		if (dh->names[dh->count] != NULL)
			dh->count++;
	}
	closedir(d);
	if (dh->count > 1)
		qsort(dh->names, dh->count, sizeof(*dh->names), cmp_name);
	dh->listed = calloc(dh->count + 1, sizeof(*dh->listed));
	if (dh->listed == NULL) {
		for (size_t i = 0; i < dh->count; i++)
			free(dh->names[i]);
		dh->count = 0;
	}
}

static void dirhandle_unload(struct dirhandle *dh)
{
	for (size_t i = 0; i < dh->count; i++)
		free(dh->names[i]);
	free(dh->names);
	free(dh->listed);
	sweepro_free(&dh->moved);
	dh->names = NULL;
	dh->listed = NULL;
	dh->count = 0;
	dh->loaded = false;
}

static void dirhandle_free(struct dirhandle *dh)
{
	if (dh != NULL)
		dirhandle_unload(dh);
	free(dh);
}

/* A message listed under a name that is also a pending file's: the
 * file's entry is not listed again. */
static void mark_listed(struct dirhandle *dh, const char *name)
{
	char **p;

	if (dh == NULL || dh->count == 0)
		return;
	p = bsearch(&name, dh->names, dh->count, sizeof(*dh->names),
		    cmp_name);
	if (p != NULL)
		dh->listed[p - dh->names] = true;
}

/* One entry of tmp/ that the next sweep moves in: the file where it is
 * now, under the name it will have.  false: the buffer is full. */
static bool add_moved_one(struct dirbuf *d, const struct sweepro_entry *e,
			  uint64_t cookie)
{
	int64_t box = d->dir->box;
	struct binode *bi;
	struct stat st;
	int fd, ret = sweepro_dirfd(d->fs, box, e, &fd);

	if (ret < 0)
		return true;
	if (d->plus)
		ret = backing_lookup(d->fs, fd, e->name, box, AREA_TMP, &bi,
				     &st);
	else if ((ret = fstatat(fd, e->name, &st, AT_SYMLINK_NOFOLLOW)) < 0)
		ret = -errno;
	else
		st.st_ino = backing_shown_ino_at(fd, e->name, AREA_TMP,
						 backing_node_ino(fd, e->name,
								  &st));
	close(fd);
	if (ret < 0)
		return true;   /* gone since the listing was made */
	if (dir_add(d, e->shown, &st, cookie))
		return true;
	if (d->plus)
		backing_forget(d->fs, st.st_ino, 1);
	return false;
}

static void add_moved(struct dirbuf *d, uint64_t first)
{
	const struct sweepro_list *l = &d->dh->moved;
	uint64_t i = first > d->dh->count ? first - d->dh->count : 0;

	for (; i < l->count && !d->full; i++) {
		if (!add_moved_one(d, &l->v[i],
				   cookie_backing(d->dh->count + i)))
			break;
	}
}

static bool add_msg_entry(struct dirbuf *d, const struct dbox_msg *m,
			  uint64_t cookie)
{
	char name[DBOX_NAME_MAX + 48];
	struct stat st;

	attr_msg(d->fs, &st, m);
	view_msg_name(m, name, sizeof(name));
	if (!dir_add(d, name, &st, cookie))
		return false;
	mark_listed(d->dh, name);
	return true;
}

/* A file pending in cur/ or new/ when the listing began that is gone
 * now: committed, after the message phase passed its uid, so its message
 * is listed here (or removed: nothing). */
static bool add_committed(struct dirbuf *d, const char *name, uint64_t cookie)
{
	struct dbox_msg m;

	if (msgname_in_sub(d->fs, d->dir->box, d->dir->sub, name, &m) != 0)
		return true;
	return add_msg_entry(d, &m, cookie);
}

/* The backing entries of the directory, after its virtual ones. */
static void add_backing(struct dirbuf *d, off_t off)
{
	uint64_t first = cookie_backing_first((uint64_t)off);
	int dirfd = -1;
	enum backing_area area = AREA_FILES;
	int64_t box = 0;

	if (d->dh == NULL)
		return;
	if (!d->dh->loaded)
		dirhandle_load(d->fs, d->dh, d->dir);
	if (d->dh->count == 0) {
		add_moved(d, first);
		return;
	}
	/* a plain directory's own binode, or the area a view directory
	 * shows */
	if (node_of(d->dir)->area(d->fs, d->dir, &dirfd, &area, &box) < 0)
		return;
	bool pending = node_of(d->dir)->pending(d->dir);

	for (uint64_t i = first; i < d->dh->count && dirfd >= 0; i++) {
		char buf[NAME_MAX + 1];
		const char *shown = d->dh->names[i];
		struct binode *bi;
		struct stat st;
		int ret;

		if (pending && d->dh->listed[i])
			continue;  /* its message was listed */

		/* no sweep ran: the spool as the next one leaves it */
		if (d->fs->readonly && area == AREA_TMP &&
		    (shown = totmp_ro_shown(d->fs, dirfd, shown, buf,
					    sizeof(buf))) == NULL)
			continue;
		if (d->fs->readonly && area != AREA_FILES &&
		    (sweep_ro_leftover(d->fs, box, dirfd, d->dh->names[i]) ||
		     sweep_moves_to_tmp(d->fs, box, area, dirfd,
					d->dh->names[i])))
			continue;
		if (d->plus)
			ret = backing_lookup(d->fs, dirfd, d->dh->names[i], box,
					     area, &bi, &st);
		else if ((ret = fstatat(dirfd, d->dh->names[i], &st,
					AT_SYMLINK_NOFOLLOW)) < 0)
			ret = -errno;
		else
			st.st_ino = backing_shown_ino_at(dirfd, d->dh->names[i],
							 area, backing_node_ino(
								 dirfd,
								 d->dh->names[i],
								 &st));
		if (ret < 0 && pending && !d->fs->readonly) {
			if (!add_committed(d, d->dh->names[i],
					   cookie_backing(i)))
				break;
			continue;
		}
		if (ret < 0)
			continue;  /* gone since the snapshot */
		if (!dir_add(d, shown, &st, cookie_backing(i))) {
			if (d->plus)
				backing_forget(d->fs, st.st_ino, 1);
			break;
		}
	}
	if (dirfd >= 0)
		close(dirfd);
	add_moved(d, first);
}

struct msg_list_ctx {
	struct dirbuf *d;
	uint32_t last_uid;      /* of the last entry that fitted */
};

static int add_msg(void *ctx, const struct dbox_msg *m)
{
	struct msg_list_ctx *c = ctx;

	if (!add_msg_entry(c->d, m, cookie_msg(m->uid)))
		return 1;
	c->last_uid = m->uid;
	return 0;
}

/* Messages come in pages of uid order until the buffer is full, so the
 * daemon's memory does not grow with the folder, and the cookie (uid)
 * resumes correctly however the folder changed in between.
 *
 * Then the files pending in cur/ or new/, from a snapshot taken before
 * the messages: a file committed meanwhile (its row written, then the
 * file removed, commit.c) is in the snapshot if the message phase missed
 * its row, and is listed once either way.  A listing made the other way
 * round missed such a file for good: the kernel keeps the listing, and a
 * commit is no change of the directory it would see. */
int readdir_sub(struct dirbuf *d, const struct view_ino *v, off_t off)
{
	struct msg_list_ctx c = { d, cookie_msg_after((uint64_t)off) };
	int ret = 0;

	if (d->dh != NULL && node_of(v)->pending(v) &&
	    (off == 0 || !d->dh->loaded)) {
		dirhandle_unload(d->dh);
		dirhandle_load(d->fs, d->dh, v);
	}
	if (!add_dots(d, view_ino_sub(v->box, v->sub), off))
		return 0;
	/* the kernel asks with one page: fetch about what fits in it (an
	 * entry with attributes takes some 150 bytes, a plain one 40) */
	unsigned int page = (unsigned int)(d->size / (d->plus ? 120 : 32)) + 1;

	if (v->sub != SUB_TMP && (uint64_t)off < BACKING_COOKIE_BASE) {
		do {
			ret = dbox_msg_list(d->fs->store, v->box, c.last_uid,
					    v->sub == SUB_NEW, page, add_msg,
					    &c, NULL);
		} while (ret == (int)page && !d->full);
	}
	if (ret >= 0 && !d->full)
		add_backing(d, off);
	return ret < 0 ? ret : 0;
}

struct folder_ctx {
	struct dirbuf *d;
};

static int add_folder_child(void *ctx, const struct folder_child *c)
{
	struct folder_ctx *f = ctx;
	struct stat st;

	if (attr_get(f->d->fs, c->ino, &st) < 0)
		return 0;
	return dir_add(f->d, c->name, &st, c->cookie) ? 0 : 1;
}

int readdir_folder(struct dirbuf *d, const struct view_ino *v, off_t off)
{
	uint64_t ino = v->ino;
	struct dboxfs *fs = d->fs;
	int64_t box = folders_dir_mailbox(fs->layout, fs->inbox_id, v);
	unsigned int subdirs = attr_subdirs_of(fs, box);
	struct folder_list fl;
	struct folder_ctx fc = { d };
	char prefix[DBOX_NAME_MAX * 4 + 1];
	struct stat st;
	int depth, ret;

	/* a plain dovecot-keywords an older daemon let a rename leave
	 * would be listed beside the generated one */
	if (off == 0)
		kwimport_shadow(fs, v);
	if (!add_dots(d, ino, off))
		return 0;
	for (int i = 0; box != 0 && i < 3; i++) {
		struct view_ino sv = { .kind = VK_SUB, .box = box,
				       .sub = (enum view_sub)i };

		if (off >= CK_CUR + i || !(subdirs & (1u << i)))
			continue;
		if (attr_sub(fs, &sv, view_ino_sub(box, sv.sub), &st) < 0 ||
		    !dir_add(d, view_sub_names[i], &st, (uint64_t)(CK_CUR + i)))
			return 0;
	}
	if (box != 0 && off < CK_KW && attr_has_keywords(fs, box) &&
	    (attr_get(fs, view_ino_kwfile(box), &st) < 0 ||
	     !dir_add(d, KWFILE_NAME, &st, CK_KW)))
		return 0;
	if (node_of(v)->holds_folders(fs, v) &&
	    (uint64_t)off < BACKING_COOKIE_BASE) {
		ret = folders_load(fs, &fl);
		if (ret < 0)
			return ret;
		depth = folders_prefix(&fl, fs->layout, v, prefix,
				       sizeof(prefix));
		if (depth >= 0)
			folders_children(&fl, fs->layout, prefix,
					 (unsigned int)depth, fs->inbox_id,
					 off > 0 ? (uint64_t)off : 0,
					 add_folder_child, &fc);
		folders_free(&fl);
		if (depth < 0)
			return depth;
	}
	if (!d->full)
		add_backing(d, off);
	return 0;
}

int readdir_plain(struct dirbuf *d, const struct view_ino *v, off_t off)
{
	if (add_dots(d, v->ino, off))
		add_backing(d, off);
	return 0;
}

void readdir_reply(fuse_req_t req, const struct view_ino *v, size_t size,
		   off_t off, struct fuse_file_info *fi, bool plus,
		   readdir_lister *list)
{
	struct dirbuf d = { .fs = fuse_req_userdata(req), .req = req,
			     .size = size, .plus = plus };
	int ret;

	d.dh = (struct dirhandle *)(uintptr_t)fi->fh;
	d.dir = v;
	d.buf = malloc(size);
	if (d.buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = list(&d, v, off);
	if (ret < 0 && d.used == 0)
		fuse_reply_err(req, dboxfs_errno(ret));
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

void readdir_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct dirhandle *dh = calloc(1, sizeof(*dh));
	struct view_ino v;

	if (dh == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dh->fh.type = FH_DIR;
	dh->fh.fd = -1;
	fh_track(fs, &dh->fh);
	fi->fh = (uint64_t)(uintptr_t)dh;
	/* The kernel keeps the listing of the view's directories: its own
	 * changes in them reset it, and the follower drops it on every
	 * change it did not see (follow.c).  tmp/ and plain directories are
	 * listed from the backing tree each time (their kinds'
	 * followed). */
	if (view_ino_decode(ino, &v) && node_of(&v)->followed(&v)) {
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* the opener was interrupted: no releasedir will come */
		fh_untrack(fs, &dh->fh);
		dirhandle_free(dh);
	}
}

void readdir_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct dirhandle *dh = (struct dirhandle *)(uintptr_t)fi->fh;

	(void)ino;
	fh_untrack(fs, &dh->fh);
	dirhandle_free(dh);
	fuse_reply_err(req, 0);
}

void readdir_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	/* A rename or unlink is durable when fsync(2) of its directory
	 * returns (flush.h): every waiting fsync shares one flush.  Which
	 * directory does not matter: a flush covers all changes. */
	(void)ino; (void)datasync; (void)fi;
	flush_request(fuse_req_userdata(req), req);
}

void readdir_handle_free(struct fh *fh)
{
	dirhandle_free((struct dirhandle *)fh);
}
