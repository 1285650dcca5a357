/* follow.c - the follower thread (see follow.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dboxfs.h"
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
	for (int i = 0; i < n; i++)
		inval_mailbox(fs, changed[i]);
	if (n > 0) {
		fuse_lowlevel_notify_inval_inode(fs->se, VIEW_ROOT_INO, 0, 0);
		/* more than fit: we do not know which, so all of them */
		kcache_check(changed, n < MAX_CHANGED ? n : -1);
	}
	/* another writer of our own kind of store (dboxctl import), or our
	 * own commits: the folders whose message lists moved */
	now = dbox_store_change_counter(fs->store);
	if (now != *seq && n == 0) {
		n = scan_changed(fs, changed);
		fuse_lowlevel_notify_inval_inode(fs->se, VIEW_ROOT_INO, 0, 0);
		kcache_check(changed, n);
	}
	*seq = now;
	kcache_drop_pending();
}

static void *follow_main(void *arg)
{
	struct dboxfs *fs = arg;
	uint64_t seq = dbox_store_change_counter(fs->store);

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

	if (!f->running)
		return;
	if (write(f->stop_pipe[1], "x", 1) < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: cannot stop follower\n");
	pthread_join(f->thread, NULL);
	free(f->seen);
	f->seen = NULL;
	f->seen_count = f->seen_cap = 0;
	close(f->stop_pipe[0]);
	close(f->stop_pipe[1]);
	f->running = false;
}
