/* sweep.h - the start-up sweep of the spool. */
#ifndef DBOXFS_SWEEP_H
#define DBOXFS_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

struct dboxfs;

/* What a killed daemon left in the spool (see sweep.c): removes the files
 * of deliveries that committed before it unlinked them, commits the files
 * closed in cur/ or new/ whose commit had not happened, and moves the
 * others there (not closed: maybe incomplete) into tmp/.  Before
 * commit_start. */
void sweep_spool(struct dboxfs *fs);
/* What pending/ (dirfd) holds after an unclean stop (flush.h): files of
 * deliveries whose commit may not have been durable.  A file whose
 * message exists with its bytes goes; any other goes back to tmp/ of its
 * mailbox under its name.  Before sweep_spool. */
void sweep_pending(struct dboxfs *fs, int dirfd);
/* A read-only mount runs no sweep: whether `name` in the spool area
 * dirfd of mailbox box is a committed delivery's file, which the next
 * sweep removes (so the mount does not show it). */
bool sweep_ro_leftover(struct dboxfs *fs, int64_t box, int dirfd,
		       const char *name);
/* At a clean stop: the tmp/ files link() delivered stay the client's
 * (their live mark becomes kept, backing.h).  After commit_stop. */
void sweep_keep_linked(struct dboxfs *fs);

#endif
