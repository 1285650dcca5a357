/* follow.c - the follower thread (see follow.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dboxfs.h"
#include "dirtime.h"
#include "folders.h"
#include "follow.h"
#include "kcache.h"
#include "view.h"

/* the periodic check: well inside the second the contract allows */
#define FOLLOW_PERIOD_MS 250
#define MAX_CHANGED 256

/* Attributes (mtime, nlink) and cached listings of a folder go. */
static void inval_mailbox(struct dboxfs *fs, int64_t box)
{
	fuse_lowlevel_notify_inval_inode(fs->se, view_ino_sub(box, SUB_CUR),
					 0, 0);
	fuse_lowlevel_notify_inval_inode(fs->se, view_ino_sub(box, SUB_NEW),
					 0, 0);
	fuse_lowlevel_notify_inval_inode(fs->se, view_ino_kwfile(box), 0, 0);
	fuse_lowlevel_notify_inval_inode(fs->se, box == fs->inbox_id &&
					 fs->layout == VIEW_MAILDIRPP ?
					 VIEW_ROOT_INO : view_ino_folder(box),
					 0, 0);
}

/* What the last check saw of each mailbox: the folders whose message
 * lists changed since are the ones to invalidate (the follower thread's
 * own, so unlocked). */
struct box_seen {
	int64_t id;
	int64_t new_ns, cur_ns;
	bool seen;
};

struct scan {
	struct dboxfs *fs;
	int64_t *changed;
	int n;                    /* < 0: more than fit */
	size_t hint;              /* mailboxes come in the same order */
};

static void scan_add(struct scan *sc, int64_t box)
{
	inval_mailbox(sc->fs, box);
	if (sc->n >= 0 && sc->n < MAX_CHANGED)
		sc->changed[sc->n++] = box;
	else
		sc->n = -1;
}

static struct box_seen *seen_find(struct scan *sc, int64_t id)
{
	struct follower *f = &sc->fs->follower;

	for (size_t k = 0; k < f->seen_count; k++) {
		size_t i = (sc->hint + k) % f->seen_count;

		if (f->seen[i].id == id) {
			sc->hint = i + 1;
			return &f->seen[i];
		}
	}
	if (f->seen_count == f->seen_cap) {
		size_t cap = f->seen_cap == 0 ? 64 : f->seen_cap * 2;
		struct box_seen *grown = realloc(f->seen, cap * sizeof(*grown));

		if (grown == NULL)
			return NULL;
		f->seen = grown;
		f->seen_cap = cap;
	}
	f->seen[f->seen_count] = (struct box_seen){ .id = id, .new_ns = -1 };
	return &f->seen[f->seen_count++];
}

static int scan_cb(void *ctx, const struct dbox_mailbox *box)
{
	struct scan *sc = ctx;
	struct box_seen *b = seen_find(sc, box->id);

	if (b == NULL || b->new_ns != box->change_new_ns ||
	    b->cur_ns != box->change_cur_ns)
		scan_add(sc, box->id);
	if (b != NULL) {
		b->new_ns = box->change_new_ns;
		b->cur_ns = box->change_cur_ns;
		b->seen = true;
	}
	return 0;
}

/* The folders whose message lists changed (or that went) since the last
 * scan, invalidated; their ids in changed[], the count returned (< 0:
 * more than MAX_CHANGED). */
static int scan_changed(struct dboxfs *fs, int64_t *changed)
{
	struct scan sc = { .fs = fs, .changed = changed };
	struct follower *f = &fs->follower;
	size_t kept = 0;

	for (size_t i = 0; i < f->seen_count; i++)
		f->seen[i].seen = false;
	dbox_mailbox_list(fs->store, scan_cb, &sc, NULL);
	for (size_t i = 0; i < f->seen_count; i++) {
		if (!f->seen[i].seen)
			scan_add(&sc, f->seen[i].id);
		else
			f->seen[kept++] = f->seen[i];
	}
	f->seen_count = kept;
	return sc.n;
}

/* ------------------------------------------ folders made by others
 *
 * The directories of the folder tree (fs layout: mailboxes and their
 * parents; maildir++: the dot-folders) as the last check saw them,
 * sorted.  An entry that came or went since is a change of its parent
 * directory, whose mtime moves as on a local filesystem (unless the view
 * made the change itself: dirtime.h).  A parent that came or went with
 * it (a subtree renamed, a new A of A/B) is no change of its own. */
struct follow_dir {
	char *name;
	/* its inode number: which directory it is (a folder's mailbox; a
	 * parent's stored identity, which a rename onto it replaces) */
	uint64_t ino;
};

static void set_free(struct follow_dir_set *ds)
{
	for (size_t i = 0; i < ds->count; i++)
		free(ds->e[i].name);
	free(ds->e);
	ds->e = NULL;
	ds->count = ds->cap = 0;
}

static void set_add(struct follow_dir_set *ds, const char *name, size_t n,
		    uint64_t ino)
{
	if (ds->count == ds->cap) {
		size_t cap = ds->cap == 0 ? 64 : ds->cap * 2;
		struct follow_dir *grown = realloc(ds->e, cap * sizeof(*grown));

		if (grown == NULL)
			return;
		ds->e = grown;
		ds->cap = cap;
	}
	ds->e[ds->count].name = strndup(name, n);
	ds->e[ds->count].ino = ino;
	if (ds->e[ds->count].name != NULL)
		ds->count++;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct follow_dir *)a)->name,
		      ((const struct follow_dir *)b)->name);
}

/* by name; a mailbox before a parent of the same name */
static int cmp_entry(const void *a, const void *b)
{
	const struct follow_dir *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : (y->ino != 0) - (x->ino != 0);
}

static const struct follow_dir *set_find(const struct follow_dir_set *ds,
					const char *name)
{
	struct follow_dir key = { (char *)name, 0 };

	return ds->count == 0 ? NULL : bsearch(&key, ds->e, ds->count,
					       sizeof(*ds->e), cmp_name);
}

static void set_load(struct dboxfs *fs, const struct folder_list *fl,
		     struct follow_dir_set *ds)
{
	size_t kept = 0;

	for (size_t i = 0; i < fl->count; i++) {
		const char *name = fl->boxes[i].name, *p = name;

		if (fs->layout == VIEW_MAILDIRPP) {
			if (fl->boxes[i].id != fs->inbox_id)
				set_add(ds, name, strlen(name),
					view_ino_folder(fl->boxes[i].id));
			continue;
		}
		while ((p = strchr(p, '/')) != NULL)
			set_add(ds, name, (size_t)(p++ - name), 0);
		set_add(ds, name, strlen(name),
			view_ino_folder(fl->boxes[i].id));
	}
	/* and the stored parents, which stay without mailboxes below */
	for (size_t i = 0; i < fl->vdir_count; i++) {
		const char *name = fl->vdirs[i].name, *p = name;

		while ((p = strchr(p, '/')) != NULL)
			set_add(ds, name, (size_t)(p++ - name), 0);
		set_add(ds, name, strlen(name), 0);
	}
	if (ds->count > 1)
		qsort(ds->e, ds->count, sizeof(*ds->e), cmp_entry);
	for (size_t i = 0; i < ds->count; i++) {
		if (kept > 0 && strcmp(ds->e[kept - 1].name, ds->e[i].name) == 0)
			free(ds->e[i].name);
		else
			ds->e[kept++] = ds->e[i];
	}
	ds->count = kept;
	for (size_t i = 0; i < ds->count; i++) {
		if (ds->e[i].ino == 0)
			ds->e[i].ino = folders_dir_ino(fl, ds->e[i].name);
	}
}

static void parent_changed(struct dboxfs *fs, const struct folder_list *fl,
			   const struct follow_dir_set *before,
			   const struct follow_dir_set *after, const char *name,
			   unsigned int what)
{
	const char *slash = fs->layout == VIEW_FS ? strrchr(name, '/') :
		NULL;
	char parent[DBOX_NAME_MAX * 4 + 1];
	const struct follow_dir *a, *b;
	uint64_t ino;

	snprintf(parent, sizeof(parent), "%.*s",
		 slash == NULL ? 0 : (int)(slash - name), name);
	/* the same directory before and after: not one a rename of the
	 * view replaced, nor one that came or went with this entry */
	a = set_find(before, parent);
	b = set_find(after, parent);
	if (parent[0] != '\0' && (a == NULL || b == NULL || a->ino != b->ino))
		return;
	if (dirtime_changed_by_us(fs, name, what))
		return;
	dirtime_changed_by_other(fs, parent);
	ino = folders_dir_ino(fl, parent);
	if (ino != 0)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
}

/* Returns how many entries went (or came). */
static size_t diff_one_way(struct dboxfs *fs, const struct folder_list *fl,
			   const struct follow_dir_set *a,
			   const struct follow_dir_set *b,
			   const struct follow_dir_set *before,
			   const struct follow_dir_set *after,
			   unsigned int what)
{
	size_t n = 0;

	for (size_t i = 0; i < a->count; i++) {
		const struct follow_dir *other = set_find(b, a->e[i].name);

		/* gone, new, or another mailbox under that name */
		if (other == NULL || other->ino != a->e[i].ino) {
			parent_changed(fs, fl, before, after, a->e[i].name,
				       what);
			n++;
		}
	}
	return n;
}

/* ----------------------------- the folder tree across mounts (rw)
 *
 * A read-write mount keeps the set it last saw in files/folders.seen-
 * LAYOUT, so that the next one finds the folders another program
 * (Dovecot, doveadm, dboxctl) made, removed or renamed while nothing was
 * mounted: they move their parents' times at that mount, as they moved
 * them on disk.  When the store does not keep (a removal, a rename), so
 * the time is the mount's: a client that polls mtimes sees a change.
 * Records "INO NAME\0"; losing the file loses only those time moves. */
static void seen_path(struct dboxfs *fs, char *buf, size_t len)
{
	snprintf(buf, len, "%s/folders.seen-%s",
		 dbox_store_files_dir(fs->store),
		 fs->layout == VIEW_FS ? "fs" : "pp");
}

static void set_save(struct dboxfs *fs, const struct follow_dir_set *ds)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	bool ok;
	FILE *f;

	seen_path(fs, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "we");
	if (f == NULL)
		return;
	for (size_t i = 0; i < ds->count; i++)
		fprintf(f, "%llx %s%c", (unsigned long long)ds->e[i].ino,
			ds->e[i].name, '\0');
	ok = !ferror(f);
	if (fclose(f) != 0 || !ok || rename(tmp, path) < 0)
		unlink(tmp);
}

/* The set the last read-write mount saw: 0, or -errno (none). */
static int set_restore(struct dboxfs *fs, struct follow_dir_set *ds)
{
	char path[PATH_MAX], *rec = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	seen_path(fs, path, sizeof(path));
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	while ((n = getdelim(&rec, &cap, '\0', f)) > 0) {
		unsigned long long ino;
		int at = 0;

		/* a record cut short (a crash while writing) ends it */
		if (rec[n - 1] != '\0' ||
		    sscanf(rec, "%llx %n", &ino, &at) != 1 || at == 0)
			break;
		set_add(ds, rec + at, strlen(rec + at), ino);
	}
	free(rec);
	fclose(f);
	if (ds->count > 1)
		qsort(ds->e, ds->count, sizeof(*ds->e), cmp_name);
	return 0;
}

static void check_folders(struct dboxfs *fs)
{
	struct folder_list fl;
	struct follow_dir_set now = { NULL, 0, 0 };
	uint64_t check = dirtime_check_begin(fs);

	bool first = !fs->follower.dirs_loaded;
	size_t changes = 0;

	if (folders_load(fs, &fl) < 0)
		return;
	set_load(fs, &fl, &now);
	/* the first check of a read-write mount: against the last mount */
	if (first && !fs->readonly)
		fs->follower.dirs_loaded =
			set_restore(fs, &fs->follower.dirs) == 0;
	if (fs->follower.dirs_loaded) {
		struct follow_dir_set *dirs = &fs->follower.dirs;

		changes = diff_one_way(fs, &fl, dirs, &now, dirs, &now,
				       DIRTIME_WENT);
		changes += diff_one_way(fs, &fl, &now, dirs, dirs, &now,
					DIRTIME_CAME);
	}
	dirtime_check_end(fs, check);
	if (!fs->readonly && (first || changes > 0))
		set_save(fs, &now);
	folders_free(&fl);
	set_free(&fs->follower.dirs);
	fs->follower.dirs = now;
	fs->follower.dirs_loaded = true;
}

static void check_once(struct dboxfs *fs, uint64_t *seq)
{
	int64_t changed[MAX_CHANGED];
	struct dbox_err err = { "" };
	uint64_t now;
	int n = dbox_store_follow(fs->store, changed, MAX_CHANGED, &err);

	if (n < 0) {
		fuse_log(FUSE_LOG_ERR, "dboxfs: following the store: %s\n",
			 err.msg);
		return;
	}
	dbox_dovecot_adopt_pending(fs->store, &err);   /* logs its own */
	for (int i = 0; i < n; i++)
		inval_mailbox(fs, changed[i]);
	if (n > 0) {
		fuse_lowlevel_notify_inval_inode(fs->se, VIEW_ROOT_INO, 0, 0);
		/* more than fit: we do not know which, so all of them */
		kcache_check(fs, changed, n < MAX_CHANGED ? n : -1);
	}
	/* another writer of our own kind of store (dboxctl import), or our
	 * own commits: the folders whose message lists moved */
	now = dbox_store_change_counter(fs->store);
	if (now != *seq && n == 0) {
		n = scan_changed(fs, changed);
		fuse_lowlevel_notify_inval_inode(fs->se, VIEW_ROOT_INO, 0, 0);
		kcache_check(fs, changed, n);
	}
	/* any change, a renamed folder too */
	if (n != 0 || now != *seq)
		check_folders(fs);
	*seq = now;
	kcache_drop_pending(fs);
}

/* Changes owed to Dovecot handed back (the store paces its tries). */
static void follow_owed(struct dboxfs *fs)
{
	struct dbox_err err = { "" };

	if (dbox_dovecot_back_owed(fs->store, &err) < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: handing changes back to "
			 "Dovecot: %s\n", err.msg);
}

static void *follow_main(void *arg)
{
	struct dboxfs *fs = arg;
	uint64_t seq = dbox_store_change_counter(fs->store);

	check_folders(fs);
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = fs->follower.stop_pipe[0],
			  .events = POLLIN },
			{ .fd = dbox_store_watch_fd(fs->store),
			  .events = POLLIN },
		};
		int r = poll(p, p[1].fd >= 0 ? 2 : 1, FOLLOW_PERIOD_MS);

		if (r < 0 && errno != EINTR)
			break;
		if (p[0].revents != 0)
			break;
		check_once(fs, &seq);
		follow_owed(fs);
	}
	return NULL;
}

int follow_start(struct dboxfs *fs)
{
	struct follower *f = &fs->follower;

	if (pipe2(f->stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	if (pthread_create(&f->thread, NULL, follow_main, fs) != 0) {
		close(f->stop_pipe[0]);
		close(f->stop_pipe[1]);
		return -EAGAIN;
	}
	f->running = true;
	return 0;
}

void follow_stop(struct dboxfs *fs)
{
	struct follower *f = &fs->follower;

	if (!f->running) {
		dirtime_free_all(fs);
		return;
	}
	if (write(f->stop_pipe[1], "x", 1) < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: cannot stop follower\n");
	pthread_join(f->thread, NULL);
	/* the last changes, the view's own too, for the next mount */
	if (!fs->readonly)
		check_folders(fs);
	free(f->seen);
	f->seen = NULL;
	f->seen_count = f->seen_cap = 0;
	set_free(&fs->follower.dirs);
	fs->follower.dirs_loaded = false;
	dirtime_free_all(fs);
	close(f->stop_pipe[0]);
	close(f->stop_pipe[1]);
	f->running = false;
}
