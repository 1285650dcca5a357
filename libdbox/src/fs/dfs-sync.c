/* dfs-sync.c - the blocking wrappers: submit, then wait for the callback.
 *
 * fs.h says not to call them from a callback; if one does anyway, the
 * wait tells the pool that its worker is blocked, so the pool may start
 * another worker for the request waited for instead of deadlocking, and
 * the request keeps its place in its handle's order. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "dbox/fs.h"
#include "fs/dfs-pool.h"
#include "fs/dfs-private.h"

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct dfs_result res;
};

static void waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
}

static void waiter_cb(void *ctx, const struct dfs_result *res)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->res = *res;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Waits for the request `id` (0: it could not be submitted) and returns
 * its error; the result stays in w->res. */
static int waiter_wait(struct waiter *w, dfs_req_id id)
{
	if (id == 0) {
		w->res.err = -ENOMEM;
	} else {
		dfs_pool_block_begin();
		pthread_mutex_lock(&w->lock);
		while (!w->done)
			pthread_cond_wait(&w->cond, &w->lock);
		pthread_mutex_unlock(&w->lock);
		dfs_pool_block_end();
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	return w->res.err;
}

/* The submission that follows may run on this thread (sync_inline); the
 * flag is cleared again whether or not anything was submitted. */
static void here_begin(void)
{
	dfs_submit_here(true);
}

static dfs_req_id here_end(dfs_req_id id)
{
	dfs_submit_here(false);
	return id;
}

/* `call` submits with waiter_cb and &w; the result is left in w. */
#define SYNC(w, call) (waiter_init(&(w)), here_begin(), \
		       waiter_wait(&(w), here_end(call)))

int dfs_sync_open(struct dfs *fs, const char *path, int flags, mode_t mode,
		  struct dfs_file **file_r)
{
	struct waiter w;
	struct dfs_file *f;
	int ret;

	waiter_init(&w);
	here_begin();
	f = dfs_open(fs, path, flags, mode, waiter_cb, &w);
	here_end(0);
	/* dfs_open returns NULL only when nothing was submitted */
	ret = waiter_wait(&w, f != NULL ? 1 : 0);
	if (ret < 0) {
		if (f != NULL)
			dfs_sync_close(f);
		return ret;
	}
	*file_r = f;
	return 0;
}

int dfs_sync_pread(struct dfs_file *f, void *buf, size_t len, off_t off,
		   size_t *n_r)
{
	struct waiter w;
	int ret = SYNC(w, dfs_pread(f, buf, len, off, waiter_cb, &w));

	if (ret == 0 && n_r != NULL)
		*n_r = (size_t)w.res.n;
	return ret;
}

int dfs_sync_pwrite(struct dfs_file *f, const void *buf, size_t len,
		    off_t off)
{
	struct waiter w;

	return SYNC(w, dfs_pwrite(f, buf, len, off, waiter_cb, &w));
}

int dfs_sync_append(struct dfs_file *f, const void *buf, size_t len,
		    off_t *offset_r)
{
	struct waiter w;
	int ret = SYNC(w, dfs_append(f, buf, len, waiter_cb, &w));

	if (ret == 0 && offset_r != NULL)
		*offset_r = w.res.offset;
	return ret;
}

int dfs_sync_truncate(struct dfs_file *f, off_t len)
{
	struct waiter w;

	return SYNC(w, dfs_truncate(f, len, waiter_cb, &w));
}

int dfs_sync_commit(struct dfs_file *f, const char *final_path)
{
	struct waiter w;

	return SYNC(w, dfs_commit(f, final_path, waiter_cb, &w));
}

int dfs_sync_rollback(struct dfs_file *f)
{
	struct waiter w;

	return SYNC(w, dfs_rollback(f, waiter_cb, &w));
}

int dfs_sync_fsync(struct dfs_file *f)
{
	struct waiter w;

	return SYNC(w, dfs_fsync(f, waiter_cb, &w));
}

int dfs_sync_fstat(struct dfs_file *f, struct stat *st_r)
{
	struct waiter w;
	int ret = SYNC(w, dfs_fstat(f, waiter_cb, &w));

	if (ret == 0)
		*st_r = w.res.st;
	return ret;
}

int dfs_sync_try_lock(struct dfs_file *f)
{
	struct waiter w;

	return SYNC(w, dfs_try_lock(f, waiter_cb, &w));
}

int dfs_sync_unlock(struct dfs_file *f)
{
	struct waiter w;

	return SYNC(w, dfs_unlock(f, waiter_cb, &w));
}

int dfs_sync_close(struct dfs_file *f)
{
	struct waiter w;

	return SYNC(w, dfs_close(f, waiter_cb, &w));
}

int dfs_sync_stat(struct dfs *fs, const char *path, struct stat *st_r)
{
	struct waiter w;
	int ret = SYNC(w, dfs_stat(fs, path, waiter_cb, &w));

	if (ret == 0)
		*st_r = w.res.st;
	return ret;
}

int dfs_sync_unlink(struct dfs *fs, const char *path)
{
	struct waiter w;

	return SYNC(w, dfs_unlink(fs, path, waiter_cb, &w));
}

int dfs_sync_rename(struct dfs *fs, const char *from, const char *to)
{
	struct waiter w;

	return SYNC(w, dfs_rename(fs, from, to, waiter_cb, &w));
}

int dfs_sync_mkdir(struct dfs *fs, const char *path, mode_t mode)
{
	struct waiter w;

	return SYNC(w, dfs_mkdir(fs, path, mode, waiter_cb, &w));
}

int dfs_sync_fsync_dir(struct dfs *fs, const char *path)
{
	struct waiter w;

	return SYNC(w, dfs_fsync_dir(fs, path, waiter_cb, &w));
}
