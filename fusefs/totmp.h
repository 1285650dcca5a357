/* totmp.h - a message renamed back into tmp/. */
#ifndef DBOXFS_TOTMP_H
#define DBOXFS_TOTMP_H

#include <stdbool.h>
#include <stdint.h>

#include "dbox/store.h"

struct dboxfs;

/* rename(2) of message m to `name` in tmp/ of mailbox box (flags: 0 or
 * RENAME_NOREPLACE): the message leaves its mailbox and is an ordinary
 * tmp/ file with its bytes, mode, mtime and inode number from then on,
 * as on a local filesystem.  0 or -errno; on failure nothing changed. */
int totmp_rename(struct dboxfs *fs, const struct dbox_msg *m, int64_t box,
		 const char *name, unsigned int flags);
/* Start-up sweep: `name` in tmp/ (dirfd) of mailbox box is what a daemon
 * killed in the middle of totmp_rename left: finished (the file gets its
 * name, or goes if the message is still there).  false: not such a file. */
bool totmp_sweep(struct dboxfs *fs, int64_t box, int dirfd, const char *name);
/* A read-only mount runs no sweep and writes nothing, yet shows tmp/ as
 * the next read-write mount's sweep will leave it (maildir-view.md
 * section 3: a message or a tmp/ file, never both, never a reserved
 * name).  dirfd: tmp/'s directory (O_PATH).  The name readdir shows for
 * entry `name` (buf, of len >= NAME_MAX + 1, may hold it), or NULL to
 * leave it out. */
const char *totmp_ro_shown(struct dboxfs *fs, int dirfd, const char *name,
			   char *buf,
			   size_t len);
/* The entry that stands for `name` in a lookup (buf may hold it), or
 * NULL: none. */
const char *totmp_ro_backing(struct dboxfs *fs, int dirfd, const char *name,
			     char *buf,
			     size_t len);

#endif
