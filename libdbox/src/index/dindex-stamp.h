/* dindex-stamp.h - remembers that an index file passed its check.
 *
 * quick_check reads every page of the index: 40 s from a cold cache for
 * the 300 MB index of a million messages, at every mount.  A file that
 * nothing has written since it passed needs no new check.  At a clean
 * close that left no WAL, the file's identity and times go into
 * PATH-checked; an open that finds the file with exactly those (device,
 * inode, size, mtime and ctime in ns: every write, and every copy or
 * rename over it, changes ctime, which no program can set) and no WAL
 * skips the check.  What this gives up: damage below the file system (a
 * bad sector, a bit flipped on the disk) is found when SQLite reads that
 * page (the read fails as corrupt), not at the mount.  A stamp is never
 * removed: once the file changes it no longer matches, and another
 * program's open must not change the control directory.
 */
#ifndef DINDEX_STAMP_H
#define DINDEX_STAMP_H

#include <stdbool.h>

/* True if path is unchanged since dindex_stamp_write and has no WAL. */
bool dindex_stamp_valid(const char *path);
/* Records path as checked; does nothing while a WAL is beside it (its
 * pages may still reach the file).  Failures only cost the next check. */
void dindex_stamp_write(const char *path);

#endif
