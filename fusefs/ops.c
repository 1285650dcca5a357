/* ops.c - the FUSE low-level operations of the maildir view.
 *
 * Lookups, getattr and readdir are answered from the index (a few indexed
 * SQLite reads on the calling thread; WAL readers never wait for writers).
 * Message reads never touch the disk on the FUSE thread: they are submitted
 * to the store's async fs layer and the completion replies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <dirent.h>
#include <fcntl.h>

#include "commit.h"
#include "folders.h"
#include "ops.h"

/* readdir cookies: 1 ".", 2 "..", 3..5 cur/new/tmp, 6 dovecot-keywords,
 * then FOLDER_COOKIE_BASE + mailbox id, or for messages
 * FOLDER_COOKIE_BASE + uid, then BACKING_COOKIE_BASE + the index of a
 * backing entry in the directory handle's snapshot */
enum { CK_DOT = 1, CK_DOTDOT, CK_CUR, CK_NEW, CK_TMP, CK_KW };
#define BACKING_COOKIE_BASE (1ull << 40)

static const char *const sub_names[] = { "cur", "new", "tmp" };

/* ----------------------------------------------------------- attributes */

static void ts_from_ns(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

static void attr_dir(struct stat *st, uint64_t ino, nlink_t nlink,
		     int64_t mtime_ns)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | dboxfs.dir_mode;
	st->st_nlink = nlink;
	st->st_uid = dboxfs.uid;
	st->st_gid = dboxfs.gid;
	st->st_size = 4096;
	st->st_blksize = 4096;
	st->st_blocks = 8;
	ts_from_ns(&st->st_mtim, mtime_ns);
	st->st_atim = st->st_ctim = st->st_mtim;
}

void ops_attr_msg(struct stat *st, const struct dbox_msg *m)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = view_ino_msg(m->mailbox_id, m->uid);
	st->st_mode = m->mode != 0 ? (mode_t)m->mode :
		S_IFREG | dboxfs.file_mode;
	st->st_nlink = 1;
	st->st_uid = dboxfs.uid;
	st->st_gid = dboxfs.gid;
	st->st_size = (off_t)m->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((m->size + 511) / 512);
	st->st_mtim.tv_sec = m->received;
	st->st_mtim.tv_nsec = m->received_ns;
	st->st_atim = st->st_mtim;
	st->st_ctim.tv_sec = m->saved;
}

/* dovecot-keywords: "<index> <name>\n" per keyword, as Dovecot's maildir
 * driver writes it; the letter of index i is 'a' + i. */
static int kwfile_text(int64_t box, char *buf, size_t len)
{
	char *names[DBOX_MAX_KEYWORDS], nbuf[DBOX_MAX_KEYWORDS * 256];
	int count = dbox_mailbox_keywords(dboxfs.store, box, names, nbuf,
					  sizeof(nbuf), NULL);
	size_t o = 0;

	if (count < 0)
		return count;
	for (int i = 0; i < count; i++) {
		if (names[i] != NULL && o < len)
			o += (size_t)snprintf(buf + o, len - o, "%d %s\n", i,
					      names[i]);
	}
	return o < len ? (int)o : (int)len;
}

static int attr_kwfile(struct stat *st, const struct dbox_mailbox *box)
{
	char text[DBOX_MAX_KEYWORDS * 260];
	int n = kwfile_text(box->id, text, sizeof(text));

	if (n < 0)
		return n;
	memset(st, 0, sizeof(*st));
	st->st_ino = view_ino_kwfile(box->id);
	st->st_mode = S_IFREG | (dboxfs.file_mode & 0444);
	st->st_nlink = 1;
	st->st_uid = dboxfs.uid;
	st->st_gid = dboxfs.gid;
	st->st_size = n;
	st->st_blksize = 4096;
	ts_from_ns(&st->st_mtim, box->change_cur_ns > box->change_new_ns ?
		   box->change_cur_ns : box->change_new_ns);
	st->st_atim = st->st_ctim = st->st_mtim;
	return 0;
}

static bool has_keywords(int64_t box)
{
	char *names[DBOX_MAX_KEYWORDS], nbuf[DBOX_MAX_KEYWORDS * 256];

	return dbox_mailbox_keywords(dboxfs.store, box, names, nbuf,
				     sizeof(nbuf), NULL) > 0;
}

int64_t ops_dir_mailbox(const struct view_ino *v)
{
	if (v->kind == VK_ROOT)
		return dboxfs.layout == VIEW_MAILDIRPP ? dboxfs.inbox_id : 0;
	return v->kind == VK_FOLDER ? v->box : 0;
}

int64_t ops_files_box(const struct view_ino *v)
{
	if (v->kind == VK_ROOT)
		return dboxfs.layout == VIEW_MAILDIRPP ? dboxfs.inbox_id : 0;
	return v->kind == VK_FOLDER ? v->box : -1;
}

/* Which of cur/new/tmp a folder shows (DBOX_SUBDIR_* bits). */
static unsigned int subdirs_of(int64_t box)
{
	struct dbox_mailbox b;

	if (box == 0 || dbox_mailbox_get(dboxfs.store, box, &b, NULL) < 0)
		return 0;
	return b.subdirs;
}

static unsigned int popcount3(unsigned int bits)
{
	return (bits & 1) + ((bits >> 1) & 1) + ((bits >> 2) & 1);
}

int ops_area_dirfd(const struct view_ino *v, int *fd_r,
		   enum backing_area *area_r, int64_t *box_r)
{
	int64_t box;

	if (v->kind == VK_SUB) {
		*area_r = v->sub == SUB_TMP ? AREA_TMP : v->sub == SUB_CUR ?
			AREA_CUR : AREA_NEW;
		*box_r = v->box;
		return backing_area_dir(v->box, *area_r, fd_r);
	}
	box = ops_files_box(v);
	if (box < 0)
		return -ENOENT;
	*area_r = AREA_FILES;
	*box_r = box;
	return backing_area_dir(box, AREA_FILES, fd_r);
}

static int64_t newest_ns(const struct folder_list *fl)
{
	int64_t t = 0;

	for (size_t i = 0; i < fl->count; i++) {
		if (fl->boxes[i].created * 1000000000 > t)
			t = fl->boxes[i].created * 1000000000;
	}
	return t;
}

static int attr_folder(const struct view_ino *v, uint64_t ino, struct stat *st)
{
	struct folder_list fl;
	char prefix[DBOX_NAME_MAX * 4 + 1];
	int64_t box = ops_dir_mailbox(v), mtime;
	size_t subdirs;
	int depth, ret = folders_load(dboxfs.store, &fl);

	if (ret < 0)
		return ret;
	depth = folders_prefix(&fl, dboxfs.layout, v, prefix, sizeof(prefix));
	if (depth < 0) {
		folders_free(&fl);
		return depth;
	}
	subdirs = popcount3(subdirs_of(box));
	if (v->kind == VK_ROOT || dboxfs.layout == VIEW_FS)
		subdirs += folders_count_children(&fl, dboxfs.layout, prefix,
						  (unsigned int)depth,
						  dboxfs.inbox_id);
	mtime = v->kind == VK_ROOT ? newest_ns(&fl) : 0;
	for (size_t i = 0; mtime == 0 && i < fl.count; i++) {
		if (fl.boxes[i].id == v->box)
			mtime = fl.boxes[i].created * 1000000000;
	}
	folders_free(&fl);
	attr_dir(st, ino, (nlink_t)(2 + subdirs), mtime);
	return 0;
}

static int attr_sub(const struct view_ino *v, uint64_t ino, struct stat *st)
{
	struct dbox_mailbox box;
	int ret = dbox_mailbox_get(dboxfs.store, v->box, &box, NULL);

	if (ret < 0)
		return ret;
	attr_dir(st, ino, 2, v->sub == SUB_NEW ? box.change_new_ns :
		 v->sub == SUB_CUR ? box.change_cur_ns : box.created *
		 1000000000);
	return 0;
}

/* A backing inode; once committed as a message the kernel may still use
 * it for the message's name, so it answers for the message - with the
 * message's inode number: stat(2) on FUSE reports the attribute's st_ino,
 * not the kernel's node id. */
/* A message by the inode the kernel knows it by, following moves to other
 * folders (which give it a new uid). */
int ops_msg_follow(int64_t box, uint32_t uid, struct dbox_msg *m)
{
	uint64_t ino = view_ino_msg(box, uid);
	struct view_ino v;
	int ret = dbox_msg_get(dboxfs.store, box, uid, m, NULL);

	for (int hops = 0; ret == -ENOENT && hops < 8; hops++) {
		ino = ops_moved_to(ino);
		if (ino == 0 || !view_ino_decode(ino, &v))
			break;
		ret = dbox_msg_get(dboxfs.store, v.box, v.uid, m, NULL);
	}
	return ret;
}

static int attr_plain(uint64_t ino, struct stat *st)
{
	struct binode *bi = backing_get(ino);
	struct dbox_msg m;
	int64_t msg_box;
	uint32_t msg_uid;
	int ret;

	if (bi == NULL)
		return -ENOENT;
	if (backing_msg_of(bi, &msg_box, &msg_uid)) {
		ret = ops_msg_follow(msg_box, msg_uid, &m);
		if (ret == 0)
			ops_attr_msg(st, &m);
	} else {
		ret = backing_stat(bi, st);
	}
	backing_put(bi);
	return ret;
}

int ops_get_attr(uint64_t ino, struct stat *st)
{
	struct view_ino v;
	struct dbox_mailbox box;
	struct dbox_msg m;
	int ret;

	if (!view_ino_decode(ino, &v))
		return -ENOENT;
	switch (v.kind) {
	case VK_ROOT:
	case VK_FOLDER:
	case VK_VDIR:
		return attr_folder(&v, ino, st);
	case VK_SUB:
		return attr_sub(&v, ino, st);
	case VK_MSG:
		/* after a move the kernel may still use the old node;
		 * stat shows the message's current number */
		ret = ops_msg_follow(v.box, v.uid, &m);
		if (ret == 0)
			ops_attr_msg(st, &m);
		return ret;
	case VK_KWFILE:
		ret = dbox_mailbox_get(dboxfs.store, v.box, &box, NULL);
		return ret < 0 ? ret : attr_kwfile(st, &box);
	case VK_PLAIN:
		return attr_plain(ino, st);
	default:
		return -ENOENT;
	}
}

int dboxfs_errno(int ret)
{
	if (ret == -EBADMSG)
		return EIO;
	return ret < 0 ? -ret : EIO;
}

void dboxfs_log_once(uint64_t ino, const char *msg)
{
	bool seen = false;

	pthread_mutex_lock(&dboxfs.log_lock);
	for (unsigned int i = 0; i < 256; i++)
		seen |= dboxfs.logged[i] == ino;
	if (!seen)
		dboxfs.logged[dboxfs.logged_next++ % 256] = ino;
	pthread_mutex_unlock(&dboxfs.log_lock);
	if (!seen)
		fuse_log(FUSE_LOG_ERR, "dboxfs: %s\n", msg);
}

/* --------------------------------------------------------------- lookup */

static void entry_of(struct fuse_entry_param *e, const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = st->st_ino;
	e->attr = *st;
	e->attr_timeout = dboxfs.attr_timeout;
	e->entry_timeout = dboxfs.entry_timeout;
}

void ops_reply_entry(fuse_req_t req, const struct stat *st)
{
	struct fuse_entry_param e;

	entry_of(&e, st);
	fuse_reply_entry(req, &e);
}

static void reply_negative(fuse_req_t req)
{
	struct fuse_entry_param e;

	/* ino 0 with a timeout: the kernel caches "no such name" */
	memset(&e, 0, sizeof(e));
	e.entry_timeout = dboxfs.neg_timeout;
	fuse_reply_entry(req, &e);
}

static int lookup_msg(const struct view_ino *dir, const char *name,
		      struct stat *st)
{
	char base[DBOX_NAME_MAX + 1], now[DBOX_NAME_MAX + 48];
	const char *info;
	struct dbox_msg m;
	int ret;

	view_name_split(name, base, sizeof(base), &info);
	if (strlen(name) > DBOX_NAME_MAX + 40)
		return -ENOENT;
	ret = dbox_msg_lookup_base(dboxfs.store, dir->box, base, &m, NULL);
	if (ret < 0)
		return ret;
	/* the name must be the one the message has now, in its directory */
	view_msg_name(&m, now, sizeof(now));
	if ((dir->sub == SUB_NEW) != m.in_new || strcmp(now, name) != 0)
		return -ENOENT;
	ops_attr_msg(st, &m);
	return 0;
}

static int lookup_backing(const struct view_ino *dir, const char *name,
			  struct stat *st)
{
	enum backing_area area;
	struct binode *bi;
	int64_t box;
	int dirfd, ret;

	if (dir->kind == VK_PLAIN) {
		struct binode *parent = backing_get(view_ino_plain(dir));

		if (parent == NULL)
			return -ENOENT;
		ret = backing_lookup(backing_dirfd(parent), name, parent->box,
				     parent->area, &bi, st);
		backing_put(parent);
		return ret;
	}
	ret = ops_area_dirfd(dir, &dirfd, &area, &box);
	if (ret < 0)
		return ret == -EROFS ? -ENOENT : ret;
	ret = backing_lookup(dirfd, name, box, area, &bi, st);
	close(dirfd);
	return ret;
}

static int lookup_in_folder(const struct view_ino *dir, const char *name,
			    struct stat *st)
{
	int64_t box = ops_dir_mailbox(dir);
	unsigned int subdirs = subdirs_of(box);
	struct folder_list fl;
	struct folder_child c;
	char prefix[DBOX_NAME_MAX * 4 + 1];
	struct view_ino cv;
	int depth, ret;

	for (int i = 0; box != 0 && i < 3; i++) {
		if (strcmp(name, sub_names[i]) != 0)
			continue;
		if (!(subdirs & (1u << i)))
			return -ENOENT;
		cv = (struct view_ino){ .kind = VK_SUB, .box = box,
					.sub = (enum view_sub)i };
		return attr_sub(&cv, view_ino_sub(box, cv.sub), st);
	}
	if (box != 0 && strcmp(name, KWFILE_NAME) == 0 && has_keywords(box))
		return ops_get_attr(view_ino_kwfile(box), st);
	ret = -ENOENT;
	if (dboxfs.layout == VIEW_FS || dir->kind == VK_ROOT) {
		ret = folders_load(dboxfs.store, &fl);
		if (ret < 0)
			return ret;
		depth = folders_prefix(&fl, dboxfs.layout, dir, prefix,
				       sizeof(prefix));
		ret = depth < 0 ? depth : folders_lookup(&fl, dboxfs.layout,
			prefix, (unsigned int)depth, dboxfs.inbox_id, name, &c);
		folders_free(&fl);
		if (ret == 0)
			return ops_get_attr(c.ino, st);
	}
	return ret == -ENOENT ? lookup_backing(dir, name, st) : ret;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct view_ino dir;
	struct stat st;
	int ret;

	if (!view_ino_decode(parent, &dir))
		ret = -ENOENT;
	else if (dir.kind == VK_SUB && dir.sub != SUB_TMP)
		ret = lookup_msg(&dir, name, &st);
	else if (dir.kind == VK_ROOT || dir.kind == VK_FOLDER ||
		 dir.kind == VK_VDIR)
		ret = lookup_in_folder(&dir, name, &st);
	else
		ret = -ENOENT;
	/* tmp/, files pending in cur/ and new/, and plain directories */
	if (ret == -ENOENT && (dir.kind == VK_SUB || dir.kind == VK_PLAIN))
		ret = lookup_backing(&dir, name, &st);
	if (ret == -ENOENT)
		reply_negative(req);
	else if (ret < 0)
		fuse_reply_err(req, dboxfs_errno(ret));
	else
		ops_reply_entry(req, &st);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int ret = ops_get_attr(ino, &st);

	(void)fi;
	if (ret < 0)
		fuse_reply_err(req, dboxfs_errno(ret));
	else
		fuse_reply_attr(req, &st, dboxfs.attr_timeout);
}

/* -------------------------------------------------------------- readdir */

/* An open directory: the names of its backing entries, read once at the
 * first readdir so that their cookies (indexes) stay valid for the life
 * of the handle whatever happens in the backing directory meanwhile. */
/* A struct fh first: open directories are on the list of open handles,
 * so that those whose releasedir never came are freed at destroy. */
struct dirhandle {
	struct fh fh;
	bool loaded;
	char **names;
	size_t count;
};

struct dirbuf {
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
	size_t n;

	if (d->plus) {
		struct fuse_entry_param e;

		entry_of(&e, st);
		n = fuse_add_direntry_plus(d->req, d->buf + d->used,
					   d->size - d->used, name, &e,
					   (off_t)cookie);
	} else {
		n = fuse_add_direntry(d->req, d->buf + d->used,
				      d->size - d->used, name, st,
				      (off_t)cookie);
	}
	if (n > d->size - d->used) {
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

static int backing_dir_open(const struct view_ino *v, int *fd_r)
{
	enum backing_area area;
	int64_t box;
	int ret;

	if (v->kind == VK_PLAIN) {
		struct binode *bi = backing_get(v->ino);
		char path[64];

		if (bi == NULL)
			return -ENOENT;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", bi->fd);
		*fd_r = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		backing_put(bi);
		return *fd_r < 0 ? -errno : 0;
	}
	ret = ops_area_dirfd(v, fd_r, &area, &box);
	if (ret < 0)
		return ret;
	{
		char path[64];
		int pfd = *fd_r;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd);
		*fd_r = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(pfd);
	}
	return *fd_r < 0 ? -errno : 0;
}

static void dirhandle_load(struct dirhandle *dh, const struct view_ino *v)
{
	struct dirent *e;
	DIR *d;
	int fd;

	dh->loaded = true;
	if (backing_dir_open(v, &fd) < 0)
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
}

static void dirhandle_free(struct dirhandle *dh)
{
	for (size_t i = 0; dh != NULL && i < dh->count; i++)
		free(dh->names[i]);
	if (dh != NULL)
		free(dh->names);
	free(dh);
}

/* The backing entries of the directory, after its virtual ones. */
static void add_backing(struct dirbuf *d, off_t off)
{
	uint64_t first = (uint64_t)off >= BACKING_COOKIE_BASE ?
		(uint64_t)off - BACKING_COOKIE_BASE + 1 : 0;
	int dirfd = -1;
	enum backing_area area = AREA_FILES;
	int64_t box = 0;

	if (d->dh == NULL)
		return;
	if (!d->dh->loaded)
		dirhandle_load(d->dh, d->dir);
	if (d->dh->count == 0)
		return;
	if (d->dir->kind == VK_PLAIN) {
		struct binode *bi = backing_get(d->dir->ino);

		if (bi == NULL)
			return;
		dirfd = dup(backing_dirfd(bi));
		area = bi->area;
		box = bi->box;
		backing_put(bi);
	} else if (ops_area_dirfd(d->dir, &dirfd, &area, &box) < 0) {
		return;
	}
	for (uint64_t i = first; i < d->dh->count && dirfd >= 0; i++) {
		struct binode *bi;
		struct stat st;
		int ret;

		if (d->plus)
			ret = backing_lookup(dirfd, d->dh->names[i], box, area,
					     &bi, &st);
		else if ((ret = fstatat(dirfd, d->dh->names[i], &st,
					AT_SYMLINK_NOFOLLOW)) < 0)
			ret = -errno;
		else
			st.st_ino = backing_ino_of(st.st_ino);
		if (ret < 0)
			continue;  /* gone since the snapshot */
		if (!dir_add(d, d->dh->names[i], &st, BACKING_COOKIE_BASE + i)) {
			if (d->plus)
				backing_forget(st.st_ino, 1);
			break;
		}
	}
	if (dirfd >= 0)
		close(dirfd);
}

struct msg_list_ctx {
	struct dirbuf *d;
	uint32_t last_uid;      /* of the last entry that fitted */
};

static int add_msg(void *ctx, const struct dbox_msg *m)
{
	struct msg_list_ctx *c = ctx;
	char name[DBOX_NAME_MAX + 48];
	struct stat st;

	ops_attr_msg(&st, m);
	view_msg_name(m, name, sizeof(name));
	if (!dir_add(c->d, name, &st, FOLDER_COOKIE_BASE + m->uid))
		return 1;
	c->last_uid = m->uid;
	return 0;
}

/* Messages come in pages of uid order until the buffer is full, so the
 * daemon's memory does not grow with the folder, and the cookie (uid)
 * resumes correctly however the folder changed in between. */
static int readdir_sub(struct dirbuf *d, const struct view_ino *v, off_t off)
{
	struct msg_list_ctx c = { d, off > FOLDER_COOKIE_BASE ?
		(uint32_t)(off - FOLDER_COOKIE_BASE) : 0 };
	int ret = 0;

	if (!add_dots(d, view_ino_sub(v->box, v->sub), off))
		return 0;
	/* the kernel asks with one page: fetch about what fits in it (an
	 * entry with attributes takes some 150 bytes, a plain one 40) */
	unsigned int page = (unsigned int)(d->size / (d->plus ? 120 : 32)) + 1;

	if (v->sub != SUB_TMP && (uint64_t)off < BACKING_COOKIE_BASE) {
		do {
			ret = dbox_msg_list(dboxfs.store, v->box, c.last_uid,
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

	if (ops_get_attr(c->ino, &st) < 0)
		return 0;
	return dir_add(f->d, c->name, &st, c->cookie) ? 0 : 1;
}

static int readdir_folder(struct dirbuf *d, const struct view_ino *v,
			  uint64_t ino, off_t off)
{
	int64_t box = ops_dir_mailbox(v);
	unsigned int subdirs = subdirs_of(box);
	struct folder_list fl;
	struct folder_ctx fc = { d };
	char prefix[DBOX_NAME_MAX * 4 + 1];
	struct stat st;
	int depth, ret;

	if (!add_dots(d, ino, off))
		return 0;
	for (int i = 0; box != 0 && i < 3; i++) {
		struct view_ino sv = { .kind = VK_SUB, .box = box,
				       .sub = (enum view_sub)i };

		if (off >= CK_CUR + i || !(subdirs & (1u << i)))
			continue;
		if (attr_sub(&sv, view_ino_sub(box, sv.sub), &st) < 0 ||
		    !dir_add(d, sub_names[i], &st, (uint64_t)(CK_CUR + i)))
			return 0;
	}
	if (box != 0 && off < CK_KW && has_keywords(box) &&
	    (ops_get_attr(view_ino_kwfile(box), &st) < 0 ||
	     !dir_add(d, KWFILE_NAME, &st, CK_KW)))
		return 0;
	if ((dboxfs.layout == VIEW_FS || v->kind == VK_ROOT) &&
	    (uint64_t)off < BACKING_COOKIE_BASE) {
		ret = folders_load(dboxfs.store, &fl);
		if (ret < 0)
			return ret;
		depth = folders_prefix(&fl, dboxfs.layout, v, prefix,
				       sizeof(prefix));
		if (depth >= 0)
			folders_children(&fl, dboxfs.layout, prefix,
					 (unsigned int)depth, dboxfs.inbox_id,
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

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct dirbuf d = { .req = req, .size = size, .plus = plus };
	struct view_ino v;
	int ret;

	if (!view_ino_decode(ino, &v)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	d.dh = (struct dirhandle *)(uintptr_t)fi->fh;
	d.dir = &v;
	d.buf = malloc(size);
	if (d.buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (v.kind == VK_SUB) {
		ret = readdir_sub(&d, &v, off);
	} else if (v.kind == VK_ROOT || v.kind == VK_FOLDER ||
		   v.kind == VK_VDIR) {
		ret = readdir_folder(&d, &v, ino, off);
	} else if (v.kind == VK_PLAIN) {
		ret = 0;
		if (add_dots(&d, ino, off))
			add_backing(&d, off);
	} else {
		ret = -ENOTDIR;
	}
	if (ret < 0 && d.used == 0)
		fuse_reply_err(req, dboxfs_errno(ret));
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dirhandle *dh = calloc(1, sizeof(*dh));

	(void)ino;
	if (dh == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dh->fh.type = FH_DIR;
	dh->fh.fd = -1;
	fh_track(&dh->fh);
	fi->fh = (uint64_t)(uintptr_t)dh;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* the opener was interrupted: no releasedir will come */
		fh_untrack(&dh->fh);
		dirhandle_free(dh);
	}
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct dirhandle *dh = (struct dirhandle *)(uintptr_t)fi->fh;

	(void)ino;
	fh_untrack(&dh->fh);
	dirhandle_free(dh);
	fuse_reply_err(req, 0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	/* Every change to the view is durable when its request returns, so
	 * there is nothing to do; ENOSYS makes the kernel answer fsync(2) of
	 * a directory itself from now on (with success), which spares each
	 * maildir delivery a round trip that holds the directory's lock. */
	(void)ino; (void)datasync; (void)fi;
	fuse_reply_err(req, ENOSYS);
}

/* ----------------------------------------------------------- open, read */

/* An open message: a struct fh first, so fi->fh tells the kinds apart. */
struct open_msg {
	struct fh fh;
	struct dbox_msg msg;
};

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fh *open_list;

void fh_track(struct fh *fh)
{
	pthread_mutex_lock(&open_lock);
	fh->prev = NULL;
	fh->next = open_list;
	if (open_list != NULL)
		open_list->prev = fh;
	open_list = fh;
	pthread_mutex_unlock(&open_lock);
}

void fh_untrack(struct fh *fh)
{
	pthread_mutex_lock(&open_lock);
	if (fh->prev != NULL)
		fh->prev->next = fh->next;
	else
		open_list = fh->next;
	if (fh->next != NULL)
		fh->next->prev = fh->prev;
	pthread_mutex_unlock(&open_lock);
}

struct pending_open {
	fuse_req_t req;
	struct fuse_file_info fi;
	struct open_msg *om;
};

static void open_verified(void *ctx, int ret, const struct dbox_err *err)
{
	struct pending_open *po = ctx;

	if (ret < 0) {
		dboxfs_log_once(po->om->fh.ino, err->msg);
		fuse_reply_err(po->req, dboxfs_errno(ret));
		free(po->om);
	} else {
		fh_track(&po->om->fh);
		po->fi.fh = (uint64_t)(uintptr_t)po->om;
		/* a message's bytes never change: let the page cache keep
		 * them across opens */
		po->fi.keep_cache = 1;
		po->fi.noflush = 1;   /* see opw_flush */
		if (fuse_reply_open(po->req, &po->fi) == -ENOENT) {
			/* interrupted: no release will come */
			fh_untrack(&po->om->fh);
			free(po->om);
		}
	}
	free(po);
}

static struct fh kwfile_fh = { .type = FH_KWFILE, .fd = -1 };

static void open_kwfile(fuse_req_t req, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, dboxfs.readonly ? EROFS : EACCES);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)&kwfile_fh;
	fi->direct_io = 1;  /* generated text: its size follows changes */
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void open_msg(fuse_req_t req, int64_t box, uint32_t uid, uint64_t ino,
		     struct fuse_file_info *fi)
{
	struct pending_open *po;
	int ret;


	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		/* messages are immutable (maildir-view.md section 2) */
		fuse_reply_err(req, dboxfs.readonly ? EROFS : EACCES);
		return;
	}
	po = calloc(1, sizeof(*po));
	if (po != NULL)
		po->om = calloc(1, sizeof(*po->om));
	if (po == NULL || po->om == NULL) {
		free(po);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = ops_msg_follow(box, uid, &po->om->msg);
	if (ret < 0) {
		free(po->om);
		free(po);
		fuse_reply_err(req, dboxfs_errno(ret));
		return;
	}
	po->om->fh.type = FH_MSG;
	po->om->fh.fd = -1;
	po->om->fh.ino = ino;
	po->req = req;
	po->fi = *fi;
	dbox_msg_verify_async(dboxfs.store, &po->om->msg, open_verified, po);
}

static void open_binode(fuse_req_t req, uint64_t ino, struct binode *bi,
			struct fuse_file_info *fi);

static void open_plain(fuse_req_t req, uint64_t ino,
		       struct fuse_file_info *fi)
{
	struct binode *bi = backing_get(ino);
	int64_t msg_box;
	uint32_t msg_uid;

	if (bi == NULL)
		fuse_reply_err(req, ENOENT);
	else if (backing_msg_of(bi, &msg_box, &msg_uid))
		open_msg(req, msg_box, msg_uid, ino, fi);
	else
		open_binode(req, ino, bi, fi);
	backing_put(bi);
}

static void open_binode(fuse_req_t req, uint64_t ino, struct binode *bi,
			struct fuse_file_info *fi)
{
	struct fh *fh;
	int fd;

	if (dboxfs.readonly && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fh = calloc(1, sizeof(*fh));
	if (fh == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = backing_open(bi, fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
	if (fd < 0) {
		free(fh);
		fuse_reply_err(req, -fd);
		return;
	}
	fh->type = FH_FD;
	fh->fd = fd;
	fh->ino = ino;
	fh->box = bi->box;
	fh->area = bi->area;
	fh_track(fh);
	fi->fh = (uint64_t)(uintptr_t)fh;
	/* the same file can change under another name (hard links, the
	 * backing tree): no page cache reuse across opens */
	fi->keep_cache = 0;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		fh_untrack(fh);
		close(fd);
		free(fh);
	}
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct view_ino v;

	if (!view_ino_decode(ino, &v)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	switch (v.kind) {
	case VK_KWFILE:
		open_kwfile(req, fi);
		return;
	case VK_MSG:
		open_msg(req, v.box, v.uid, ino, fi);
		return;
	case VK_PLAIN:
		open_plain(req, ino, fi);
		return;
	default:
		fuse_reply_err(req, EISDIR);
		return;
	}
}

struct pending_read {
	fuse_req_t req;
	uint64_t ino;
	bool replied;          /* the splice reader answered the request */
	char buf[];
};

/* On an fs worker: the message's bytes go from the dbox file into the
 * reply by splice, never through a buffer of ours. */
static ssize_t splice_reply(void *arg, int fd, size_t len, off_t off)
{
	struct pending_read *pr = arg;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(len);
	int ret;

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	pr->replied = true;
	ret = fuse_reply_data(pr->req, &buf, FUSE_BUF_SPLICE_MOVE);
	return ret < 0 ? ret : (ssize_t)len;
}

static void read_done(void *ctx, ssize_t ret, const struct dbox_err *err)
{
	struct pending_read *pr = ctx;

	if (pr->replied) {
		/* the splice answered; a failed send has no one to tell */
	} else if (ret < 0) {
		dboxfs_log_once(pr->ino, err->msg);
		fuse_reply_err(pr->req, dboxfs_errno((int)ret));
	} else {
		fuse_reply_buf(pr->req, pr->buf, (size_t)ret);
	}
	free(pr);
}

static void read_kwfile(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off)
{
	char text[DBOX_MAX_KEYWORDS * 260];
	struct view_ino v;
	int n;

	view_ino_decode(ino, &v);
	n = kwfile_text(v.box, text, sizeof(text));
	if (n < 0) {
		fuse_reply_err(req, dboxfs_errno(n));
		return;
	}
	if (off >= n) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	fuse_reply_buf(req, text + off, (size_t)n - (size_t)off < size ?
		       (size_t)n - (size_t)off : size);
}

static void read_msg(fuse_req_t req, struct open_msg *om, size_t size,
		     off_t off)
{
	struct pending_read *pr;

	bool zero_copy = dbox_msg_is_plain(&om->msg);

	if (off < 0 || (uint64_t)off >= om->msg.size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* stored plain: spliced from the dbox file; compressed or with
	 * external attachments: put together in a buffer */
	pr = malloc(sizeof(*pr) + (zero_copy ? 0 : size));
	if (pr == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pr->req = req;
	pr->ino = om->fh.ino;
	pr->replied = false;
	if (zero_copy)
		dbox_msg_read_fd_async(dboxfs.store, &om->msg, size,
				       (uint64_t)off, splice_reply, pr,
				       read_done, pr);
	else
		dbox_msg_pread_async(dboxfs.store, &om->msg, pr->buf, size,
				     (uint64_t)off, read_done, pr);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	switch (fh->type) {
	case FH_KWFILE:
		read_kwfile(req, ino, size, off);
		return;
	case FH_MSG:
		read_msg(req, (struct open_msg *)fh, size, off);
		return;
	case FH_FD:
		/* a real file beside the store: spliced by the kernel */
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = fh->fd;
		buf.buf[0].pos = off;
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
		return;
	case FH_DIR:
		break;
	}
	fuse_reply_err(req, EBADF);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fh *fh = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (fh->type == FH_MSG) {
		fh_untrack(fh);
		free(fh);
	} else if (fh->type == FH_FD) {
		fh_untrack(fh);
		opw_release_fd(fh);
	}
	fuse_reply_err(req, 0);
}

/* ------------------------------------------------------ statfs, xattrs */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (statvfs(dbox_store_root(dboxfs.store), &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static int msg_xattr(uint64_t ino, const char *name, char *buf, size_t len)
{
	struct view_ino v;
	struct dbox_msg m;
	char path[4096], box[DBOX_NAME_MAX * 4 + 1];
	int ret;

	if (!view_ino_decode(ino, &v) || v.kind != VK_MSG)
		return -ENODATA;
	ret = dbox_msg_get(dboxfs.store, v.box, v.uid, &m, NULL);
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

		ret = dbox_mailbox_get(dboxfs.store, v.box, &b, NULL);
		if (ret < 0)
			return ret;
		snprintf(box, sizeof(box), "%s", b.name);
		return snprintf(buf, len, "%s", box);
	}
	if (strcmp(name, "user.dbox.file") == 0) {
		ret = dbox_msg_file_path(dboxfs.store, &m, path, sizeof(path));
		if (ret < 0)
			return ret;
		return snprintf(buf, len, "%s:%llu", path,
				(unsigned long long)m.offset);
	}
	return -ENODATA;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	char buf[4200];
	int n;

	/* Like a filesystem without labels or ACLs: ls -l then stops asking
	 * security.* and system.* for the rest of the mount (spec 2). */
	if (strncmp(name, "user.", 5) != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	n = msg_xattr(ino, name, buf, sizeof(buf));
	if (n < 0)
		fuse_reply_err(req, -n == ENOENT ? ENODATA : dboxfs_errno(n));
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const char names[] = "user.dbox.guid\0user.dbox.uid\0"
		"user.dbox.mailbox\0user.dbox.file\0user.dbox.saved";
	struct view_ino v;

	if (!view_ino_decode(ino, &v) || v.kind != VK_MSG) {
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size == 0)
		fuse_reply_xattr(req, sizeof(names));
	else if (size < sizeof(names))
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names, sizeof(names));
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	(void)ino; (void)name; (void)value; (void)size; (void)flags;
	fuse_reply_err(req, dboxfs.readonly ? EROFS : ENOTSUP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino; (void)name;
	fuse_reply_err(req, dboxfs.readonly ? EROFS : ENOTSUP);
}

/* ------------------------------------------------------------ lifecycle */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* libfuse 3.14: capabilities are bits in conn->want */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* message bytes are spliced from the dbox files into replies */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* writes back of cached data never happen: messages are read-only */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void op_destroy(void *userdata)
{
	(void)userdata;
	while (open_list != NULL) {
		struct fh *fh = open_list;

		fh_untrack(fh);
		if (fh->type == FH_DIR) {
			dirhandle_free((struct dirhandle *)fh);
			continue;
		}
		if (fh->type == FH_FD)
			close(fh->fd);
		free(fh);
	}
}

/* Inode numbers of the view come from the data and need nothing freed;
 * only backing inodes hold a descriptor. */
static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	if ((ino >> 60) == VK_PLAIN)
		backing_forget(ino, nlookup);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

const struct fuse_lowlevel_ops dboxfs_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.opendir = op_opendir,
	.releasedir = op_releasedir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.fsyncdir = op_fsyncdir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.create = opw_create,
	.mknod = opw_mknod,
	.mkdir = opw_mkdir,
	.rmdir = opw_rmdir,
	.unlink = opw_unlink,
	.rename = opw_rename,
	.link = opw_link,
	.symlink = opw_symlink,
	.readlink = opw_readlink,
	.setattr = opw_setattr,
	.write_buf = opw_write_buf,
	.fsync = opw_fsync,
	.flush = opw_flush,
	.fallocate = opw_fallocate,
};
