/* dbox/fs.h - asynchronous file-system layer under libdbox.
 *
 * Every operation is submitted without blocking the caller on disk I/O and
 * completes later through a callback.  The layer is a stack of drivers chosen
 * by one configuration string, outermost first, separated by '/':
 *
 *   "posix"                          plain POSIX calls on a worker pool
 *   "delay:5ms/posix"                every operation waits 5 ms first
 *   "randomfail:eio:1%/posix"        1 % of operations fail with EIO
 *   "randomfail:enospc:5%:write/posix"  5 % of write-type operations fail
 *
 * Threading: callbacks run on a worker thread of the pool (never inside the
 * submitting call), exactly once per submitted request, also when the request
 * is cancelled (err = -ECANCELED) or the fs is freed with it in flight.
 * A callback may submit further requests.  All functions here are
 * thread-safe unless a comment says otherwise.
 *
 * Errors: negative errno values.  Functions that can fail at setup time take
 * a `char *errbuf, size_t errlen` pair and write a human-readable reason.
 */
#ifndef DBOX_FS_H
#define DBOX_FS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/stat.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dfs;
struct dfs_file;

/* Identifies one submitted request, for dfs_cancel().  0 is never used. */
typedef uint64_t dfs_req_id;

enum dfs_op {
	DFS_OP_OPEN, DFS_OP_PREAD, DFS_OP_PWRITE, DFS_OP_APPEND, DFS_OP_COMMIT,
	DFS_OP_ROLLBACK, DFS_OP_CLOSE, DFS_OP_TRY_LOCK, DFS_OP_UNLOCK,
	DFS_OP_STAT, DFS_OP_FSTAT, DFS_OP_UNLINK, DFS_OP_RENAME, DFS_OP_FSYNC,
	DFS_OP_TRUNCATE, DFS_OP_MKDIR, DFS_OP_FSYNC_DIR, DFS_OP_READ_FD,
	DFS_OP__COUNT
};

/* Operation classes, used by randomfail's optional filter. */
enum dfs_op_class {
	DFS_CLASS_READ = 1,   /* open (read-only), pread, stat, fstat */
	DFS_CLASS_WRITE = 2,  /* open for writing, pwrite, append, truncate, mkdir */
	DFS_CLASS_SYNC = 4,   /* commit, fsync, fsync_dir */
	DFS_CLASS_META = 8,   /* unlink, rename, try_lock */
};

struct dfs_result {
	enum dfs_op op;
	int err;              /* 0 or -errno */
	ssize_t n;            /* bytes read/written; pread: 0 at EOF */
	off_t offset;         /* append: offset the data was written at */
	struct stat st;       /* stat, fstat */
	struct dfs_file *file;/* the file the request was on (open: the new one) */
};

typedef void dfs_callback(void *ctx, const struct dfs_result *res);

struct dfs_settings {
	unsigned int min_workers;  /* kept alive when idle; default 1 */
	unsigned int max_workers;  /* default 64; while all are busy, up to 4
				    * more may start for requests other
				    * than pread/pwrite (a stat must not
				    * wait behind slow reads) */
	unsigned int max_queued;   /* submitters block beyond this; default 4096 */
	unsigned int idle_ms;      /* extra workers exit after this; default 2000 */
	uint64_t random_seed;      /* randomfail; 0 = seed from time */
	/* The blocking wrappers (dfs_sync_*) run a request on the calling
	 * thread when its handle has nothing else in flight, instead of
	 * handing it to a worker and waiting: for callers that wait for
	 * each call anyway (a single-threaded tool, a FUSE daemon's request
	 * threads), where that hand-over (two context switches per call) is
	 * most of the cost of a small read or write on a busy machine. */
	bool sync_inline;
};

/* Create an fs from a configuration string (NULL or "" means "posix").
 * Returns 0, or -EINVAL with a clear reason in errbuf for a bad string. */
int dfs_new(const char *config, const struct dfs_settings *set,
	    struct dfs **fs_r, char *errbuf, size_t errlen);

/* Check a configuration string without creating anything. */
int dfs_config_check(const char *config, char *errbuf, size_t errlen);

/* Stop the fs: queued requests complete with -ECANCELED, running ones finish,
 * every callback runs exactly once, then all workers are joined and memory
 * is released.  Files still open are closed.  Must not be called from a
 * callback. */
void dfs_free(struct dfs *fs);

/* Cancel one request.  If it has not started it completes with -ECANCELED;
 * if it is running or done, nothing happens.  Returns true if it was
 * cancelled by this call.  A close is never cancelled (false). */
bool dfs_cancel(struct dfs *fs, dfs_req_id id);

/* ----- files -------------------------------------------------------------
 * dfs_open() never fails at call time: it returns a handle at once and the
 * open itself completes through the callback (res->file is the handle).
 * Requests submitted on a handle before its open finished wait for it and
 * fail with the open's error if it failed.  Reads on one handle may run in
 * parallel; appends, commit, rollback and close run in submission order
 * after every earlier request on that handle.
 *
 * Flags are open(2) flags.  DFS_O_TEMP (with O_WRONLY/O_RDWR) creates the
 * file under a temporary name next to `path`; dfs_commit() makes the data
 * durable and renames it to its final name (`path` or the commit's
 * final_path), dfs_rollback() unlinks the temporary file.  Without
 * DFS_O_TEMP, dfs_rollback() truncates the file back to its size at open
 * (or at its last dfs_commit()).
 */
#define DFS_O_TEMP 0x40000000

struct dfs_file *dfs_open(struct dfs *fs, const char *path, int flags,
			  mode_t mode, dfs_callback *cb, void *ctx);

/* Wrap an already open descriptor (ownership passes to the fs). */
struct dfs_file *dfs_file_from_fd(struct dfs *fs, int fd, const char *path);

dfs_req_id dfs_pread(struct dfs_file *f, void *buf, size_t len, off_t off,
		     dfs_callback *cb, void *ctx);
/* A read whose bytes never pass through a buffer of ours: once the file is
 * open, fn(arg, fd, len, off) runs on a worker and moves the bytes itself
 * (a FUSE server splices them into its reply).  fn returns the bytes it
 * moved or -errno; that becomes res->n or res->err.  A read for the
 * drivers (delay, randomfail:...:read); fn does not run if the request
 * fails before it (res->err then says why). */
typedef ssize_t dfs_fd_reader(void *arg, int fd, size_t len, off_t off);
dfs_req_id dfs_read_fd(struct dfs_file *f, size_t len, off_t off,
		       dfs_fd_reader *fn, void *arg, dfs_callback *cb,
		       void *ctx);
dfs_req_id dfs_pwrite(struct dfs_file *f, const void *buf, size_t len,
		      off_t off, dfs_callback *cb, void *ctx);
/* Write at the current end of the file; res->offset says where. */
dfs_req_id dfs_append(struct dfs_file *f, const void *buf, size_t len,
		      dfs_callback *cb, void *ctx);
dfs_req_id dfs_truncate(struct dfs_file *f, off_t len,
			dfs_callback *cb, void *ctx);
/* Data durable (fdatasync); with DFS_O_TEMP also rename to final_path
 * (NULL = the path given to dfs_open) and fsync the directory. */
dfs_req_id dfs_commit(struct dfs_file *f, const char *final_path,
		      dfs_callback *cb, void *ctx);
dfs_req_id dfs_rollback(struct dfs_file *f, dfs_callback *cb, void *ctx);
dfs_req_id dfs_fsync(struct dfs_file *f, dfs_callback *cb, void *ctx);
dfs_req_id dfs_fstat(struct dfs_file *f, dfs_callback *cb, void *ctx);
/* flock(LOCK_EX|LOCK_NB): err = -EWOULDBLOCK when someone else holds it. */
dfs_req_id dfs_try_lock(struct dfs_file *f, dfs_callback *cb, void *ctx);
dfs_req_id dfs_unlock(struct dfs_file *f, dfs_callback *cb, void *ctx);
/* Close after every earlier request on the handle; the handle is invalid
 * once the callback has run (cb may be NULL). */
dfs_req_id dfs_close(struct dfs_file *f, dfs_callback *cb, void *ctx);

/* The descriptor, once the open completed successfully; -1 before.  For
 * zero-copy replies (splice) by the caller; do not close it. */
int dfs_file_fd(const struct dfs_file *f);
const char *dfs_file_path(const struct dfs_file *f);

/* ----- paths ------------------------------------------------------------ */
dfs_req_id dfs_stat(struct dfs *fs, const char *path,
		    dfs_callback *cb, void *ctx);
dfs_req_id dfs_unlink(struct dfs *fs, const char *path,
		      dfs_callback *cb, void *ctx);
dfs_req_id dfs_rename(struct dfs *fs, const char *from, const char *to,
		      dfs_callback *cb, void *ctx);
dfs_req_id dfs_mkdir(struct dfs *fs, const char *path, mode_t mode,
		     dfs_callback *cb, void *ctx);
dfs_req_id dfs_fsync_dir(struct dfs *fs, const char *path,
			 dfs_callback *cb, void *ctx);

/* ----- blocking convenience wrappers (for tools and tests) ---------------
 * Submit and wait for completion; return the result's err (0 or -errno),
 * with bytes in *n_r where given.  Never call these from a callback. */
int dfs_sync_open(struct dfs *fs, const char *path, int flags, mode_t mode,
		  struct dfs_file **file_r);
int dfs_sync_pread(struct dfs_file *f, void *buf, size_t len, off_t off,
		   size_t *n_r);
int dfs_sync_pwrite(struct dfs_file *f, const void *buf, size_t len,
		    off_t off);
int dfs_sync_append(struct dfs_file *f, const void *buf, size_t len,
		    off_t *offset_r);
int dfs_sync_truncate(struct dfs_file *f, off_t len);
int dfs_sync_commit(struct dfs_file *f, const char *final_path);
int dfs_sync_rollback(struct dfs_file *f);
int dfs_sync_fsync(struct dfs_file *f);
int dfs_sync_fstat(struct dfs_file *f, struct stat *st_r);
int dfs_sync_try_lock(struct dfs_file *f);
int dfs_sync_unlock(struct dfs_file *f);
int dfs_sync_close(struct dfs_file *f);
int dfs_sync_stat(struct dfs *fs, const char *path, struct stat *st_r);
int dfs_sync_unlink(struct dfs *fs, const char *path);
int dfs_sync_rename(struct dfs *fs, const char *from, const char *to);
int dfs_sync_mkdir(struct dfs *fs, const char *path, mode_t mode);
int dfs_sync_fsync_dir(struct dfs *fs, const char *path);

/* ----- statistics, for tests and benchmarks ----------------------------
 * queued: requests submitted and not started yet (waiting for their turn
 * on a handle or in the pool); this is what max_queued bounds, except for
 * requests submitted from callbacks, which never block. */
struct dfs_stats {
	uint64_t submitted, completed, cancelled, failed;
	unsigned int workers, workers_peak, queued, queued_peak;
	uint64_t injected;    /* failures made up by randomfail layers */
};
void dfs_get_stats(struct dfs *fs, struct dfs_stats *st_r);

/* ----- the power-cut simulator (fs=powercut:..., for tests) -------------
 * Files written outside the layer (a daemon's spool) go through it with
 * these: dfs_powercut_write/truncate/sync before the call, then
 * dfs_powercut_done (synced: the sync succeeded) after it.  They are for
 * callers that checked dfs_powercut_active(); see fs/dfs-powercut.h. */
bool dfs_powercut_active(void);
void dfs_powercut_write(int fd, off_t off, size_t len);
void dfs_powercut_truncate(int fd, off_t size);
void dfs_powercut_sync(int fd);
void dfs_powercut_done(int fd, bool synced);
uint64_t dfs_powercut_events(void);

#ifdef __cplusplus
}
#endif
#endif
