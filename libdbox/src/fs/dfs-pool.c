/* dfs-pool.c - the worker pool (see dfs-pool.h for growth, shrink and the
 * reserve of workers for non-bulk jobs). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/dfs-pool.h"

/* Of two non-empty queues, SHORT wins except every BULK_TURN-th pick. */
#define BULK_TURN 4

struct dfs_worker {
	pthread_t thread;
	struct dfs_pool *pool;
	pthread_cond_t wake;          /* signalled when taken off the stack */
	bool reserve;                 /* serves URGENT and SHORT only */
	bool idle, woken, exited;
	struct dfs_worker *idle_prev, *idle_next;
	struct dfs_worker *next;      /* pool->all */
};

static _Thread_local struct dfs_worker *self;

bool dfs_pool_on_worker(void)
{
	return self != NULL;
}

/* ------------------------------------------------------------- queues */

static void q_append(struct dfs_pool *p, struct dfs_pool_job *job,
		     enum dfs_pool_queue queue)
{
	job->queue = queue;
	job->queued = true;
	job->next = NULL;
	job->prev = p->q[queue].tail;
	if (job->prev != NULL)
		job->prev->next = job;
	else
		p->q[queue].head = job;
	p->q[queue].tail = job;
	p->q[queue].count++;
}

static void q_unlink(struct dfs_pool *p, struct dfs_pool_job *job)
{
	enum dfs_pool_queue queue = job->queue;

	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		p->q[queue].head = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	else
		p->q[queue].tail = job->prev;
	job->prev = job->next = NULL;
	job->queued = false;
	p->q[queue].count--;
}

static struct dfs_pool_job *q_pop(struct dfs_pool *p, enum dfs_pool_queue q)
{
	struct dfs_pool_job *job = p->q[q].head;

	q_unlink(p, job);
	return job;
}

static struct dfs_pool_job *take(struct dfs_pool *p, bool reserve)
{
	bool s = p->q[DFS_POOL_SHORT].count > 0;
	bool b = !reserve && p->q[DFS_POOL_BULK].count > 0;

	if (p->q[DFS_POOL_URGENT].count > 0)
		return q_pop(p, DFS_POOL_URGENT);
	if (s && b)
		return q_pop(p, ++p->turn % BULK_TURN == 0 ? DFS_POOL_BULK :
			     DFS_POOL_SHORT);
	if (s)
		return q_pop(p, DFS_POOL_SHORT);
	return b ? q_pop(p, DFS_POOL_BULK) : NULL;
}

static bool has_jobs(const struct dfs_pool *p)
{
	for (int q = 0; q < DFS_POOL__QUEUES; q++) {
		if (p->q[q].count > 0)
			return true;
	}
	return false;
}

/* --------------------------------------------------------- idle stacks */

static void idle_push(struct dfs_pool *p, struct dfs_worker *w)
{
	struct dfs_worker **top = &p->idle[w->reserve];

	w->idle_prev = NULL;
	w->idle_next = *top;
	if (*top != NULL)
		(*top)->idle_prev = w;
	*top = w;
	w->idle = true;
}

static void idle_remove(struct dfs_pool *p, struct dfs_worker *w)
{
	if (w->idle_prev != NULL)
		w->idle_prev->idle_next = w->idle_next;
	else
		p->idle[w->reserve] = w->idle_next;
	if (w->idle_next != NULL)
		w->idle_next->idle_prev = w->idle_prev;
	w->idle = false;
}

/* Wakes the most recently idle worker of a kind: the LIFO order is what
 * lets the others time out. */
static bool wake_idle(struct dfs_pool *p, bool reserve)
{
	struct dfs_worker *w = p->idle[reserve];

	if (w == NULL)
		return false;
	idle_remove(p, w);
	w->woken = true;
	pthread_cond_signal(&w->wake);
	return true;
}

/* ------------------------------------------------------------- workers */

/* Joins the workers that left their loop; they no longer touch the lock,
 * so the joins are short. */
static void reap(struct dfs_pool *p)
{
	struct dfs_worker **pp = &p->all, *w;

	while ((w = *pp) != NULL) {
		if (!w->exited) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		pthread_join(w->thread, NULL);
		pthread_cond_destroy(&w->wake);
		free(w);
	}
}

static bool deadline(struct timespec *ts, unsigned int ms)
{
	if (clock_gettime(CLOCK_MONOTONIC, ts) < 0)
		return false;
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
	return true;
}

/* Waits on the idle stack for work; false when the worker should exit. */
static bool idle_wait(struct dfs_pool *p, struct dfs_worker *w)
{
	struct timespec until;
	int rc = 0;

	if (!deadline(&until, p->set.idle_ms))
		return true;
	idle_push(p, w);
	w->woken = false;
	while (!w->woken && !p->stopping && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&w->wake, p->lock, &until);
	if (w->idle)
		idle_remove(p, w);
	if (w->woken || p->stopping)
		return true;
	return !w->reserve && p->regular <= p->set.min_workers;
}

static bool surplus(const struct dfs_pool *p, const struct dfs_worker *w)
{
	return !w->reserve && p->regular > p->set.max_workers + p->blocked;
}

static void *worker_main(void *arg)
{
	struct dfs_worker *w = arg;
	struct dfs_pool *p = w->pool;

	self = w;
	pthread_mutex_lock(p->lock);
	for (;;) {
		struct dfs_pool_job *job = take(p, w->reserve);

		if (job != NULL) {
			pthread_mutex_unlock(p->lock);
			p->run(p->owner, job);
			pthread_mutex_lock(p->lock);
			if (surplus(p, w))
				break;  /* started for a blocked one */
			continue;
		}
		if (p->stopping || !idle_wait(p, w))
			break;
	}
	if (w->reserve)
		p->reserve--;
	else
		p->regular--;
	w->exited = true;
	pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(p->lock);
	return NULL;
}

/* lock held */
static bool spawn(struct dfs_pool *p, bool reserve)
{
	pthread_condattr_t attr;
	struct dfs_worker *w;
	unsigned int n;

	reap(p);
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return false;
	w->pool = p;
	w->reserve = reserve;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		pthread_cond_destroy(&w->wake);
		free(w);
		return false;
	}
	w->next = p->all;
	p->all = w;
	if (reserve)
		p->reserve++;
	else
		p->regular++;
	n = p->regular + p->reserve;
	if (n > p->peak)
		p->peak = n;
	return true;
}

static bool may_grow(const struct dfs_pool *p)
{
	return p->regular < p->set.max_workers + p->blocked;
}

void dfs_pool_push(struct dfs_pool *p, struct dfs_pool_job *job,
		   enum dfs_pool_queue queue)
{
	bool bulk = queue == DFS_POOL_BULK;

	q_append(p, job, queue);
	if (wake_idle(p, false) || (!bulk && wake_idle(p, true)))
		return;
	if (may_grow(p))
		spawn(p, false);
	else if (!bulk && p->reserve < p->set.reserve)
		spawn(p, true);
	/* else a busy worker takes it when done */
}

void dfs_pool_move(struct dfs_pool *p, struct dfs_pool_job *job,
		   enum dfs_pool_queue queue)
{
	q_unlink(p, job);
	dfs_pool_push(p, job, queue);
}

unsigned int dfs_pool_workers(const struct dfs_pool *p)
{
	return p->regular + p->reserve;
}

int dfs_pool_init(struct dfs_pool *p, pthread_mutex_t *lock,
		  const struct dfs_pool_settings *set, dfs_pool_run_fn *run,
		  void *owner)
{
	unsigned int started = 0;

	memset(p, 0, sizeof(*p));
	p->lock = lock;
	p->set = *set;
	p->run = run;
	p->owner = owner;
	pthread_cond_init(&p->gone, NULL);
	pthread_mutex_lock(lock);
	while (started < set->min_workers && spawn(p, false))
		started++;
	pthread_mutex_unlock(lock);
	if (started < set->min_workers) {
		dfs_pool_stop(p);
		return -EAGAIN;
	}
	return 0;
}

void dfs_pool_stop(struct dfs_pool *p)
{
	pthread_mutex_lock(p->lock);
	p->stopping = true;
	for (int kind = 0; kind < 2; kind++) {
		for (struct dfs_worker *w = p->idle[kind]; w != NULL;
		     w = w->idle_next)
			pthread_cond_signal(&w->wake);
	}
	while (p->regular + p->reserve > 0)
		pthread_cond_wait(&p->gone, p->lock);
	reap(p);
	pthread_mutex_unlock(p->lock);
	pthread_cond_destroy(&p->gone);
}

void dfs_pool_block_begin(void)
{
	struct dfs_pool *p = self != NULL ? self->pool : NULL;

	if (p == NULL)
		return;
	pthread_mutex_lock(p->lock);
	p->blocked++;
	/* what we wait for may already be queued with nobody to run it */
	if (has_jobs(p) && p->idle[0] == NULL && may_grow(p))
		spawn(p, false);
	pthread_mutex_unlock(p->lock);
}

void dfs_pool_block_end(void)
{
	struct dfs_pool *p = self != NULL ? self->pool : NULL;

	if (p == NULL)
		return;
	pthread_mutex_lock(p->lock);
	p->blocked--;
	pthread_mutex_unlock(p->lock);
}
