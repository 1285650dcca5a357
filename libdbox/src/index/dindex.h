/* dindex.h - the SQLite index of a store (private to libdbox).
 *
 * The only place of SQL: the store modules call the query functions of
 * dindex-meta.h, dindex-mailbox.h, dindex-msg.h, dindex-file.h,
 * dindex-reindex.h and the ones here, and see no SQLite type.
 *
 * One struct dindex per open store; every thread that touches it gets its
 * own connection with its own cache of prepared statements (WAL mode, so
 * readers never block on the writer).  Writes happen between
 * dindex_write_begin() and dindex_write_commit()/rollback() on the calling
 * thread's connection; BEGIN IMMEDIATE makes writers of all processes
 * queue on SQLite's lock instead of failing halfway with SQLITE_BUSY.
 */
#ifndef DINDEX_H
#define DINDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "dbox/store.h"

#define DINDEX_SCHEMA_VERSION 5

struct dindex;

/* Opens (creating with `create`) the index database at path and migrates
 * its schema.  A read-only index is opened with SQLITE_OPEN_READONLY. */
int dindex_open(const char *path, bool readonly, bool create,
		struct dindex **idx_r, struct dbox_err *err);
/* The same; deferred: commits use synchronous=NORMAL (atomic at once,
 * durable at the next dindex_sync, or when SQLite checkpoints, which
 * syncs the WAL first).  Both check the file's integrity (-EBADMSG if
 * damaged) unless it is unchanged since a check (dindex-stamp.h). */
int dindex_open_ex(const char *path, bool readonly, bool create,
		   bool deferred, struct dindex **idx_r, struct dbox_err *err);
/* The same without the integrity check (the caller checked the file a
 * moment ago). */
int dindex_open_checked(const char *path, bool readonly, bool create,
			bool deferred, struct dindex **idx_r,
			struct dbox_err *err);
/* The check an open makes (quick_check: every page once), whatever the
 * stamp of dindex-stamp.h says: for dboxctl check.  -EBADMSG if damaged. */
int dindex_check(struct dindex *idx, struct dbox_err *err);
/* Page cache of each thread's connection in KiB (0: SQLite's default,
 * 2 MiB): a daemon with a connection per worker thread would otherwise
 * keep 2 MiB per thread.  Call right after opening, from the opener. */
void dindex_set_cache(struct dindex *idx, int kib);
/* The calling thread is done with the index for now (a daemon's
 * request was answered): its connection goes to a pool of idle ones, if
 * it holds no transaction or statement begun, and the thread's next use
 * takes the most recently released one (dindex.c: one connection's page
 * cache serves consecutive requests). */
void dindex_release(struct dindex *idx);
/* Records the message rows this process removes from now on, with their
 * names (dindex-removed.h).  Call right after opening, from the opener
 * (other threads' connections get it as they open). */
void dindex_track_removed(struct dindex *idx);
/* From now on, a message row deleted whose (mailbox, uid) fn says yes
 * for gets an unconfirmed mark in the same statement
 * (dindex-unconfirmed.h).  Call from the opener, before other threads
 * use the index (their connections get it as they open). */
void dindex_set_kept(struct dindex *idx, dbox_store_kept_fn fn, void *ctx);
/* The rows recorded since the last call (*rows_r: free() it); their
 * number, 0 if not tracked, or -ENOMEM. */
int dindex_take_removed(struct dindex *idx, struct dbox_removed **rows_r);
/* Makes every commit that returned before the call durable (one fdatasync
 * of the WAL, shared by concurrent callers); at once if none is pending
 * or the index is not deferred. */
int dindex_sync(struct dindex *idx, struct dbox_err *err);
/* Deferred: copies the WAL into the database file once it has grown
 * past 1,000 pages (a PASSIVE checkpoint, which syncs the WAL first);
 * deferred commits leave this to the caller of this function, so that
 * no commit pays for it (beyond 8,192 pages a commit does it anyway). */
int dindex_checkpoint(struct dindex *idx, struct dbox_err *err);
/* With the power-cut simulator on (fs=powercut:...), SQLite's database
 * and WAL go through it from now on (dindex-powercut.c). */
void dindex_powercut_register(void);
/* Whether some commit is not durable yet. */
bool dindex_dirty(struct dindex *idx);
/* All threads must be done with the index. */
void dindex_close(struct dindex *idx);
const char *dindex_path(const struct dindex *idx);

int dindex_write_begin(struct dindex *idx, struct dbox_err *err);
/* The same for a write that changes nothing a reader shows (the marks
 * of unconfirmed rows): the change counter (dindex_seq) stays, so that
 * followers do not look again for nothing. */
int dindex_write_begin_unseen(struct dindex *idx, struct dbox_err *err);
int dindex_write_commit(struct dindex *idx, struct dbox_err *err);
void dindex_write_rollback(struct dindex *idx);
bool dindex_in_write(struct dindex *idx);

/* Copies into idx (in one write transaction) every row of meta,
 * mailboxes, keywords and messages that can still be read from the
 * damaged index file at `damaged`, skipping what its damage makes
 * unreadable; the file is not changed.  Returns the number of message
 * rows copied or -errno. */
int dindex_salvage(struct dindex *idx, const char *damaged,
		   struct dbox_err *err);

/* Empties every table (reindex builds into a fresh schema). */
int dindex_clear(struct dindex *idx, struct dbox_err *err);

#endif
