/* dfs-randomfail.h - the "randomfail:ERROR:PERCENT%[:CLASS]" wrapper:
 * fails that share of the requests (of one class: read, write, sync,
 * meta; see enum dfs_op_class) with ERROR (eio, enospc, eacces, erofs,
 * enomem, eagain, edquot, etimedout) without passing them on, and marks
 * them so the fs can count the failures it injected.  Close, rollback and
 * unlock are in no class and never failed: they are how a caller cleans
 * up after a failure.  The random sequence is seeded from
 * dfs_settings.random_seed, for reproducible runs. */
#ifndef DFS_RANDOMFAIL_H
#define DFS_RANDOMFAIL_H

#include "fs/dfs-layer.h"

dfs_layer_new_fn dfs_randomfail_new;

#endif
