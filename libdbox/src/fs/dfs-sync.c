/* dfs-sync.c - blocking wrappers: submit, then wait for the completion.
 * On a worker thread (inside a callback) waiting could starve the pool,
 * so there the request runs inline on the calling thread instead. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/dfs-private.h"

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct dfs_result res;
};

static void waiter_cb(void *ctx, const struct dfs_result *res)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->res = *res;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
}

static int waiter_wait(struct waiter *w, dfs_req_id id)
{
	if (id == 0) {
		w->res.err = -ENOMEM;
	} else {
		pthread_mutex_lock(&w->lock);
		while (!w->done)
			pthread_cond_wait(&w->cond, &w->lock);
		pthread_mutex_unlock(&w->lock);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	return w->res.err;
}

/* Inline execution for callers on a worker thread. */
static int run_inline(struct dfs *fs, struct dfs_req *req,
		      struct dfs_result *res)
{
	dfs_req_execute(fs, req);
	*res = req->res;
	return req->res.err;
}


int dfs_sync_open(struct dfs *fs, const char *path, int flags, mode_t mode,
		  struct dfs_file **file_r)
{
	struct waiter w;
	struct dfs_file *f;
	int ret;

	waiter_init(&w);
	f = dfs_open(fs, path, flags, mode, waiter_cb, &w);
	ret = waiter_wait(&w, f != NULL ? 1 : 0);
	if (ret < 0) {
		if (f != NULL)
			dfs_sync_close(f);
		return ret;
	}
	*file_r = f;
	return 0;
}

static int file_sync(struct dfs_file *f, enum dfs_op op, void *buf,
		     const void *cbuf, size_t len, off_t off,
		     struct dfs_result *res)
{
	struct waiter w;
	dfs_req_id id = 0;
	int ret;

	if (dfs_on_worker()) {
		struct dfs_req req = { .op = op, .file = f, .buf = buf,
				       .cbuf = cbuf, .len = len, .off = off };

		return run_inline(f->fs, &req, res);
	}
	waiter_init(&w);
	switch (op) {
	case DFS_OP_PREAD: id = dfs_pread(f, buf, len, off, waiter_cb, &w); break;
	case DFS_OP_PWRITE: id = dfs_pwrite(f, cbuf, len, off, waiter_cb, &w); break;
	case DFS_OP_APPEND: id = dfs_append(f, cbuf, len, waiter_cb, &w); break;
	case DFS_OP_TRUNCATE: id = dfs_truncate(f, off, waiter_cb, &w); break;
	case DFS_OP_ROLLBACK: id = dfs_rollback(f, waiter_cb, &w); break;
	case DFS_OP_FSYNC: id = dfs_fsync(f, waiter_cb, &w); break;
	case DFS_OP_FSTAT: id = dfs_fstat(f, waiter_cb, &w); break;
	case DFS_OP_TRY_LOCK: id = dfs_try_lock(f, waiter_cb, &w); break;
	case DFS_OP_UNLOCK: id = dfs_unlock(f, waiter_cb, &w); break;
	case DFS_OP_CLOSE: id = dfs_close(f, waiter_cb, &w); break;
	default: break;
	}
	ret = waiter_wait(&w, id);
	*res = w.res;
	return ret;
}

int dfs_sync_pread(struct dfs_file *f, void *buf, size_t len, off_t off,
		   size_t *n_r)
{
	struct dfs_result res;
	int ret = file_sync(f, DFS_OP_PREAD, buf, NULL, len, off, &res);

	if (ret == 0 && n_r != NULL)
		*n_r = (size_t)res.n;
	return ret;
}

int dfs_sync_pwrite(struct dfs_file *f, const void *buf, size_t len,
		    off_t off)
{
	struct dfs_result res;

	return file_sync(f, DFS_OP_PWRITE, NULL, buf, len, off, &res);
}

int dfs_sync_append(struct dfs_file *f, const void *buf, size_t len,
		    off_t *offset_r)
{
	struct dfs_result res;
	int ret = file_sync(f, DFS_OP_APPEND, NULL, buf, len, 0, &res);

	if (ret == 0 && offset_r != NULL)
		*offset_r = res.offset;
	return ret;
}

int dfs_sync_truncate(struct dfs_file *f, off_t len)
{
	struct dfs_result res;

	return file_sync(f, DFS_OP_TRUNCATE, NULL, NULL, 0, len, &res);
}

int dfs_sync_commit(struct dfs_file *f, const char *final_path)
{
	struct waiter w;

	if (dfs_on_worker()) {
		struct dfs_req req = { .op = DFS_OP_COMMIT, .file = f,
				       .path = (char *)final_path };
		struct dfs_result res;

		return run_inline(f->fs, &req, &res);
	}
	waiter_init(&w);
	return waiter_wait(&w, dfs_commit(f, final_path, waiter_cb, &w));
}

int dfs_sync_rollback(struct dfs_file *f)
{
	struct dfs_result res;

	return file_sync(f, DFS_OP_ROLLBACK, NULL, NULL, 0, 0, &res);
}

int dfs_sync_fsync(struct dfs_file *f)
{
	struct dfs_result res;

	return file_sync(f, DFS_OP_FSYNC, NULL, NULL, 0, 0, &res);
}

int dfs_sync_fstat(struct dfs_file *f, struct stat *st_r)
{
	struct dfs_result res;
	int ret = file_sync(f, DFS_OP_FSTAT, NULL, NULL, 0, 0, &res);

	if (ret == 0)
		*st_r = res.st;
	return ret;
}

int dfs_sync_try_lock(struct dfs_file *f)
{
	struct dfs_result res;

	return file_sync(f, DFS_OP_TRY_LOCK, NULL, NULL, 0, 0, &res);
}

int dfs_sync_unlock(struct dfs_file *f)
{
	struct dfs_result res;

	return file_sync(f, DFS_OP_UNLOCK, NULL, NULL, 0, 0, &res);
}

int dfs_sync_close(struct dfs_file *f)
{
	struct dfs_result res;

	if (dfs_on_worker()) {
		/* inline: the handle must still leave the fs's list, so
		 * this goes through the queue without waiting for it */
		dfs_close(f, NULL, NULL);
		return 0;
	}
	return file_sync(f, DFS_OP_CLOSE, NULL, NULL, 0, 0, &res);
}

static int path_sync(struct dfs *fs, enum dfs_op op, const char *path,
		     const char *path2, mode_t mode, struct dfs_result *res)
{
	struct waiter w;
	dfs_req_id id = 0;
	int ret;

	if (dfs_on_worker()) {
		struct dfs_req req = { .op = op, .path = (char *)path,
				       .path2 = (char *)path2, .mode = mode };

		return run_inline(fs, &req, res);
	}
	waiter_init(&w);
	switch (op) {
	case DFS_OP_STAT: id = dfs_stat(fs, path, waiter_cb, &w); break;
	case DFS_OP_UNLINK: id = dfs_unlink(fs, path, waiter_cb, &w); break;
	case DFS_OP_RENAME: id = dfs_rename(fs, path, path2, waiter_cb, &w); break;
	case DFS_OP_MKDIR: id = dfs_mkdir(fs, path, mode, waiter_cb, &w); break;
	case DFS_OP_FSYNC_DIR: id = dfs_fsync_dir(fs, path, waiter_cb, &w); break;
	default: break;
	}
	ret = waiter_wait(&w, id);
	*res = w.res;
	return ret;
}

int dfs_sync_stat(struct dfs *fs, const char *path, struct stat *st_r)
{
	struct dfs_result res;
	int ret = path_sync(fs, DFS_OP_STAT, path, NULL, 0, &res);

	if (ret == 0)
		*st_r = res.st;
	return ret;
}

int dfs_sync_unlink(struct dfs *fs, const char *path)
{
	struct dfs_result res;

	return path_sync(fs, DFS_OP_UNLINK, path, NULL, 0, &res);
}

int dfs_sync_rename(struct dfs *fs, const char *from, const char *to)
{
	struct dfs_result res;

	return path_sync(fs, DFS_OP_RENAME, from, to, 0, &res);
}

int dfs_sync_mkdir(struct dfs *fs, const char *path, mode_t mode)
{
	struct dfs_result res;

	return path_sync(fs, DFS_OP_MKDIR, path, NULL, mode, &res);
}

int dfs_sync_fsync_dir(struct dfs *fs, const char *path)
{
	struct dfs_result res;

	return path_sync(fs, DFS_OP_FSYNC_DIR, path, NULL, 0, &res);
}
