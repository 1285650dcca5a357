/* dfs-private.h - requests and file handles of the async fs layer, as the
 * front end (dfs.c) and the drivers (dfs-posix.c, dfs-delay.c,
 * dfs-randomfail.c) see them.
 *
 * Ownership: the front end allocates and frees both.  A request lives from
 * its submission until its callback returned.  A handle lives until its
 * close completed and no request refers to it any more, or until dfs_free.
 *
 * Locking: fields marked [fs] are under the fs's lock and belong to the
 * front end.  Fields marked [drv] are written by drivers on a worker
 * without a lock; the front end's ordering makes that safe: the open
 * writes them before anything else on the handle runs, and later only
 * ordered requests (append, commit, rollback, close...), which run alone
 * on their handle, change them.
 */
#ifndef DFS_PRIVATE_H
#define DFS_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "dbox/fs.h"
#include "fs/dfs-pool.h"

enum dfs_file_state { DFS_FILE_OPENING, DFS_FILE_OPEN, DFS_FILE_FAILED,
	DFS_FILE_CLOSED };

struct dfs_file {
	struct dfs *fs;
	char *path;                 /* as given to dfs_open; immutable */
	/* [drv] */
	int fd;
	char *temp_path;            /* DFS_O_TEMP until commit or rollback */
	bool committed;             /* DFS_O_TEMP: renamed to its final name */
	off_t rollback_size;        /* size at open, then at each commit */
	/* [fs] */
	enum dfs_file_state state;
	int open_err;
	bool closing;               /* close submitted: no fd for callers */
	bool barrier;               /* an ordered request is in the pool */
	unsigned int inflight;      /* dispatched, not completed */
	unsigned int refs;          /* requests not freed yet */
	struct dfs_req *wait_head, *wait_tail;  /* waiting for their turn */
	struct dfs_file *prev, *next;           /* fs->files */
};

/* WAITING on its handle -> QUEUED in the pool -> RUNNING on a worker (or
 * in an asynchronous backend) [-> FINISHING: queued again, only for its
 * completion, after an asynchronous backend finished it]. */
enum dfs_req_state { DFS_REQ_WAITING, DFS_REQ_QUEUED, DFS_REQ_RUNNING,
	DFS_REQ_FINISHING };

struct dfs_req {
	/* what the drivers read; set at submission, immutable after */
	struct dfs *fs;
	enum dfs_op op;
	struct dfs_file *file;      /* NULL for path requests */
	char *path, *path2;         /* owned copies (commit: final path) */
	int flags;
	mode_t mode;
	void *buf;
	const void *cbuf;
	size_t len;
	off_t off;
	dfs_fd_reader *fd_reader;   /* DFS_OP_READ_FD */
	void *fd_reader_arg;
	/* what the drivers write (on the worker running the request) */
	struct dfs_result res;
	bool injected;              /* failed by randomfail on purpose */
	size_t progress;            /* the backend's: bytes done so far */
	/* [fs] */
	dfs_req_id id;
	enum dfs_req_state state;
	bool cancelled;
	bool dispatched;            /* counted in file->inflight */
	int preset_err;             /* complete with this, unexecuted */
	dfs_callback *cb;
	void *ctx;
	struct dfs_pool_job job;    /* in a pool queue (QUEUED) */
	struct dfs_req *wprev, *wnext;  /* file wait list (WAITING) */
	struct dfs_req *hnext;      /* id hash chain */
};

/* dfs.c: the next request this thread submits is a blocking wrapper's,
 * to be run on this thread if the fs has sync_inline and its handle
 * lets it start at once (dfs-sync.c; cleared by every submission). */
void dfs_submit_here(bool on);

#endif
