/* attr.c - attributes of every kind of node of the view (getattr). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "dirtime.h"
#include "folders.h"
#include "ops.h"


static void ts_from_ns(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	if (ts->tv_nsec < 0) {   /* before 1970: utimensat may set it */
		ts->tv_sec--;
		ts->tv_nsec += 1000000000;
	}
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
int attr_kwfile_text(int64_t box, char *buf, size_t len)
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
	int n = attr_kwfile_text(box->id, text, sizeof(text));

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

bool attr_has_keywords(int64_t box)
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
unsigned int attr_subdirs_of(int64_t box)
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
		*area_r = backing_area_of_sub(v->sub);
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

/* The root's time until the view changes it: the newest of its entries
 * (fs layout: the top-level mailboxes; a folder made deeper is no entry
 * of the root). */
static int64_t newest_ns(const struct folder_list *fl)
{
	int64_t t = 0;

	for (size_t i = 0; i < fl->count; i++) {
		if (dboxfs.layout == VIEW_FS &&
		    strchr(fl->boxes[i].name, '/') != NULL)
			continue;
		if (fl->boxes[i].created * 1000000000 > t)
			t = fl->boxes[i].created * 1000000000;
	}
	return t;
}

/* Plain directories a client made beside the mailbox's cur/ new/ tmp/
 * (notmuch's .notmuch, say): a directory's st_nlink counts them as
 * subdirectories, as on any filesystem (maildir-view.md section 2). */
static size_t plain_subdirs(const struct view_ino *v)
{
	enum backing_area area;
	struct dirent *e;
	struct stat st;
	size_t n = 0;
	int64_t box;
	int pfd, fd;
	DIR *d;

	if (ops_area_dirfd(v, &pfd, &area, &box) < 0)
		return 0;
	fd = backing_reopen(pfd, O_RDONLY | O_DIRECTORY);
	close(pfd);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (e->d_type == DT_DIR ||
		    (e->d_type == DT_UNKNOWN &&
		     fstatat(dirfd(d), e->d_name, &st,
			     AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)))
			n++;
	}
	closedir(d);
	return n;
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
	subdirs = popcount3(attr_subdirs_of(box));
	if (v->kind == VK_ROOT || dboxfs.layout == VIEW_FS)
		subdirs += folders_count_children(&fl, dboxfs.layout, prefix,
						  (unsigned int)depth,
						  dboxfs.inbox_id);
	subdirs += plain_subdirs(v);
	mtime = v->kind == VK_ROOT ? newest_ns(&fl) : 0;
	for (size_t i = 0; mtime == 0 && i < fl.count; i++) {
		if (fl.boxes[i].id == v->box)
			mtime = fl.boxes[i].created * 1000000000;
	}
	folders_free(&fl);
	mtime = dirtime_dir_ns(v, prefix, mtime);
	attr_dir(st, ino, (nlink_t)(2 + subdirs), mtime);
	return 0;
}

int attr_sub(const struct view_ino *v, uint64_t ino, struct stat *st)
{
	struct dbox_mailbox box;
	int ret = dbox_mailbox_get(dboxfs.store, v->box, &box, NULL);

	if (ret < 0)
		return ret;
	attr_dir(st, ino, 2, v->sub == SUB_NEW ?
		 dirtime_sub_ns(v->box, SUB_NEW, box.change_new_ns) :
		 v->sub == SUB_CUR ?
		 dirtime_sub_ns(v->box, SUB_CUR, box.change_cur_ns) :
		 dirtime_tmp_ns(v->box, box.created * 1000000000));
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
	uint64_t fino;
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
		/* a message renamed into tmp/: a file there */
		if ((fino = ops_file_node(ino)) != 0)
			return attr_plain(fino, st);
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
