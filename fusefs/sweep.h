/* sweep.h - the start-up sweep of the spool. */
#ifndef DBOXFS_SWEEP_H
#define DBOXFS_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "backing.h"

struct dboxfs;
struct dbox_open_opts;

/* What a killed daemon left in the spool (see sweep.c): removes the files
 * of deliveries that committed before it unlinked them, commits the files
 * closed in cur/ or new/ whose commit had not happened, and moves the
 * others there (not closed: maybe incomplete) into tmp/.  Before
 * commit_start. */
void sweep_spool(struct dboxfs *fs);
/* What pending/ (dirfd) holds after an unclean stop (flush.h): files of
 * deliveries whose commit may not have been durable.  A file whose
 * message exists with its bytes, or was expunged or moved away after
 * its commit, goes; any other goes back to tmp/ of its mailbox under
 * its name.  Then the marks of removed messages go (flush_forget_removed).
 * Before sweep_spool. */
void sweep_pending(struct dboxfs *fs, int dirfd);
/* For the store's read-write open: the rows the open itself removes (a
 * Dovecot tree's resync after Dovecot expunged messages while no daemon
 * ran) of messages whose files a killed daemon left in pending/ leave
 * their marks, as they would while mounted (flush_kept), so that
 * sweep_pending removes those files.  The caller forgets the listed
 * files after the open (flush_pending_clear). */
void sweep_open_opts(struct dboxfs *fs, struct dbox_open_opts *oo);
/* A read-only mount runs no sweep: whether `name` in the spool area
 * dirfd of mailbox box is a committed delivery's file, which the next
 * sweep removes (so the mount does not show it). */
bool sweep_ro_leftover(struct dboxfs *fs, int64_t box, int dirfd,
		       const char *name);
/* What the sweeps above will do, for a read-only mount (sweep-ro.h):
 * whether the file `name` in area cur/ or new/ (dirfd) of mailbox box
 * goes to tmp/ (not closed, not a committed delivery's leftover, a
 * name its close would have committed); */
bool sweep_moves_to_tmp(struct dboxfs *fs, int64_t box,
			enum backing_area area, int dirfd, const char *name);
/* of a pending/ entry "BOX.UID.NAME" (dbox_store_kept_name): whether
 * its message (box, uid) exists with exactly its bytes, or was
 * removed after its commit, or is a later row of box (renumbered) of
 * its name or mtime with exactly its bytes (the entry is removed;
 * otherwise it goes back to tmp/ as NAME). */
bool sweep_pending_done(struct dboxfs *fs, int dirfd, const char *entry,
			int64_t box, uint32_t uid);
/* At a clean stop: the tmp/ files link() delivered stay the client's
 * (their live mark becomes kept, backing.h).  After commit_stop. */
void sweep_keep_linked(struct dboxfs *fs);

#endif
