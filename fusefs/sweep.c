/* sweep.c - what a killed daemon left in the spool (see sweep.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backing.h"
#include "dboxfs.h"
#include "commit.h"
#include "flush.h"
#include "sweep.h"
#include "totmp.h"

/* finish_job moves a delivered file to pending/ after its commit (or
 * unlinks it, with -o sync: flush.h); a daemon killed in between leaves
 * the file where it was: in tmp/, or
 * pending in cur/ or new/ beside the message it became (listed twice).
 * At start-up such a file is removed when its mailbox has a message of
 * its base name with its mtime (a delivered file's mtime is the
 * message's received time) and exactly its bytes.  Anything else stays:
 * the file of a delivery renamed to another name than its tmp/ one, or
 * into another folder, is not recognised and stays in tmp/ as before;
 * a file link() delivered before a clean stop is the client's until it
 * unlinks it (the kept mark, backing.h). */
static bool same_bytes(struct dboxfs *fs, int fd, const struct dbox_msg *m)
{
	char a[16384], b[sizeof(a)];
	struct dbox_err err = { "" };
	uint64_t off = 0;

	for (;;) {
		ssize_t n = dbox_msg_pread(fs->store, m, a, sizeof(a), off,
					   &err);

		if (n <= 0)
			return n == 0 && off == m->size;
		if (pread(fd, b, (size_t)n, (off_t)off) != n ||
		    memcmp(a, b, (size_t)n) != 0)
			return false;
		off += (uint64_t)n;
	}
}

/* Whether the file is a committed delivery's (m: its message). */
static bool is_committed(struct dboxfs *fs, int64_t box, int dirfd,
			 const char *name,
			 const struct stat *st, struct dbox_msg *m)
{
	char base[DBOX_NAME_MAX + 1];
	const char *info;
	bool yes;
	int fd;

	view_name_split(name, base, sizeof(base), &info);
	if (base[0] == '\0' || base[0] == '.' ||
	    dbox_msg_lookup_base(fs->store, box, base, m, NULL) < 0 ||
	    m->size != (uint64_t)st->st_size ||
	    m->received != st->st_mtim.tv_sec ||
	    m->received_ns != st->st_mtim.tv_nsec)
		return false;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	/* a file that was a message (renamed into tmp/) is the client's */
	yes = !backing_marked_kept(fd) &&
		backing_node_ino(fd, NULL, st) >> 60 != VK_MSG &&
		same_bytes(fs, fd, m);
	close(fd);
	return yes;
}

/* true: the file was a committed delivery's, and is gone now */
static bool sweep_committed(struct dboxfs *fs, int64_t box, int dirfd,
			    const char *name,
			    const struct stat *st)
{
	struct dbox_msg m;

	if (!is_committed(fs, box, dirfd, name, st, &m) ||
	    unlinkat(dirfd, name, 0) < 0)
		return false;
	fuse_log(FUSE_LOG_INFO, "dboxfs: removed %s of mailbox %lld: "
		 "its delivery had committed (uid %u)\n", name,
		 (long long)box, m.uid);
	return true;
}

bool sweep_ro_leftover(struct dboxfs *fs, int64_t box, int dirfd,
		       const char *name)
{
	struct dbox_msg m;
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		S_ISREG(st.st_mode) && is_committed(fs, box, dirfd, name, &st,
						    &m);
}

/* A file created in cur/ or new/ under its final name is committed when
 * its last handle closes; the release that commits it comes after
 * close(2) returned, so a daemon killed in between leaves it pending.
 * Those whose close had returned carry the closed mark (backing.h):
 * they are committed now, as the release would have.  Any other file
 * under a final name there was being written, or failed its commit: it
 * goes to tmp/, where the client sees it, never as a message. */
static void commit_closed(struct dboxfs *fs, int64_t box,
			  enum backing_area area, int dirfd,
			  const char *name, size_t *queued)
{
	struct commit_job *job;
	struct stat st;
	bool marked;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	marked = fstat(fd, &st) == 0 && backing_marked_complete(fd, &st);
	close(fd);
	if (!marked || commit_job_make(fs, dirfd, name, 0, box,
				       backing_sub_of_area(area), name,
				       true, &job) < 0)
		return;
	job->keep_dir_mtime = true;
	commit_submit(fs, job);
	/* each queued job holds descriptors: commit as they fill a batch */
	if (++*queued % COMMIT_BATCH_MAX == 0)
		commit_queued(fs);
}

/* what sweep_spool's first walk passes its callback */
struct sweep_ctx {
	struct dboxfs *fs;
	size_t queued;
};

static void sweep_one(void *ctx, int64_t box, enum backing_area area,
		      int dirfd, const char *name, const struct stat *st)
{
	struct sweep_ctx *sc = ctx;
	struct dboxfs *fs = sc->fs;

	if (area == AREA_TMP && totmp_sweep(fs, box, dirfd, name))
		return;
	if (sweep_committed(fs, box, dirfd, name, st))
		return;
	if (area == AREA_CUR || area == AREA_NEW)
		commit_closed(fs, box, area, dirfd, name, &sc->queued);
}

/* Whether the second walk moves a file under `name` left in area to
 * tmp/: only what its last close would have committed (rsync's
 * .name.XXXXXX stays where its writer left it). */
static bool moved_unclosed(enum backing_area area, const char *name)
{
	char base[DBOX_NAME_MAX + 1];
	const char *info;

	view_name_split(name, base, sizeof(base), &info);
	return (area == AREA_CUR || area == AREA_NEW) && base[0] != '\0' &&
		base[0] != '.';
}

bool sweep_moves_to_tmp(struct dboxfs *fs, int64_t box,
			enum backing_area area, int dirfd, const char *name)
{
	struct dbox_msg m;
	struct stat st;
	bool marked;
	int fd;

	if (!moved_unclosed(area, name) ||
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode) ||
	    is_committed(fs, box, dirfd, name, &st, &m))
		return false;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	marked = backing_marked_complete(fd, &st);
	close(fd);
	return !marked;
}

static void move_unclosed(void *ctx, int64_t box, enum backing_area area,
			  int dirfd, const char *name, const struct stat *st)
{
	struct dboxfs *fs = ctx;
	int ret;

	(void)st;
	if (!moved_unclosed(area, name))
		return;
	ret = backing_move_to_tmp(fs, box, dirfd, name);
	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: spool: %s of mailbox %lld: "
			 "cannot move to tmp/: %s\n", name, (long long)box,
			 strerror(-ret));
	else
		fuse_log(FUSE_LOG_WARNING, "dboxfs: %s in %s/ of mailbox %lld "
			 "was not closed when the daemon stopped (or failed "
			 "its commit): moved to tmp/\n", name,
			 area == AREA_CUR ? "cur" : "new", (long long)box);
}

void sweep_spool(struct dboxfs *fs)
{
	struct sweep_ctx sc = { fs, 0 };
	int ret = backing_spool_walk(fs, sweep_one, &sc);

	commit_queued(fs);
	if (ret == 0)
		ret = backing_spool_walk(fs, move_unclosed, fs);
	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: spool: %s\n", strerror(-ret));
	if (sc.queued > 0)
		fuse_log(FUSE_LOG_INFO, "dboxfs: spool: %zu files closed in "
			 "cur/ or new/ before the daemon stopped: committed\n",
			 sc.queued);
}

static void keep_linked(void *ctx, int64_t box, enum backing_area area,
			int dirfd, const char *name, const struct stat *st)
{
	int fd;

	(void)ctx; (void)box; (void)st;
	if (area != AREA_TMP)
		return;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	backing_keep_linked(fd);
	close(fd);
}

void sweep_keep_linked(struct dboxfs *fs)
{
	/* a read-only mount made no links, and writes nothing */
	int ret = fs->readonly ? 0 : backing_spool_walk(fs, keep_linked, NULL);

	if (ret < 0 && ret != -EROFS)
		fuse_log(FUSE_LOG_ERR, "dboxfs: spool: %s\n", strerror(-ret));
}

/* The message (BOX, UID) of a pending file's name is its delivery's when
 * it has the file's base name: the store's open dropped every row whose
 * record a power cut took (dbox_open_opts.deferred_sync), so it is
 * intact, while the spool file itself, never synced, may have lost its
 * bytes.  (Another program may have taken a lost commit's uid since, but
 * not for a message of this name.) */
static bool pending_base_is(const char *name, const struct dbox_msg *m)
{
	char base[DBOX_NAME_MAX + 1];
	const char *info;

	view_name_split(name, base, sizeof(base), &info);
	return base[0] != '\0' && strcmp(base, m->base) == 0;
}

/* The messages after a pending file's uid that may be its delivery's
 * (pending_renumbered): of its size, and of its base name or, when
 * another message has its uid (taken), with its mtime (a delivered
 * file's mtime is the message's received time). */
struct renumbered {
	const char *base;
	const struct stat *st;
	bool taken;
	struct dbox_msg *v;
	size_t n, cap;
};

static int renumbered_candidate(void *ctx, const struct dbox_msg *m)
{
	struct renumbered *r = ctx;

	if (m->size != (uint64_t)r->st->st_size ||
	    (strcmp(m->base, r->base) != 0 &&
	     (!r->taken || m->received != r->st->st_mtim.tv_sec ||
	      m->received_ns != r->st->st_mtim.tv_nsec)))
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap == 0 ? 4 : r->cap * 2;
		struct dbox_msg *v = realloc(r->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = *m;
	return 0;
}

/* The delivery's message under a later uid of its mailbox: a followed
 * Dovecot gave its uid to a message of its own (taken) and moved ours
 * to a fresh one, with the file still under the old uid (a kill before
 * flush_renumbered, or the open's resync did it), or a reindex found
 * its record elsewhere (mdbox: a new uid).  Either keeps its name and
 * bytes; the file's name is the delivery's tmp/ one, which the client
 * may have renamed: a candidate of another base must have the file's
 * mtime too, and only where its uid was taken (a lost delivery's twin,
 * delivered with the same bytes and mtime under another name, is
 * another message); any has exactly its bytes (a base alone could be
 * an older message the lost delivery was to replace).  Only files
 * whose own uid does not match come here: the rows after it are few
 * (those delivered since). */
static bool pending_renumbered(struct dboxfs *fs, int fd,
			       const struct stat *st, int64_t box,
			       uint32_t uid, bool taken, const char *name)
{
	char base[DBOX_NAME_MAX + 1];
	const char *info;
	struct renumbered r = { base, st, taken, NULL, 0, 0 };
	bool found = false;

	view_name_split(name, base, sizeof(base), &info);
	if (dbox_msg_list(fs->store, box, uid, -1, 0, renumbered_candidate,
			  &r, NULL) < 0)
		r.n = 0;
	for (size_t i = 0; !found && i < r.n; i++)
		found = same_bytes(fs, fd, &r.v[i]);
	free(r.v);
	return found;
}

bool sweep_pending_done(struct dboxfs *fs, int dirfd, const char *entry,
			int64_t box, uint32_t uid)
{
	struct dbox_msg m;
	struct stat st = { 0 };
	const char *name;
	int64_t named_box;
	uint32_t named_uid;
	bool done, taken;
	int fd;

	if (!dbox_store_kept_name(entry, &named_box, &named_uid, &name))
		return false;
	fd = openat(dirfd, entry, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	taken = fstat(fd, &st) == 0 &&
		dbox_msg_get(fs->store, box, uid, &m, NULL) == 0;
	done = taken && (pending_base_is(name, &m) ||
			 (m.size == (uint64_t)st.st_size &&
			  same_bytes(fs, fd, &m)));
	/* committed, then expunged or moved away by the client: its mark
	 * stays until this file is gone (flush_once), and goes with the
	 * commit at a power cut that took it */
	done = done || dbox_store_unconfirmed_removed(fs->store, box, uid) ||
		(S_ISREG(st.st_mode) &&
		 pending_renumbered(fs, fd, &st, box, uid, taken, name));
	close(fd);
	return done;
}

static void sweep_pending_one(struct dboxfs *fs, int dirfd, const char *entry)
{
	const char *name;
	int64_t box;
	uint32_t uid;
	struct stat st;
	int ret;

	/* only files are ours (flush_spool_done): anything else stays */
	if (!dbox_store_kept_name(entry, &box, &uid, &name) ||
	    fstatat(dirfd, entry, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return;
	if (sweep_pending_done(fs, dirfd, entry, box, uid)) {
		unlinkat(dirfd, entry, 0);
		return;
	}
	ret = backing_move_to_tmp_as(fs, box, dirfd, entry, name);
	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: pending/%s: cannot move to tmp/"
			 ": %s\n", entry, strerror(-ret));
	else
		fuse_log(FUSE_LOG_WARNING, "dboxfs: %s of mailbox %lld: its "
			 "delivery was not durable when the daemon stopped: "
			 "back in tmp/\n", name, (long long)box);
}

void sweep_pending(struct dboxfs *fs, int dirfd)
{
	int fd = dirfd >= 0 ? openat(dirfd, ".", O_RDONLY | O_DIRECTORY |
				     O_CLOEXEC) : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			sweep_pending_one(fs, dirfd, e->d_name);
	}
	/* the files of removed messages are gone for good: their marks
	 * can go (before, a cut would bring such a file back to tmp/) */
	if (fsync(dirfd) == 0)
		flush_forget_removed(fs, 0, 0);
	closedir(d);
}

/* dbox_open_opts.kept_open: the files pending/ holds are listed as
 * pending while the store opens (flush_pending_add) */
static void list_left_pending(void *ctx, const char *ctl_dir)
{
	struct dboxfs *fs = ctx;
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (snprintf(path, sizeof(path), "%s/" FLUSH_PENDING_DIR, ctl_dir) >=
	    (int)sizeof(path) || (d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *name;
		int64_t box;
		uint32_t uid;

		if (dbox_store_kept_name(e->d_name, &box, &uid, &name) &&
		    flush_pending_add(fs, e->d_name, box, uid) < 0)
			break;
	}
	closedir(d);
}

void sweep_open_opts(struct dboxfs *fs, struct dbox_open_opts *oo)
{
	oo->kept = flush_kept;
	oo->kept_open = list_left_pending;
	oo->kept_ctx = fs;
}
