/* dfs-posix.h - the "posix" backend: plain POSIX calls on the worker that
 * runs the request.  Thread-safe: it keeps no state of its own. */
#ifndef DFS_POSIX_H
#define DFS_POSIX_H

#include "fs/dfs-layer.h"

dfs_layer_new_fn dfs_posix_new;

#endif
