/* dfs-delay.h - the "delay:DURATION" wrapper: every request waits
 * DURATION (us, ms or s) on its worker before going on, as on slow
 * storage; requests running at the same time wait side by side. */
#ifndef DFS_DELAY_H
#define DFS_DELAY_H

#include "fs/dfs-layer.h"

dfs_layer_new_fn dfs_delay_new;

#endif
