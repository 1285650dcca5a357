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
#include "dboxfs.h"
#include "flush.h"
#include "reply.h"

struct flush_waiter {
	fuse_req_t req;
	struct flush_waiter *next;
};

struct flush_pending {
	struct flush_pending *next;
	int64_t box;                /* its message, as in the name */
	uint32_t uid;
	char name[];
};

static void free_pendings(struct flush_pending *ps)
{
	while (ps != NULL) {
		struct flush_pending *p = ps;

		ps = p->next;
		free(p);
	}
}

static bool listed(const struct flush_pending *ps, int64_t box,
		   uint32_t uid)
{
	for (const struct flush_pending *p = ps; p != NULL; p = p->next) {
		if (p->box == box && p->uid == uid)
			return true;
	}
	return false;
}

bool flush_kept(void *ctx, int64_t box, uint32_t uid)
{
	struct dboxfs *fs = ctx;
	bool kept;

	pthread_mutex_lock(&fs->flush.lock);
	kept = listed(fs->flush.pendings, box, uid) ||
		listed(fs->flush.flushing, box, uid);
	pthread_mutex_unlock(&fs->flush.lock);
	return kept;
}

int flush_init(struct dboxfs *fs, const char *ctl_dir)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/" FLUSH_PENDING_DIR, ctl_dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	fs->flush.pending_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->flush.pending_fd < 0)
		return -errno;
	/* before any thread that removes rows (the committer too) */
	dbox_store_set_kept(fs->store, flush_kept, fs);
	dbox_store_set_renumbered(fs->store, flush_renumbered, fs);
	return 0;
}

int flush_pending_dirfd(struct dboxfs *fs)
{
	return fs->flush.pending_fd;
}

static struct flush_pending *pending_new(const char *entry, int64_t box,
					 uint32_t uid)
{
	struct flush_pending *p = malloc(sizeof(*p) + strlen(entry) + 1);

	if (p == NULL)
		return NULL;
	strcpy(p->name, entry);
	p->box = box;
	p->uid = uid;
	return p;
}

static void list_pending(struct dboxfs *fs, struct flush_pending *p)
{
	pthread_mutex_lock(&fs->flush.lock);
	p->next = fs->flush.pendings;
	fs->flush.pendings = p;
	pthread_mutex_unlock(&fs->flush.lock);
}

void flush_spool_done(struct dboxfs *fs, int dirfd, const char *name,
		      int64_t box, uint32_t uid)
{
	char to[NAME_MAX + 1];
	struct flush_pending *p;

	snprintf(to, sizeof(to), "%lld.%u.%s", (long long)box, uid, name);
	if (fs->sync || fs->flush.pending_fd < 0 ||
	    (p = pending_new(to, box, uid)) == NULL) {
		unlinkat(dirfd, name, 0);
		return;
	}
	if (renameat(dirfd, name, fs->flush.pending_fd, to) < 0) {
		/* with the commit not durable yet, the file is kept where
		 * it is: the start-up sweep knows it by base and bytes */
		fuse_log(FUSE_LOG_WARNING, "dboxfs: %s: kept in the spool "
			 "until the next start: %s\n", name, strerror(errno));
		free(p);
		return;
	}
	list_pending(fs, p);
}

/* The entry of pendings listed for (box, uid): its link, or NULL. */
static struct flush_pending **pending_link(struct dboxfs *fs, int64_t box,
					   uint32_t uid)
{
	for (struct flush_pending **pp = &fs->flush.pendings; *pp != NULL;
	     pp = &(*pp)->next) {
		if ((*pp)->box == box && (*pp)->uid == uid)
			return pp;
	}
	return NULL;
}

void flush_renumbered(void *ctx, int64_t box, uint32_t old_uid,
		      uint32_t new_uid)
{
	struct dboxfs *fs = ctx;
	struct flush_pending **pp, *p = NULL;
	char to[NAME_MAX + 1];
	const char *name;
	int64_t named_box;
	uint32_t named_uid;

	pthread_mutex_lock(&fs->flush.lock);
	pp = pending_link(fs, box, old_uid);
	if (pp != NULL && dbox_store_kept_name((*pp)->name, &named_box,
					       &named_uid, &name) &&
	    snprintf(to, sizeof(to), "%lld.%u.%s", (long long)box, new_uid,
		     name) < (int)sizeof(to))
		p = pending_new(to, box, new_uid);
	/* a failed rename leaves it listed under the old uid: the start-up
	 * sweep still knows it by its name and bytes */
	if (p != NULL && renameat(fs->flush.pending_fd, (*pp)->name,
				  fs->flush.pending_fd, to) == 0) {
		p->next = (*pp)->next;
		free(*pp);
		*pp = p;
		p = NULL;
	}
	pthread_mutex_unlock(&fs->flush.lock);
	free(p);
}

int flush_pending_add(struct dboxfs *fs, const char *entry, int64_t box,
		      uint32_t uid)
{
	struct flush_pending *p = pending_new(entry, box, uid);

	if (p == NULL)
		return -ENOMEM;
	list_pending(fs, p);
	return 0;
}

void flush_pending_clear(struct dboxfs *fs)
{
	pthread_mutex_lock(&fs->flush.lock);
	free_pendings(fs->flush.pendings);
	fs->flush.pendings = NULL;
	pthread_mutex_unlock(&fs->flush.lock);
}

void flush_forget_removed(struct dboxfs *fs, int64_t box, uint32_t uid)
{
	struct dbox_err err = { "" };

	if (dbox_store_unconfirmed_forget(fs->store, box, uid, &err) < 0)
		fuse_log(FUSE_LOG_WARNING, "dboxfs: %s\n", err.msg);
}

void flush_expunged(struct dboxfs *fs)
{
	struct dbox_err err = { "" };

	if (fs->sync && dbox_store_purge_expunged(fs->store, &err) < 0)
		fuse_log(FUSE_LOG_WARNING, "dboxfs: purge after an expunge: "
			 "%s\n", err.msg);
}

void flush_request(struct dboxfs *fs, fuse_req_t req)
{
	struct flush_waiter *w;

	if (fs->sync && !dbox_store_sync_pending(fs->store)) {
		fuse_reply_err(req, 0);
		return;
	}
	w = malloc(sizeof(*w));
	if (w == NULL || !fs->flush.started) {
		/* no thread to wait for: flush here */
		struct dbox_err err = { "" };
		int ret = dbox_store_sync(fs->store, &err);

		free(w);
		fuse_reply_err(req, ret < 0 ? -ret : 0);
		return;
	}
	w->req = req;
	reply_handed_off(req);
	pthread_mutex_lock(&fs->flush.lock);
	w->next = fs->flush.waiters;
	fs->flush.waiters = w;
	pthread_cond_broadcast(&fs->flush.cond);
	pthread_mutex_unlock(&fs->flush.lock);
}

/* The marks of the messages of ps removed since their delivery go once
 * their files are gone for good (sweep_pending_done); nearly always
 * there is none, and no fsync. */
static void forget_removed(struct dboxfs *fs, const struct flush_pending *ps)
{
	bool synced = false;

	for (const struct flush_pending *p = ps; p != NULL; p = p->next) {
		if (!dbox_store_unconfirmed_removed(fs->store, p->box, p->uid))
			continue;
		if (!synced && fsync(fs->flush.pending_fd) < 0)
			return;
		synced = true;
		flush_forget_removed(fs, p->box, p->uid);
	}
}

/* The files of a failed flush are pending still: listed again (under
 * the lock) rather than forgotten, so that the row of such a message
 * removed later still gets its mark (flush_kept), and a later flush
 * removes them; returns NULL (nothing left to free). */
static struct flush_pending *requeue(struct dboxfs *fs,
				     struct flush_pending *ps)
{
	struct flush_pending *last = ps;

	if (ps == NULL)
		return NULL;
	while (last->next != NULL)
		last = last->next;
	last->next = fs->flush.pendings;
	fs->flush.pendings = ps;
	return NULL;
}

/* One flush: what was waiting or pending when it began is covered;
 * marks: the newest unconfirmed mark when ps was taken (take_pendings). */
static void flush_once(struct dboxfs *fs, struct flush_waiter *ws,
		       struct flush_pending *ps, int64_t marks)
{
	struct dbox_err err = { "" };
	int ret = dbox_store_sync_upto(fs->store, marks, &err);

	if (ret < 0)
		fuse_log(FUSE_LOG_ERR, "dboxfs: flush: %s\n", err.msg);
	for (struct flush_pending *p = ps; ret == 0 && p != NULL; p = p->next)
		unlinkat(fs->flush.pending_fd, p->name, 0);
	if (ret == 0)
		forget_removed(fs, ps);
	pthread_mutex_lock(&fs->flush.lock);
	if (fs->flush.flushing == ps)
		fs->flush.flushing = NULL;
	/* a failed flush keeps them for the next (or the start-up sweep) */
	if (ret < 0)
		ps = requeue(fs, ps);
	pthread_mutex_unlock(&fs->flush.lock);
	free_pendings(ps);
	while (ws != NULL) {
		struct flush_waiter *w = ws;

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

void flush_commit_begin(struct dboxfs *fs)
{
	pthread_mutex_lock(&fs->flush.lock);
	while (fs->flush.taking)
		pthread_cond_wait(&fs->flush.cond, &fs->flush.lock);
	fs->flush.committing++;
	pthread_mutex_unlock(&fs->flush.lock);
}

void flush_commit_end(struct dboxfs *fs)
{
	pthread_mutex_lock(&fs->flush.lock);
	if (--fs->flush.committing == 0 && fs->flush.taking)
		pthread_cond_broadcast(&fs->flush.cond);
	pthread_mutex_unlock(&fs->flush.lock);
}

/* The pending files to remove after this flush, and the newest mark it
 * confirms (*marks_r): taken with no commit between a delivery's mark
 * and its file's move to pending/ (flush_commit_begin), so that every
 * mark it confirms has its file among them.  A mark confirmed while
 * its file was not yet listed would be gone when the client expunges
 * the message, and after a kill -9 the file would be taken for a lost
 * delivery's (sweep_pending_done).  Called with the lock held. */
static struct flush_pending *take_pendings(struct dboxfs *fs,
					   int64_t *marks_r)
{
	struct flush_pending *ps;
	struct dbox_err err = { "" };

	fs->flush.taking = true;
	while (fs->flush.committing > 0)
		pthread_cond_wait(&fs->flush.cond, &fs->flush.lock);
	ps = fs->flush.pendings;
	fs->flush.pendings = NULL;
	fs->flush.flushing = ps;
	/* (commits wait for this read, not the lock: it is a leaf) */
	pthread_mutex_unlock(&fs->flush.lock);
	if (dbox_store_unconfirmed_seq(fs->store, marks_r, &err) < 0) {
		fuse_log(FUSE_LOG_WARNING, "dboxfs: %s\n", err.msg);
		*marks_r = 0;    /* confirms none: the next flush does */
	}
	pthread_mutex_lock(&fs->flush.lock);
	fs->flush.taking = false;
	pthread_cond_broadcast(&fs->flush.cond);
	return ps;
}

static void *flusher_main(void *arg)
{
	struct dboxfs *fs = arg;
	struct timespec next = deadline_after(fs->commit_interval);
	bool stop = false;

	while (!stop) {
		struct timespec now, wake = deadline_after(CHECKPOINT_PERIOD);
		struct flush_waiter *ws;
		struct flush_pending *ps = NULL;
		struct dbox_err err = { "" };
		int64_t marks = 0;
		bool due;

		if (reached(&wake, &next))
			wake = next;
		pthread_mutex_lock(&fs->flush.lock);
		while (fs->flush.waiters == NULL && !fs->flush.stop &&
		       pthread_cond_timedwait(&fs->flush.cond, &fs->flush.lock,
					      &wake) == 0)
			;
		clock_gettime(CLOCK_MONOTONIC, &now);
		stop = fs->flush.stop;
		ws = fs->flush.waiters;
		fs->flush.waiters = NULL;
		/* pending spool files wait for a flush someone asked for,
		 * or for the commit interval */
		due = ws != NULL || stop || reached(&now, &next);
		if (due)
			ps = take_pendings(fs, &marks);
		pthread_mutex_unlock(&fs->flush.lock);
		if (due && (ws != NULL || ps != NULL || stop ||
			    dbox_store_sync_pending(fs->store)))
			flush_once(fs, ws, ps, marks);
		if (reached(&now, &next))
			next = deadline_after(fs->commit_interval);
		if (dbox_store_checkpoint(fs->store, &err) < 0)
			fuse_log(FUSE_LOG_WARNING, "dboxfs: %s\n", err.msg);
	}
	return NULL;
}

int flush_start(struct dboxfs *fs)
{
	pthread_condattr_t ca;
	int ret;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&fs->flush.cond);
	pthread_cond_init(&fs->flush.cond, &ca);
	pthread_condattr_destroy(&ca);
	fs->flush.stop = false;
	ret = pthread_create(&fs->flush.thread, NULL, flusher_main, fs);
	fs->flush.started = ret == 0;
	return -ret;
}

void flush_stop(struct dboxfs *fs)
{
	if (fs->flush.started) {
		pthread_mutex_lock(&fs->flush.lock);
		fs->flush.stop = true;
		pthread_cond_broadcast(&fs->flush.cond);
		pthread_mutex_unlock(&fs->flush.lock);
		pthread_join(fs->flush.thread, NULL);
		fs->flush.started = false;
	}
	/* what came after the thread's last flush (or without a thread) */
	if (fs->store != NULL &&
	    (fs->flush.waiters != NULL || fs->flush.pendings != NULL)) {
		struct flush_waiter *ws = fs->flush.waiters;
		struct flush_pending *ps = fs->flush.pendings;

		pthread_mutex_lock(&fs->flush.lock);
		fs->flush.waiters = NULL;
		fs->flush.pendings = NULL;
		fs->flush.flushing = ps;
		pthread_mutex_unlock(&fs->flush.lock);
		flush_once(fs, ws, ps, INT64_MAX);
	}
	/* what a failed last flush listed again: the start-up sweep's */
	flush_pending_clear(fs);
	if (fs->flush.pending_fd >= 0) {
		close(fs->flush.pending_fd);
		fs->flush.pending_fd = -1;
	}
}
