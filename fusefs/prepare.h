/* prepare.h - deliveries prepared when the writer syncs the file.
 *
 * The maildir protocol is: write tmp/X, fsync it, rename it into new/ or
 * cur/.  The rename is our durable commit, and the kernel holds one lock
 * per mount over every rename between directories, so whatever the commit
 * does happens one delivery at a time.  When the writer fsyncs a file in
 * tmp/, its bytes are therefore written into the store as an uncommitted
 * record and made durable right then, in parallel with other writers; the
 * rename only has the index left to commit.  A prepared record that is
 * never claimed (the file changed, went away, or was renamed under another
 * name) is rolled back, as a crash would remove it.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef DBOXFS_PREPARE_H
#define DBOXFS_PREPARE_H

#include <pthread.h>
#include <stdint.h>

#include "dbox/save.h"

/* In struct dboxfs: the prepared deliveries, newest first. */
struct prepare_list {
	pthread_mutex_t lock;
	struct prepared *head;
	unsigned int count;
};

struct dboxfs;

/* The writer fsyncs the tmp/ file `ino` (open as fd) of mailbox box,
 * whose maildir base name would be `base`: writes and syncs its record.
 * Returns 0 or -errno (nothing prepared; the caller syncs the file). */
int prepare_fsync(struct dboxfs *fs, uint64_t ino, int fd, int64_t box,
		  const char *base);

/* The file may have changed: forget what was prepared for it. */
void prepare_drop(struct dboxfs *fs, uint64_t ino);

/* At the commit of file `ino` (open as fd) as message `base` of box: the
 * prepared transaction holding exactly its current bytes, now the
 * caller's (commit, merge or roll it back), or NULL. */
struct dbox_save_txn *prepare_take(struct dboxfs *fs, uint64_t ino, int fd,
				   int64_t box, const char *base);

/* Rolls back everything still prepared (at unmount). */
void prepare_clear(struct dboxfs *fs);

#endif
