/* dindex-private.h - what the index modules share (never included
 * outside libdbox/src/index): connections, the statement cache, errors.
 * Every statement is prepared once per connection and cached by its id;
 * its SQL text lives in the module that runs it. */
#ifndef DINDEX_PRIVATE_H
#define DINDEX_PRIVATE_H

#include <sqlite3.h>
#include <stdbool.h>

#include "index/dindex.h"
#include "store/dbox-msg-storage.h"

/* The stored columns of a message row, in the order of struct dbox_msg
 * as dindex-msg.c reads and binds them (name is generated from them). */
#define DINDEX_MSG_COLS "mailbox_id, uid, guid, base, file_id, offset, " \
	"hdr_size, body_size, rec_size, size, vsize, compression, received, " \
	"received_ns, saved, flags, keywords, in_new, new_info, mode"

/* A copy of SQLite's WAL-index header (the first of its two copies in
 * the -shm file, walformat.html): iChange (one more at every commit),
 * mxFrame, the salts and checksums.  Two equal headers mean the same
 * content, which is how SQLite itself decides whether a connection's
 * page cache is still good. */
struct dindex_walhdr {
	unsigned char b[48];
};
/* A mailbox row and the header of the state it was read in. */
#define DINDEX_BOXES 16
struct dindex_box_seen {
	int64_t id;               /* 0: empty */
	struct dindex_walhdr hdr;
	struct dbox_mailbox row;
};
/* dindex.c: the mailbox row of id as remembered, if the index is still
 * in the state it was read in (true); *hdr_r, *hdr_ok_r: the state now,
 * for dindex_box_read after the caller's read of the row. */
bool dindex_box_get(struct dindex *idx, int64_t id, struct dbox_mailbox *row_r,
		    struct dindex_walhdr *hdr_r, bool *hdr_ok_r);
/* The row was read from the index (hdr, hdr_ok: from dindex_box_get
 * before the read); inside a write transaction, it is remembered when
 * the transaction commits with nothing written after the read. */
void dindex_box_read(struct dindex *idx, const struct dbox_mailbox *row,
		     const struct dindex_walhdr *hdr, bool hdr_ok);

enum dindex_stmt {
	/* dindex.c, dindex-meta.c */
	DSTMT_BEGIN,
	DSTMT_COMMIT,
	DSTMT_SEQ_BUMP,
	DSTMT_META_GET,
	DSTMT_META_SET,
	/* dindex-mailbox.c */
	DSTMT_MBOX_BY_NAME,
	DSTMT_MBOX_BY_ID,
	DSTMT_MBOX_LIST,
	DSTMT_MBOX_INSERT,
	DSTMT_MBOX_NEXT_UID,
	DSTMT_MBOX_SET_NEXT_UID,
	DSTMT_MBOX_RAISE_NEXT_UID,
	DSTMT_MBOX_TOUCH,
	DSTMT_MBOX_HAS_CHILDREN,
	DSTMT_MBOX_DELETE,
	DSTMT_MBOX_RENAME,
	DSTMT_MBOX_RENAME_TREE,
	DSTMT_MBOX_SET_SUBDIRS,
	DSTMT_MBOX_RESYNC,
	DSTMT_MSG_DELETE_BOX,
	DSTMT_KW_DELETE_BOX,
	DSTMT_KW_LIST,
	DSTMT_KW_INSERT,
	/* dindex-msg.c */
	DSTMT_MSG_GET,
	DSTMT_MSG_BY_BASE,
	DSTMT_MSG_BY_NAME,
	DSTMT_MSG_LIST,
	DSTMT_MSG_LIST_NEW,
	DSTMT_MSG_COUNT,
	DSTMT_MSG_COUNT_NEW,
	DSTMT_MSG_TOTAL,
	DSTMT_MSG_INSERT,
	DSTMT_MSG_DELETE,
	DSTMT_MSG_SET_FLAGS,
	DSTMT_MSG_SET_NAME,
	DSTMT_MSG_SET_INFO,
	DSTMT_MSG_SET_RECEIVED,
	DSTMT_MSG_SET_MODE,
	DSTMT_MSG_SET_UID,
	/* dindex-file.c */
	DSTMT_FILE_GET,
	DSTMT_FILE_INSERT,
	DSTMT_FILE_SET_SIZE,
	DSTMT_FILE_LIST,
	DSTMT_FILE_NEWEST,
	DSTMT_FILE_DELETE,
	DSTMT_FILE_SEAL,
	DSTMT_FILE_REFERENCED,
	DSTMT_FILE_MOVE_REC,
	DSTMT_FILE_REFS_AT,
	DSTMT_FILE_MSG_AT,
	DSTMT_PURGE_MARKS,
	DSTMT_PURGE_UNMARK,
	/* dindex-unconfirmed.c */
	DSTMT_UNCONF_ADD,
	DSTMT_UNCONF_MAX,
	DSTMT_UNCONF_LIST,
	DSTMT_UNCONF_CONFIRM,
	DSTMT_UNCONF_CARRY,
	DSTMT_UNCONF_HAS,
	DSTMT_UNCONF_GONE,
	DSTMT_UNCONF_FORGET,
	/* dindex-owed.c */
	DSTMT_OWED_ADD,
	DSTMT_OWED_DELETE,
	DSTMT_OWED_FORGET,
	DSTMT_OWED_LIST,
	DSTMT_OWED_ANY,
	DSTMT__COUNT
};

/* The calling thread's connection, opened on first use; NULL on failure
 * (err filled). */
sqlite3 *dindex_db(struct dindex *idx, struct dbox_err *err);
/* A reset prepared statement of this thread's connection: prepared on
 * the first use of id on this connection, then cached (sql must be the
 * same text every time). */
sqlite3_stmt *dindex_prepare(struct dindex *idx, enum dindex_stmt id,
			     const char *sql, struct dbox_err *err);

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

/* Steps a statement that returns at most one row: 0 with row(st, out)
 * called when there is one (out may be NULL: not called), -ENOENT (err
 * not filled) when there is none, else the error named `what`.  Resets
 * it. */
int dindex_fetch_one(struct dindex *idx, sqlite3_stmt *st,
		     void (*row)(sqlite3_stmt *st, void *out), void *out,
		     const char *what, struct dbox_err *err);
/* A read-only connection to the index file at path, opened as an
 * immutable file (no -shm or -wal is made beside it: a look into
 * another mount's index, writing nothing); sqlite3_close it.  0 or
 * -errno. */
int dindex_peek_open(const char *path, sqlite3 **db_r);
/* A text column into buf ("" for NULL). */
void dindex_col_text(sqlite3_stmt *st, int col, char *buf, size_t len);

#endif
