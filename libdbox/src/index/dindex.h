/* dindex.h - the SQLite index of a store (private to libdbox).
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

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "dbox/store.h"

#define DINDEX_SCHEMA_VERSION 2

struct dindex;

enum dindex_stmt {
	DSTMT_META_GET,
	DSTMT_META_SET,
	DSTMT_SEQ_BUMP,
	DSTMT_MBOX_BY_NAME,
	DSTMT_MBOX_BY_ID,
	DSTMT_MBOX_LIST,
	DSTMT_MBOX_INSERT,
	DSTMT_MBOX_NEXT_UID,
	DSTMT_MBOX_SET_NEXT_UID,
	DSTMT_MBOX_TOUCH,
	DSTMT_MBOX_COUNT,
	DSTMT_MBOX_COUNT_NEW,
	DSTMT_MSG_GET,
	DSTMT_MSG_BY_BASE,
	DSTMT_MSG_LIST,
	DSTMT_MSG_LIST_NEW,
	DSTMT_MSG_INSERT,
	DSTMT_MSG_DELETE,
	DSTMT_MSG_SET_FLAGS,
	DSTMT_MSG_SET_BASE,
	DSTMT_MSG_SET_RECEIVED,
	DSTMT_MSG_SET_NEW_INFO,
	DSTMT_MSG_SET_MODE,
	DSTMT_MSG_REFS_AT,
	DSTMT_KW_LIST,
	DSTMT_KW_INSERT,
	DSTMT_FILE_GET,
	DSTMT_FILE_INSERT,
	DSTMT_FILE_SET_SIZE,
	DSTMT_FILE_MAX,
	DSTMT_FILE_LIST,
	/* statements whose SQL text lives in the module that runs them
	 * (dindex_prepare) */
	DSTMT_FILE_NEWEST,
	DSTMT_FILE_DELETE,
	DSTMT_FILE_REFERENCED,
	DSTMT_FILE_MOVE_REC,
	DSTMT_PURGE_MARKS,
	DSTMT_PURGE_UNMARK,
	DSTMT_MBOX_RAISE_NEXT_UID,
	DSTMT_MBOX_RESYNC,
	DSTMT_MSG_DELETE_BOX,
	DSTMT_KW_DELETE_BOX,
	DSTMT_MSG_SET_UID,
	DSTMT_MSG_TOTAL,
	DSTMT__COUNT
};

/* Opens (creating with `create`) the index database at path and migrates
 * its schema.  A read-only index is opened with SQLITE_OPEN_READONLY. */
int dindex_open(const char *path, bool readonly, bool create,
		struct dindex **idx_r, struct dbox_err *err);
/* All threads must be done with the index. */
void dindex_close(struct dindex *idx);
const char *dindex_path(const struct dindex *idx);

/* The calling thread's connection, opened on first use; NULL on failure
 * (err filled). */
sqlite3 *dindex_db(struct dindex *idx, struct dbox_err *err);
/* A reset prepared statement of this thread's connection. */
sqlite3_stmt *dindex_stmt(struct dindex *idx, enum dindex_stmt id,
			  struct dbox_err *err);
/* The same for a statement whose text the caller holds: prepared on the
 * first use of id on this connection, then cached (sql must be the same
 * text every time). */
sqlite3_stmt *dindex_prepare(struct dindex *idx, enum dindex_stmt id,
			     const char *sql, struct dbox_err *err);

int dindex_write_begin(struct dindex *idx, struct dbox_err *err);
int dindex_write_commit(struct dindex *idx, struct dbox_err *err);
void dindex_write_rollback(struct dindex *idx);
bool dindex_in_write(struct dindex *idx);

/* Runs a statement to completion (no rows expected).  Resets it. */
int dindex_step_done(struct dindex *idx, sqlite3_stmt *st,
		     struct dbox_err *err);
/* The same, naming the failed step `what` in the message. */
int dindex_step_what(struct dindex *idx, sqlite3_stmt *st, const char *what,
		     struct dbox_err *err);
/* Executes SQL text (schema, pragmas). */
int dindex_exec(struct dindex *idx, const char *sql, struct dbox_err *err);
/* Maps an SQLite result code to -errno with the connection's message. */
int dindex_error(struct dindex *idx, int rc, const char *what,
		 struct dbox_err *err);

int dindex_meta_get(struct dindex *idx, const char *key, char *buf,
		    size_t buflen, struct dbox_err *err);
int dindex_meta_set(struct dindex *idx, const char *key, const char *value,
		    struct dbox_err *err);
/* Store-wide change sequence: bumped by every write transaction. */
int dindex_seq(struct dindex *idx, uint64_t *seq_r, struct dbox_err *err);

/* Row readers shared by the message queries (column order of MSG_COLS). */
void dindex_row_to_msg(sqlite3_stmt *st, struct dbox_msg *msg);
void dindex_row_to_mailbox(sqlite3_stmt *st, struct dbox_mailbox *box);
int dindex_bind_msg(sqlite3_stmt *st, const struct dbox_msg *msg);

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
