/* dfs-pool.h - the pthread worker pool under the async fs layer.
 *
 * The pool knows nothing about files or requests: it runs jobs.  A job sits
 * in one of three queues:
 *
 *   URGENT  jobs that only need their completion run (cancelled requests);
 *           every worker takes them first, so a cancellation is reported
 *           at once and not after the backlog it was cancelled from;
 *   SHORT   everything that is not a bulk transfer (open, stat, fsync,
 *           append, commit, close...);
 *   BULK    bulk data transfers (pread, pwrite), the ones that pile up.
 *
 * Growth: when a job is queued and no worker is idle, a worker is started,
 * up to max regular workers.  Shrink: idle workers wait on a LIFO stack, so
 * under light load the same few workers are reused and the others reach
 * idle_ms without work and exit, down to min.
 *
 * Fairness for non-bulk work: beyond max, up to `reserve` extra workers
 * may be started that serve URGENT and SHORT jobs only, never BULK: when 64
 * slow reads hold every regular worker, a stat or a close still starts at
 * once instead of waiting behind them.  Regular workers take SHORT before
 * BULK, but every fourth pick with both queues non-empty goes to BULK so a
 * steady stream of short jobs cannot starve the transfers.  A reserve was
 * preferred to per-class worker quotas because it costs nothing while the
 * pool is below max (every worker serves every queue) and keeps a hard
 * bound of max + reserve threads.
 *
 * Blocking: a job that blocks a worker waiting for other jobs of the same
 * pool (a blocking wrapper called from a callback) brackets the wait with
 * dfs_pool_block_begin/end; a blocked worker does not count against max,
 * so the jobs it waits for always get a worker.
 *
 * Locking: the pool shares its owner's mutex (`lock` at init), so the
 * owner's state and the queues change together.  Functions marked "lock
 * held" must be called with it held; the others take it themselves.
 * run() is called without the lock.
 */
#ifndef DFS_POOL_H
#define DFS_POOL_H

#include <pthread.h>
#include <stdbool.h>

enum dfs_pool_queue { DFS_POOL_URGENT, DFS_POOL_SHORT, DFS_POOL_BULK,
	DFS_POOL__QUEUES };

/* Embedded in the owner's job; the owner keeps it alive until run(). */
struct dfs_pool_job {
	struct dfs_pool_job *prev, *next;
	enum dfs_pool_queue queue;
	bool queued;          /* in a queue; false once a worker took it */
};

typedef void dfs_pool_run_fn(void *owner, struct dfs_pool_job *job);

struct dfs_pool_settings {
	unsigned int min_workers, max_workers, reserve, idle_ms;
};

struct dfs_worker;

struct dfs_pool {
	pthread_mutex_t *lock;
	dfs_pool_run_fn *run;
	void *owner;
	struct dfs_pool_settings set;
	struct {
		struct dfs_pool_job *head, *tail;
		unsigned int count;
	} q[DFS_POOL__QUEUES];
	struct dfs_worker *idle[2];   /* stacks: [0] regular, [1] reserve */
	struct dfs_worker *all;       /* started and not joined yet */
	unsigned int regular, reserve, blocked, peak, turn;
	bool stopping;
	pthread_cond_t gone;          /* dfs_pool_stop waits for exits */
};

/* Starts min_workers workers (lock not held).  0 or -errno. */
int dfs_pool_init(struct dfs_pool *pool, pthread_mutex_t *lock,
		  const struct dfs_pool_settings *set, dfs_pool_run_fn *run,
		  void *owner);
/* Queues a job and wakes or starts a worker for it (lock held). */
void dfs_pool_push(struct dfs_pool *pool, struct dfs_pool_job *job,
		   enum dfs_pool_queue queue);
/* Moves a job still queued (job->queued) to another queue, at its tail
 * (lock held). */
void dfs_pool_move(struct dfs_pool *pool, struct dfs_pool_job *job,
		   enum dfs_pool_queue queue);
/* Workers alive now (lock held). */
unsigned int dfs_pool_workers(const struct dfs_pool *pool);
/* Lets the workers go once the queues are empty and joins them (lock not
 * held).  The owner makes sure no job is pushed after its last one ran. */
void dfs_pool_stop(struct dfs_pool *pool);

/* True on a worker thread of any pool. */
bool dfs_pool_on_worker(void);
/* Around a wait, on a worker, for other jobs (no-ops elsewhere; lock not
 * held). */
void dfs_pool_block_begin(void);
void dfs_pool_block_end(void);

#endif
