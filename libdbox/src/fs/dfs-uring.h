/* dfs-uring.h - the "uring" backend: preads, pwrites and fsyncs go to an
 * io_uring and complete without holding a worker while the kernel works
 * on them; everything else runs as in posix, on the worker.  Where
 * io_uring is unavailable (built without liburing, old kernel, disabled by
 * sysctl or seccomp) the whole backend is posix: "uring" is always a valid
 * choice, never an error.
 *
 * Thread-safety: exec() may be called from any number of workers; one
 * thread of the layer's own reaps completions and hands them to the pool
 * (dfs_req_done()), so callbacks still run on workers.  The layer is freed
 * only after every request completed (dfs_free guarantees that). */
#ifndef DFS_URING_H
#define DFS_URING_H

#include "fs/dfs-layer.h"

dfs_layer_new_fn dfs_uring_new;

#endif
