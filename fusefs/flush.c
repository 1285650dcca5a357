/* flush.c - the flusher thread (see flush.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dbox/store.h"
#include "flush.h"

#define PENDING_DIR "pending"

struct waiter {
	fuse_req_t req;
	struct waiter *next;
};

struct pending {
	struct pending *next;
	char name[];
};

static pthread_mutex_t f_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t f_cond = PTHREAD_COND_INITIALIZER;
static struct waiter *waiters;
static struct pending *pendings;
static bool f_stop, started;
static pthread_t flusher;
static int pending_fd = -1;

int flush_init(const char *ctl_dir)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/" PENDING_DIR, ctl_dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	pending_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return pending_fd < 0 ? -errno : 0;
}

int flush_pending_dirfd(void)
{
	return pending_fd;
}

void flush_spool_done(int dirfd, const char *name, int64_t box,
		      uint32_t uid)
{
	char to[NAME_MAX + 1];
	struct pending *p;

	snprintf(to, sizeof(to), "%lld.%u.%s", (long long)box, uid, name);
	if (dboxfs.sync || pending_fd < 0 ||
	    (p = malloc(sizeof(*p) + strlen(to) + 1)) == NULL) {
		unlinkat(dirfd, name, 0);
		return;
	}
	if (renameat(dirfd, name, pending_fd, to) < 0) {
		/* with the commit not durable yet, the file is kept where
		 * it is: the start-up sweep knows it by base and bytes */
		fuse_log(FUSE_LOG_WARNING, "dboxfs: %s: kept in the spool "
			 "until the next start: %s\n", name, strerror(errno));
		free(p);
		return;
	}
	strcpy(p->name, to);
	pthread_mutex_lock(&f_lock);
	p->next = pendings;
	pendings = p;
	pthread_mutex_unlock(&f_lock);
}

void flush_request(fuse_req_t req)
{
	struct waiter *w;

	if (dboxfs.sync && !dbox_store_sync_pending(dboxfs.store)) {
		fuse_reply_err(req, 0);
		return;
	}
	w = malloc(sizeof(*w));
	if (w == NULL || !started) {
		/* no thread to wait for: flush here */
		struct dbox_err err = { "" };
		int ret = dbox_store_sync(dboxfs.store, &err);

		free(w);
		fuse_reply_err(req, ret < 0 ? -ret : 0);
		return;
	}
	w->req = req;
	pthread_mutex_lock(&f_lock);
	w->next = waiters;
	waiters = w;
	pthread_cond_broadcast(&f_cond);
	pthread_mutex_unlock(&f_lock);
}

/* One flush: what was waiting or pending when it began is covered. */
static void flush_once(struct waiter *ws, struct pending *ps)
{
	struct dbox_err err = { "" };
	int ret = dbox_store_sync(dboxfs.store, &err);

	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: flush: %s\n", err.msg);
	while (ps != NULL) {
		struct pending *p = ps;

		ps = p->next;
		/* a failed flush keeps them for the start-up sweep */
		if (ret == 0)
			unlinkat(pending_fd, p->name, 0);
		free(p);
	}
	while (ws != NULL) {
		struct waiter *w = ws;

		ws = w->next;
		fuse_reply_err(w->req, ret < 0 ? -ret : 0);
		free(w);
	}
}

static struct timespec deadline_after(double secs)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += (time_t)secs;
	t.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static bool reached(const struct timespec *now, const struct timespec *t)
{
	return now->tv_sec > t->tv_sec ||
		(now->tv_sec == t->tv_sec && now->tv_nsec >= t->tv_nsec);
}

/* The index's log is copied into its file here, not inside the commit
 * of a request (dbox_store_checkpoint): looked at this often. */
#define CHECKPOINT_PERIOD 0.1

static void *flusher_main(void *arg)
{
	struct timespec next = deadline_after(dboxfs.commit_interval);
	bool stop = false;

	(void)arg;
	while (!stop) {
		struct timespec now, wake = deadline_after(CHECKPOINT_PERIOD);
		struct waiter *ws;
		struct pending *ps = NULL;
		struct dbox_err err = { "" };
		bool due;

		if (reached(&wake, &next))
			wake = next;
		pthread_mutex_lock(&f_lock);
		while (waiters == NULL && !f_stop &&
		       pthread_cond_timedwait(&f_cond, &f_lock, &wake) == 0)
			;
		clock_gettime(CLOCK_MONOTONIC, &now);
		stop = f_stop;
		ws = waiters;
		waiters = NULL;
		/* pending spool files wait for a flush someone asked for,
		 * or for the commit interval */
		due = ws != NULL || stop || reached(&now, &next);
		if (due) {
			ps = pendings;
			pendings = NULL;
		}
		pthread_mutex_unlock(&f_lock);
		if (due && (ws != NULL || ps != NULL || stop ||
			    dbox_store_sync_pending(dboxfs.store)))
			flush_once(ws, ps);
		if (reached(&now, &next))
			next = deadline_after(dboxfs.commit_interval);
		if (dbox_store_checkpoint(dboxfs.store, &err) < 0)
			fuse_log(FUSE_LOG_WARNING, "dboxfs: %s\n", err.msg);
	}
	return NULL;
}

int flush_start(void)
{
	pthread_condattr_t ca;
	int ret;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&f_cond);
	pthread_cond_init(&f_cond, &ca);
	pthread_condattr_destroy(&ca);
	f_stop = false;
	ret = pthread_create(&flusher, NULL, flusher_main, NULL);
	started = ret == 0;
	return -ret;
}

void flush_stop(void)
{
	if (started) {
		pthread_mutex_lock(&f_lock);
		f_stop = true;
		pthread_cond_broadcast(&f_cond);
		pthread_mutex_unlock(&f_lock);
		pthread_join(flusher, NULL);
		started = false;
	}
	/* what came after the thread's last flush (or without a thread) */
	if (dboxfs.store != NULL && (waiters != NULL || pendings != NULL))
		flush_once(waiters, pendings);
	waiters = NULL;
	pendings = NULL;
	if (pending_fd >= 0) {
		close(pending_fd);
		pending_fd = -1;
	}
}
