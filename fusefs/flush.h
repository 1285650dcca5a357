/* flush.h - when the view's changes become durable (maildir-view.md 3).
 *
 * The contract is the maildir one, as ext4 keeps it: a rename (delivery,
 * flag change, move) or an unlink is visible and atomic when it returns,
 * and durable when fsync(2) of its directory (or of the message) returns,
 * or within the commit interval (-o commit=SECS, default 1).  So an index
 * commit does not sync the WAL (libdbox's deferred_sync); the flusher
 * thread syncs it for all waiting fsyncs at once (group commit), and
 * every commit= seconds if something is pending; it also copies the WAL
 * into the index file once it has grown (dbox_store_checkpoint, looked
 * at every 100 ms), which SQLite would otherwise do inside whichever
 * request's commit crossed 1,000 pages.  -o sync keeps the
 * stricter promise of before: every commit is durable when it returns.
 *
 * Atomicity across a power cut (what is durable in which order):
 * - a delivery's index row is committed without syncing its dbox
 *   record (a file fsynced in tmp/ had its record synced then,
 *   prepare.c): the row is marked unconfirmed in the same transaction,
 *   and every flush (dbox_store_sync) fdatasyncs the marked records
 *   (and an sdbox file's directory) before it syncs the index, then
 *   deletes the marks; the next read-write open after a power cut
 *   verifies the records of the rows still marked and drops a row whose
 *   record is not intact, so that no row points at lost bytes (SQLite's
 *   WAL keeps a commit whole or drops it, checksummed frames);
 *   -o sync: the record is synced before the commit, nothing is marked;
 *   a marked message renamed onto another message's name has its
 *   record synced before the one it replaces goes (rename.c,
 *   dbox_msg_sync_record): a cut must not drop it once that one is gone;
 * - the spool file a delivery came from (tmp/X, or a file closed in cur/
 *   or new/) is not removed at the commit but moved to the pending/
 *   directory beside the spool as "BOX.UID.NAME", and removed only after
 *   the flush that made its commit durable.  At the next start after an
 *   unclean stop, a pending file whose message (BOX, UID) exists with
 *   exactly its bytes, or of its base name (its own bytes, never
 *   synced, may be lost), is removed; so is one whose message was
 *   expunged or moved away after its commit (its unconfirmed mark stays
 *   until the flush has removed the file and fsynced pending/: a cut
 *   keeps or takes the mark with the expunge or move; a move of a
 *   marked message syncs its record first, an open that drops a row
 *   drops its mark; a message delivered from a file fsynced in tmp/ has
 *   no mark, and gets one in the transaction that removes its row while
 *   its file is here, whoever removes it (an expunge or move through
 *   the mount, a followed Dovecot's sync, a reindex, the next start's
 *   resync with Dovecot: flush_kept, dindex_set_kept, sweep_open_opts);
 *   a failed flush lists its files again for that
 *   and for the next flush); a message the follower gives another uid
 *   (Dovecot took ours: flush_renumbered) has its file renamed to it
 *   after that commit, and one whose file still has the old uid (a
 *   kill in between, or the open's resync did it) is known among the
 *   later rows of its mailbox by its name or mtime and its bytes;
 *   a reindex that does not find a row's record again forgets its
 *   marks (the delivery was lost, not expunged); any other goes back
 *   to tmp/ of its
 *   mailbox under NAME (sweep_pending): the delivery was lost with the
 *   power, and its file is where the deliverer left it;
 * - a store file (sdbox u.N, an old m.N of purge) is removed only after
 *   the commit that stopped naming it is durable (libdbox);
 * - unlink of a tmp/ file while commits are pending flushes first: the
 *   file may be a link()ed delivery's only other copy.
 *
 * Thread-safety: every function may be called from any thread; the
 * flusher's lock is a leaf (dboxfs.h). */
#ifndef DBOXFS_FLUSH_H
#define DBOXFS_FLUSH_H

#define FUSE_USE_VERSION 312   /* as dboxfs.h, which includes this */
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* beside the spool, in the store's control directory */
#define FLUSH_PENDING_DIR "pending"

struct dboxfs;
struct flush_waiter;
struct flush_pending;

/* The flusher's state; in struct dboxfs (fs->flush), pending_fd -1 until
 * flush_init. */
struct flush_state {
	pthread_mutex_t lock;              /* waiters, pendings, stop */
	pthread_cond_t cond;
	struct flush_waiter *waiters;      /* fsyncs waiting for a flush */
	struct flush_pending *pendings;    /* spool files in pending/ */
	struct flush_pending *flushing;    /* those a flush took, until
					    * they are gone (flush_kept) */
	bool stop, started;
	pthread_t thread;
	int pending_fd;                    /* pending/ */
	unsigned committing;               /* flush_commit_begin */
	bool taking;                       /* the flusher takes pendings */
};

/* pending/ under the control directory; before flush_start and any
 * thread that removes message rows (their marks: flush_kept) */
int flush_init(struct dboxfs *fs, const char *ctl_dir);
/* The directory fd of pending/ (for the start-up sweep). */
int flush_pending_dirfd(struct dboxfs *fs);
int flush_start(struct dboxfs *fs);
/* A last flush of everything, then the thread ends. */
void flush_stop(struct dboxfs *fs);
/* Replies to req (fsync or fsyncdir) once everything changed before is
 * durable. */
void flush_request(struct dboxfs *fs, fuse_req_t req);
/* After an expunge that committed (unlink, a rename or delivery onto a
 * message): with -o sync it is durable for Dovecot too before the call
 * returns (mdbox: its record's bytes purged from m.N, which otherwise
 * waits for the next flush: dbox_store_purge_expunged). */
void flush_expunged(struct dboxfs *fs);
/* The spool file name in dirfd was committed as message (box, uid):
 * removed once that commit is durable (at once with -o sync). */
void flush_spool_done(struct dboxfs *fs, int dirfd, const char *name,
		      int64_t box, uint32_t uid);
/* Around a commit of deliveries and the moves of their files to
 * pending/ (flush_spool_done): the flusher takes the pending files
 * between two such, never inside one. */
void flush_commit_begin(struct dboxfs *fs);
void flush_commit_end(struct dboxfs *fs);
/* dbox_store_kept_fn: whether message (box, uid)'s spool file is in
 * pending/ (listed, also by a flush that may not have removed it yet):
 * the removal of its row (an expunge, a move, a followed Dovecot's sync,
 * a reindex) then leaves a mark, so that the start-up sweep after a kill
 * -9 removes the file rather than bring it back into tmp/.  ctx: fs. */
bool flush_kept(void *ctx, int64_t box, uint32_t uid);
/* dbox_store_renumbered_fn: the follower gave message (box, old_uid)
 * the uid new_uid (Dovecot took the old one): its pending/ file, if one
 * waits for a flush, is renamed to the new uid and listed under it, so
 * that the removal of its row leaves the mark the sweep looks for
 * (one a running flush took goes with that flush).  ctx: fs. */
void flush_renumbered(void *ctx, int64_t box, uint32_t old_uid,
		      uint32_t new_uid);
/* Lists pending/ file `entry` of message (box, uid) as if a delivery
 * had put it there (the files an earlier daemon left, while the store
 * opens: sweep_open_opts); 0 or -ENOMEM.  clear: forgets every listed
 * file (the files stay). */
int flush_pending_add(struct dboxfs *fs, const char *entry, int64_t box,
		      uint32_t uid);
void flush_pending_clear(struct dboxfs *fs);
/* The pending/ file of message (box, uid) is gone for good: the mark
 * that told it from a lost commit, if the message was removed since
 * (dbox_store_unconfirmed_forget), goes too (box 0: every such mark). */
void flush_forget_removed(struct dboxfs *fs, int64_t box, uint32_t uid);

#endif
