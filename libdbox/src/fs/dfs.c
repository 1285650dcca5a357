/* dfs.c - the front end of the async fs layer: requests, handles and their
 * ordering, cancellation, shutdown, and the blocking wrappers.
 *
 * Ordering per handle: requests submitted before the open completed wait
 * for it; "ordered" requests (append, truncate, fsync, commit, rollback,
 * lock, unlock, close) run alone, after every earlier request on the
 * handle and before every later one; reads, positional writes and fstat
 * between two ordered requests run in parallel. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/dfs-private.h"

static bool is_ordered(enum dfs_op op)
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

/* ------------------------------------------------------------ create/free */

int dfs_config_check(const char *config, char *errbuf, size_t errlen)
{
	struct dfs_layer *top;
	int ret = dfs_stack_build(config, 1, &top, errbuf, errlen);

	if (ret == 0)
		dfs_stack_free(top);
	return ret;
}

int dfs_new(const char *config, const struct dfs_settings *set,
	    struct dfs **fs_r, char *errbuf, size_t errlen)
{
	struct dfs *fs = calloc(1, sizeof(*fs));
	int ret;

	if (fs == NULL)
		return -ENOMEM;
	if (set != NULL)
		fs->set = *set;
	if (fs->set.max_workers == 0)
		fs->set.max_workers = 64;
	if (fs->set.min_workers == 0)
		fs->set.min_workers = 1;
	if (fs->set.min_workers > fs->set.max_workers)
		fs->set.min_workers = fs->set.max_workers;
	if (fs->set.max_queued == 0)
		fs->set.max_queued = 4096;
	if (fs->set.idle_ms == 0)
		fs->set.idle_ms = 2000;
	ret = dfs_stack_build(config, fs->set.random_seed, &fs->top, errbuf,
			      errlen);
	if (ret < 0) {
		free(fs);
		return ret;
	}
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->work, NULL);
	pthread_cond_init(&fs->room, NULL);
	pthread_cond_init(&fs->idle, NULL);
	fs->next_id = 1;
	ret = dfs_pool_start(fs);
	if (ret < 0) {
		dfs_pool_stop(fs);
		dfs_stack_free(fs->top);
		free(fs);
		if (errbuf != NULL)
			snprintf(errbuf, errlen, "cannot start worker threads");
		return ret;
	}
	*fs_r = fs;
	return 0;
}

static void file_free(struct dfs_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->temp_path != NULL)
		unlink(f->temp_path);
	free(f->temp_path);
	free(f->path);
	free(f);
}

/* Queued and waiting requests are cancelled (they complete with
 * -ECANCELED on a worker); running ones finish; then the workers go. */
static void cancel_all_locked(struct dfs *fs);

void dfs_free(struct dfs *fs)
{
	if (fs == NULL)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->stopping = true;
	cancel_all_locked(fs);
	while (fs->live_count > 0)
		pthread_cond_wait(&fs->idle, &fs->lock);
	pthread_mutex_unlock(&fs->lock);
	dfs_pool_stop(fs);
	while (fs->files != NULL) {
		struct dfs_file *f = fs->files;

		fs->files = f->next;
		file_free(f);
	}
	dfs_stack_free(fs->top);
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->work);
	pthread_cond_destroy(&fs->room);
	pthread_cond_destroy(&fs->idle);
	free(fs);
}

/* --------------------------------------------------------------- requests */

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

static void live_add(struct dfs *fs, struct dfs_req *req)
{
	if (req->file != NULL)
		req->file->refs++;  /* the handle outlives its requests */
	req->id = fs->next_id++;
	req->lnext = fs->live;
	if (fs->live != NULL)
		fs->live->lprev = req;
	fs->live = req;
	fs->live_count++;
	fs->stats.submitted++;
}

static void live_remove(struct dfs *fs, struct dfs_req *req)
{
	if (req->lprev != NULL)
		req->lprev->lnext = req->lnext;
	else
		fs->live = req->lnext;
	if (req->lnext != NULL)
		req->lnext->lprev = req->lprev;
	fs->live_count--;
}

static bool can_dispatch(const struct dfs_file *f, const struct dfs_req *req,
			 bool barrier)
{
	if (f->state == FILE_OPENING && req->op != DFS_OP_OPEN)
		return false;
	if (barrier)
		return false;
	return !is_ordered(req->op) || f->inflight == 0;
}

/* Is an ordered request of this file in flight right now? */
static bool barrier_of(const struct dfs_file *f, const struct dfs *fs)
{
	for (const struct dfs_req *r = fs->live; r != NULL; r = r->lnext) {
		if (r->file == f && r->state != REQ_WAITING &&
		    is_ordered(r->op))
			return true;
	}
	return false;
}

static void dispatch(struct dfs *fs, struct dfs_req *req)
{
	if (req->file != NULL) {
		req->file->inflight++;
		req->counted = true;
	}
	dfs_pool_enqueue(fs, req);
}

static void wait_append(struct dfs_file *f, struct dfs_req *req)
{
	req->state = REQ_WAITING;
	req->qnext = NULL;
	if (f->wait_tail != NULL)
		f->wait_tail->qnext = req;
	else
		f->wait_head = req;
	f->wait_tail = req;
}

static dfs_req_id submit(struct dfs *fs, struct dfs_req *req)
{
	struct dfs_file *f = req->file;
	dfs_req_id id;

	pthread_mutex_lock(&fs->lock);
	/* back-pressure, except for workers: a callback that submits must
	 * never wait for the pool it runs on */
	while (!dfs_on_worker() && !fs->stopping &&
	       fs->queued >= fs->set.max_queued)
		pthread_cond_wait(&fs->room, &fs->lock);
	live_add(fs, req);
	id = req->id;
	if (fs->stopping)
		req->cancelled = true;
	if (f == NULL || req->cancelled)
		dfs_pool_enqueue(fs, req);
	else if (f->wait_head == NULL && can_dispatch(f, req, barrier_of(f, fs)))
		dispatch(fs, req);
	else
		wait_append(f, req);
	pthread_mutex_unlock(&fs->lock);
	return id;
}

void dfs_req_execute(struct dfs *fs, struct dfs_req *req)
{
	struct dfs_file *f = req->file;

	if (f != NULL && req->op != DFS_OP_OPEN) {
		int state, err;

		pthread_mutex_lock(&fs->lock);
		state = f->state;
		err = f->open_err;
		pthread_mutex_unlock(&fs->lock);
		if (state == FILE_FAILED) {
			/* close of a handle whose open failed succeeds */
			req->res.err = req->op == DFS_OP_CLOSE ? 0 : err;
			return;
		}
	}
	fs->top->exec(fs->top, req);
}

/* Moves the file's waiting requests on after one of its requests ended;
 * collects those that cannot run into *failed (open failed). */
static void file_drain(struct dfs *fs, struct dfs_file *f)
{
	bool barrier = barrier_of(f, fs);

	while (f->wait_head != NULL) {
		struct dfs_req *req = f->wait_head;

		if (!req->cancelled && !can_dispatch(f, req, barrier))
			break;
		f->wait_head = req->qnext;
		if (f->wait_head == NULL)
			f->wait_tail = NULL;
		if (req->cancelled) {
			dfs_pool_enqueue(fs, req);
			continue;
		}
		dispatch(fs, req);
		if (is_ordered(req->op))
			break;
	}
}

void dfs_req_complete(struct dfs *fs, struct dfs_req *req)
{
	struct dfs_file *f = req->file;
	bool free_file;

	if (req->cancelled)
		req->res.err = -ECANCELED;
	pthread_mutex_lock(&fs->lock);
	req->state = REQ_RUNNING;
	if (f != NULL && req->counted)
		f->inflight--;
	if (f != NULL && req->op == DFS_OP_OPEN) {
		/* a cancelled open fails the handle like a failed one */
		f->state = req->res.err < 0 ? FILE_FAILED : FILE_OPEN;
		f->open_err = req->res.err;
	}
	if (f != NULL && req->op == DFS_OP_CLOSE && !req->cancelled)
		f->state = FILE_CLOSED;
	if (req->cancelled)
		fs->stats.cancelled++;
	else if (req->res.err < 0)
		fs->stats.failed++;
	fs->stats.completed++;
	pthread_mutex_unlock(&fs->lock);
	if (req->cb != NULL)
		req->cb(req->ctx, &req->res);
	pthread_mutex_lock(&fs->lock);
	live_remove(fs, req);
	free_file = false;
	if (f != NULL) {
		f->refs--;
		if (f->state != FILE_CLOSED)
			file_drain(fs, f);
		else if (f->refs == 0)
			free_file = true;  /* closed, and nothing refers to it */
	}
	if (free_file) {
		if (f->prev != NULL)
			f->prev->next = f->next;
		else if (fs->files == f)
			fs->files = f->next;
		if (f->next != NULL)
			f->next->prev = f->prev;
	}
	if (fs->live_count == 0)
		pthread_cond_broadcast(&fs->idle);
	pthread_mutex_unlock(&fs->lock);
	if (free_file)
		file_free(f);
	free(req->path);
	free(req->path2);
	free(req);
}

static void cancel_req_locked(struct dfs *fs, struct dfs_req *req)
{
	struct dfs_file *f = req->file;

	req->cancelled = true;
	if (req->state != REQ_WAITING)
		return;  /* queued: the worker completes it unexecuted */
	/* take it out of its file's wait list and let a worker finish it */
	for (struct dfs_req **pp = &f->wait_head; *pp != NULL;
	     pp = &(*pp)->qnext) {
		if (*pp != req)
			continue;
		*pp = req->qnext;
		break;
	}
	f->wait_tail = NULL;
	for (struct dfs_req *r = f->wait_head; r != NULL; r = r->qnext)
		f->wait_tail = r;
	dfs_pool_enqueue(fs, req);
}

static void cancel_all_locked(struct dfs *fs)
{
	struct dfs_req *req = fs->live;

	while (req != NULL) {
		struct dfs_req *next = req->lnext;

		if (req->state != REQ_RUNNING && !req->cancelled)
			cancel_req_locked(fs, req);
		req = next;
	}
}

bool dfs_cancel(struct dfs *fs, dfs_req_id id)
{
	bool done = false;

	pthread_mutex_lock(&fs->lock);
	for (struct dfs_req *r = fs->live; r != NULL; r = r->lnext) {
		if (r->id != id)
			continue;
		if (r->state != REQ_RUNNING && !r->cancelled) {
			cancel_req_locked(fs, r);
			done = true;
		}
		break;
	}
	pthread_mutex_unlock(&fs->lock);
	return done;
}

/* ------------------------------------------------------------ file ops */

static struct dfs_file *file_new(struct dfs *fs, const char *path, int fd,
				 int flags)
{
	struct dfs_file *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->fs = fs;
	f->fd = fd;
	f->flags = flags;
	f->path = strdup(path != NULL ? path : "");
	if (f->path == NULL) {
		free(f);
		return NULL;
	}
	f->state = fd >= 0 ? FILE_OPEN : FILE_OPENING;
	pthread_mutex_lock(&fs->lock);
	f->next = fs->files;
	if (fs->files != NULL)
		fs->files->prev = f;
	fs->files = f;
	pthread_mutex_unlock(&fs->lock);
	return f;
}

struct dfs_file *dfs_open(struct dfs *fs, const char *path, int flags,
			  mode_t mode, dfs_callback *cb, void *ctx)
{
	struct dfs_file *f = file_new(fs, path, -1, flags);
	struct dfs_req *req = f != NULL ? req_new(DFS_OP_OPEN, f, cb, ctx) :
		NULL;

	if (req == NULL) {
		/* out of memory at submit time: the handle cannot even exist;
		 * report through the callback like every other failure */
		if (f != NULL) {
			pthread_mutex_lock(&fs->lock);
			if (f->prev != NULL)
				f->prev->next = f->next;
			else
				fs->files = f->next;
			if (f->next != NULL)
				f->next->prev = f->prev;
			pthread_mutex_unlock(&fs->lock);
			file_free(f);
		}
		return NULL;
	}
	req->flags = flags;
	req->mode = mode;
	submit(fs, req);
	return f;
}

struct dfs_file *dfs_file_from_fd(struct dfs *fs, int fd, const char *path)
{
	return file_new(fs, path, fd, 0);
}

int dfs_file_fd(const struct dfs_file *f)
{
	int fd;

	pthread_mutex_lock(&f->fs->lock);
	fd = f->state == FILE_OPEN ? f->fd : -1;
	pthread_mutex_unlock(&f->fs->lock);
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
		free(req);
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

/* ------------------------------------------------------------ path ops */

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
		free(req->path);
		free(req->path2);
		free(req);
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

void dfs_get_stats(struct dfs *fs, struct dfs_stats *st_r)
{
	pthread_mutex_lock(&fs->lock);
	*st_r = fs->stats;
	st_r->queued = fs->queued;
	st_r->workers = fs->workers;
	pthread_mutex_unlock(&fs->lock);
}
