/* dfs-private.h - internals of the async fs layer shared by its modules:
 * requests, file handles, the driver stack and the worker pool. */
#ifndef DFS_PRIVATE_H
#define DFS_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dbox/fs.h"

struct dfs_req;
struct dfs_layer;

struct dfs_worker {
	pthread_t thread;
	struct dfs *fs;
	bool done;              /* exited its loop: join it */
	struct dfs_worker *next;
};

/* One driver of the stack.  exec() performs (or fails, or delays) the
 * request, usually by calling the next layer's exec; it runs on a worker
 * thread and fills req->res. */
struct dfs_layer {
	const char *name;
	void (*exec)(struct dfs_layer *layer, struct dfs_req *req);
	void (*free)(struct dfs_layer *layer);
	struct dfs_layer *next;
};

enum dfs_file_state { FILE_OPENING, FILE_OPEN, FILE_FAILED, FILE_CLOSED };

struct dfs_file {
	struct dfs *fs;
	char *path;             /* as given to dfs_open */
	char *temp_path;        /* DFS_O_TEMP: where the data is until commit */
	int flags;
	int fd;
	off_t size_at_open;     /* rollback of a non-temp file */
	enum dfs_file_state state;
	int open_err;
	unsigned int inflight;  /* dispatched, not completed */
	unsigned int refs;      /* requests not completed (any state) */
	struct dfs_req *wait_head, *wait_tail;  /* waiting for order */
	bool close_queued;
	struct dfs_file *prev, *next;           /* fs->files */
};

enum dfs_req_state { REQ_WAITING, REQ_QUEUED, REQ_RUNNING };

struct dfs_req {
	dfs_req_id id;
	enum dfs_op op;
	enum dfs_req_state state;
	bool cancelled;
	bool counted;           /* in its file's inflight count */
	struct dfs_file *file;
	char *path, *path2;
	int flags;
	mode_t mode;
	void *buf;
	const void *cbuf;
	size_t len;
	off_t off;
	dfs_callback *cb;
	void *ctx;
	struct dfs_result res;
	struct dfs_req *qnext;             /* pool queue or file wait list */
	struct dfs_req *lprev, *lnext;     /* fs->live */
};

struct dfs {
	struct dfs_layer *top;
	struct dfs_settings set;

	pthread_mutex_t lock;   /* everything below */
	pthread_cond_t work;    /* workers wait for requests */
	pthread_cond_t room;    /* submitters wait for queue space */
	pthread_cond_t idle;    /* dfs_free waits for live == 0 */
	struct dfs_req *meta_head, *meta_tail;
	struct dfs_req *data_head, *data_tail;
	unsigned int queued;
	struct dfs_req *live;   /* every request not completed yet */
	unsigned int live_count;
	struct dfs_file *files;
	dfs_req_id next_id;
	unsigned int workers, idle_workers, exited;
	bool stopping;
	struct dfs_worker *worker_list;  /* for joining */
	struct dfs_stats stats;
};

/* dfs-config.c */
int dfs_stack_build(const char *config, uint64_t seed, struct dfs_layer **top_r,
		    char *errbuf, size_t errlen);
void dfs_stack_free(struct dfs_layer *top);
enum dfs_op_class dfs_op_class_of(const struct dfs_req *req);

/* dfs-posix.c: the bottom layer */
struct dfs_layer *dfs_posix_new(void);

/* dfs-pool.c */
int dfs_pool_start(struct dfs *fs);
/* Queues a runnable request (fs->lock held); may start a worker. */
void dfs_pool_enqueue(struct dfs *fs, struct dfs_req *req);
void dfs_pool_stop(struct dfs *fs);
/* True on a worker thread of any fs (callbacks must not block on the
 * pool they run on). */
bool dfs_on_worker(void);

/* dfs.c: a request finished (or was cancelled): callback, ordering of its
 * file, bookkeeping.  Called on a worker thread without fs->lock. */
void dfs_req_complete(struct dfs *fs, struct dfs_req *req);
/* Runs a request through the stack (no locks held). */
void dfs_req_execute(struct dfs *fs, struct dfs_req *req);

#endif
