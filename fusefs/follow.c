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

static pthread_t thread;
static int stop_pipe[2] = { -1, -1 };
static bool running;

/* Attributes (mtime, nlink) and cached listings of a folder go. */
static void inval_mailbox(int64_t box)
{
	fuse_lowlevel_notify_inval_inode(dboxfs.se, view_ino_sub(box, SUB_CUR),
					 0, 0);
	fuse_lowlevel_notify_inval_inode(dboxfs.se, view_ino_sub(box, SUB_NEW),
					 0, 0);
	fuse_lowlevel_notify_inval_inode(dboxfs.se, view_ino_kwfile(box), 0, 0);
	fuse_lowlevel_notify_inval_inode(dboxfs.se, box == dboxfs.inbox_id &&
					 dboxfs.layout == VIEW_MAILDIRPP ?
					 VIEW_ROOT_INO : view_ino_folder(box),
					 0, 0);
}

static int inval_cb(void *ctx, const struct dbox_mailbox *box)
{
	(void)ctx;
	inval_mailbox(box->id);
	return 0;
}

static void check_once(uint64_t *seq)
{
	int64_t changed[MAX_CHANGED];
	struct dbox_err err = { "" };
	uint64_t now;
	int n = dbox_store_follow(dboxfs.store, changed, MAX_CHANGED, &err);

	if (n < 0) {
		fuse_log(FUSE_LOG_ERR, "dboxfs: following the store: %s\n",
			 err.msg);
		return;
	}
	for (int i = 0; i < n; i++)
		inval_mailbox(changed[i]);
	if (n > 0) {
		fuse_lowlevel_notify_inval_inode(dboxfs.se, VIEW_ROOT_INO, 0, 0);
		/* more than fit: we do not know which, so all of them */
		kcache_check(changed, n < MAX_CHANGED ? n : -1);
	}
	/* another writer of our own kind of store (dboxctl import): we do
	 * not know which folders, so all of them */
	now = dbox_store_change_counter(dboxfs.store);
	if (now != *seq && n == 0) {
		dbox_mailbox_list(dboxfs.store, inval_cb, NULL, NULL);
		fuse_lowlevel_notify_inval_inode(dboxfs.se, VIEW_ROOT_INO, 0, 0);
		kcache_check(NULL, -1);
	}
	*seq = now;
}

static void *follow_main(void *arg)
{
	uint64_t seq = dbox_store_change_counter(dboxfs.store);

	(void)arg;
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = stop_pipe[0], .events = POLLIN },
			{ .fd = dbox_store_watch_fd(dboxfs.store),
			  .events = POLLIN },
		};
		int r = poll(p, p[1].fd >= 0 ? 2 : 1, FOLLOW_PERIOD_MS);

		if (r < 0 && errno != EINTR)
			break;
		if (p[0].revents != 0)
			break;
		check_once(&seq);
	}
	return NULL;
}

int follow_start(void)
{
	if (pipe2(stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	if (pthread_create(&thread, NULL, follow_main, NULL) != 0) {
		close(stop_pipe[0]);
		close(stop_pipe[1]);
		return -EAGAIN;
	}
	running = true;
	return 0;
}

void follow_stop(void)
{
	if (!running)
		return;
	if (write(stop_pipe[1], "x", 1) < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: cannot stop follower\n");
	pthread_join(thread, NULL);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	running = false;
}
