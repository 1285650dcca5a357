/* dfs-pool.c - the worker pool that runs requests.
 *
 * Two queues: data requests (reads, writes, syncs) and everything else
 * (open, stat, unlink, rename, locks, close...).  Workers take metadata
 * first, and the pool may grow a few workers beyond max_workers for
 * metadata alone: a stat must not wait behind 64 slow reads that hold
 * every regular worker (the "reserve").  Workers are started when work is
 * queued and none is idle, and exit after idle_ms without work while more
 * than min_workers remain.  All state is under fs->lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/dfs-private.h"

#define META_RESERVE 4

static _Thread_local bool on_worker;

bool dfs_on_worker(void)
{
	return on_worker;
}

static bool is_data(const struct dfs_req *req)
{
	switch (req->op) {
	case DFS_OP_PREAD:
	case DFS_OP_PWRITE:
	case DFS_OP_APPEND:
	case DFS_OP_FSYNC:
	case DFS_OP_COMMIT:
	case DFS_OP_TRUNCATE:
		return true;
	default:
		return false;
	}
}

static struct dfs_req *dequeue(struct dfs *fs, bool meta_only)
{
	struct dfs_req *req = fs->meta_head;

	if (req != NULL) {
		fs->meta_head = req->qnext;
		if (fs->meta_head == NULL)
			fs->meta_tail = NULL;
	} else if (!meta_only && (req = fs->data_head) != NULL) {
		fs->data_head = req->qnext;
		if (fs->data_head == NULL)
			fs->data_tail = NULL;
	}
	if (req != NULL) {
		req->qnext = NULL;
		fs->queued--;
		pthread_cond_signal(&fs->room);
	}
	return req;
}

static void *worker_main(void *arg)
{
	struct dfs_worker *self = arg;
	struct dfs *fs = self->fs;
	struct timespec until;

	on_worker = true;
	pthread_mutex_lock(&fs->lock);
	for (;;) {
		/* workers beyond max serve metadata only */
		bool reserve = fs->workers > fs->set.max_workers;
		struct dfs_req *req = dequeue(fs, reserve);

		if (req != NULL) {
			req->state = REQ_RUNNING;
			pthread_mutex_unlock(&fs->lock);
			if (!req->cancelled)
				dfs_req_execute(fs, req);
			dfs_req_complete(fs, req);
			pthread_mutex_lock(&fs->lock);
			continue;
		}
		if (fs->stopping || reserve)
			break;
		fs->idle_workers++;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += fs->set.idle_ms / 1000;
		until.tv_nsec += (long)(fs->set.idle_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		int rc = pthread_cond_timedwait(&fs->work, &fs->lock, &until);

		fs->idle_workers--;
		if (rc == ETIMEDOUT && fs->queued == 0 &&
		    fs->workers > fs->set.min_workers)
			break;
	}
	fs->workers--;
	fs->exited++;
	fs->stats.workers = fs->workers;
	self->done = true;
	pthread_cond_broadcast(&fs->idle);
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

/* Joins workers that left their loop (fs->lock held; they no longer need
 * it, so the joins are short). */
static void reap(struct dfs *fs)
{
	struct dfs_worker **pp = &fs->worker_list, *w;

	while ((w = *pp) != NULL) {
		if (!w->done) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		pthread_join(w->thread, NULL);
		free(w);
	}
}

/* fs->lock held */
static void spawn(struct dfs *fs)
{
	struct dfs_worker *w;

	reap(fs);
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return;
	w->fs = fs;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		free(w);
		return;
	}
	w->next = fs->worker_list;
	fs->worker_list = w;
	fs->workers++;
	fs->stats.workers = fs->workers;
	if (fs->workers > fs->stats.workers_peak)
		fs->stats.workers_peak = fs->workers;
}

void dfs_pool_enqueue(struct dfs *fs, struct dfs_req *req)
{
	bool data = is_data(req);

	req->state = REQ_QUEUED;
	req->qnext = NULL;
	if (data) {
		if (fs->data_tail != NULL)
			fs->data_tail->qnext = req;
		else
			fs->data_head = req;
		fs->data_tail = req;
	} else {
		if (fs->meta_tail != NULL)
			fs->meta_tail->qnext = req;
		else
			fs->meta_head = req;
		fs->meta_tail = req;
	}
	fs->queued++;
	if (fs->queued > fs->stats.queued_peak)
		fs->stats.queued_peak = fs->queued;
	fs->stats.queued = fs->queued;
	if (fs->idle_workers > 0)
		pthread_cond_signal(&fs->work);
	/* a woken worker stays counted as idle until it runs, so compare
	 * the backlog with the idle ones, not just "is anyone idle" */
	if (fs->queued > fs->idle_workers &&
	    (fs->workers < fs->set.max_workers ||
	     (!data && fs->workers < fs->set.max_workers + META_RESERVE)))
		spawn(fs);
}

int dfs_pool_start(struct dfs *fs)
{
	pthread_mutex_lock(&fs->lock);
	for (unsigned int i = 0; i < fs->set.min_workers; i++)
		spawn(fs);
	pthread_mutex_unlock(&fs->lock);
	return fs->workers > 0 || fs->set.min_workers == 0 ? 0 : -EAGAIN;
}

/* Every queued request was completed by the caller; workers are told to
 * go and joined. */
void dfs_pool_stop(struct dfs *fs)
{
	pthread_mutex_lock(&fs->lock);
	fs->stopping = true;
	pthread_cond_broadcast(&fs->work);
	while (fs->workers > 0)
		pthread_cond_wait(&fs->idle, &fs->lock);
	reap(fs);
	pthread_mutex_unlock(&fs->lock);
}
