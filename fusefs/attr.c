/* attr.c - attributes of every kind of node of the view (getattr). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "dboxfs.h"
#include "dirmode.h"
#include "dirtime.h"
#include "folders.h"
#include "moved.h"
#include "msgname.h"
#include "node.h"


static void ts_from_ns(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	if (ts->tv_nsec < 0) {   /* before 1970: utimensat may set it */
		ts->tv_sec--;
		ts->tv_nsec += 1000000000;
	}
}

static void attr_dir(struct dboxfs *fs, struct stat *st, uint64_t ino,
		     nlink_t nlink, int64_t mtime_ns)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | fs->dir_mode;
	st->st_nlink = nlink;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = 4096;
	st->st_blksize = 4096;
	st->st_blocks = 8;
	ts_from_ns(&st->st_mtim, mtime_ns);
	st->st_atim = st->st_ctim = st->st_mtim;
}

void attr_msg(struct dboxfs *fs, struct stat *st, const struct dbox_msg *m)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = view_ino_msg(m->mailbox_id, m->uid);
	st->st_mode = m->mode != 0 ? (mode_t)m->mode :
		S_IFREG | fs->file_mode;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
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
int attr_kwfile_text(struct dboxfs *fs, int64_t box, char *buf, size_t len)
{
	char *names[DBOX_MAX_KEYWORDS], nbuf[DBOX_MAX_KEYWORDS * 256];
	int count = dbox_mailbox_keywords(fs->store, box, names, nbuf,
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

static int attr_kwfile(struct dboxfs *fs, struct stat *st,
		       const struct dbox_mailbox *box)
{
	char text[DBOX_MAX_KEYWORDS * 260];
	int n = attr_kwfile_text(fs, box->id, text, sizeof(text));

	if (n < 0)
		return n;
	memset(st, 0, sizeof(*st));
	st->st_ino = view_ino_kwfile(box->id);
	st->st_mode = S_IFREG | (fs->file_mode & 0444);
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = n;
	st->st_blksize = 4096;
	ts_from_ns(&st->st_mtim, box->change_cur_ns > box->change_new_ns ?
		   box->change_cur_ns : box->change_new_ns);
	st->st_atim = st->st_ctim = st->st_mtim;
	return 0;
}

bool attr_has_keywords(struct dboxfs *fs, int64_t box)
{
	char *names[DBOX_MAX_KEYWORDS], nbuf[DBOX_MAX_KEYWORDS * 256];

	return dbox_mailbox_keywords(fs->store, box, names, nbuf,
				     sizeof(nbuf), NULL) > 0;
}

/* Which of cur/new/tmp a folder shows (DBOX_SUBDIR_* bits). */
unsigned int attr_subdirs_of(struct dboxfs *fs, int64_t box)
{
	struct dbox_mailbox b;

	if (box == 0 || dbox_mailbox_get(fs->store, box, &b, NULL) < 0)
		return 0;
	return b.subdirs;
}

static unsigned int popcount3(unsigned int bits)
{
	return (bits & 1) + ((bits >> 1) & 1) + ((bits >> 2) & 1);
}

/* Plain directories a client made beside the mailbox's cur/ new/ tmp/
 * (notmuch's .notmuch, say): a directory's st_nlink counts them as
 * subdirectories, as on any filesystem (maildir-view.md section 2). */
static size_t plain_subdirs(struct dboxfs *fs, const struct view_ino *v)
{
	enum backing_area area;
	struct dirent *e;
	struct stat st;
	size_t n = 0;
	int64_t box;
	int pfd, fd;
	DIR *d;

	if (node_of(v)->area(fs, v, &pfd, &area, &box) < 0)
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

int attr_folder(struct dboxfs *fs, const struct view_ino *v, uint64_t ino,
		struct stat *st)
{
	struct folder_list fl;
	char prefix[DBOX_NAME_MAX * 4 + 1];
	int64_t box = folders_dir_mailbox(fs->layout, fs->inbox_id, v), mtime;
	size_t subdirs;
	int depth, ret = folders_load(fs, &fl);

	if (ret < 0)
		return ret;
	depth = folders_prefix(&fl, fs->layout, v, prefix, sizeof(prefix));
	if (depth < 0) {
		folders_free(&fl);
		return depth;
	}
	subdirs = popcount3(attr_subdirs_of(fs, box));
	if (node_of(v)->holds_folders(fs, v))
		subdirs += folders_count_children(&fl, fs->layout, prefix,
						  (unsigned int)depth,
						  fs->inbox_id);
	subdirs += plain_subdirs(fs, v);
	mtime = node_of(v)->base_ns(fs, v, &fl, prefix);
	folders_free(&fl);
	mtime = dirtime_dir_ns(fs, v, prefix, mtime);
	attr_dir(fs, st, ino, (nlink_t)(2 + subdirs), mtime);
	st->st_mode = S_IFDIR | dirmode_of(fs, v, v->kind == VK_VDIR ?
					    prefix : NULL);
	return 0;
}

/* One lstat of the spool area gives both its times and its mode (with
 * default_permissions, one GETATTR of cur/ per flag rename). */
int attr_sub(struct dboxfs *fs, const struct view_ino *v, uint64_t ino,
	     struct stat *st)
{
	enum backing_area area = backing_area_of_sub(v->sub);
	struct dbox_mailbox box;
	struct stat ast;
	bool have;
	int64_t area_ns;
	int ret = dbox_mailbox_get(fs->store, v->box, &box, NULL);

	if (ret < 0)
		return ret;
	have = backing_area_stat(fs, v->box, area, &ast) == 0;
	area_ns = have ? (int64_t)ast.st_mtim.tv_sec * 1000000000 +
		ast.st_mtim.tv_nsec : 0;
	attr_dir(fs, st, ino, 2, v->sub == SUB_NEW ?
		 dirtime_sub_at(area_ns, box.change_new_ns) :
		 v->sub == SUB_CUR ?
		 dirtime_sub_at(area_ns, box.change_cur_ns) :
		 dirtime_tmp_at(area_ns, box.created * 1000000000));
	st->st_mode = S_IFDIR | dirmode_of_area(fs, v->box, (int)area,
						have ? &ast : NULL);
	return 0;
}

/* A backing inode; once committed as a message the kernel may still use
 * it for the message's name, so it answers for the message - with the
 * message's inode number: stat(2) on FUSE reports the attribute's st_ino,
 * not the kernel's node id. */
/* A message by the inode the kernel knows it by, following moves to other
 * folders (which give it a new uid). */
int attr_msg_follow(struct dboxfs *fs, int64_t box, uint32_t uid,
		    struct dbox_msg *m)
{
	uint64_t ino = view_ino_msg(box, uid);
	struct view_ino v;
	int ret = dbox_msg_get(fs->store, box, uid, m, NULL);

	for (int hops = 0; ret == -ENOENT && hops < 8; hops++) {
		ino = moved_to(fs, ino);
		if (ino == 0 || !view_ino_decode(ino, &v))
			break;
		ret = dbox_msg_get(fs->store, v.box, v.uid, m, NULL);
	}
	return ret;
}

int attr_plain(struct dboxfs *fs, uint64_t ino, struct stat *st)
{
	struct binode *bi = backing_get(fs, ino);
	struct dbox_msg m;
	int64_t msg_box;
	uint32_t msg_uid;
	int ret;

	if (bi == NULL)
		return -ENOENT;
	if (backing_msg_of(fs, bi, &msg_box, &msg_uid)) {
		ret = attr_msg_follow(fs, msg_box, msg_uid, &m);
		if (ret == 0)
			attr_msg(fs, st, &m);
	} else {
		ret = backing_stat(fs, bi, st);
	}
	backing_put(fs, bi);
	return ret;
}

int attr_message(struct dboxfs *fs, const struct view_ino *v, uint64_t ino,
		 struct stat *st)
{
	struct dbox_msg m;
	uint64_t fino;
	int ret;

	/* a message renamed into tmp/: a file there */
	if ((fino = moved_file_node(fs, ino)) != 0)
		return attr_plain(fs, fino, st);
	/* after a move the kernel may still use the old node; stat shows
	 * the message's current number */
	ret = attr_msg_follow(fs, v->box, v->uid, &m);
	if (ret == 0)
		attr_msg(fs, st, &m);
	return ret;
}

int attr_keywords(struct dboxfs *fs, const struct view_ino *v, uint64_t ino,
		  struct stat *st)
{
	struct dbox_mailbox box;
	int ret = dbox_mailbox_get(fs->store, v->box, &box, NULL);

	(void)ino;
	return ret < 0 ? ret : attr_kwfile(fs, st, &box);
}

/* For the modules below the node kinds (commit.c, kcache.c, readdir.c):
 * the getattr of each kind (node-*.c) by inode number.  The one call up
 * the layers: the kinds' table says which getattr (each calls down into
 * this file again), so no second switch on the kind has to agree. */
int attr_get(struct dboxfs *fs, uint64_t ino, struct stat *st)
{
	struct view_ino v;

	if (!view_ino_decode(ino, &v))
		return -ENOENT;
	return node_of(&v)->getattr(fs, &v, st);
}

/* ------------------------------------------- names of the view */

int attr_resolve_msg(struct dboxfs *fs, const struct view_ino *dir,
		     const char *name, struct stat *st)
{
	struct dbox_msg m;
	int ret;

	if (strlen(name) > DBOX_NAME_MAX + 40)
		return -ENOENT;
	ret = msgname_in_sub(fs, dir->box, dir->sub, name, &m);
	if (ret < 0)
		return ret;
	attr_msg(fs, st, &m);
	return 0;
}

int attr_resolve_folder(struct dboxfs *fs, const struct view_ino *dir,
			const char *name, struct stat *st)
{
	int64_t box = folders_dir_mailbox(fs->layout, fs->inbox_id, dir);
	unsigned int subdirs = attr_subdirs_of(fs, box);
	struct folder_list fl;
	struct folder_child c;
	char prefix[DBOX_NAME_MAX * 4 + 1];
	struct view_ino cv;
	int depth, ret;

	for (int i = 0; box != 0 && i < 3; i++) {
		if (strcmp(name, view_sub_names[i]) != 0)
			continue;
		if (!(subdirs & (1u << i)))
			return -ENOENT;
		cv = (struct view_ino){ .kind = VK_SUB, .box = box,
					.sub = (enum view_sub)i };
		return attr_sub(fs, &cv, view_ino_sub(box, cv.sub), st);
	}
	if (box != 0 && strcmp(name, KWFILE_NAME) == 0 &&
	    attr_has_keywords(fs, box))
		return attr_get(fs, view_ino_kwfile(box), st);
	ret = -ENOENT;
	if (node_of(dir)->holds_folders(fs, dir)) {
		ret = folders_load(fs, &fl);
		if (ret < 0)
			return ret;
		depth = folders_prefix(&fl, fs->layout, dir, prefix,
				       sizeof(prefix));
		ret = depth < 0 ? depth : folders_lookup(&fl, fs->layout,
			prefix, (unsigned int)depth, fs->inbox_id, name, &c);
		folders_free(&fl);
		if (ret == 0)
			return attr_get(fs, c.ino, st);
	}
	return ret;
}

int attr_resolve_view(struct dboxfs *fs, const struct view_ino *dir,
		      const char *name, struct stat *st)
{
	return node_of(dir)->resolve(fs, dir, name, st);
}
