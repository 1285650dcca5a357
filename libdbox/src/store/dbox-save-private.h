/* dbox-save-private.h - what the save transaction's files share: the
 * transaction and its messages (dbox-save.c builds them, dbox-save-spool.c
 * keeps the finished ones beyond the window, dbox-save-commit.c makes
 * them messages of the store).  Not public. */
#ifndef DBOX_SAVE_PRIVATE_H
#define DBOX_SAVE_PRIVATE_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dbox/format.h"
#include "dbox/fs.h"
#include "dbox/save.h"
#include "dbox/store.h"

struct save_msg {
	int64_t mailbox_id;
	int64_t received, received_ns;
	uint32_t flags, keywords, uid, mode;
	uint32_t preset_uid;      /* dbox_save_opts.uid */
	uint32_t file_id;         /* mdbox: m.N; sdbox: 0 */
	bool in_new, new_info, has_base, keep_dir_mtime;
	bool synced;              /* sdbox: its file is durable */
	char guid[DBOX_GUID_MAX + 1];
	char base[DBOX_NAME_MAX + 1];
	struct dbox_vsize vs;
	uint64_t offset;          /* record start */
	uint64_t end;             /* record end */
	unsigned long long tmp_seq; /* sdbox: owner_dir/<tmp_seq>.dbox */
	struct mdbox_append *app; /* mdbox, while in the window */
	struct dfs_file *file;    /* sdbox: own temp file while open;
				   * mdbox: app->file */
	/* a message small enough is gathered in memory and written as one
	 * record with one write; the bytes so far while staged */
	char *stage;
	size_t stage_len, stage_cap;
	bool staged;
};

#define STAGE_MAX (256u * 1024)

/* Messages kept in memory; also the most sdbox temp files open at once
 * (a transaction of any size fits in a small RLIMIT_NOFILE). */
#define WINDOW 64

/* A spooled message: this, then its guid and base (no NULs). */
struct spool_rec {
	int64_t mailbox_id, received, received_ns;
	uint64_t offset, end, size, vsize, tmp_seq;
	uint32_t flags, keywords, mode, file_id, preset_uid;
	uint16_t guid_len, base_len;
	uint8_t in_new, new_info, has_base, keep_dir_mtime;
};

/* Messages of the transaction per mailbox, and at the commit their uids;
 * a message whose uid the caller reserved (dbox_save_opts.uid) has an
 * entry of its own, with that uid as its range. */
struct save_box {
	int64_t id;
	uint32_t preset;          /* the reserved uid, 0: allocated */
	uint32_t count;
	uint32_t first, next;
};

struct save_expunge {
	int64_t mailbox_id;
	uint32_t uid;
	uint32_t file_id;
	bool in_new;              /* the directory it goes from */
	char path[PATH_MAX];
};

struct dbox_save_txn {
	struct dbox_store *store;
	struct save_msg *msgs;    /* the window: messages spilled..count-1 */
	unsigned int count, cap;
	unsigned int spilled;     /* messages 0..spilled-1 are in the spool */
	FILE *spool;
	struct save_box *boxes;
	unsigned int box_count;
	struct save_expunge *expunges;
	unsigned int expunge_count;
	struct mdbox_append *apps;
	bool writing;             /* msgs[count - 1] is open */

	pthread_mutex_t lock;     /* protects the two fields below */
	pthread_cond_t idle;
	unsigned int in_flight;   /* async appends not completed */
	int async_err;
};

/* dbox-save.c */
void dbox_save_wait_idle(struct dbox_save_txn *txn);
/* The transaction has all its messages finished and no write in flight:
 * 0, or the error of an asynchronous write that failed. */
int dbox_save_settle(struct dbox_save_txn *txn, struct dbox_err *err);
/* Message i of the window (spilled <= i < count). */
struct save_msg *dbox_save_msg_at(struct dbox_save_txn *txn, unsigned int i);
int dbox_save_tmp_path(const struct dbox_save_txn *txn,
		       unsigned long long seq, char *buf, size_t size);
bool dbox_save_is_sdbox(const struct dbox_save_txn *txn);
struct save_box *dbox_save_box_find(struct dbox_save_txn *txn, int64_t id,
				    uint32_t preset);
int dbox_save_box_add(struct dbox_save_txn *txn, int64_t id, uint32_t preset,
		      uint32_t n);
int dbox_save_msg_alloc(struct dbox_save_txn *txn, struct save_msg **m_r,
			struct dbox_err *err);

/* dbox-save-spool.c */
/* The window is full: its files are made durable and closed, and the
 * messages go to the spool. */
int dbox_save_spill(struct dbox_save_txn *txn, struct dbox_err *err);
/* Calls fn for messages 0..limit-1 in order, spooled ones as copies. */
typedef int dbox_save_msg_fn(struct dbox_save_txn *txn, struct save_msg *m,
			     unsigned int i, void *ctx, struct dbox_err *err);
int dbox_save_each_msg(struct dbox_save_txn *txn, unsigned int limit,
		       dbox_save_msg_fn *fn, void *ctx, struct dbox_err *err);

/* dbox-save-commit.c */
/* fdatasync every file of the window (and of the m.N appends if apps). */
int dbox_save_sync_files(struct dbox_save_txn *txn, bool apps,
			 struct dbox_err *err);
void dbox_save_txn_free(struct dbox_save_txn *txn, bool rollback);

#endif
