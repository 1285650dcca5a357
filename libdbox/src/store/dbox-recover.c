/* dbox-recover.c - the owner journal and crash recovery.
 *
 * Every writable store handle owns a directory under ctl/tmp that it keeps
 * flock'ed while it lives.  A directory whose lock can be taken belongs to
 * a process that died: its journal (if any) names the sdbox files of the
 * commit it was in, and everything else in it is unfinished temp files.
 * An m.N it appends to is named in that directory too, by a hard link
 * (the link is the proof that the file in storage/ is the one it wrote,
 * not a file Dovecot or a later writer put under the same name): for a
 * dead owner's links, bytes beyond the committed end are cut and a file
 * the index does not know is removed.  Nothing else in storage/ is ever
 * removed: an m.N we did not write is Dovecot's.
 *
 * In a tree taken over, Dovecot's map lists our m.N too (the hand-back
 * writes our records into it), and once the dead owner's flock is gone
 * Dovecot appends to such a file after the last record its map has for
 * it (mdbox-map.c mdbox_map_file_try_append: flock, then any complete
 * records past that end are taken as another session's and kept).  The
 * committed end is then the furthest of our index's and of every record
 * the map places in the file: bytes below it are someone's committed
 * mail, even a dead writer's unfinished record between the two (left as
 * garbage no map or index points to; Dovecot's purge drops it).  That
 * committed end is mdbox_file_committed_end's, which check uses too. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/mdbox-file.h"
#include "store/store-private.h"

#define JOURNAL_NAME "journal"
#define JOURNAL_MAGIC "dboxfs-journal 1\n"

int dbox_journal_write_each(struct dbox_store *store,
			    dbox_journal_next_fn *next, void *ctx,
			    struct dbox_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int64_t box;
	uint32_t uid;
	FILE *f;
	int ret = 0;

	if (dbox_path(path, sizeof(path), "%s/" JOURNAL_NAME,
		      store->owner_dir) < 0 ||
	    dbox_path(tmp, sizeof(tmp), "%s/" JOURNAL_NAME ".tmp",
		      store->owner_dir) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long");
	f = fopen(tmp, "we");
	if (f == NULL)
		return dbox_fail(err, -errno, "create %s: %m", tmp);
	fputs(JOURNAL_MAGIC, f);
	while (next(ctx, &box, &uid))
		fprintf(f, "%lld %u\n", (long long)box, uid);
	if (fflush(f) != 0 || fdatasync(fileno(f)) < 0)
		ret = -errno;
	if (fclose(f) != 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret == 0)
		ret = dbox_fsync_dir(store->owner_dir);
	if (ret < 0)
		return dbox_fail(err, ret, "write %s: %s", path, strerror(-ret));
	return 0;
}

struct journal_arrays {
	const int64_t *boxes;
	const uint32_t *uids;
	unsigned int count, i;
};

static bool journal_arrays_next(void *ctx, int64_t *box_r, uint32_t *uid_r)
{
	struct journal_arrays *a = ctx;

	if (a->i == a->count)
		return false;
	*box_r = a->boxes[a->i];
	*uid_r = a->uids[a->i++];
	return true;
}

int dbox_journal_write(struct dbox_store *store, const int64_t *mailbox_ids,
		       const uint32_t *uids, unsigned int count,
		       struct dbox_err *err)
{
	struct journal_arrays a = { mailbox_ids, uids, count, 0 };

	return dbox_journal_write_each(store, journal_arrays_next, &a, err);
}

void dbox_journal_remove(struct dbox_store *store)
{
	char path[PATH_MAX];

	if (dbox_path(path, sizeof(path), "%s/" JOURNAL_NAME,
		      store->owner_dir) == 0)
		unlink(path);
}

/* A journal entry whose row is not in the index names a file that must
 * not exist: an uncommitted save, or a committed expunge. */
static int replay_entry(struct dbox_store *store, int64_t mailbox_id,
			uint32_t uid, struct dbox_err *err)
{
	char name[DBOX_NAME_MAX * 4 + 1], path[PATH_MAX];
	int ret = dbox_msg_get(store, mailbox_id, uid, NULL, err);

	if (ret == 0 || ret != -ENOENT)
		return ret;
	if (dbox_mailbox_name_of(store, mailbox_id, name, sizeof(name),
				 NULL) < 0)
		return 0;  /* mailbox gone with its files */
	if (dbox_sdbox_path(store, name, uid, path, sizeof(path)) < 0)
		return 0;
	if (unlink(path) < 0 && errno != ENOENT)
		return dbox_fail(err, -errno, "unlink %s: %m", path);
	return 0;
}

static int replay_journal(struct dbox_store *store, const char *dir,
			  struct dbox_err *err)
{
	char path[PATH_MAX], line[128];
	FILE *f;
	int ret = 0;

	if (dbox_path(path, sizeof(path), "%s/" JOURNAL_NAME, dir) < 0)
		return 0;
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL ||
	    strcmp(line, JOURNAL_MAGIC) != 0) {
		fclose(f);
		return 0;  /* torn before its rename: nothing was linked */
	}
	while (ret == 0 && fgets(line, sizeof(line), f) != NULL) {
		long long box;
		unsigned int uid;

		if (sscanf(line, "%lld %u", &box, &uid) == 2)
			ret = replay_entry(store, box, uid, err);
	}
	fclose(f);
	return ret;
}

static int mark_path(struct dbox_store *store, uint32_t id, char *buf,
		     size_t len)
{
	if (store->owner_dir == NULL)
		return -EROFS;
	return dbox_path(buf, len, "%s/m.%u", store->owner_dir, id);
}

int dbox_owner_mark_new(struct dbox_store *store, uint32_t id,
			const char *path, struct dbox_err *err)
{
	char mark[PATH_MAX];
	int fd, ret = mark_path(store, id, mark, sizeof(mark));

	if (ret < 0)
		return dbox_fail(err, ret, "no owner directory for m.%u", id);
	/* a mark of that id already: another thread of ours is creating
	 * the same file, the id is taken */
	fd = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		  DBOX_FILE_MODE);
	if (fd < 0 && errno == EEXIST)
		return -EEXIST;
	if (fd < 0)
		return dbox_fail(err, -errno, "create %s: %m", mark);
	close(fd);
	/* link() never replaces: EEXIST says the id is taken */
	ret = link(mark, path) < 0 ? -errno : dbox_fsync_dir(store->owner_dir);
	if (ret < 0) {
		unlink(mark);
		return ret == -EEXIST ? ret :
			dbox_fail(err, ret, "link %s: %s", path, strerror(-ret));
	}
	return 0;
}

int dbox_owner_mark(struct dbox_store *store, uint32_t id, const char *path,
		    struct dbox_err *err)
{
	char mark[PATH_MAX];
	int ret = mark_path(store, id, mark, sizeof(mark));

	if (ret < 0)
		return dbox_fail(err, ret, "no owner directory for m.%u", id);
	unlink(mark);
	ret = link(path, mark) < 0 ? -errno : dbox_fsync_dir(store->owner_dir);
	if (ret < 0)
		return dbox_fail(err, ret, "link %s: %s", mark, strerror(-ret));
	return 0;
}

void dbox_owner_unmark(struct dbox_store *store, uint32_t id)
{
	char mark[PATH_MAX];

	if (mark_path(store, id, mark, sizeof(mark)) == 0)
		unlink(mark);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
		sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* One m.N a dead owner wrote, under its lock: cut uncommitted bytes, or
 * remove a file that never got into the index.  The map is read under
 * the file's flock: Dovecot commits its map before it unlocks the file
 * it appended to, so every record of its appends is there by now. */
static int recover_mfile(struct dbox_store *store,
			 struct mdbox_dovecot_map *dm, uint32_t id,
			 const char *mark, struct dbox_err *err)
{
	char path[PATH_MAX];
	uint64_t size = 0, end = 0;
	struct stat st;
	int fd, ret;

	dbox_mdbox_path(store, id, path, sizeof(path));
	if (!same_file(mark, path))
		return 0;  /* gone, or someone else's file by now */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return 0;  /* being appended to */
	}
	ret = fstat(fd, &st) < 0 ?
		dbox_fail(err, -errno, "fstat %s: %m", path) :
		mdbox_file_committed_end(store, dm, id, (uint64_t)st.st_size,
					 &size, &end, NULL);
	if (ret == -ENOENT && end == 0) {
		if (same_file(mark, path))
			unlink(path);
		ret = 0;
	} else if (ret == 0 || ret == -ENOENT) {
		if (end == UINT64_MAX)
			dbox_log(DBOX_LOG_WARNING, "%s: not cut: Dovecot's "
				 "map is unreadable, it may have records "
				 "beyond our committed end %llu", path,
				 (unsigned long long)size);
		else if (end > size)
			dbox_log(DBOX_LOG_WARNING, "%s: kept up to %llu, "
				 "beyond our committed end %llu: Dovecot's map "
				 "has records up to there", path,
				 (unsigned long long)end,
				 (unsigned long long)size);
		ret = 0;
		if ((uint64_t)st.st_size > end &&
		    (ftruncate(fd, (off_t)end) < 0 || fdatasync(fd) < 0))
			ret = dbox_fail(err, -errno, "truncate %s: %m", path);
	}
	close(fd);
	return ret < 0 && ret != -EIO ? ret : 0;
}

/* The m.N links in a dead owner's directory. */
static int recover_marks(struct dbox_store *store, const char *dir,
			 struct dbox_err *err)
{
	struct mdbox_dovecot_map dm = { 0 };
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;

	if (d == NULL)
		return 0;
	while (ret == 0 && (e = readdir(d)) != NULL) {
		char mark[PATH_MAX], *end;
		unsigned long id;

		if (strncmp(e->d_name, "m.", 2) != 0)
			continue;
		errno = 0;
		id = strtoul(e->d_name + 2, &end, 10);
		if (errno != 0 || *end != '\0' || id == 0 || id > UINT32_MAX ||
		    dbox_path(mark, sizeof(mark), "%s/%s", dir,
			      e->d_name) < 0)
			continue;
		ret = recover_mfile(store, &dm, (uint32_t)id, mark, err);
	}
	closedir(d);
	mdbox_dovecot_map_free(&dm);
	return ret;
}

static int recover_owner(struct dbox_store *store, const char *name,
			 bool *dead_r, struct dbox_err *err)
{
	char dir[PATH_MAX];
	int fd, ret;

	if (dbox_path(dir, sizeof(dir), "%s/%s", store->scratch_dir, name) < 0)
		return 0;
	if (strcmp(dir, store->owner_dir) == 0)
		return 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return 0;  /* its owner lives */
	}
	*dead_r = true;
	ret = replay_journal(store, dir, err);
	if (ret == 0 && store->format == DBOX_FORMAT_MDBOX)
		ret = recover_marks(store, dir, err);
	if (ret == 0)
		ret = dbox_remove_tree(dir);
	close(fd);
	if (ret < 0 && err != NULL && err->msg[0] == '\0')
		dbox_fail(err, ret, "remove %s: %s", dir, strerror(-ret));
	return ret;
}

static int recover_owners(struct dbox_store *store, bool *dead_r,
			  struct dbox_err *err)
{
	DIR *d = opendir(store->scratch_dir);
	struct dirent *e;
	int ret = 0;

	if (d == NULL)
		return 0;
	while (ret == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		ret = recover_owner(store, e->d_name, dead_r, err);
	}
	closedir(d);
	return ret;
}

/* A u.N at or above its mailbox's next_uid is named by no row and never
 * can be: the commit that linked it was lost with the power (an index
 * with deferred_sync keeps its commits durable only from its next sync
 * on, and the journal that named the file may be gone), or it failed
 * before its rollback.  Dovecot's rebuild would bring it back, and our
 * next delivery would find its name taken.  One below next_uid that no
 * row names was expunged or moved away by a writer that died between its
 * commit (synced before the unlink: dbox-msg.c expunge_file and
 * dbox_msg_move) and the unlink; Dovecot's rebuild would bring it back
 * too, as a second copy of a moved message. */
static bool orphan_uid(struct dbox_store *store, const struct dbox_mailbox *box,
		       unsigned long uid)
{
	if (uid >= box->next_uid)
		return true;
	return dbox_msg_get(store, box->id, (uint32_t)uid, NULL, NULL) ==
		-ENOENT;
}

static int remove_orphans(void *ctx, const struct dbox_mailbox *box)
{
	struct dbox_store *store = ctx;
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (dbox_mailbox_dir(store, box->name, dir, sizeof(dir)) < 0 ||
	    (d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char *end;
		unsigned long uid;

		if (strncmp(e->d_name, "u.", 2) != 0)
			continue;
		errno = 0;
		uid = strtoul(e->d_name + 2, &end, 10);
		if (errno != 0 || *end != '\0' || uid == 0 ||
		    uid > UINT32_MAX || !orphan_uid(store, box, uid) ||
		    dbox_path(path, sizeof(path), "%s/%s", dir, e->d_name) < 0)
			continue;
		if (uid >= box->next_uid)
			dbox_log(DBOX_LOG_WARNING, "removed %s: its commit did "
				 "not reach the index (uid >= next uid %u)",
				 path, box->next_uid);
		else
			dbox_log(DBOX_LOG_WARNING, "removed %s: expunged or "
				 "moved by a writer that died before removing "
				 "it", path);
		unlink(path);
	}
	closedir(d);
	return 0;
}

int dbox_recover(struct dbox_store *store, struct dbox_err *err)
{
	bool dead = false;
	int ret = recover_owners(store, &dead, err);

	if (ret < 0 || !dead || store->format != DBOX_FORMAT_SDBOX ||
	    store->origin != DBOX_ORIGIN_DBOXFS)
		return ret;
	/* under the write lock: a live writer links u.N only inside its
	 * write transaction, which then cannot be in progress */
	ret = dindex_write_begin(store->idx, err);
	if (ret == 0)
		ret = dbox_mailbox_list(store, remove_orphans, store, err);
	dindex_write_rollback(store->idx);
	return ret;
}
