/* dfs-powercut.h - the "powercut:N" wrapper: a power-cut simulator for
 * tests.
 *
 * Every write made since the last sync of its file is volatile: the
 * simulator records what each write overwrites (and the file's size
 * before the first unsynced write) and forgets it when the file is
 * synced.  At the Nth event (a write, truncate or sync, counted over the
 * whole process) the event does not happen: every unsynced write of
 * every file is undone, newest first, and the process ends at once with
 * _exit(DFS_POWERCUT_EXIT), as a power cut would end it.  The next mount
 * then finds exactly what a disk would have after the cut, if it keeps
 * nothing of what was not synced.
 *
 * Through it go: the dbox files of the fs layer (this wrapper), SQLite's
 * database and WAL (a VFS shim, dindex-powercut.c, made the default VFS
 * while the simulator is on), and the files the daemon writes itself
 * (its tmp/ spool: dfs_powercut_* in dbox/fs.h).  Not simulated:
 * directory entries (create, rename, link, unlink and mkdir are durable
 * at once, as if every directory were synced), extended attributes,
 * SQLite's -shm (rebuilt at open), and the few small files libdbox
 * writes without the layer (the sdbox commit journal, uidvalidity
 * markers), which it syncs itself.  A write is undone whole: the model
 * is a disk that drops everything unsynced, not one that tears writes.
 *
 * Arguments: "powercut:N" cuts at event N (N >= 1); "powercut:0" only
 * counts (the count is logged when the process closes the store);
 * "powercut:random:MAX" cuts at an event drawn from 1..MAX with the
 * stack's seed. */
#ifndef DFS_POWERCUT_H
#define DFS_POWERCUT_H

#include "fs/dfs-layer.h"

#define DFS_POWERCUT_EXIT 99

dfs_layer_new_fn dfs_powercut_new;

#endif
