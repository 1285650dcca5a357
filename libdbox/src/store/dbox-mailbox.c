/* dbox-mailbox.c - mailboxes: names, directories, index rows, keywords. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dovecot/utf8.h"
#include "index/dindex-mailbox.h"
#include "store/store-private.h"

static bool part_valid(const char *part, size_t n)
{
	if (n == 0 || n > DBOX_NAME_MAX)
		return false;
	if ((n == 1 && part[0] == '.') ||
	    (n == 2 && part[0] == '.' && part[1] == '.'))
		return false;
	if (n == strlen(DBOX_MAIL_DIRNAME) &&
	    memcmp(part, DBOX_MAIL_DIRNAME, n) == 0)
		return false;
	return true;
}

bool dbox_mailbox_name_valid(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	const char *part = name;

	if (name[0] == '\0' || name[0] == '~' || name[0] == '/' ||
	    strlen(name) > DBOX_NAME_MAX * 4)
		return false;
	while (*p != '\0') {
		size_t n;

		if (*p < 0x20 || *p == 0x7f)
			return false;
		if (*p == '/') {
			if (!part_valid(part, (size_t)((const char *)p - part)))
				return false;
			part = (const char *)p + 1;
			p++;
			continue;
		}
		uint32_t cp;

		n = dovi_utf8_decode(p, strlen((const char *)p), &cp);
		/* C1 controls are control characters too */
		if (n == 0 || (cp >= 0x80 && cp < 0xa0))
			return false;
		p += n;
	}
	return part_valid(part, strlen(part));
}

int dbox_mailbox_dir(const struct dbox_store *store, const char *name,
		     char *buf, size_t len)
{
	char storage[PATH_MAX];
	int ret = dbox_name_to_storage(name, storage, sizeof(storage));

	if (ret < 0)
		return ret;
	return dbox_path(buf, len, "%s/%s/%s/%s", store->root,
			 DBOX_MAILBOX_DIR, storage, DBOX_MAIL_DIRNAME);
}

int dbox_sdbox_path(const struct dbox_store *store, const char *name,
		    uint32_t uid, char *buf, size_t len)
{
	char dir[PATH_MAX];
	int ret = dbox_mailbox_dir(store, name, dir, sizeof(dir));

	if (ret < 0)
		return ret;
	return dbox_path(buf, len, "%s/u.%u", dir, uid);
}

int dbox_mdbox_path(const struct dbox_store *store, uint32_t file_id,
		    char *buf, size_t len)
{
	return dbox_path(buf, len, "%s/%s/m.%u", store->root, DBOX_STORAGE_DIR,
			 file_id);
}

int dbox_mailbox_lookup(struct dbox_store *store, const char *name,
			struct dbox_mailbox *box_r, struct dbox_err *err)
{
	return dindex_mailbox_by_name(store->idx, name, box_r, err);
}

int dbox_mailbox_get(struct dbox_store *store, int64_t id,
		     struct dbox_mailbox *box_r, struct dbox_err *err)
{
	return dindex_mailbox_by_id(store->idx, id, box_r, err);
}

int dbox_mailbox_name_of(struct dbox_store *store, int64_t mailbox_id,
			 char *buf, size_t len, struct dbox_err *err)
{
	struct dbox_mailbox box;
	int ret = dbox_mailbox_get(store, mailbox_id, &box, err);

	if (ret == 0)
		snprintf(buf, len, "%s", box.name);
	return ret;
}

int dbox_mailbox_list(struct dbox_store *store,
		      int (*cb)(void *ctx, const struct dbox_mailbox *box),
		      void *ctx, struct dbox_err *err)
{
	return dindex_mailboxes_each(store->idx, cb, ctx, err);
}

int dbox_mailbox_insert(struct dbox_store *store, const char *name,
			const char *guid, uint32_t uidvalidity,
			uint32_t next_uid, struct dbox_mailbox *box_r,
			struct dbox_err *err)
{
	int ret = dindex_mailbox_insert(store->idx, name, guid, uidvalidity,
					next_uid, err);

	if (ret < 0)
		return ret;
	return box_r == NULL ? 0 : dbox_mailbox_lookup(store, name, box_r, err);
}

/* A new name must be one Dovecot can have: with a namespace separator
 * other than '/' (dbox_open_opts.dovecot_separator), one in a part of
 * the name is a hierarchy level to Dovecot, which lists "a.b" (separator
 * '.') as the child b of a and cannot open it (mailbox-list.c
 * mailbox_list_default_get_storage_name splits the name it is given at
 * the separator); the mailbox log records of its rename or delete would
 * name that other mailbox.  Unless Dovecot escapes it (BROKENCHAR). */
static int dovecot_name_check(const struct dbox_store *store,
			      const char *name, struct dbox_err *err)
{
	if (store->dovecot_sep == '/' || store->dovecot_escape != '\0' ||
	    strchr(name, store->dovecot_sep) == NULL)
		return 0;
	return dbox_fail(err, -EINVAL, "mailbox name %s: has Dovecot's "
			 "hierarchy separator '%c' in it, which Dovecot "
			 "would take as a level of folders", name,
			 store->dovecot_sep);
}

int dbox_mailbox_create(struct dbox_store *store, const char *name,
			struct dbox_mailbox *box_r, struct dbox_err *err)
{
	char dir[PATH_MAX], guid[33];
	bool made_dir = false;
	struct stat st;
	uint32_t uidvalidity;
	int ret;

	if (!dbox_mailbox_name_valid(name))
		return dbox_fail(err, -EINVAL, "invalid mailbox name");
	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	ret = dovecot_name_check(store, name, err);
	if (ret < 0)
		return ret;
	ret = dbox_mailbox_dir(store, name, dir, sizeof(dir));
	if (ret < 0)
		return dbox_fail(err, ret, "mailbox name too long");
	ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	dbox_guid_generate(guid);
	uidvalidity = dbox_uidvalidity_next(store->root);
	ret = dbox_mailbox_insert(store, name, guid, uidvalidity, 1, box_r,
				  err);
	if (ret == 0 && stat(dir, &st) < 0) {
		ret = dbox_mkdir_p(dir, DBOX_DIR_MODE);
		if (ret < 0)
			dbox_fail(err, ret, "mkdir %s: %s", dir,
				  strerror(-ret));
		made_dir = ret == 0;
	}
	/* a directory of Dovecot's already has its own index */
	if (ret == 0 && made_dir)
		dbox_dovecot_back_created(store, dir, name, guid,
					  uidvalidity);
	if (ret == 0 && made_dir)
		dbox_dovecot_follow_created(store, name);
	if (ret == 0)
		ret = dindex_write_commit(store->idx, err);
	else
		dindex_write_rollback(store->idx);
	if (ret < 0 && made_dir) {
		char log[PATH_MAX];

		/* the takeover's first log of Dovecot's index of it */
		if (dbox_path(log, sizeof(log), "%s/dovecot.index.log",
			      dir) == 0)
			unlink(log);
		rmdir(dir);
	}
	return ret;
}

static int has_children(struct dbox_store *store, const char *name,
			struct dbox_err *err)
{
	return dindex_mailbox_has_children(store->idx, name, err);
}

/* Removes the empty parents of mailboxes/<storage>/dbox-Mails that no
 * other mailbox needs. */
static void remove_empty_parents(struct dbox_store *store, const char *dir)
{
	char path[PATH_MAX], top[PATH_MAX];
	char *slash;

	snprintf(path, sizeof(path), "%s", dir);
	snprintf(top, sizeof(top), "%s/%s", store->root, DBOX_MAILBOX_DIR);
	while ((slash = strrchr(path, '/')) != NULL) {
		*slash = '\0';
		if (strcmp(path, top) == 0 || rmdir(path) < 0)
			break;
	}
}

/* Removes mailboxes/<storage>/dbox-Mails and then the now empty parents. */
static void remove_mailbox_dirs(struct dbox_store *store, const char *dir)
{
	if (rmdir(dir) < 0 && errno == ENOTEMPTY) {
		/* only index files Dovecot may have made are left */
		dbox_remove_tree(dir);
	}
	remove_empty_parents(store, dir);
}

/* mailboxes/<storage> of a name (the directory that holds dbox-Mails and
 * the children). */
static int mailbox_top_dir(const struct dbox_store *store, const char *name,
			   char *buf, size_t len)
{
	char storage[PATH_MAX];
	int ret = dbox_name_to_storage(name, storage, sizeof(storage));

	if (ret < 0)
		return ret;
	return dbox_path(buf, len, "%s/%s/%s", store->root, DBOX_MAILBOX_DIR,
			 storage);
}

/* mailboxes/<storage> of name is gone (no child kept it). */
static bool top_gone(const struct dbox_store *store, const char *name)
{
	char top[PATH_MAX];

	return mailbox_top_dir(store, name, top, sizeof(top)) == 0 &&
	       access(top, F_OK) < 0 && errno == ENOENT;
}

/* keep_children: the mailbox goes even if it has children, which stay
 * (its directory stays as their parent, as Dovecot keeps a deleted
 * mailbox's children). */
static int delete_mailbox(struct dbox_store *store, const char *name,
			  bool keep_children, struct dbox_err *err)
{
	struct dbox_mailbox box;
	char dir[PATH_MAX];
	bool following = store->dovecot != NULL;
	uint64_t count;
	int ret;

	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	ret = dbox_mailbox_lookup(store, name, &box, err);
	if (ret == 0)
		ret = dbox_msg_count(store, box.id, -1, &count, err);
	if (ret == 0 && count > 0)
		ret = dbox_fail(err, -ENOTEMPTY, "mailbox %s has %llu "
				"messages", name, (unsigned long long)count);
	if (ret == 0 && !keep_children &&
	    (ret = has_children(store, name, err)) > 0)
		ret = dbox_fail(err, -ENOTEMPTY, "mailbox %s has children",
				name);
	if (ret == 0)
		ret = dindex_mailbox_delete(store->idx, box.id, err);
	/* a tree Dovecot made: the follower takes every mailbox directory it
	 * lists under this lock for a mailbox, so the directory goes before
	 * the lock does (after a power cut its listing drops the row) */
	if (ret == 0 && following &&
	    dbox_mailbox_dir(store, name, dir, sizeof(dir)) == 0)
		remove_mailbox_dirs(store, dir);
	if (ret == 0)
		ret = dindex_write_commit(store->idx, err);
	else
		dindex_write_rollback(store->idx);
	if (ret == 0 && following)
		dbox_dovecot_back_deleted(store, name, box.guid,
					  top_gone(store, name));
	/* its files go once the commit that dropped it is durable */
	if (ret == 0 && !following && dindex_sync(store->idx, err) == 0 &&
	    dbox_mailbox_dir(store, name, dir, sizeof(dir)) == 0)
		remove_mailbox_dirs(store, dir);
	return ret;
}

int dbox_mailbox_delete(struct dbox_store *store, const char *name,
			struct dbox_err *err)
{
	return delete_mailbox(store, name, false, err);
}

int dbox_mailbox_delete_one(struct dbox_store *store, const char *name,
			    struct dbox_err *err)
{
	return delete_mailbox(store, name, true, err);
}

/* The checks of a rename in its transaction: `from` is a mailbox (or,
 * for a subtree, holds some), `to` is none and (subtree) holds none. */
static int rename_check(struct dbox_store *store, const char *from,
			const char *to, bool subtree, struct dbox_err *err)
{
	int ret = dbox_mailbox_lookup(store, from, NULL, err);

	if (ret == -ENOENT && subtree && has_children(store, from, NULL) > 0)
		ret = 0;
	if (ret == 0 && dbox_mailbox_lookup(store, to, NULL, NULL) == 0)
		ret = dbox_fail(err, -EEXIST, "mailbox %s exists", to);
	if (ret == 0 && subtree && (ret = has_children(store, to, err)) > 0)
		ret = dbox_fail(err, -ENOTEMPTY, "%s has children", to);
	return ret;
}

/* subtree: mailboxes/<from> with everything below; else only
 * mailboxes/<from>/dbox-Mails, the children's directories stay. */
static int rename_mailbox(struct dbox_store *store, const char *from,
			  const char *to, bool subtree, struct dbox_err *err)
{
	char src[PATH_MAX], dst[PATH_MAX], parent[PATH_MAX];
	struct dbox_err serr;
	bool moved = false;
	int ret;

	if (!dbox_mailbox_name_valid(to))
		return dbox_fail(err, -EINVAL, "invalid mailbox name");
	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	ret = dovecot_name_check(store, to, err);
	if (ret < 0)
		return ret;
	if (subtree && strncmp(to, from, strlen(from)) == 0 &&
	    to[strlen(from)] == '/')
		return dbox_fail(err, -EINVAL, "cannot move %s under itself",
				 from);
	if ((subtree ? mailbox_top_dir(store, from, src, sizeof(src)) :
	     dbox_mailbox_dir(store, from, src, sizeof(src))) < 0 ||
	    (subtree ? mailbox_top_dir(store, to, dst, sizeof(dst)) :
	     dbox_mailbox_dir(store, to, dst, sizeof(dst))) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "name too long");
	ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	ret = rename_check(store, from, to, subtree, err);
	if (ret == 0)
		ret = dindex_mailbox_rename(store->idx, from, to, subtree,
					    err);
	if (ret == 0) {
		snprintf(parent, sizeof(parent), "%s", dst);
		*strrchr(parent, '/') = '\0';
		dbox_mkdir_p(parent, DBOX_DIR_MODE);
		if (rename(src, dst) < 0)
			ret = dbox_fail(err, -errno, "rename %s: %m", src);
		moved = ret == 0;
	}
	if (ret == 0)
		ret = dindex_write_commit(store->idx, err);
	else
		dindex_write_rollback(store->idx);
	if (ret < 0 && moved)
		rename(dst, src);
	/* the directory moved already: its commit is made durable at once,
	 * as with a synchronous index (a folder rename is rare) */
	if (ret == 0 && dindex_sync(store->idx, &serr) < 0)
		dbox_log(DBOX_LOG_WARNING, "%s", serr.msg);
	if (ret == 0)
		dbox_dovecot_back_renamed(store, to);
	/* open files are cached by path, and src may be made anew */
	if (ret == 0)
		dbox_fcache_drop_dir(store, src);
	if (ret == 0 && !subtree)
		remove_empty_parents(store, src);
	return ret;
}

int dbox_mailbox_rename(struct dbox_store *store, const char *from,
			const char *to, struct dbox_err *err)
{
	return rename_mailbox(store, from, to, true, err);
}

int dbox_mailbox_rename_one(struct dbox_store *store, const char *from,
			    const char *to, struct dbox_err *err)
{
	return rename_mailbox(store, from, to, false, err);
}

static int touch_at(struct dbox_store *store, int64_t mailbox_id,
		    bool new_dir, bool cur_dir, int64_t ns,
		    struct dbox_err *err)
{
	return dindex_mailbox_touch(store->idx, mailbox_id, new_dir, cur_dir,
				    ns, err);
}

int dbox_mailbox_touch(struct dbox_store *store, int64_t mailbox_id,
		       bool new_dir, bool cur_dir, struct dbox_err *err)
{
	return touch_at(store, mailbox_id, new_dir, cur_dir, dbox_now_ns(),
			err);
}

int dbox_mailbox_set_dir_mtime(struct dbox_store *store, int64_t mailbox_id,
			       bool new_dir, int64_t ns, struct dbox_err *err)
{
	int ret;

	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	ret = dindex_write_begin(store->idx, err);
	if (ret == 0)
		ret = dindex_mailbox_set_dir_mtime(store->idx, mailbox_id,
						   new_dir, ns, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

int dbox_mailbox_alloc_uids(struct dbox_store *store, int64_t mailbox_id,
			    uint32_t count, uint32_t *first_r,
			    struct dbox_err *err)
{
	return dindex_mailbox_alloc_uids(store->idx, mailbox_id, count,
					 first_r, err);
}

int dbox_mailbox_reserve_uid(struct dbox_store *store, int64_t mailbox_id,
			     uint32_t *uid_r, struct dbox_err *err)
{
	int ret;

	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	ret = dindex_write_begin(store->idx, err);
	if (ret == 0)
		ret = dbox_mailbox_alloc_uids(store, mailbox_id, 1, uid_r, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

int dbox_mailbox_keywords(struct dbox_store *store, int64_t mailbox_id,
			  char *names[DBOX_MAX_KEYWORDS], char *buf,
			  size_t buflen, struct dbox_err *err)
{
	return dindex_keywords(store->idx, mailbox_id, names, buf, buflen,
			       err);
}

bool dbox_keyword_name_valid(const char *name)
{
	return dbox_meta_value_valid(name) && name[0] != '\0' &&
		strpbrk(name, " ()[]{}%*\"\\") == NULL;
}

static int keywords_check(const char *const names[DBOX_MAX_KEYWORDS],
			  struct dbox_err *err)
{
	for (int i = 0; i < DBOX_MAX_KEYWORDS; i++) {
		if (names[i] == NULL)
			continue;
		if (!dbox_keyword_name_valid(names[i]))
			return dbox_fail(err, -EINVAL, "invalid keyword");
		for (int j = 0; j < i; j++) {
			if (names[j] != NULL && strcmp(names[j], names[i]) == 0)
				return dbox_fail(err, -EINVAL,
						 "keyword %s twice", names[i]);
		}
	}
	return 0;
}

/* The keyword indexes whose name differs between old and new. */
static uint32_t renamed_keywords(char *const old[DBOX_MAX_KEYWORDS],
				 const char *const new[DBOX_MAX_KEYWORDS])
{
	uint32_t mask = 0;

	for (int i = 0; i < DBOX_MAX_KEYWORDS; i++) {
		const char *a = old[i] != NULL ? old[i] : "";
		const char *b = new[i] != NULL ? new[i] : "";

		if (strcmp(a, b) != 0)
			mask |= 1u << i;
	}
	return mask;
}

struct renamed_msgs {
	uint32_t mask;
	struct dbox_msg *v;
	size_t n, cap;
};

static int collect_renamed(void *ctx, const struct dbox_msg *msg)
{
	struct renamed_msgs *r = ctx;

	if ((msg->keywords & r->mask) == 0)
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap != 0 ? r->cap * 2 : 16;
		struct dbox_msg *v = realloc(r->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = *msg;
	return 0;
}

/* A taken-over tree: messages carrying a letter whose name is new (a
 * maildir client such as Dovecot's maildir driver renames the message to
 * its letter before it writes the letter's name into dovecot-keywords)
 * hand that name back to Dovecot, as if the letter came now.  A name
 * that replaced another is added; the old one stays in Dovecot's index
 * (its letters are the new name's here). */
static int keywords_back(struct dbox_store *store, int64_t mailbox_id,
			 uint32_t mask, struct dbox_err *err)
{
	struct renamed_msgs r = { .mask = mask };
	int ret;

	if (store->dovecot == NULL || mask == 0)
		return 0;
	ret = dbox_msg_list(store, mailbox_id, 0, -1, 0, collect_renamed, &r,
			    err);
	for (size_t i = 0; ret >= 0 && i < r.n; i++) {
		struct dbox_msg old = r.v[i];

		old.keywords &= ~mask;
		ret = dbox_dovecot_back_flags(store, &old, r.v[i].flags,
					      r.v[i].keywords);
		if (ret < 0)
			ret = dbox_fail(err, ret, "keyword names not handed "
					"back to Dovecot");
	}
	free(r.v);
	return ret < 0 ? ret : 0;
}

int dbox_mailbox_keywords_set(struct dbox_store *store, int64_t mailbox_id,
			      const char *const names[DBOX_MAX_KEYWORDS],
			      struct dbox_err *err)
{
	char *old[DBOX_MAX_KEYWORDS] = { 0 }, buf[DBOX_MAX_KEYWORDS * 256];
	uint32_t renamed = 0;
	int ret = keywords_check(names, err);

	if (ret < 0)
		return ret;
	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	ret = dindex_write_begin(store->idx, err);
	if (ret == 0 && dbox_mailbox_keywords(store, mailbox_id, old, buf,
					      sizeof(buf), err) >= 0)
		renamed = renamed_keywords(old, names);
	if (ret == 0)
		ret = dindex_keywords_clear(store->idx, mailbox_id, err);
	for (int i = 0; ret == 0 && i < DBOX_MAX_KEYWORDS; i++) {
		if (names[i] != NULL)
			ret = dindex_keyword_insert(store->idx, mailbox_id, i,
						    names[i], err);
	}
	if (ret == 0)
		ret = keywords_back(store, mailbox_id, renamed, err);
	/* the generated file's time (cur/'s, as for a keyword a message's
	 * name adds) moves: Dovecot's maildir driver reads the names again
	 * only when the file's mtime changed */
	if (ret == 0)
		ret = touch_at(store, mailbox_id, false, true, dbox_now_ns(),
			       err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

int dbox_mailbox_keyword_index(struct dbox_store *store, int64_t mailbox_id,
			       const char *name, struct dbox_err *err)
{
	char *names[DBOX_MAX_KEYWORDS], buf[DBOX_MAX_KEYWORDS * 256];
	bool own_txn = !dindex_in_write(store->idx);
	int count, ret, free_idx = -1;

	if (!dbox_keyword_name_valid(name))
		return dbox_fail(err, -EINVAL, "invalid keyword");
	if (own_txn && (ret = dindex_write_begin(store->idx, err)) < 0)
		return ret;
	count = dbox_mailbox_keywords(store, mailbox_id, names, buf,
				      sizeof(buf), err);
	ret = count;
	for (int i = 0; ret >= 0 && i < DBOX_MAX_KEYWORDS; i++) {
		if (names[i] != NULL && strcmp(names[i], name) == 0) {
			ret = i;
			goto done;
		}
		if (names[i] == NULL && free_idx < 0)
			free_idx = i;
	}
	if (ret >= 0 && free_idx < 0)
		ret = dbox_fail(err, -ENOSPC, "mailbox has %d keywords already",
				DBOX_MAX_KEYWORDS);
	if (ret >= 0) {
		ret = dindex_keyword_insert(store->idx, mailbox_id, free_idx,
					    name, err);
		if (ret == 0)
			ret = free_idx;
	}
done:
	if (!own_txn)
		return ret;
	if (ret < 0) {
		dindex_write_rollback(store->idx);
		return ret;
	}
	int cret = dindex_write_commit(store->idx, err);

	return cret < 0 ? cret : ret;
}

/* A cur/ or new/ that is made gets the time of now, as a new directory
 * does; the other keeps its own (cur/ and new/ change apart, as on a
 * local filesystem: mbsync and mutt rescan by their mtimes). */
static int set_subdirs_touch_made(struct dbox_store *store,
				  int64_t mailbox_id, unsigned int subdirs,
				  struct dbox_err *err)
{
	struct dbox_mailbox b;
	unsigned int made;
	int ret = dbox_mailbox_get(store, mailbox_id, &b, err);

	if (ret < 0)
		return ret;
	made = subdirs & ~b.subdirs;
	if (!(made & (DBOX_SUBDIR_CUR | DBOX_SUBDIR_NEW)))
		return 0;
	return dbox_mailbox_touch(store, mailbox_id,
				  (made & DBOX_SUBDIR_NEW) != 0,
				  (made & DBOX_SUBDIR_CUR) != 0, err);
}

int dbox_mailbox_set_subdirs(struct dbox_store *store, int64_t mailbox_id,
			     unsigned int subdirs, struct dbox_err *err)
{
	int ret;

	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	ret = set_subdirs_touch_made(store, mailbox_id, subdirs, err);
	if (ret == 0)
		ret = dindex_mailbox_set_subdirs(store->idx, mailbox_id,
						 subdirs, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}
