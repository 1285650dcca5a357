/* dbox/save.h - save transactions: many messages, all or none.
 *
 *   dbox_save_begin()              start a transaction
 *   dbox_save_msg_begin()          start a message (into any mailbox)
 *   dbox_save_write[_async]()      its bytes, any number of calls; the size
 *                                  need not be known in advance
 *   dbox_save_msg_finish()         end the message
 *   ... more messages, dbox_save_expunge() of messages to replace ...
 *   dbox_save_commit()             all become visible together:
 *                                  files durable first, then the index
 *                                  (with deferred_sync, a transaction of
 *                                  up to 64 messages replacing none
 *                                  leaves its bytes to dbox_store_sync:
 *                                  its rows are marked unconfirmed)
 *   dbox_save_rollback()           none does
 *
 * Crash safety: until the index commit, no message of the transaction is
 * visible, and what it wrote is either in its owner's scratch directory
 * (sdbox), behind the committed end of an m.N file (mdbox), or named in
 * the owner's journal; the next dbox_store_open() by anyone removes it.
 * After the index commit every message is complete on disk.
 *
 * Size: memory and open descriptors do not grow with the number of
 * messages (their state is spooled to an unlinked file; sdbox files are
 * made durable and closed in batches; an m.N file the transaction filled
 * is made durable and closed).
 *
 * Threading: one transaction is used by one thread at a time (async
 * completions may run on fs workers; do not call other functions on the
 * transaction until they ran).  Different transactions may run in
 * parallel on one store; they serialise only inside the index commit.
 */
#ifndef DBOX_SAVE_H
#define DBOX_SAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dbox/store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dbox_save_txn;

struct dbox_save_opts {
	int64_t mailbox_id;
	int64_t received;       /* Unix seconds; < 0 = now */
	int64_t received_ns;
	const char *guid;       /* NULL = generate; no LF */
	const char *base;       /* maildir base name; NULL = derive */
	uint32_t flags;         /* DBOX_FLAG_* */
	uint32_t keywords;      /* bitmask over the mailbox's keywords */
	bool in_new;
	bool new_info;          /* in new/ named BASE:2,FLAGS (dbox_msg) */
	uint32_t mode;          /* st_mode to show; 0: the default */
	/* the uid it gets, reserved before with dbox_mailbox_reserve_uid
	 * in this mailbox (the maildir view shows a file's inode number,
	 * derived from the uid, before it is a message); 0: one allocated
	 * at the commit */
	uint32_t uid;
	/* the message was listed in its directory already (a file created in
	 * cur/ or new/, committed at its close): that directory's change
	 * time (dbox_mailbox change_*_ns) stays as it is */
	bool keep_dir_mtime;
	/* expected size if known, else 0: mdbox then keeps files below the
	 * rotate size and gives a message at least that big a file of its
	 * own, as Dovecot does */
	uint64_t size_hint;
};

int dbox_save_begin(struct dbox_store *store, struct dbox_save_txn **txn_r,
		    struct dbox_err *err);

int dbox_save_msg_begin(struct dbox_save_txn *txn,
			const struct dbox_save_opts *opts,
			struct dbox_err *err);
int dbox_save_write(struct dbox_save_txn *txn, const void *data, size_t len,
		    struct dbox_err *err);
/* The fs layer appends in submission order; cb runs on a worker thread
 * with 0 or -errno.  `data` must stay valid until cb ran. */
typedef void dbox_save_cb(void *ctx, int ret);
void dbox_save_write_async(struct dbox_save_txn *txn, const void *data,
			   size_t len, dbox_save_cb *cb, void *ctx);
int dbox_save_msg_finish(struct dbox_save_txn *txn, struct dbox_err *err);

/* Whole message from a descriptor, read to EOF from its current offset. */
int dbox_save_add_fd(struct dbox_save_txn *txn, int fd,
		     const struct dbox_save_opts *opts, struct dbox_err *err);

/* Expunge an existing message in the same transaction (a delivery that
 * replaces a name). */
int dbox_save_expunge(struct dbox_save_txn *txn, int64_t mailbox_id,
		      uint32_t uid, struct dbox_err *err);

unsigned int dbox_save_count(const struct dbox_save_txn *txn);

/* Makes the finished messages' bytes durable now, so that the commit only
 * has the index left to write (a delivery prepares its message when the
 * client fsyncs the file, and commits at the rename).  Nothing becomes
 * visible; a crash or rollback removes the bytes as before. */
int dbox_save_sync(struct dbox_save_txn *txn, struct dbox_err *err);

/* Index-only state of finished message i (in the order added) may still
 * change before the commit: flags, keywords, new/ or cur/.  Its mailbox
 * and maildir name are in the record and cannot. */
int dbox_save_set_state(struct dbox_save_txn *txn, unsigned int i,
			uint32_t flags, uint32_t keywords,
			enum dbox_maildir_dir dir, struct dbox_err *err);
/* Likewise the st_mode it is to show (0: the default). */
int dbox_save_set_mode(struct dbox_save_txn *txn, unsigned int i,
		       uint32_t mode, struct dbox_err *err);

/* Moves every message and expunge of src, finished, into dst after dst's
 * own, and frees src; on failure (out of memory) both are left as they
 * were, unless src has more messages than a transaction keeps in memory
 * (64): then some may have moved (dst stays usable, src is to be rolled
 * back).  Lets transactions prepared apart commit as one (group commit). */
int dbox_save_merge(struct dbox_save_txn *dst, struct dbox_save_txn *src,
		    struct dbox_err *err);

/* Commits and frees txn.  uids_r (may be NULL) receives the uid of each
 * message in the order they were added (dbox_save_count entries).  On
 * failure nothing is visible and txn is freed as by rollback. */
int dbox_save_commit(struct dbox_save_txn *txn, uint32_t *uids_r,
		     struct dbox_err *err);
void dbox_save_rollback(struct dbox_save_txn *txn);

#ifdef __cplusplus
}
#endif
#endif
