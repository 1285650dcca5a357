/* store-private.h - what the store modules share (not public). */
#ifndef DBOX_STORE_PRIVATE_H
#define DBOX_STORE_PRIVATE_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "dbox/fs.h"
#include "dbox/store.h"
#include "index/dindex.h"
#include "store/dbox-msg-storage.h"
#include "util/util.h"

/* Our own directory inside a store tree; Dovecot ignores it because every
 * mailbox lives under mailboxes/ and mdbox files under storage/. */
#define DBOX_CTL_DIR "dboxfs"
#define DBOX_INDEX_NAME "index.sqlite"
#define DBOX_MAILBOX_DIR "mailboxes"
#define DBOX_MAIL_DIRNAME "dbox-Mails"
#define DBOX_STORAGE_DIR "storage"
#define DBOX_DIR_MODE 0700
#define DBOX_FILE_MODE 0600

/* Open storage files kept for reads (mdbox m.N and sdbox u.N). */
#define DBOX_FCACHE_SIZE 64

struct dbox_fcache_entry {
	char path[PATH_MAX];
	struct dfs_file *file;    /* NULL = free slot */
	unsigned int users;       /* requests using it right now */
	uint64_t last_use;
};

/* Bytes of storage files read ahead of the messages that need them
 * (dbox-rcache.c): 16 windows of up to 1 MiB, at most 2 MiB in all.  A
 * reader walks a file forwards, so one window at a time serves it; the
 * windows a read of a whole folder left behind were 16 MiB of the
 * daemon's RSS for good (its goal is 32 MiB with a million names
 * cached). */
#define DBOX_RCACHE_SLOTS 16
#define DBOX_RCACHE_WINDOW (1u << 20)
#define DBOX_RCACHE_BUDGET (2u << 20)

struct dbox_rcache_win {
	char path[PATH_MAX];
	uint64_t start;           /* file offset of data[0] */
	size_t len;
	unsigned char *data;      /* NULL = free slot */
	uint64_t last_use;
};

struct dbox_dovecot;
struct dovi_index;
struct mdbox_append;

struct dbox_store {
	char *root;
	char *ctl_dir;            /* ROOT/dboxfs or a cache dir */
	char *scratch_dir;        /* ctl_dir/tmp */
	char *owner_dir;          /* scratch_dir/<pid>.<rand>, flock'ed */
	char *files_dir;          /* ctl_dir/files */
	char *tree_files_dir;     /* ROOT/dboxfs/files of a tree taken over,
				   * mounted read-only; or NULL */
	/* and the mailboxes of the tree's own index there (dbox-tree.c) */
	struct dbox_tree_box *tree_boxes;
	size_t n_tree_boxes;
	char *attachment_dir;     /* Dovecot's mail_attachment_dir, or NULL */
	char *dovecot_index_dir;  /* Dovecot's INDEX= directory, or NULL */
	char dovecot_sep;         /* Dovecot's namespace separator ('/') */
	char *dovecot_prefix;     /* and prefix, or NULL */
	unsigned dovecot_lock_ms; /* dbox_open_opts.dovecot_lock_ms */
	char dovecot_escape;      /* and BROKENCHAR, or '\0' */
	enum dbox_store_format format;
	enum dbox_store_origin origin;
	bool readonly;            /* never write into the dbox tree */
	uint64_t rotate_size;
	struct dindex *idx;
	struct dfs *fs;
	int owner_lock_fd;
	atomic_uint_fast64_t tmp_seq;

	struct dbox_dovecot *dovecot;   /* following Dovecot's indexes */
	atomic_uint_fast64_t purged;  /* bytes dbox_purge_pending reclaimed */
	/* an expunge marked an m.N since the last sync: dbox_store_sync
	 * purges it, so that the expunge is durable for Dovecot too */
	atomic_bool purge_marked;
	/* one purge of marked files at a time (dbox_store_sync,
	 * dbox_store_purge_expunged): a caller that finds another's purge
	 * running waits for it, then lists what is still marked */
	pthread_mutex_t purge_lock;
	/* dbox_open_opts.deferred_sync; unconfirmed: a commit marked rows
	 * unconfirmed since the last dbox_store_sync (dbox-unconfirmed.c) */
	bool deferred;
	atomic_bool unconfirmed;
	/* dbox_store_set_renumbered, or NULL */
	dbox_store_renumbered_fn renumbered;
	void *renumbered_ctx;
	/* read-only: the rows the next read-write open drops (marked, their
	 * record not intact), sorted by (mailbox, uid); the lookups and
	 * listings do not show them (dbox_unconfirmed_hide) */
	struct dbox_hidden_row *hidden;
	size_t nhidden;

	/* the m.N a finished transaction appended to, kept open and locked
	 * for the next one (mdbox-file.c) */
	pthread_mutex_t append_lock;
	struct mdbox_append *append_cache;
	uint32_t append_next_id;  /* above every m.N this store created */
	/* a new m.N of a tree that has Dovecot's map (mdbox-maplock.c):
	 * made one at a time, under the map's lock; the map as last read
	 * there (NULL: not yet, or to be read again whole) */
	pthread_mutex_t maplock_mutex;
	struct dovi_index *maplock_map;

	pthread_mutex_t fcache_lock;
	uint64_t fcache_clock;
	struct dbox_fcache_entry fcache[DBOX_FCACHE_SIZE];

	pthread_mutex_t rcache_lock;
	uint64_t rcache_clock;
	size_t rcache_bytes;      /* the windows' data in all */
	struct dbox_rcache_win rcache[DBOX_RCACHE_SLOTS];
};

/* dbox-unconfirmed.c: rows committed before their record was durable
 * (index/dindex-unconfirmed.h).  flush: makes the records of every
 * marked row durable, then deletes the marks (not yet durable: the
 * caller syncs the index next).  recover: at a read-write open, keeps a
 * marked row whose record is intact (made durable now) and deletes one
 * whose record is not (its sdbox file removed, its m.N sealed against
 * appends), as if its commit had not happened. */
int dbox_unconfirmed_flush(struct dbox_store *store, int64_t upto,
			   struct dbox_err *err);
int dbox_unconfirmed_recover(struct dbox_store *store, struct dbox_err *err);
/* The record of one message made durable now if its row is marked (0:
 * nothing to do); dbox_msg_sync_record. */
int dbox_unconfirmed_sync_one(struct dbox_store *store, int64_t mailbox_id,
			      uint32_t uid, struct dbox_err *err);
/* At a read-only open: the check recover makes, writing nothing; the
 * rows it would drop are kept in store->hidden, so that the read-only
 * view is what the repair will leave.  hidden: whether a row is one of
 * them; hidden_count: how many of them a mailbox has (in_new as
 * dbox_msg_count). */
struct dbox_hidden_row {
	int64_t box;
	uint32_t uid;
	bool in_new;
};
int dbox_unconfirmed_hide(struct dbox_store *store, struct dbox_err *err);
bool dbox_unconfirmed_hidden(const struct dbox_store *store, int64_t box,
			     uint32_t uid);
uint64_t dbox_unconfirmed_hidden_count(const struct dbox_store *store,
				       int64_t box, int in_new);

/* dbox-names.c: mailbox name <-> on-disk storage name (mUTF-7). */
int dbox_name_to_storage(const char *name, char *buf, size_t len);
int dbox_storage_to_name(const char *storage, char *buf, size_t len);
/* ROOT/mailboxes/<storage>/dbox-Mails */
int dbox_mailbox_dir(const struct dbox_store *store, const char *name,
		     char *buf, size_t len);
/* sdbox u.<uid> of a mailbox */
int dbox_sdbox_path(const struct dbox_store *store, const char *name,
		    uint32_t uid, char *buf, size_t len);
int dbox_mdbox_path(const struct dbox_store *store, uint32_t file_id,
		    char *buf, size_t len);

/* dbox-uidvalidity.c: Dovecot's allocation protocol (dbox-format.md 1.7) */
uint32_t dbox_uidvalidity_next(const char *dir);

/* dbox-fcache.c: shared open files for reads.  get returns the handle with
 * a use count held; put releases it. */
int dbox_fcache_get(struct dbox_store *store, const char *path,
		    struct dfs_file **file_r);
void dbox_fcache_put(struct dbox_store *store, struct dfs_file *file);
/* Forget a path (file unlinked or replaced by purge). */
void dbox_fcache_drop(struct dbox_store *store, const char *path);
/* Every cached file below dir (a mailbox renamed away: its paths may
 * name another mailbox's files next). */
void dbox_fcache_drop_dir(struct dbox_store *store, const char *dir);
void dbox_fcache_clear(struct dbox_store *store);

/* dbox-rcache.c: windows of storage files kept in memory, so that one read
 * serves the neighbouring messages of an mdbox m.N (and the read after an
 * open's check).  put takes data (malloc'd) over; get copies
 * [start, start+len) of path into buf if one window holds all of it
 * (0, else -ENOENT); drop forgets path's windows (dir: every path below
 * it), as the fcache does. */
void dbox_rcache_put(struct dbox_store *store, const char *path,
		     uint64_t start, unsigned char *data, size_t len);
int dbox_rcache_get(struct dbox_store *store, const char *path,
		    uint64_t start, size_t len, void *buf);
void dbox_rcache_drop(struct dbox_store *store, const char *path, bool dir);

/* dbox-recover.c: remove what dead writers left (owner dirs in scratch,
 * uncommitted sdbox files, uncommitted bytes at the end of m.N). */
int dbox_recover(struct dbox_store *store, struct dbox_err *err);
/* Owner journal of an sdbox commit in progress. */
int dbox_journal_write(struct dbox_store *store, const int64_t *mailbox_ids,
		       const uint32_t *uids, unsigned int count,
		       struct dbox_err *err);
/* The same with the entries from a generator (true while it gave one):
 * a commit of any size writes its journal in constant memory. */
typedef bool dbox_journal_next_fn(void *ctx, int64_t *mailbox_id_r,
				  uint32_t *uid_r);
int dbox_journal_write_each(struct dbox_store *store,
			    dbox_journal_next_fn *next, void *ctx,
			    struct dbox_err *err);
void dbox_journal_remove(struct dbox_store *store);
/* An m.N this handle appends to, named in its owner directory by a hard
 * link so that recovery after a crash touches that file and no other.
 * mark_new creates m.<id> at path (-EEXIST: the id is taken); mark names
 * an existing one; unmark when the file is released. */
int dbox_owner_mark_new(struct dbox_store *store, uint32_t id,
			const char *path, struct dbox_err *err);
int dbox_owner_mark(struct dbox_store *store, uint32_t id, const char *path,
		    struct dbox_err *err);
void dbox_owner_unmark(struct dbox_store *store, uint32_t id);

/* dbox-mailbox.c */
int dbox_mailbox_insert(struct dbox_store *store, const char *name,
			const char *guid, uint32_t uidvalidity,
			uint32_t next_uid, struct dbox_mailbox *box_r,
			struct dbox_err *err);
/* Marks new/ and/or cur/ of a mailbox changed now (inside a write). */
int dbox_mailbox_touch(struct dbox_store *store, int64_t mailbox_id,
		       bool new_dir, bool cur_dir, struct dbox_err *err);
/* Allocates count uids (inside a write); returns the first. */
int dbox_mailbox_alloc_uids(struct dbox_store *store, int64_t mailbox_id,
			    uint32_t count, uint32_t *first_r,
			    struct dbox_err *err);
int dbox_mailbox_name_of(struct dbox_store *store, int64_t mailbox_id,
			 char *buf, size_t len, struct dbox_err *err);

/* dbox-dovecot.c: our index from Dovecot's (a store Dovecot owns).
 * -EOPNOTSUPP: Dovecot's indexes are unusable; index the files alone. */
/* dbox-tree.c: the mailboxes of a tree's own index (a tree taken over,
 * mounted read-only), read writing nothing; a failure is logged and
 * leaves none.  Freed by dbox_tree_free. */
void dbox_tree_load(struct dbox_store *store, const char *index_path);
void dbox_tree_free(struct dbox_store *store);
int dbox_dovecot_reindex(struct dbox_store *store, struct dbox_err *err);
void dbox_dovecot_free(struct dbox_dovecot *dv);
/* dbox-dovecot-back.c: inside the index write that changes a message
 * from old to flags/keywords, the same change into Dovecot's log when
 * the store is taken over and Dovecot knows the message.  When its log
 * cannot take it (missing, damaged, locked too long: logged), the
 * change is recorded as owed to Dovecot in that write (dindex-owed.h),
 * and the follower hands it back later (dbox_dovecot_back_owed).
 * Returns 0, or the error of that record (the write must fail). */
int dbox_dovecot_back_flags(struct dbox_store *store,
			    const struct dbox_msg *old, uint32_t flags,
			    uint32_t keywords);
/* The same for msg expunged: Dovecot's external expunge, and for mdbox
 * the map's refcount one less. */
int dbox_dovecot_back_expunge(struct dbox_store *store,
			      const struct dbox_msg *msg);
/* The same for a message moved from `from` to `to` (another mailbox):
 * appended to the destination, expunged from the source. */
int dbox_dovecot_back_move(struct dbox_store *store,
			   const struct dbox_msg *from,
			   const struct dbox_msg *to);
/* The same for a message saved into a mailbox (sdbox: its u.N is there
 * already). */
/* A mailbox made through a takeover mount in directory dir: the first
 * log of Dovecot's index of it, with our GUID and uidvalidity, so that
 * Dovecot has it as we do and what goes into it is handed back. */
void dbox_dovecot_back_created(struct dbox_store *store, const char *dir,
			       const char *name, const char *guid_hex,
			       uint32_t uidvalidity);
/* A mailbox deleted (dir_gone: its directory too, no children kept it)
 * or renamed to `to` through a takeover mount: the records of Dovecot's
 * mailbox log its own delete or rename writes, which dsync reads. */
void dbox_dovecot_back_deleted(struct dbox_store *store, const char *name,
			       const char *guid_hex, bool dir_gone);
void dbox_dovecot_back_renamed(struct dbox_store *store, const char *to);
/* That mailbox followed at once (under the write lock). */
void dbox_dovecot_follow_created(struct dbox_store *store, const char *name);
int dbox_dovecot_back_saved(struct dbox_store *store,
			    const struct dbox_msg *msg);

/* dbox-purge.c: inside an index write, note that m.<file_id> now holds
 * a record nobody references; dbox_purge_pending rewrites such files
 * (store close, open after a crash) so that Dovecot's rebuild, which
 * restores every record it finds, cannot bring the message back. */
int dbox_purge_mark(struct dbox_store *store, uint32_t file_id,
		    struct dbox_err *err);
int dbox_purge_pending(struct dbox_store *store, struct dbox_err *err);

/* dbox-msg.c */
int dbox_msg_insert(struct dbox_store *store, const struct dbox_msg *msg,
		    struct dbox_err *err);

/* Maildir base name derived only from stored data, for messages that did
 * not arrive with one. */
void dbox_msg_derive_base(const struct dbox_msg *msg, char *buf, size_t len);

/* dbox-store.c: the store's async I/O stack and its scratch area for
 * files being delivered. */
struct dfs *dbox_store_fs(struct dbox_store *store);
const char *dbox_store_scratch_dir(const struct dbox_store *store);

/* Fills a dbox_msg's storage fields from a parsed record. */
void dbox_msg_from_record(struct dbox_msg *msg, const struct dbox_record *rec);

#endif
