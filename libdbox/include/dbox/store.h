/* dbox/store.h - a dbox mail store: mailboxes, messages and their index.
 *
 * A store is a Dovecot-compatible sdbox or mdbox directory tree plus an
 * SQLite index (by default ROOT/dboxfs/index.sqlite; for a store that
 * Dovecot owns, outside the tree).  The index records mailboxes, messages,
 * flags, keywords, maildir names and where every message lives; it can be
 * rebuilt from the dbox files at any time (dbox_store_reindex).
 *
 * Threading: a struct dbox_store may be used from any number of threads at
 * once.  Each thread gets its own SQLite connection (WAL mode: readers never
 * wait for the writer); writers serialise on SQLite's write lock, so several
 * processes (the daemon and dboxctl) may use one store together.
 *
 * Errors: functions return 0 (or a count) on success and a negative errno on
 * failure; when `err` is not NULL it receives a message for the log.
 * -EBADMSG means a corrupted dbox file, -ENOENT a missing mailbox/message,
 * -EEXIST a name taken, -EROFS a read-only store.
 */
#ifndef DBOX_STORE_H
#define DBOX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dbox/format.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dbox_store;

struct dbox_err {
	char msg[512];
};

enum dbox_store_format {
	DBOX_FORMAT_SDBOX = 1,
	DBOX_FORMAT_MDBOX = 2,
};

/* Who writes the dbox tree: a store made by dboxctl/dboxfs, or one that a
 * Dovecot owns (then the library never writes into the tree). */
enum dbox_store_origin {
	DBOX_ORIGIN_DBOXFS = 1,
	DBOX_ORIGIN_DOVECOT = 2,
};

/* Whether the caller keeps a copy of message (box, uid): see
 * dbox_store_set_kept. */
typedef bool (*dbox_store_kept_fn)(void *ctx, int64_t box, uint32_t uid);
/* Message (box, old_uid) is (box, new_uid) now: see
 * dbox_store_set_renumbered. */
typedef void (*dbox_store_renumbered_fn)(void *ctx, int64_t box,
					 uint32_t old_uid, uint32_t new_uid);

/* Message flags: the low bits are Dovecot's MAIL_* values. */
enum dbox_flag {
	DBOX_FLAG_ANSWERED = 0x01,  /* maildir R */
	DBOX_FLAG_FLAGGED = 0x02,   /* F */
	DBOX_FLAG_DELETED = 0x04,   /* T */
	DBOX_FLAG_SEEN = 0x08,      /* S */
	DBOX_FLAG_DRAFT = 0x10,     /* D */
	DBOX_FLAG_PASSED = 0x100,   /* P: no IMAP system flag ($Forwarded) */
};
#define DBOX_FLAGS_MASK 0x11f

#define DBOX_MAX_KEYWORDS 26        /* maildir letters a..z */
#define DBOX_NAME_MAX 255
#define DBOX_GUID_MAX 255
#define DBOX_DEFAULT_ROTATE_SIZE (10u * 1024 * 1024)

struct dbox_create_opts {
	enum dbox_store_format format;
	uint64_t rotate_size;       /* mdbox; 0 = DBOX_DEFAULT_ROTATE_SIZE */
};

struct dbox_open_opts {
	const char *index_path;     /* NULL = default location */
	const char *fs_config;      /* async I/O stack, NULL = "posix" */
	bool readonly;
	/* For a Dovecot tree: take it over (write into it).  Default: the
	 * tree is opened read-only. */
	bool takeover;
	/* Do not run crash recovery (dboxctl check wants to see leftovers). */
	bool no_recovery;
	unsigned int fs_max_workers; /* 0 = default */
	/* dfs_settings.sync_inline: for callers that wait for each file
	 * operation (dboxctl, the daemon's request threads) */
	bool fs_sync_inline;
	/* Dovecot's mail_attachment_dir, where messages saved with it keep
	 * their large MIME parts (X metadata).  NULL: such messages fail to
	 * read with -EIO, saying what is missing. */
	const char *attachment_dir;
	/* Dovecot's INDEX= directory of a Dovecot tree mounted read-only:
	 * Dovecot's index files (flags, keywords, mdbox folders) are read
	 * from there.  NULL: from inside the tree.  Refused (-EINVAL) for
	 * a store opened for writing: the hand-back writes into the tree's
	 * own index files only. */
	const char *dovecot_index_dir;
	/* Dovecot's namespace of the tree (a takeover): its hierarchy
	 * separator (one printable ASCII character, not a space; NULL =
	 * "/") and prefix (NULL = none).  Dovecot's mailbox log names a
	 * deleted or renamed mailbox by the hash of its name as Dovecot
	 * shows it, built with these; a wrong separator fails the open.  A
	 * separator other than "/" in a part of a new name (create, rename
	 * target) is -EINVAL: Dovecot would take it as a level of folders
	 * and could not open that mailbox. */
	const char *dovecot_separator;
	const char *dovecot_prefix;
	/* A takeover: how long a change waits for the lock of Dovecot's
	 * log before it is owed to Dovecot instead (handed back later by
	 * dbox_dovecot_back_owed); 0: 10 s. */
	unsigned int dovecot_lock_ms;
	/* The BROKENCHAR=C of Dovecot's mail_location (NULL = none): Dovecot
	 * shows that character and the separator inside a name escaped as C
	 * and two hex digits ("a~2eb"), so such a name can be Dovecot's. */
	const char *dovecot_escape;
	/* A damaged index (its integrity check fails) is moved aside as
	 * INDEX.damaged-<time> and a new one made with what can still be
	 * read of it (dboxctl reindex).  Default: the open fails with
	 * -EBADMSG, saying so. */
	bool repair_index;
	/* Index commits are atomic at once but durable only at the next
	 * dbox_store_sync (or when SQLite checkpoints): the maildir
	 * contract of a rename, durable when its directory is fsynced.
	 * A small save transaction commits without syncing its message
	 * bytes either: its rows are marked unconfirmed, dbox_store_sync
	 * makes their bytes durable before the index, and the next
	 * read-write open after a power cut drops a marked row whose
	 * record is not intact (as if its commit had not happened).  A
	 * file is removed from the store only after the commit that stops
	 * referring to it is durable.  Default (false): every commit is
	 * durable when it returns, bytes first. */
	bool deferred_sync;
	/* The caller opened this store (and so checked its index) a moment
	 * ago and closed it: the index's integrity check, which reads the
	 * whole file (O(messages)), is not repeated. */
	bool index_checked;
	/* SQLite's page cache of the index in KiB per thread that uses it
	 * (each has its own connection); 0: SQLite's default, 2 MiB. */
	unsigned int index_cache_kib;
	/* Record the message rows this process removes, with their names,
	 * for dbox_store_take_removed. */
	bool track_removed;
	/* dbox_store_set_kept from the start (read-write only), so that
	 * the rows the open itself removes (a Dovecot tree's resync, the
	 * reindex of a repair) leave their marks too: kept_open is called
	 * first with the control directory (where the caller may keep its
	 * copies), before any row goes; either may be NULL. */
	dbox_store_kept_fn kept;
	void (*kept_open)(void *ctx, const char *ctl_dir);
	void *kept_ctx;
};

struct dbox_mailbox {
	int64_t id;
	char name[DBOX_NAME_MAX * 4 + 1]; /* UTF-8, hierarchy separator '/' */
	char guid[33];
	uint32_t uidvalidity, next_uid;
	/* nanoseconds since the epoch of the last change to the message list
	 * of new/ and cur/ (for directory mtimes) */
	int64_t change_new_ns, change_cur_ns;
	int64_t created;
	/* which of cur/ new/ tmp/ a maildir client has made (bits 1, 2, 4):
	 * a folder made by mkdir gets them one by one, as on a real maildir;
	 * every other mailbox has all three */
	unsigned int subdirs;
};
#define DBOX_SUBDIR_CUR 1
#define DBOX_SUBDIR_NEW 2
#define DBOX_SUBDIR_TMP 4

/* Where and how a message is stored (its file, the record's layout,
 * compression) is libdbox's own: callers copy it with the message and use
 * dbox_msg_file_id and dbox_msg_file_offset; libdbox names its fields
 * (libdbox/src/store/dbox-msg-storage.h). */
#define DBOX_MSG_STORAGE_WORDS 5
struct dbox_msg_storage {
	uint64_t w[DBOX_MSG_STORAGE_WORDS];
};

struct dbox_msg {
	int64_t mailbox_id;
	uint32_t uid;
	char guid[DBOX_GUID_MAX + 1];
	char base[DBOX_NAME_MAX + 1];   /* maildir base name */
	uint64_t size;        /* physical size = bytes a reader gets */
	uint64_t vsize;
	int64_t received, saved;  /* Unix seconds */
	int64_t received_ns;      /* sub-second part of mtime, 0..999999999 */
	uint32_t flags;
	uint32_t keywords;        /* bit i = keyword index i of the mailbox */
	bool in_new;
	/* in new/: named BASE:2,FLAGS rather than BASE (as delivered or last
	 * renamed there: mdeliver, mbsync, Dovecot's maildir driver) */
	bool new_info;
	/* st_mode (S_IFREG | permission bits) as chmod or the delivered file
	 * last set it; 0: the default, which follows the store's umask */
	uint32_t mode;
	struct dbox_msg_storage storage;
};

/* Where a message shows in a maildir, for the calls that change it: a
 * bool still works (false: cur/, true: new/BASE). */
enum dbox_maildir_dir {
	DBOX_DIR_CUR = 0,
	DBOX_DIR_NEW = 1,        /* new/BASE */
	DBOX_DIR_NEW_INFO = 2,   /* new/BASE:2,FLAGS */
};

static inline enum dbox_maildir_dir dbox_msg_dir(const struct dbox_msg *m)
{
	return !m->in_new ? DBOX_DIR_CUR : m->new_info ? DBOX_DIR_NEW_INFO :
		DBOX_DIR_NEW;
}

/* ----- logging ----------------------------------------------------------
 * Problems the library notices but does not return (a corrupted record met
 * while indexing, a leftover removed) are logged once through this handler;
 * the default writes to stderr.  Set it before opening stores. */
enum dbox_log_level {
	DBOX_LOG_ERROR = 3,
	DBOX_LOG_WARNING = 4,
	DBOX_LOG_INFO = 6,
	DBOX_LOG_DEBUG = 7,
};
typedef void dbox_log_handler(void *ctx, enum dbox_log_level level,
			      const char *msg);
void dbox_set_log_handler(dbox_log_handler *fn, void *ctx);

/* ----- store ------------------------------------------------------------ */

/* Create a new, empty store at root (created if missing; must be empty or
 * absent).  INBOX is created. */
int dbox_store_create(const char *root, const struct dbox_create_opts *opts,
		      struct dbox_err *err);

/* Open a store.  A store without an index (a Dovecot tree seen for the
 * first time, or an index that was deleted) is indexed from its files
 * first.  Leftovers of transactions whose process died are removed. */
int dbox_store_open(const char *root, const struct dbox_open_opts *opts,
		    struct dbox_store **store_r, struct dbox_err *err);
/* Callers must have no requests in flight. */
void dbox_store_close(struct dbox_store *store);

enum dbox_store_format dbox_store_get_format(const struct dbox_store *store);
enum dbox_store_origin dbox_store_get_origin(const struct dbox_store *store);
bool dbox_store_is_readonly(const struct dbox_store *store);
const char *dbox_store_root(const struct dbox_store *store);
const char *dbox_store_index_path(const struct dbox_store *store);
/* Makes every commit that returned before the call durable; concurrent
 * callers share one flush (group commit).  Immediate without
 * deferred_sync or when nothing is pending. */
int dbox_store_sync(struct dbox_store *store, struct dbox_err *err);
/* The same, but of the unconfirmed marks (rows committed before their
 * record was durable) it confirms only those up to seq `marks`
 * (dbox_store_unconfirmed_seq): a caller that keeps a copy of each
 * marked delivery until the flush reads it when it takes the copies it
 * removes after this flush; later marks wait for the next flush.  Every
 * commit is still made durable. */
int dbox_store_sync_upto(struct dbox_store *store, int64_t marks,
			 struct dbox_err *err);
/* The newest unconfirmed mark's seq (0: none). */
int dbox_store_unconfirmed_seq(struct dbox_store *store, int64_t *seq_r,
			       struct dbox_err *err);
/* With deferred_sync, commits leave the index's write-ahead log to grow
 * (up to about 32 MiB): this copies it into the index file once it is
 * large, and is meant for a thread that serves no request (the mount's
 * flusher).  Immediate when there is little to copy. */
int dbox_store_checkpoint(struct dbox_store *store, struct dbox_err *err);
/* The calling thread is done with the store for now (a request was
 * answered): its index connection may serve the next request of another
 * thread, whose page cache then knows this thread's last commit.  Call
 * it between operations, never inside one (with an iteration open, it
 * does nothing). */
void dbox_store_release(struct dbox_store *store);
/* mdbox: purges now the m.N files that committed expunges marked (which
 * dbox_store_sync does when an expunge marked one since the last sync),
 * so that an expunge that returned is for good for Dovecot too (its
 * rebuild restores every record it finds in an m.N).  For a caller
 * whose commits are durable when they return (no deferred_sync), after
 * an expunge.  A file another writer appends to meanwhile stays marked,
 * purged at a later sync or the next open.  0 or -errno. */
int dbox_store_purge_expunged(struct dbox_store *store, struct dbox_err *err);
/* Whether some commit of this handle is not durable yet. */
bool dbox_store_sync_pending(struct dbox_store *store);
/* A message committed unconfirmed (its record not durable yet), then
 * expunged or moved away, keeps its unconfirmed mark so that a caller
 * that kept a copy of it until the flush (the mount's pending/ spool
 * files, named by mailbox and uid) knows the copy is of a committed
 * message, not of a lost commit.  removed: 1 message (box, uid) is
 * such a one, 0 not (or on error).  forget: the caller's copy is gone
 * for good (its removal durable): deletes that mark (box 0: every
 * such mark).  0 or -errno. */
int dbox_store_unconfirmed_removed(struct dbox_store *store, int64_t box,
				   uint32_t uid);
int dbox_store_unconfirmed_forget(struct dbox_store *store, int64_t box,
				  uint32_t uid, struct dbox_err *err);
/* Whether the caller still keeps such a copy of message (box, uid) (a
 * delivery whose record was synced before its commit has no mark).
 * Whatever removes a row of a message it says yes for (an expunge, a
 * move away, a followed Dovecot's sync, a reindex, a deleted folder)
 * leaves a mark in the same transaction, as for an unconfirmed one
 * (removed above), so the copy is not taken for a lost commit's.
 * Called inside a write transaction, from any thread: it must not use
 * the store.  Set before any thread (other threads' connections get it
 * as they open). */
void dbox_store_set_kept(struct dbox_store *store, dbox_store_kept_fn fn,
			 void *ctx);
/* A takeover mount's follower gives one of our messages another uid
 * when Dovecot gave its uid to a message of its own (mdbox, a delivery
 * not handed back yet): fn is told after the commit that did it, so
 * that a copy kept under the old uid (dbox_store_set_kept) follows the
 * message.  Called from the thread that follows (dbox_store_follow),
 * holding no lock of the store; it must not use the store.  Set before
 * that thread starts. */
void dbox_store_set_renumbered(struct dbox_store *store,
			       dbox_store_renumbered_fn fn, void *ctx);
/* The parts of a kept copy's name "BOX.UID.NAME" (the mount's pending/
 * spool files; dboxctl lists them too); false: not one.  *name_r points
 * into s. */
bool dbox_store_kept_name(const char *s, int64_t *box_r, uint32_t *uid_r,
			  const char **name_r);
/* A message row this process removed (expunged, moved away, dropped by
 * a followed Dovecot's sync, a reindex or a deleted folder), with what
 * its maildir name was built from. */
struct dbox_removed {
	int64_t mailbox_id;
	uint32_t uid;
	uint32_t flags;
	bool in_new;
	char base[DBOX_NAME_MAX + 1];
};
/* With opts.track_removed: the rows removed since the last call, oldest
 * first, at most 4096 (later ones are left out: a caller treats a row it
 * does not find as unknown); *rows_r: free() it.  A removal rolled back
 * may be among them.  Returns their number (0 without track_removed) or
 * -ENOMEM. */
int dbox_store_take_removed(struct dbox_store *store,
			    struct dbox_removed **rows_r);
/* Monotonic counter of committed changes from any process; cheap. */
uint64_t dbox_store_change_counter(struct dbox_store *store);
/* Directory for files the daemon keeps beside the store (maildir-view.md
 * section 5). */
const char *dbox_store_files_dir(const struct dbox_store *store);
/* The files/ directory holding the fs layout's parents that are no
 * mailbox (vdirs.h): files_dir, but the tree's own ROOT/dboxfs/files
 * when a read-only mount indexes a tree taken over outside it (those
 * are named, not numbered by the index, so they hold for any index). */
const char *dbox_store_vdirs_dir(const struct dbox_store *store);
/* There, too, are the plain files of the folders the takeover mount
 * showed, under that mount's mailbox ids (files/ID): the id in the
 * tree's own index of this store's mailbox box (the mailbox of the same
 * GUID, else, for a folder the takeover mount could not give its GUID
 * to Dovecot, the one of the same name whose GUID no mailbox of this
 * store has).  -ENOENT if none, or if this is no such mount. */
int dbox_store_tree_mailbox_id(struct dbox_store *store, int64_t box,
			       int64_t *id_r);

/* Rebuild the index from the dbox files alone (like doveadm force-resync).
 * Flags, keywords, UIDs and maildir names are kept for messages the old
 * index knew at the same place.  Returns the number of messages. */
int dbox_store_reindex(struct dbox_store *store, struct dbox_err *err);

/* A store that Dovecot owns changes under us: re-read what Dovecot's
 * transaction logs added since the last call and bring the index up to
 * date.  Fills changed[] with the ids of mailboxes that changed (at most
 * max) and returns their number; 0 for stores of our own. */
int dbox_store_follow(struct dbox_store *store, int64_t *changed, size_t max,
		      struct dbox_err *err);
/* A takeover mount: mailboxes of ours that Dovecot still has no index
 * of (made by another program while mounted, or busy at the start) get
 * one, and deliveries that were not handed back are, as the store's
 * start does; waits for none of Dovecot's locks, and a mailbox still
 * busy is tried again at a later call, less often each time.  For the
 * follower's periodic pass (after dbox_store_follow).  Returns 0 or a
 * negative errno (err; logged too). */
int dbox_dovecot_adopt_pending(struct dbox_store *store, struct dbox_err *err);
/* An inotify descriptor that becomes readable when Dovecot's index files
 * change (poll it, then call dbox_store_follow); -1 if none. */
int dbox_store_watch_fd(struct dbox_store *store);
/* A takeover: the changes owed to Dovecot (its log was missing, damaged
 * or locked too long when they were made) handed back now, as far as
 * its logs take them; those left are tried again by a later call (not
 * before a while: call it periodically, from one thread, never from
 * one that must not wait: it waits briefly for Dovecot's locks).
 * Returns 0 or -errno (err set); 0 at once for other stores. */
int dbox_dovecot_back_owed(struct dbox_store *store, struct dbox_err *err);

/* ----- mailboxes -------------------------------------------------------- */

/* Names: UTF-8, '/' separated, no empty/'.'/'..' parts, no control
 * characters; -EINVAL otherwise. */
bool dbox_mailbox_name_valid(const char *name);
int dbox_mailbox_create(struct dbox_store *store, const char *name,
			struct dbox_mailbox *box_r, struct dbox_err *err);
int dbox_mailbox_lookup(struct dbox_store *store, const char *name,
			struct dbox_mailbox *box_r, struct dbox_err *err);
int dbox_mailbox_get(struct dbox_store *store, int64_t id,
		     struct dbox_mailbox *box_r, struct dbox_err *err);
/* Calls cb for every mailbox in name order; a non-zero return stops. */
int dbox_mailbox_list(struct dbox_store *store,
		      int (*cb)(void *ctx, const struct dbox_mailbox *box),
		      void *ctx, struct dbox_err *err);
/* Which of cur/ new/ tmp/ the mailbox shows (DBOX_SUBDIR_*); one made
 * now gets the time of now as its change time (cur/ and new/). */
int dbox_mailbox_set_subdirs(struct dbox_store *store, int64_t mailbox_id,
			     unsigned int subdirs, struct dbox_err *err);
/* Reserves the mailbox's next uid for a message saved later with
 * dbox_save_opts.uid (no other message gets it; unused, it is a gap). */
int dbox_mailbox_reserve_uid(struct dbox_store *store, int64_t mailbox_id,
			     uint32_t *uid_r, struct dbox_err *err);
/* Sets the change time (ns) of the mailbox's new/ (new_dir) or cur/, as
 * utimensat(2) on that directory does. */
int dbox_mailbox_set_dir_mtime(struct dbox_store *store, int64_t mailbox_id,
			       bool new_dir, int64_t ns, struct dbox_err *err);
/* -ENOTEMPTY if it has messages or child mailboxes. */
int dbox_mailbox_delete(struct dbox_store *store, const char *name,
			struct dbox_err *err);
/* The same, but its children stay where they are (a maildir++ folder's
 * dot-children are its siblings on disk); -ENOTEMPTY if it has
 * messages. */
int dbox_mailbox_delete_one(struct dbox_store *store, const char *name,
			    struct dbox_err *err);
/* Renames the mailbox and its children (`from` may be only their
 * parent); -EEXIST if `to` is a mailbox, -ENOTEMPTY if it has children. */
int dbox_mailbox_rename(struct dbox_store *store, const char *from,
			const char *to, struct dbox_err *err);
/* Renames that one mailbox; its children keep their names (Dovecot lists
 * them below a parent that is no mailbox).  -EEXIST if `to` is one. */
int dbox_mailbox_rename_one(struct dbox_store *store, const char *from,
			    const char *to, struct dbox_err *err);
/* Keyword names of a mailbox by index (0..DBOX_MAX_KEYWORDS-1); returns
 * the count.  names[i] points into `buf`. */
int dbox_mailbox_keywords(struct dbox_store *store, int64_t mailbox_id,
			  char *names[DBOX_MAX_KEYWORDS], char *buf,
			  size_t buflen, struct dbox_err *err);
/* Replaces the mailbox's keyword names with names[] (NULL: none at that
 * index) in one transaction, as a new dovecot-keywords file does on a
 * maildir: the keyword bits messages carry then mean the new names.
 * cur/'s change time moves to now (the dovecot-keywords file shows it).
 * -EINVAL (nothing changed) for an invalid or repeated name. */
int dbox_mailbox_keywords_set(struct dbox_store *store, int64_t mailbox_id,
			      const char *const names[DBOX_MAX_KEYWORDS],
			      struct dbox_err *err);
/* Whether name can be a keyword (IMAP atom, no space or specials). */
bool dbox_keyword_name_valid(const char *name);
/* Index of a keyword name, added if new; -ENOSPC beyond 26. */
int dbox_mailbox_keyword_index(struct dbox_store *store, int64_t mailbox_id,
			       const char *name, struct dbox_err *err);

/* ----- messages --------------------------------------------------------- */

int dbox_msg_get(struct dbox_store *store, int64_t mailbox_id, uint32_t uid,
		 struct dbox_msg *msg_r, struct dbox_err *err);
/* A message with this maildir base (the lowest uid of those that have
 * it: names, not bases, are unique). */
int dbox_msg_lookup_base(struct dbox_store *store, int64_t mailbox_id,
			 const char *base, struct dbox_msg *msg_r,
			 struct dbox_err *err);
/* The message named `name` in new/ (in_new) or cur/ of the mailbox, by
 * the exact name the maildir view shows: BASE in new/ unless new_info,
 * else BASE:2,FLAGS as dbox_maildir_info_format writes FLAGS. */
int dbox_msg_lookup_name(struct dbox_store *store, int64_t mailbox_id,
			 bool in_new, const char *name, struct dbox_msg *msg_r,
			 struct dbox_err *err);
/* Messages with uid > after_uid in uid order, at most `limit` (0 = all);
 * in_new: -1 all, 0 cur/ only, 1 new/ only.  cb's non-zero return stops.
 * Returns the number of messages passed to cb. */
int dbox_msg_list(struct dbox_store *store, int64_t mailbox_id,
		  uint32_t after_uid, int in_new, unsigned int limit,
		  int (*cb)(void *ctx, const struct dbox_msg *msg), void *ctx,
		  struct dbox_err *err);
int dbox_msg_count(struct dbox_store *store, int64_t mailbox_id, int in_new,
		   uint64_t *count_r, struct dbox_err *err);

/* Path of the dbox file holding msg (into buf). */
int dbox_msg_file_path(struct dbox_store *store, const struct dbox_msg *msg,
		       char *buf, size_t buflen);
/* Where in that file the message's record starts. */
uint64_t dbox_msg_file_offset(const struct dbox_msg *msg);
/* The N of the mdbox file m.N holding msg (sdbox: 0); with the offset,
 * which record of the store the message is. */
uint32_t dbox_msg_file_id(const struct dbox_msg *msg);

/* Change flags/keywords and new/ state in one index transaction. */
int dbox_msg_set_flags(struct dbox_store *store, int64_t mailbox_id,
		       uint32_t uid, uint32_t flags, uint32_t keywords,
		       enum dbox_maildir_dir dir, struct dbox_err *err);
/* The same, and a new maildir base name unless base is NULL (-EEXIST if
 * another message of the mailbox has the resulting name). */
int dbox_msg_update(struct dbox_store *store, int64_t mailbox_id,
		    uint32_t uid, uint32_t flags, uint32_t keywords,
		    enum dbox_maildir_dir dir, const char *base,
		    struct dbox_err *err);
/* dbox_msg_update of the message dbox_msg_lookup_name finds (name in
 * new/ if from_new, else cur/), looked up inside the update's own write
 * transaction; is_it (may be NULL) confirms the row found.  -ENOENT
 * (nothing changed) when there is none or is_it refuses it, -EEXIST as
 * dbox_msg_update; msg_r gets the row as it was before. */
int dbox_msg_update_named(struct dbox_store *store, int64_t mailbox_id,
			  bool from_new, const char *name,
			  bool (*is_it)(void *ctx, const struct dbox_msg *m),
			  void *ctx, uint32_t flags, uint32_t keywords,
			  enum dbox_maildir_dir dir, const char *base,
			  struct dbox_msg *msg_r, struct dbox_err *err);
/* dbox_msg_update onto the name of message replaced_uid of the same
 * mailbox: that one is expunged in the same index transaction, as
 * rename(2) replaces its target.  The record of message uid is made
 * durable first (dbox_msg_sync_record). */
int dbox_msg_replace(struct dbox_store *store, int64_t mailbox_id,
		     uint32_t uid, uint32_t replaced_uid, uint32_t flags,
		     uint32_t keywords, enum dbox_maildir_dir dir,
		     const char *base, struct dbox_err *err);
/* Two messages of one mailbox trade their maildir names (base, flags,
 * keywords, cur/ or new/) in one transaction: rename(2) with
 * RENAME_EXCHANGE. */
int dbox_msg_exchange(struct dbox_store *store, int64_t mailbox_id,
		      uint32_t uid1, uint32_t uid2, struct dbox_err *err);
/* st_mode as chmod sets it (S_IFREG | bits; 0: the default). */
int dbox_msg_set_mode(struct dbox_store *store, int64_t mailbox_id,
		      uint32_t uid, uint32_t mode, struct dbox_err *err);
int dbox_msg_set_received(struct dbox_store *store, int64_t mailbox_id,
			  uint32_t uid, int64_t received, int64_t received_ns,
			  struct dbox_err *err);
/* The record of a message whose row was committed unconfirmed (a
 * delivery of a deferred_sync store, not yet flushed) made durable now;
 * 0 at once for any other.  Before a change that must not be undone
 * without it: a power cut would drop the unconfirmed row, and a message
 * it replaced would be gone as well. */
int dbox_msg_sync_record(struct dbox_store *store, int64_t mailbox_id,
			 uint32_t uid, struct dbox_err *err);
/* Expunge: removed from the index; sdbox file unlinked after the commit,
 * mdbox bytes left for dbox_store_purge. */
int dbox_msg_expunge(struct dbox_store *store, int64_t mailbox_id,
		     uint32_t uid, struct dbox_err *err);
/* Move to another mailbox under a new uid (returned), keeping bytes in
 * place where the format allows (mdbox: index only; sdbox: hard link).
 * An sdbox message with parts in the attachment directory moving into a
 * mailbox of a Dovecot tree that Dovecot has no index of (which would
 * name its attachment files) is written whole there, same GUID. */
int dbox_msg_move(struct dbox_store *store, int64_t mailbox_id, uint32_t uid,
		  int64_t dest_mailbox_id, uint32_t flags, uint32_t keywords,
		  enum dbox_maildir_dir dir, const char *new_base,
		  uint32_t *new_uid_r, struct dbox_err *err);

/* true when the message's bytes are exactly its record's body as stored
 * (neither compressed nor with Dovecot's external attachments), so that
 * they can be moved from the file without looking at them. */
bool dbox_msg_is_plain(const struct dbox_msg *msg);

/* Read a message's bytes into buf (the stored message; decompressed when
 * stored compressed; with its external attachments put back, from the
 * store's attachment_dir, when Dovecot saved it with mail_attachment_dir).  Returns bytes read (0 at EOF) or -errno. */
ssize_t dbox_msg_pread(struct dbox_store *store, const struct dbox_msg *msg,
		       void *buf, size_t len, uint64_t off,
		       struct dbox_err *err);

/* Asynchronous read through the store's fs layer: cb runs on an fs worker
 * thread with the bytes read or -errno.  `msg` is copied. */
typedef void dbox_read_cb(void *ctx, ssize_t ret, const struct dbox_err *err);
void dbox_msg_pread_async(struct dbox_store *store, const struct dbox_msg *msg,
			  void *buf, size_t len, uint64_t off,
			  dbox_read_cb *cb, void *ctx);

/* Zero-copy variant for plain messages (dbox_msg_is_plain): fn(arg, fd, len,
 * file offset) runs on an fs worker and moves the bytes of [off, off+len)
 * of the message itself (e.g. splices them into a FUSE reply); cb then
 * gets what fn returned, or -errno if the request failed before fn ran
 * (fn did not run then).  len is clamped to the message.  -EOPNOTSUPP
 * (through cb) for a message that is not plain. */
void dbox_msg_read_fd_async(struct dbox_store *store,
			    const struct dbox_msg *msg, size_t len,
			    uint64_t off,
			    ssize_t (*fn)(void *arg, int fd, size_t len,
					  off_t file_off),
			    void *arg, dbox_read_cb *cb, void *ctx);

/* The bytes of a plain message from what the store read ahead (an
 * earlier check of it or of a message before it in the same mdbox file),
 * without any I/O, its record checked as dbox_msg_verify does: bytes read
 * (0 at EOF), or -ENOENT if they are not at hand (then read them). */
ssize_t dbox_msg_read_cached(struct dbox_store *store,
			     const struct dbox_msg *msg, void *buf, size_t len,
			     uint64_t off);

/* Check the record framing of msg (header magic, size, post magic) - used
 * before serving a message so that a corrupted file gives -EBADMSG. */
int dbox_msg_verify(struct dbox_store *store, const struct dbox_msg *msg,
		    struct dbox_err *err);

/* The same without blocking: cb runs on an fs worker thread with 0 or
 * -EBADMSG / -errno (and the reason in err). */
typedef void dbox_verify_cb(void *ctx, int ret, const struct dbox_err *err);
void dbox_msg_verify_async(struct dbox_store *store, const struct dbox_msg *msg,
			   dbox_verify_cb *cb, void *ctx);

/* A plain sdbox message of its mailbox box_name (dbox_mailbox_get: one
 * index query for many messages) checked as dbox_msg_verify_async does
 * and read whole, for checks ahead of a reader: its file opened, read
 * and closed on one fs worker, apart from the files kept open for
 * reads.  cb runs there with 0 and the message's bytes (body, len;
 * valid during the call only), or -errno / -EBADMSG (body NULL); at
 * once, on the caller's thread, with -EOPNOTSUPP for a message that is
 * not plain sdbox or is over 256 KiB (-ENOMEM likewise).  A record that
 * passed is then kept for dbox_msg_read_cached. */
typedef void dbox_checked_cb(void *ctx, int ret, const struct dbox_err *err,
			     const void *body, size_t len);
void dbox_msg_check_whole_async(struct dbox_store *store,
				const struct dbox_msg *msg,
				const char *box_name, dbox_checked_cb *cb,
				void *ctx);

/* Reclaim space of expunged mdbox messages (safe while others use the
 * store).  Returns bytes reclaimed, counting what opening the store
 * reclaimed of expunges a closed or dead process left (an expunge's file
 * is rewritten when its store is closed, so that Dovecot's rebuild cannot
 * restore the message). */
int64_t dbox_store_purge(struct dbox_store *store, struct dbox_err *err);

/* ----- consistency check (dboxctl check) -------------------------------- */
struct dbox_check_problem {
	const char *path;     /* storage file */
	uint64_t offset;
	const char *what;
};
/* Calls cb for each problem; returns the number of problems (0 = clean). */
int dbox_store_check(struct dbox_store *store,
		     void (*cb)(void *ctx, const struct dbox_check_problem *p),
		     void *ctx, struct dbox_err *err);

/* Maildir info letters (after ":2,"): the flags in ASCII order (D F P R S
 * T) then a..z for keyword indexes 0..25.  Parsing with strict accepts
 * only what a maildir writer produces (known letters, sorted); without it
 * any order, unknown letters ignored, as Dovecot's maildir driver reads
 * names.  false: strict and not so. */
void dbox_maildir_info_format(uint32_t flags, uint32_t keywords, char *buf,
			      size_t len);
bool dbox_maildir_info_parse(const char *info, bool strict,
			     uint32_t *flags_r, uint32_t *keywords_r);

#ifdef __cplusplus
}
#endif
#endif
