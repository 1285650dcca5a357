/* dfs.c - the front end of the async fs layer: requests and their ids,
 * handles and the order of their requests, cancellation, back-pressure,
 * shutdown, statistics.
 *
 * Life of a request: submitted -> WAITING on its handle (until its turn) ->
 * QUEUED in the pool -> RUNNING on a worker -> callback -> freed.  A
 * request an asynchronous backend took goes back to the pool when the
 * backend is done (FINISHING), so that its callback runs on a worker.
 *
 * Order on a handle: requests submitted before the open completed wait for
 * it.  "Ordered" requests (append, truncate, fsync, commit, rollback, lock,
 * unlock, close) are dispatched only when nothing else of the handle is in
 * flight and hold back everything after them until they completed; the
 * others (pread, pwrite, fstat) between two ordered ones run in parallel.
 * A request's bookkeeping is done before its callback runs, so a callback
 * may itself wait for later requests on the same handle.
 *
 * Back-pressure: `pending` counts requests submitted and not started, both
 * WAITING and QUEUED, so that neither the pool nor the handles' wait lists
 * grow without bound; submitters block while it is at max_queued, except
 * on a worker (a callback must never wait for the pool it runs on).
 *
 * Locking: one mutex per fs, shared with its pool, for everything here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/dfs-config.h"
#include "fs/dfs-layer.h"
#include "fs/dfs-private.h"

#define ID_BUCKETS 1024
/* Workers beyond max_workers that serve everything but bulk transfers. */
#define RESERVE_WORKERS 4

struct dfs {
	pthread_mutex_t lock;
	struct dfs_pool pool;
	struct dfs_layer *top;
	struct dfs_settings set;
	pthread_cond_t room;          /* submitters wait for pending < max */
	pthread_cond_t idle;          /* dfs_free waits for live == 0 */
	struct dfs_req *ids[ID_BUCKETS];  /* live requests by id */
	unsigned int live, pending;
	struct dfs_file *files;
	dfs_req_id next_id;
	bool stopping;
	struct dfs_stats stats;
};

static bool op_is_ordered(enum dfs_op op)
{
	switch (op) {
	case DFS_OP_APPEND:
	case DFS_OP_TRUNCATE:
	case DFS_OP_FSYNC:
	case DFS_OP_COMMIT:
	case DFS_OP_ROLLBACK:
	case DFS_OP_TRY_LOCK:
	case DFS_OP_UNLOCK:
	case DFS_OP_CLOSE:
		return true;
	default:
		return false;
	}
}

static enum dfs_pool_queue op_queue(enum dfs_op op)
{
	return op == DFS_OP_PREAD || op == DFS_OP_PWRITE ||
		op == DFS_OP_READ_FD ? DFS_POOL_BULK : DFS_POOL_SHORT;
}

/* ------------------------------------------------------------ live ids */

static struct dfs_req **id_slot(struct dfs *fs, dfs_req_id id)
{
	struct dfs_req **pp = &fs->ids[id % ID_BUCKETS];

	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->hnext;
	return pp;
}

static void id_add(struct dfs *fs, struct dfs_req *req)
{
	struct dfs_req **head = &fs->ids[req->id % ID_BUCKETS];

	req->hnext = *head;
	*head = req;
}

static void id_remove(struct dfs *fs, struct dfs_req *req)
{
	struct dfs_req **pp = id_slot(fs, req->id);

	*pp = req->hnext;
}

/* ---------------------------------------------------------- wait lists */

static void wait_append(struct dfs_file *f, struct dfs_req *req)
{
	req->state = DFS_REQ_WAITING;
	req->wnext = NULL;
	req->wprev = f->wait_tail;
	if (f->wait_tail != NULL)
		f->wait_tail->wnext = req;
	else
		f->wait_head = req;
	f->wait_tail = req;
}

static void wait_remove(struct dfs_file *f, struct dfs_req *req)
{
	if (req->wprev != NULL)
		req->wprev->wnext = req->wnext;
	else
		f->wait_head = req->wnext;
	if (req->wnext != NULL)
		req->wnext->wprev = req->wprev;
	else
		f->wait_tail = req->wprev;
	req->wprev = req->wnext = NULL;
}

/* ------------------------------------------------------------ dispatch */

/* Puts a request in the pool (fs->lock held). */
static void enqueue(struct dfs *fs, struct dfs_req *req,
		    enum dfs_pool_queue queue)
{
	req->state = DFS_REQ_QUEUED;
	dfs_pool_push(&fs->pool, &req->job, queue);
}

/* Not started yet, so it can still be cancelled. */
static bool req_cancellable(const struct dfs_req *req)
{
	return (req->state == DFS_REQ_WAITING ||
		req->state == DFS_REQ_QUEUED) && !req->cancelled &&
		req->preset_err == 0;
}

/* A request that will complete without running: cancelled, or on a
 * closed handle. */
static void enqueue_unexecuted(struct dfs *fs, struct dfs_req *req)
{
	enqueue(fs, req, DFS_POOL_URGENT);
}

/* Set by dfs_submit_here() for the next submission of this thread. */
static __thread bool submit_here;

void dfs_submit_here(bool on)
{
	submit_here = on;
}

static bool may_dispatch(const struct dfs_file *f, const struct dfs_req *req)
{
	if (f->state == DFS_FILE_OPENING && req->op != DFS_OP_OPEN)
		return false;
	if (f->barrier)
		return false;
	return !op_is_ordered(req->op) || f->inflight == 0;
}

/* here: the submitter runs it (run_request) once it dropped the lock,
 * instead of a worker; the handle's order is kept the same way. */
static void dispatch(struct dfs *fs, struct dfs_req *req, bool here)
{
	struct dfs_file *f = req->file;

	f->inflight++;
	req->dispatched = true;
	if (op_is_ordered(req->op))
		f->barrier = true;
	if (here)
		req->state = DFS_REQ_QUEUED;
	else
		enqueue(fs, req, op_queue(req->op));
}

/* Moves a handle's waiting requests on as far as the order allows. */
static void file_drain(struct dfs *fs, struct dfs_file *f)
{
	struct dfs_req *req;

	while ((req = f->wait_head) != NULL) {
		if (f->state == DFS_FILE_CLOSED) {
			/* submitted after the close: nothing to run them on */
			wait_remove(f, req);
			req->preset_err = -EBADF;
			enqueue_unexecuted(fs, req);
			continue;
		}
		if (!may_dispatch(f, req))
			break;
		wait_remove(f, req);
		dispatch(fs, req, false);
		if (op_is_ordered(req->op))
			break;
	}
}

static void cancel_locked(struct dfs *fs, struct dfs_req *req)
{
	req->cancelled = true;
	if (req->state == DFS_REQ_QUEUED) {
		/* a worker that took it already sees the flag before
		 * running it */
		if (req->job.queued)
			dfs_pool_move(&fs->pool, &req->job, DFS_POOL_URGENT);
		return;
	}
	/* waiting: leave the handle's list, let those behind it move on */
	wait_remove(req->file, req);
	enqueue_unexecuted(fs, req);
	file_drain(fs, req->file);
}

/* ------------------------------------------------------------- running */

static void file_unlist(struct dfs *fs, struct dfs_file *f)
{
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		fs->files = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
}

static void file_free(struct dfs_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->temp_path != NULL)
		unlink(f->temp_path);  /* never committed: junk */
	free(f->temp_path);
	free(f->path);
	free(f);
}

/* The handle's part of a completion (fs->lock held). */
static void file_completed(struct dfs *fs, struct dfs_req *req)
{
	struct dfs_file *f = req->file;
	bool ran = !req->cancelled && req->preset_err == 0;

	if (req->op == DFS_OP_OPEN) {
		/* a cancelled open fails the handle like a failed one */
		f->state = req->res.err < 0 ? DFS_FILE_FAILED : DFS_FILE_OPEN;
		f->open_err = req->res.err;
	}
	if (req->op == DFS_OP_CLOSE && ran) {
		f->state = DFS_FILE_CLOSED;
		f->fd = -1;
	}
	if (req->dispatched) {
		f->inflight--;
		if (op_is_ordered(req->op))
			f->barrier = false;
	}
	file_drain(fs, f);
}

static void count_completion(struct dfs *fs, const struct dfs_req *req)
{
	fs->stats.completed++;
	if (req->cancelled)
		fs->stats.cancelled++;
	else if (req->res.err < 0)
		fs->stats.failed++;
	if (req->injected && !req->cancelled)
		fs->stats.injected++;
}

/* Callback, then the request is forgotten; the handle is freed when this
 * was the last request of a closed one. */
static void complete(struct dfs *fs, struct dfs_req *req)
{
	struct dfs_file *f = req->file, *dead = NULL;

	if (req->cancelled)
		req->res.err = -ECANCELED;
	else if (req->preset_err < 0)
		req->res.err = req->preset_err;
	pthread_mutex_lock(&fs->lock);
	if (f != NULL)
		file_completed(fs, req);
	count_completion(fs, req);
	pthread_mutex_unlock(&fs->lock);

	if (req->cb != NULL)
		req->cb(req->ctx, &req->res);

	pthread_mutex_lock(&fs->lock);
	id_remove(fs, req);
	if (f != NULL && --f->refs == 0 && f->state == DFS_FILE_CLOSED) {
		file_unlist(fs, f);
		dead = f;
	}
	if (--fs->live == 0)
		pthread_cond_broadcast(&fs->idle);
	pthread_mutex_unlock(&fs->lock);
	if (dead != NULL)
		file_free(dead);
	free(req->path);
	free(req->path2);
	free(req);
}

void dfs_req_done(struct dfs_req *req)
{
	struct dfs *fs = req->fs;

	pthread_mutex_lock(&fs->lock);
	req->state = DFS_REQ_FINISHING;
	dfs_pool_push(&fs->pool, &req->job, DFS_POOL_URGENT);
	pthread_mutex_unlock(&fs->lock);
}

/* The pool's run(): one request, start to end, on a worker. */
static void run_request(void *owner, struct dfs_pool_job *job)
{
	struct dfs *fs = owner;
	struct dfs_req *req = (struct dfs_req *)((char *)job -
						 offsetof(struct dfs_req, job));
	struct dfs_file *f = req->file;
	bool execute;

	pthread_mutex_lock(&fs->lock);
	if (req->state == DFS_REQ_FINISHING) {
		pthread_mutex_unlock(&fs->lock);
		complete(fs, req);
		return;
	}
	req->state = DFS_REQ_RUNNING;
	fs->pending--;
	pthread_cond_signal(&fs->room);
	execute = !req->cancelled && req->preset_err == 0;
	if (execute && f != NULL && req->op != DFS_OP_OPEN &&
	    f->state == DFS_FILE_FAILED) {
		/* closing a handle whose open failed is fine */
		req->preset_err = req->op == DFS_OP_CLOSE ? 0 : f->open_err;
		execute = false;
	}
	pthread_mutex_unlock(&fs->lock);
	if (execute && fs->top->exec(fs->top, req) == DFS_EXEC_PENDING)
		return;  /* the backend has it; see dfs_req_done() */
	complete(fs, req);
}

/* ------------------------------------------------------------- submit */

static struct dfs_req *req_new(enum dfs_op op, struct dfs_file *file,
			       dfs_callback *cb, void *ctx)
{
	struct dfs_req *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	req->op = op;
	req->file = file;
	req->cb = cb;
	req->ctx = ctx;
	req->res.op = op;
	req->res.file = file;
	return req;
}

static void req_free_unsubmitted(struct dfs_req *req)
{
	free(req->path);
	free(req->path2);
	free(req);
}

/* Takes the request; returns its id (never 0). */
static dfs_req_id submit(struct dfs *fs, struct dfs_req *req)
{
	struct dfs_file *f = req->file;
	bool here = submit_here && fs->set.sync_inline;
	dfs_req_id id;

	submit_here = false;
	pthread_mutex_lock(&fs->lock);
	while (fs->pending >= fs->set.max_queued && !fs->stopping &&
	       !dfs_pool_on_worker())
		pthread_cond_wait(&fs->room, &fs->lock);
	req->fs = fs;
	id = req->id = fs->next_id++;
	id_add(fs, req);
	fs->live++;
	if (++fs->pending > fs->stats.queued_peak)
		fs->stats.queued_peak = fs->pending;
	fs->stats.submitted++;
	if (f != NULL)
		f->refs++;  /* the handle outlives its requests */
	if (req->op == DFS_OP_CLOSE)
		f->closing = true;  /* its descriptor is no longer the caller's */
	if (fs->stopping) {
		req->cancelled = true;
		here = false;
		enqueue_unexecuted(fs, req);
	} else if (f == NULL && here) {
		req->state = DFS_REQ_QUEUED;
	} else if (f == NULL) {
		enqueue(fs, req, op_queue(req->op));
	} else if (f->wait_head == NULL && f->state != DFS_FILE_CLOSED &&
		   may_dispatch(f, req)) {
		dispatch(fs, req, here);
	} else {
		here = false;  /* a worker takes it when its turn comes */
		wait_append(f, req);
		file_drain(fs, f);  /* fails it at once on a closed handle */
	}
	pthread_mutex_unlock(&fs->lock);
	if (here)
		run_request(fs, &req->job);
	return id;
}

bool dfs_cancel(struct dfs *fs, dfs_req_id id)
{
	struct dfs_req *req;
	bool done = false;

	pthread_mutex_lock(&fs->lock);
	req = *id_slot(fs, id);
	/* a close is not cancelled: the handle would stay open for ever */
	if (req != NULL && req_cancellable(req) && req->op != DFS_OP_CLOSE) {
		cancel_locked(fs, req);
		done = true;
	}
	pthread_mutex_unlock(&fs->lock);
	return done;
}

/* ------------------------------------------------------ create and free */

int dfs_config_check(const char *config, char *errbuf, size_t errlen)
{
	struct dfs_layer *top;
	int ret = dfs_stack_build(config, 1, &top, errbuf, errlen);

	if (ret == 0)
		dfs_stack_free(top);
	return ret;
}

static void settings_default(struct dfs_settings *set)
{
	if (set->max_workers == 0)
		set->max_workers = 64;
	if (set->min_workers == 0)
		set->min_workers = 1;
	if (set->min_workers > set->max_workers)
		set->min_workers = set->max_workers;
	if (set->max_queued == 0)
		set->max_queued = 4096;
	if (set->idle_ms == 0)
		set->idle_ms = 2000;
}

int dfs_new(const char *config, const struct dfs_settings *set,
	    struct dfs **fs_r, char *errbuf, size_t errlen)
{
	struct dfs *fs = calloc(1, sizeof(*fs));
	struct dfs_pool_settings pset;
	int ret;

	if (fs == NULL)
		return -ENOMEM;
	if (set != NULL)
		fs->set = *set;
	settings_default(&fs->set);
	ret = dfs_stack_build(config, fs->set.random_seed, &fs->top, errbuf,
			      errlen);
	if (ret < 0) {
		free(fs);
		return ret;
	}
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->room, NULL);
	pthread_cond_init(&fs->idle, NULL);
	fs->next_id = 1;
	pset = (struct dfs_pool_settings){
		.min_workers = fs->set.min_workers,
		.max_workers = fs->set.max_workers,
		.reserve = RESERVE_WORKERS, .idle_ms = fs->set.idle_ms };
	ret = dfs_pool_init(&fs->pool, &fs->lock, &pset, run_request, fs);
	if (ret < 0) {
		if (errbuf != NULL && errlen > 0)
			snprintf(errbuf, errlen, "cannot start worker threads");
		dfs_stack_free(fs->top);
		pthread_cond_destroy(&fs->room);
		pthread_cond_destroy(&fs->idle);
		pthread_mutex_destroy(&fs->lock);
		free(fs);
		return ret;
	}
	*fs_r = fs;
	return 0;
}

static void cancel_all_locked(struct dfs *fs)
{
	for (unsigned int b = 0; b < ID_BUCKETS; b++) {
		for (struct dfs_req *r = fs->ids[b]; r != NULL; r = r->hnext) {
			if (req_cancellable(r))
				cancel_locked(fs, r);
		}
	}
}

void dfs_free(struct dfs *fs)
{
	if (fs == NULL)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->stopping = true;
	pthread_cond_broadcast(&fs->room);
	cancel_all_locked(fs);
	while (fs->live > 0)
		pthread_cond_wait(&fs->idle, &fs->lock);
	pthread_mutex_unlock(&fs->lock);
	dfs_pool_stop(&fs->pool);
	while (fs->files != NULL) {
		struct dfs_file *f = fs->files;

		fs->files = f->next;
		file_free(f);
	}
	dfs_stack_free(fs->top);
	pthread_cond_destroy(&fs->room);
	pthread_cond_destroy(&fs->idle);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

void dfs_get_stats(struct dfs *fs, struct dfs_stats *st_r)
{
	pthread_mutex_lock(&fs->lock);
	*st_r = fs->stats;
	st_r->queued = fs->pending;
	st_r->workers = dfs_pool_workers(&fs->pool);
	st_r->workers_peak = fs->pool.peak;
	pthread_mutex_unlock(&fs->lock);
}

/* ---------------------------------------------------------------- files */

static struct dfs_file *file_new(struct dfs *fs, const char *path, int fd,
				 enum dfs_file_state state)
{
	struct dfs_file *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->fs = fs;
	f->fd = fd;
	f->state = state;
	f->path = strdup(path != NULL ? path : "");
	if (f->path == NULL) {
		free(f);
		return NULL;
	}
	pthread_mutex_lock(&fs->lock);
	f->next = fs->files;
	if (fs->files != NULL)
		fs->files->prev = f;
	fs->files = f;
	pthread_mutex_unlock(&fs->lock);
	return f;
}

/* Only when memory is exhausted: a handle that was never used. */
static void file_discard(struct dfs_file *f)
{
	pthread_mutex_lock(&f->fs->lock);
	file_unlist(f->fs, f);
	pthread_mutex_unlock(&f->fs->lock);
	file_free(f);
}

struct dfs_file *dfs_open(struct dfs *fs, const char *path, int flags,
			  mode_t mode, dfs_callback *cb, void *ctx)
{
	struct dfs_file *f = file_new(fs, path, -1, DFS_FILE_OPENING);
	struct dfs_req *req;

	if (f == NULL)
		return NULL;
	req = req_new(DFS_OP_OPEN, f, cb, ctx);
	if (req == NULL) {
		file_discard(f);
		return NULL;
	}
	req->flags = flags;
	req->mode = mode;
	submit(fs, req);
	return f;
}

struct dfs_file *dfs_file_from_fd(struct dfs *fs, int fd, const char *path)
{
	struct dfs_file *f;
	struct stat st;

	if (fd < 0) {
		/* its requests fail like those of a failed open */
		f = file_new(fs, path, -1, DFS_FILE_FAILED);
		if (f != NULL)
			f->open_err = -EBADF;
		return f;
	}
	f = file_new(fs, path, fd, DFS_FILE_OPEN);
	if (f != NULL && fstat(fd, &st) == 0)
		f->rollback_size = st.st_size;
	return f;
}

int dfs_file_fd(const struct dfs_file *f)
{
	struct dfs *fs = f->fs;
	int fd;

	pthread_mutex_lock(&fs->lock);
	fd = f->state == DFS_FILE_OPEN && !f->closing ? f->fd : -1;
	pthread_mutex_unlock(&fs->lock);
	return fd;
}

const char *dfs_file_path(const struct dfs_file *f)
{
	return f->path;
}

static dfs_req_id file_req(struct dfs_file *f, enum dfs_op op, void *buf,
			   const void *cbuf, size_t len, off_t off,
			   dfs_callback *cb, void *ctx)
{
	struct dfs_req *req = req_new(op, f, cb, ctx);

	if (req == NULL)
		return 0;
	req->buf = buf;
	req->cbuf = cbuf;
	req->len = len;
	req->off = off;
	return submit(f->fs, req);
}

dfs_req_id dfs_pread(struct dfs_file *f, void *buf, size_t len, off_t off,
		     dfs_callback *cb, void *ctx)
{
	return file_req(f, DFS_OP_PREAD, buf, NULL, len, off, cb, ctx);
}

dfs_req_id dfs_read_fd(struct dfs_file *f, size_t len, off_t off,
		       dfs_fd_reader *fn, void *arg, dfs_callback *cb,
		       void *ctx)
{
	struct dfs_req *req = req_new(DFS_OP_READ_FD, f, cb, ctx);

	if (req == NULL)
		return 0;
	req->len = len;
	req->off = off;
	req->fd_reader = fn;
	req->fd_reader_arg = arg;
	return submit(f->fs, req);
}

dfs_req_id dfs_pwrite(struct dfs_file *f, const void *buf, size_t len,
		      off_t off, dfs_callback *cb, void *ctx)
{
	return file_req(f, DFS_OP_PWRITE, NULL, buf, len, off, cb, ctx);
}

dfs_req_id dfs_append(struct dfs_file *f, const void *buf, size_t len,
		      dfs_callback *cb, void *ctx)
{
	return file_req(f, DFS_OP_APPEND, NULL, buf, len, 0, cb, ctx);
}

dfs_req_id dfs_truncate(struct dfs_file *f, off_t len, dfs_callback *cb,
			void *ctx)
{
	return file_req(f, DFS_OP_TRUNCATE, NULL, NULL, 0, len, cb, ctx);
}

dfs_req_id dfs_commit(struct dfs_file *f, const char *final_path,
		      dfs_callback *cb, void *ctx)
{
	struct dfs_req *req = req_new(DFS_OP_COMMIT, f, cb, ctx);

	if (req == NULL)
		return 0;
	if (final_path != NULL && (req->path = strdup(final_path)) == NULL) {
		req_free_unsubmitted(req);
		return 0;
	}
	return submit(f->fs, req);
}

dfs_req_id dfs_rollback(struct dfs_file *f, dfs_callback *cb, void *ctx)
{
	return file_req(f, DFS_OP_ROLLBACK, NULL, NULL, 0, 0, cb, ctx);
}

dfs_req_id dfs_fsync(struct dfs_file *f, dfs_callback *cb, void *ctx)
{
	return file_req(f, DFS_OP_FSYNC, NULL, NULL, 0, 0, cb, ctx);
}

dfs_req_id dfs_fstat(struct dfs_file *f, dfs_callback *cb, void *ctx)
{
	return file_req(f, DFS_OP_FSTAT, NULL, NULL, 0, 0, cb, ctx);
}

dfs_req_id dfs_try_lock(struct dfs_file *f, dfs_callback *cb, void *ctx)
{
	return file_req(f, DFS_OP_TRY_LOCK, NULL, NULL, 0, 0, cb, ctx);
}

dfs_req_id dfs_unlock(struct dfs_file *f, dfs_callback *cb, void *ctx)
{
	return file_req(f, DFS_OP_UNLOCK, NULL, NULL, 0, 0, cb, ctx);
}

dfs_req_id dfs_close(struct dfs_file *f, dfs_callback *cb, void *ctx)
{
	return file_req(f, DFS_OP_CLOSE, NULL, NULL, 0, 0, cb, ctx);
}

/* ---------------------------------------------------------------- paths */

static dfs_req_id path_req(struct dfs *fs, enum dfs_op op, const char *path,
			   const char *path2, mode_t mode, dfs_callback *cb,
			   void *ctx)
{
	struct dfs_req *req = req_new(op, NULL, cb, ctx);

	if (req == NULL)
		return 0;
	req->path = strdup(path);
	req->path2 = path2 != NULL ? strdup(path2) : NULL;
	req->mode = mode;
	if (req->path == NULL || (path2 != NULL && req->path2 == NULL)) {
		req_free_unsubmitted(req);
		return 0;
	}
	return submit(fs, req);
}

dfs_req_id dfs_stat(struct dfs *fs, const char *path, dfs_callback *cb,
		    void *ctx)
{
	return path_req(fs, DFS_OP_STAT, path, NULL, 0, cb, ctx);
}

dfs_req_id dfs_unlink(struct dfs *fs, const char *path, dfs_callback *cb,
		      void *ctx)
{
	return path_req(fs, DFS_OP_UNLINK, path, NULL, 0, cb, ctx);
}

dfs_req_id dfs_rename(struct dfs *fs, const char *from, const char *to,
		      dfs_callback *cb, void *ctx)
{
	return path_req(fs, DFS_OP_RENAME, from, to, 0, cb, ctx);
}

dfs_req_id dfs_mkdir(struct dfs *fs, const char *path, mode_t mode,
		     dfs_callback *cb, void *ctx)
{
	return path_req(fs, DFS_OP_MKDIR, path, NULL, mode, cb, ctx);
}

dfs_req_id dfs_fsync_dir(struct dfs *fs, const char *path, dfs_callback *cb,
			 void *ctx)
{
	return path_req(fs, DFS_OP_FSYNC_DIR, path, NULL, 0, cb, ctx);
}
