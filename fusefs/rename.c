/* rename.c - what rename(2) and link(2) do, for the handlers of the node
 * kinds (node.h: rename, msg_into, file_into, link_into): deliveries from
 * tmp/, flag changes, moves between folders, folder renames, and plain
 * files (maildir-view.md sections 3-5).  The kind of the source directory
 * says what moves, the kind of the target what it becomes; nothing here
 * asks a node's kind. */
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
#include "kcache.h"
#include "kwimport.h"
#include "moved.h"
#include "msgname.h"
#include "node.h"
#include "prepare.h"
#include "rename.h"
#include "reply.h"
#include "vdirs.h"

/* ------------------------------------------------------------- rename */

/* What a message's file named newname in dst (cur/ or new/) says: its
 * base (base_len >= DBOX_NAME_MAX + 1), flags, keywords and directory;
 * info (view_name_split) points into newname. */
static int target_name(const struct view_ino *dst, const char *newname,
		       char *base, size_t base_len, const char **info,
		       uint32_t *flags, uint32_t *kw,
		       enum dbox_maildir_dir *dir)
{
	if (!view_final_name(newname, base, base_len, info))
		return -EINVAL;
	*dir = dst->sub != SUB_NEW ? DBOX_DIR_CUR :
		*info != NULL ? DBOX_DIR_NEW_INFO : DBOX_DIR_NEW;
	dbox_maildir_info_parse(*info, false, flags, kw);
	return 0;
}

/* Flags, keywords, new/cur state and base of a message by rename; moved
 * to another mailbox when the target is another folder's cur/ or new/. */
static int rename_msg(struct dboxfs *fs, const struct dbox_msg *m,
		      const struct view_ino *dst, const char *newname,
		      fuse_ino_t *new_ino_r)
{
	char base[DBOX_NAME_MAX + 1];
	const char *info;
	uint32_t flags, kw, uid;
	struct dbox_msg old;
	struct dbox_err err = { "" };
	enum dbox_maildir_dir dir;
	int ret = target_name(dst, newname, base, sizeof(base), &info, &flags,
			      &kw, &dir);

	if (ret < 0)
		return ret;
	*new_ino_r = view_ino_msg(m->mailbox_id, m->uid);
	/* within the folder (a flag change): the index keeps names unique
	 * per directory, so the update fails with EEXIST only if another
	 * message has the target's name; that one is looked up only then
	 * (one index read less per flag change) */
	if (dst->box == m->mailbox_id) {
		ret = dbox_msg_update(fs->store, m->mailbox_id, m->uid, flags,
				      kw, dir, base, &err);
		if (ret != -EEXIST)
			return ret;
	}
	/* rename(2) replaces an existing target (the message with the name
	 * this one gets): in the same mailbox in the same transaction; a
	 * move expunges it first */
	if (msgname_at_target(fs, dst->box, dst->sub, base, info,
			      &old) == 0 &&
	    !(old.mailbox_id == m->mailbox_id && old.uid == m->uid)) {
		/* a power cut must not undo this one's delivery after the
		 * replaced one is gone (replace does so itself) */
		if (dst->box == m->mailbox_id) {
			ret = dbox_msg_replace(fs->store, m->mailbox_id,
					       m->uid, old.uid, flags, kw, dir,
					       base, &err);
		} else {
			ret = dbox_msg_sync_record(fs->store, m->mailbox_id,
						   m->uid, &err);
			if (ret == 0)
				ret = dbox_msg_expunge(fs->store, dst->box,
						       old.uid, &err);
		}
		if (ret == 0)
			flush_expunged(fs);
		if (ret < 0 || dst->box == m->mailbox_id)
			return ret;
	}
	if (dst->box == m->mailbox_id)
		return dbox_msg_update(fs->store, m->mailbox_id, m->uid,
				       flags, kw, dir, base, &err);
	ret = dbox_msg_move(fs->store, m->mailbox_id, m->uid, dst->box,
			    flags, kw, dir, base, &uid, &err);
	if (ret == 0) {
		*new_ino_r = view_ino_msg(dst->box, uid);
		moved_add(fs, view_ino_msg(m->mailbox_id, m->uid),
			  *new_ino_r);
	} else {
		fuse_log(FUSE_LOG_ERR, "dboxfs: move %s: %s\n", newname,
			 err.msg);
	}
	return ret;
}

/* What rename(2) does to the target directory: an empty one (one rmdir
 * would remove) is replaced, anything else stays. */
static int rename_folder_target(struct dboxfs *fs,
				const struct view_ino *dst_dir,
				const char *newname, const char *to,
				unsigned int flags)
{
	struct dbox_mailbox b;
	int ret;

	if (dbox_mailbox_lookup(fs->store, to, &b, NULL) == 0)
		return (flags & RENAME_NOREPLACE) ? -EEXIST :
			node_folder_rmdir_mailbox(fs, b.id);
	/* an empty parent is replaced (its entry goes with the rename) */
	ret = fs->layout == VIEW_FS ?
		node_folder_vdir_empty(fs, dst_dir, newname) : -ENOENT;
	if (ret != -ENOENT && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	return ret == -ENOENT ? 0 : ret;
}

/* A folder's rename renames what its directory is: in the fs layout the
 * mailbox with everything below it, in maildir++ that one mailbox (its
 * dot-children are siblings on disk and keep their names). */
static int rename_folder(struct dboxfs *fs, const struct view_ino *src_dir,
			 const char *name, const struct view_ino *dst_dir,
			 const char *newname, unsigned int flags)
{
	char from[DBOX_NAME_MAX * 4 + 1], to[DBOX_NAME_MAX * 4 + 1];
	struct dbox_err err = { "" };
	struct dbox_mailbox b;
	uint64_t own_from, own_to;
	bool a, c, src_vdir = false;
	int ret = node_of(src_dir)->mailbox_of(fs, src_dir, name, from,
					       sizeof(from), &a);

	if (ret == 0)
		ret = node_of(dst_dir)->mailbox_of(fs, dst_dir, newname, to,
						   sizeof(to), &c);
	if (ret < 0)
		return ret;
	if (!a || !c)
		return -EXDEV;
	ret = dbox_mailbox_lookup(fs->store, from, &b, NULL);
	/* fs layout: a parent that is no mailbox moves its children */
	if (ret < 0) {
		src_vdir = fs->layout == VIEW_FS &&
			node_folder_is_vdir(fs, src_dir, name);
		if (!src_vdir)
			return ret;
	}
	/* as Dovecot's maildir: INBOX is no folder to rename */
	if (ret == 0 && b.id == fs->inbox_id)
		return -EPERM;
	if (strcmp(from, to) == 0)
		return 0;
	if (fs->layout == VIEW_FS && strncmp(to, from, strlen(from)) == 0 &&
	    to[strlen(from)] == '/')
		return -EINVAL;   /* into itself, as rename(2) */
	own_from = dirtime_own_begin(fs, from, DIRTIME_WENT);
	own_to = dirtime_own_begin(fs, to, DIRTIME_CAME | DIRTIME_WENT);
	ret = rename_folder_target(fs, dst_dir, newname, to, flags);
	if (ret < 0) {
		dirtime_own_end(fs, own_from, false);
		dirtime_own_end(fs, own_to, false);
		return ret;
	}
	if (fs->layout == VIEW_MAILDIRPP)
		ret = dbox_mailbox_rename_one(fs->store, from, to, &err);
	else
		ret = dbox_mailbox_rename(fs->store, from, to, &err);
	/* a parent holding no mailbox (kept empty): only its stored
	 * entries move */
	if (ret == -ENOENT && src_vdir)
		ret = 0;
	if (ret < 0 && ret != -EEXIST && ret != -ENOENT && ret != -EINVAL &&
	    ret != -ENOTEMPTY)
		fuse_log(FUSE_LOG_ERR, "dboxfs: rename %s: %s\n", from,
			 err.msg);
	/* the parents move with their identities; an empty parent the
	 * rename replaced is the folder now */
	if (ret == 0 && fs->layout == VIEW_FS)
		dirtime_folder_renamed(fs, from, to);
	if (ret == 0 && fs->layout == VIEW_FS && !src_vdir)
		vdirs_remove(dbox_store_vdirs_dir(fs->store), to);
	dirtime_own_end(fs, own_from, ret == 0);
	/* an empty target the rename could not replace went all the same */
	dirtime_own_end(fs, own_to, true);
	if (ret == 0) {
		dirtime_folder_changed(fs, src_dir);
		dirtime_folder_changed(fs, dst_dir);
	}
	return ret;
}

/* A backing file moves into cur/ or new/ under a final name: a commit,
 * replied by the committer once durable. */
static int rename_commit(fuse_req_t req, int src_dirfd, const char *name,
			 const struct view_ino *dst, const char *newname)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct commit_job *job;
	int ret = commit_job_make(fs, src_dirfd, name, 0, dst->box, dst->sub,
				  newname, true, &job);

	if (ret < 0)
		return ret;
	job->req = req;
	reply_handed_off(req);
	commit_submit(fs, job);
	return NODE_REPLIED;
}

/* Whether RENAME_EXCHANGE of a file beside the store meets a message: a
 * file can trade places with a file still being written in cur/ or new/
 * (renameat2 below), not with a message, whose bytes are in the store
 * (see exchange_msg). */
static bool is_msg_name(struct dboxfs *fs, const struct view_ino *dst,
			const char *newname)
{
	struct dbox_msg m;

	return dst->sub != SUB_TMP &&
		msgname_in_sub(fs, dst->box, dst->sub, newname, &m) == 0;
}

static int area_of(struct dboxfs *fs, const struct view_ino *v, int *dirfd_r,
		   enum backing_area *area_r, int64_t *box_r)
{
	return node_of(v)->area(fs, v, dirfd_r, area_r, box_r);
}

int rename_file_to_sub(fuse_req_t req, const struct view_ino *src,
		       const char *name, const struct view_ino *dst,
		       const char *newname, unsigned int flags)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	enum backing_area sa;
	char base[DBOX_NAME_MAX + 1];
	const char *info;
	struct dbox_msg m;
	int64_t sbox;
	int sfd, ret;

	if ((flags & RENAME_EXCHANGE) && is_msg_name(fs, dst, newname))
		return -EXDEV;
	if ((flags & RENAME_EXCHANGE) || dst->sub == SUB_TMP ||
	    !view_final_name(newname, base, sizeof(base), &info))
		return rename_file_to_area(req, src, name, dst, newname,
					   flags);
	ret = area_of(fs, src, &sfd, &sa, &sbox);
	if (ret < 0)
		return ret;
	/* the name the message would show is taken */
	if ((flags & RENAME_NOREPLACE) &&
	    msgname_at_target(fs, dst->box, dst->sub, base, info, &m) == 0)
		ret = -EEXIST;
	else
		ret = rename_commit(req, sfd, name, dst, newname);
	close(sfd);
	return ret;
}

/* A file renamed onto a folder's dovecot-keywords (Dovecot's maildir
 * driver adding a keyword) gives the mailbox its keyword names and goes;
 * the name stays the generated file, which the kernel, having moved the
 * source's node there, is told by the follower. */
static int rename_onto_kwfile(struct dboxfs *fs, int sfd, const char *name,
			      const struct view_ino *dst, int64_t box,
			      unsigned int flags)
{
	int ret;

	if (flags & RENAME_EXCHANGE)
		return -EPERM;
	if ((flags & RENAME_NOREPLACE) && attr_has_keywords(fs, box))
		return -EEXIST;
	ret = kwimport_rename(fs, box, sfd, name);
	if (ret == 0)
		kcache_drop_later(fs, dst->ino, KWFILE_NAME);
	return ret;
}

int rename_file_to_area(fuse_req_t req, const struct view_ino *src,
			const char *name, const struct view_ino *dst,
			const char *newname, unsigned int flags)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	enum backing_area sa, da;
	int64_t sbox, dbox, kwbox = kwimport_target(fs, dst, newname);
	int sfd, dfd = -1, ret;

	ret = area_of(fs, src, &sfd, &sa, &sbox);
	if (ret < 0)
		return ret;
	if (kwbox != 0) {
		ret = rename_onto_kwfile(fs, sfd, name, dst, kwbox, flags);
		close(sfd);
		return ret;
	}
	ret = area_of(fs, dst, &dfd, &da, &dbox);
	if (ret == 0 && renameat2(sfd, name, dfd, newname, flags) < 0)
		ret = -errno;
	close(sfd);
	if (dfd >= 0)
		close(dfd);
	return ret;
}

/* RENAME_NOREPLACE of message m: refused if the name it would show is
 * another message's (the kernel checks the name as given first; a flag
 * suffix in another order is the same name on the mount). */
static int noreplace_msg(struct dboxfs *fs, const struct dbox_msg *m,
			 const struct view_ino *dst, const char *newname)
{
	char base[DBOX_NAME_MAX + 1];
	const char *info;
	struct dbox_msg other;
	int ret;

	if (!view_final_name(newname, base, sizeof(base), &info))
		return -EINVAL;
	ret = msgname_at_target(fs, dst->box, dst->sub, base, info,
				&other);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	return other.mailbox_id != m->mailbox_id || other.uid != m->uid ?
		-EEXIST : 0;
}

static bool backing_has(struct dboxfs *fs, const struct view_ino *dir,
			const char *name)
{
	enum backing_area area;
	struct stat st;
	int64_t box;
	int fd;
	bool found;

	if (area_of(fs, dir, &fd, &area, &box) < 0)
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
static int exchange_msg(struct dboxfs *fs, const struct dbox_msg *m,
			const struct view_ino *dst, const char *newname)
{
	struct dbox_err err = { "" };
	struct dbox_msg other;
	int ret;

	ret = msgname_in_sub(fs, dst->box, dst->sub, newname, &other);
	if (ret == -ENOENT)
		/* no message by that name: a file being written, or nothing */
		return backing_has(fs, dst, newname) ? -EXDEV : -ENOENT;
	if (ret < 0)
		return ret;
	if (other.mailbox_id != m->mailbox_id)
		return -EXDEV;
	ret = dbox_msg_exchange(fs->store, m->mailbox_id, m->uid, other.uid,
				&err);
	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: exchange %s: %s\n", newname,
			 err.msg);
	return ret;
}

int rename_msg_to_sub(struct dboxfs *fs, const struct dbox_msg *m,
		      const struct view_ino *dst, const char *newname,
		      unsigned int flags)
{
	fuse_ino_t new_ino = 0;
	int ret = 0;

	if (flags & RENAME_EXCHANGE)
		return exchange_msg(fs, m, dst, newname);
	if (flags & RENAME_NOREPLACE)
		ret = noreplace_msg(fs, m, dst, newname);
	if (ret == 0)
		ret = rename_msg(fs, m, dst, newname, &new_ino);
	return ret;
}

/* Whether the row found by a name is the message of that view name
 * (as msgname_in_sub checks). */
static bool named_as(void *ctx, const struct dbox_msg *m)
{
	char cur[DBOX_NAME_MAX + 48];

	view_msg_name(m, cur, sizeof(cur));
	return strcmp(cur, ctx) == 0;
}

int rename_msg_in_folder(struct dboxfs *fs, const struct view_ino *src,
			 const char *name, const struct view_ino *dst,
			 const char *newname)
{
	char base[DBOX_NAME_MAX + 1];
	const char *info;
	uint32_t flags, kw;
	struct dbox_msg m;
	struct dbox_err err = { "" };
	enum dbox_maildir_dir dir;

	/* not a message's name: the general way decides (the source may
	 * be a file being written) */
	if (target_name(dst, newname, base, sizeof(base), &info, &flags, &kw,
			&dir) < 0)
		return -ENOENT;
	return dbox_msg_update_named(fs->store, src->box, src->sub == SUB_NEW,
				     name, named_as, (void *)name, flags, kw,
				     dir, base, &m, &err);
}

int rename_msg_refused(struct dboxfs *fs, const struct dbox_msg *m,
		       fuse_ino_t dir_ino, const struct view_ino *dir,
		       const char *newname, unsigned int flags)
{
	(void)fs; (void)m; (void)dir_ino; (void)dir; (void)newname;
	(void)flags;
	return -EXDEV;
}

/* RENAME_EXCHANGE of two folders is not offered: their mailboxes would
 * trade names and subtrees in one step, which the store cannot do. */
static bool is_mailbox_dir(struct dboxfs *fs, const struct view_ino *dir,
			   const char *name)
{
	char mailbox[DBOX_NAME_MAX * 4 + 1];
	struct dbox_mailbox b;
	bool is_mailbox;

	return node_of(dir)->mailbox_of(fs, dir, name, mailbox,
					sizeof(mailbox), &is_mailbox) == 0 &&
		is_mailbox &&
		dbox_mailbox_lookup(fs->store, mailbox, &b, NULL) == 0;
}

int rename_entry(fuse_req_t req, const struct view_ino *src,
		 const char *name, fuse_ino_t newparent,
		 const struct view_ino *dst, const char *newname,
		 unsigned int flags)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	int ret;

	(void)newparent;
	if (flags & RENAME_EXCHANGE)
		return is_mailbox_dir(fs, src, name) ||
			is_mailbox_dir(fs, dst, newname) ? -EINVAL :
			node_of(dst)->file_into(req, src, name, dst, newname,
						flags);
	ret = rename_folder(fs, src, name, dst, newname, flags);
	if (ret == -EXDEV || ret == -ENOENT)
		ret = node_of(dst)->file_into(req, src, name, dst, newname,
					      flags);
	return ret;
}

/* ------------------------------------------------------------- link */

/* qmail-style delivery: link tmp/X new/X, then unlink */
int rename_link_to_sub(fuse_req_t req, struct binode *bi, fuse_ino_t ino,
		       const struct view_ino *dst, const char *newname)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct commit_job *job;
	char path[64];
	int ret;

	backing_fd_path(bi->fd, path, sizeof(path));
	ret = backing_mark_linked(bi);
	if (ret < 0)
		/* unmarked, a remount's sweep may remove tmp/X */
		fuse_log(FUSE_LOG_WARNING, "dboxfs: link %s: cannot "
			 "mark its tmp/ file: %s\n", newname,
			 strerror(-ret));
	ret = commit_job_make(fs, AT_FDCWD, path, ino, dst->box, dst->sub,
			      newname, false, &job);
	if (ret < 0)
		return ret;
	job->req = req;
	reply_handed_off(req);
	job->reply_entry = true;
	commit_submit(fs, job);
	return NODE_REPLIED;
}

/* A file linked as a folder's dovecot-keywords: its keyword names, as a
 * rename there; the new name is the generated file. */
static int link_onto_kwfile(fuse_req_t req, struct binode *bi, int64_t box)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	struct stat st;
	char path[64];
	int fd, ret;

	backing_fd_path(bi->fd, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	ret = kwimport_fd(fs, box, fd);
	if (ret == 0)
		ret = attr_get(fs, view_ino_kwfile(box), &st);
	if (ret < 0)
		return ret;
	reply_entry(req, &st);
	return NODE_REPLIED;
}

int rename_link_to_area(fuse_req_t req, struct binode *bi, fuse_ino_t ino,
			const struct view_ino *dst, const char *newname)
{
	struct dboxfs *fs = fuse_req_userdata(req);
	enum backing_area area;
	struct binode *nbi;
	struct stat st;
	char path[64];
	int64_t box;
	int dfd = -1, ret;

	(void)ino;
	box = kwimport_target(fs, dst, newname);
	if (box != 0)
		return link_onto_kwfile(req, bi, box);
	ret = area_of(fs, dst, &dfd, &area, &box);
	if (ret == 0) {
		backing_fd_path(bi->fd, path, sizeof(path));
		if (linkat(AT_FDCWD, path, dfd, newname, AT_SYMLINK_FOLLOW) < 0)
			ret = -errno;
	}
	if (ret == 0)
		ret = backing_lookup(fs, dfd, newname, box, area, &nbi, &st);
	if (dfd >= 0)
		close(dfd);
	if (ret < 0)
		return ret;
	reply_entry(req, &st);
	return NODE_REPLIED;
}
