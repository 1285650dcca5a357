/* dbox-dovecot-private.h - what the files of the Dovecot follower share:
 * dbox-dovecot.c (open, follow) keeps the mailboxes, dbox-dovecot-sync.c
 * syncs one from Dovecot's index, dbox-dovecot-files.c from its sdbox
 * files alone, dbox-dovecot-record.c reads the records.  Not public. */
#ifndef DBOX_DOVECOT_PRIVATE_H
#define DBOX_DOVECOT_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbox/dovecot-index.h"
#include "dbox/store.h"
#include "store/dbox-rfile.h"

struct dbox_dovecot;
struct dovi_logwrite;

struct dovecot_box {
	struct dovi_mailbox *db;   /* NULL: its index is unusable (sdbox) */
	struct dovi_store *ds;     /* Dovecot's store (the mdbox map) */
	struct dbox_dovecot *dv;   /* all of them */
	int64_t id;                /* ours */
	char *name;
	char *storage;             /* on-disk name */
	bool warned;               /* the files-alone fallback was logged */
	/* where our last write into its log ended, when that followed what
	 * its reader read with nobody else's in between (0: unknown) */
	uint32_t back_seq;
	uint64_t back_end;
	uint32_t back_next;        /* next_uid after our last append, or 0 */
	/* a hand-back refreshed db: what it read is not synced yet */
	bool resync;
	/* changes of it are owed to Dovecot (dindex-owed.h): later ones
	 * are owed at once, with no wait for a log still locked */
	bool owed;
	/* deliveries (or a move in) that were not handed back */
	bool behind;
	bool unindexed;            /* the follower read no index of it */
	/* dbox-dovecot-adopt.c while mounted: when the follower first saw
	 * the mailbox wanting to be handed back, when it tries next, the
	 * backoff (ms), and whether that was logged */
	uint64_t adopt_since, adopt_at;
	uint32_t adopt_backoff;
	bool adopt_warned;
};

struct dbox_dovecot {
	struct dovi_store *ds;
	struct dovecot_box *boxes;
	size_t count;
	int inotify_fd;
	bool unusable;             /* mdbox: a mailbox index cannot be read */
	bool map_busy;             /* the map's log stayed locked (adopt) */
	unsigned lock_ms;          /* a request's wait for a log's lock */
	/* the follower's retry of owed changes (dbox-dovecot-owed.c): not
	 * before owed_at (CLOCK_MONOTONIC ms), then after owed_wait more */
	uint64_t owed_at;
	unsigned owed_wait;
	bool owed_warned;          /* that it is behind was logged */
	/* a mailbox may want handing back (dbox_dovecot_adopt_pending):
	 * set under our index write lock, read by the follower without */
	atomic_bool adopt_due;
	/* our messages the transaction under way gave another uid
	 * (renumber_ours), for dbox_store_set_renumbered's fn */
	struct dbox_renumber {
		int64_t box;
		uint32_t from, to;
	} *renum;
	size_t nrenum, caprenum;
};

/* dbox-dovecot-record.c */
/* A 32-hex-digit GUID string against the binary GUID of Dovecot's guid
 * extension (other strings pass). */
bool dbox_dovecot_guid_matches(const char *guid,
			       const struct dovi_message *dm);
/* Reads the record of a Dovecot message into msg (storage fields). */
int dbox_dovecot_read_record(struct dbox_store *store, struct dovecot_box *b,
			     const struct dovi_message *dm,
			     struct dbox_rfile *r, struct dbox_msg *msg);

/* dbox-dovecot-sync.c */
/* After the write transaction that synced: its renumbers are told to
 * the store's renumbered fn if it committed, and forgotten. */
void dbox_dovecot_renumbered_done(struct dbox_store *store,
				  struct dbox_dovecot *dv, bool committed);
/* The map uids that a mailbox of Dovecot's lists, sorted (as keys);
 * NULL when out of memory. */
uint64_t *dbox_dovecot_listed_map_uids(struct dbox_dovecot *dv, size_t *n_r);
/* The uids of our rows (a dbox_msg_list callback into struct our_rows). */
struct our_rows {
	uint32_t *uids;
	size_t count, cap;
};
int dbox_dovecot_collect_uid(void *ctx, const struct dbox_msg *m);
/* A uidvalidity for a mailbox that Dovecot has not indexed. */
uint32_t dbox_dovecot_new_uidvalidity(struct dbox_store *store);
int dbox_dovecot_sync_box(struct dbox_store *store, struct dovecot_box *b,
			  struct dbox_err *err);

/* dbox-dovecot-files.c */
int dbox_dovecot_sync_box_files(struct dbox_store *store,
				struct dovecot_box *b, struct dbox_err *err);
/* sdbox: an index that is missing or broken while u.N files are there. */
bool dbox_dovecot_sdbox_unusable(struct dbox_store *store,
				 struct dovecot_box *b);

/* dbox-dovecot-back.c */
/* Dovecot waits up to 3 minutes for its log lock; a mount that waits
 * holds its index write lock meanwhile, so it gives up sooner (the
 * default of dbox_open_opts.dovecot_lock_ms); the change is then owed. */
#define DBOX_DOVECOT_LOCK_MS 10000
/* The followed box of our mailbox id that has Dovecot's index, or NULL. */
struct dovecot_box *dbox_dovecot_box(struct dbox_store *store, int64_t id);
/* b's index brought up to date (what it read is the follower's to sync). */
int dbox_dovecot_refresh(struct dovecot_box *b, struct dbox_err *err);
/* Dovecot's record of uid, as b was last read; NULL if it has none. */
const struct dovi_message *dbox_dovecot_known(struct dovecot_box *b,
					      uint32_t uid);
/* Appends w to b's log, waiting at most lock_ms for its lock (errors as
 * dovi_logwrite_commit's). */
int dbox_dovecot_commit(struct dovecot_box *b, struct dovi_logwrite *w,
			unsigned lock_ms, struct dbox_err *err);
/* The external expunge of Dovecot's message dm (ours: our GUID of it). */
void dbox_dovecot_expunge_rec(struct dovi_logwrite *w,
			      const struct dovi_message *dm, const char *ours);
/* mdbox: whether the map counts references of dm's record. */
bool dbox_dovecot_counted(const struct dbox_store *store,
			  const struct dovi_message *dm);
/* mdbox: the map's refcount of map_uid changed by diff, written as
 * Dovecot's map sync writes it (its purge frees a record at 0); a
 * failure is logged. */
int dbox_dovecot_map_ref(struct dovecot_box *b, uint32_t map_uid,
			 int32_t diff, unsigned lock_ms);
/* An mdbox mailbox's record of a message in Dovecot's index (struct
 * mdbox_mail_index_record: map_uid, save_date, little-endian). */
void dbox_dovecot_mdbox_rec(uint8_t rec[8], uint32_t map_uid,
			    uint32_t save_date);
/* The binary form of a GUID of 32 hex digits; false if it is not one. */
bool dbox_dovecot_guid_bin(const char *hex, uint8_t guid[16]);
/* The first records of a new mailbox's log, as Dovecot's mailbox create
 * writes them: its GUID, uid_validity and next uid 1 (ds: Dovecot's
 * store, whose map an mdbox mailbox names). */
int dbox_dovecot_first_records(struct dbox_store *store,
			       struct dovi_store *ds, struct dovi_logwrite *w,
			       const uint8_t guid[16], uint32_t uidvalidity,
			       struct dbox_err *err);
/* The map's highest file id, UINT32_MAX when its header has none. */
uint32_t dbox_dovecot_map_highest(const struct dovi_index *map);
/* The records of w that raise the map's highest file id to file_id (the
 * `map` header's first field, which Dovecot names its next m.N after):
 * its intro and the header's update. */
int dbox_dovecot_map_highest_records(struct dovi_index *map,
				     struct dovi_logwrite *w,
				     uint32_t file_id, struct dbox_err *err);
/* The records of w that add msg's m.N record to the map under map_uid
 * as Dovecot's mdbox save does: {file_id, offset, size} and one
 * reference; *highest (the map's highest file id, as the records so far
 * left it) raised to its m.N (else Dovecot would make an m.N of its own
 * under that name). */
int dbox_dovecot_map_records(struct dovi_index *map, struct dovi_logwrite *w,
			     const struct dbox_msg *msg, uint32_t map_uid,
			     uint32_t *highest, struct dbox_err *err);

/* dbox-dovecot-adopt.c */
/* The first pass of a takeover mount: a mailbox of ours whose directory
 * holds no Dovecot index gets one with our messages, and one with
 * deliveries that were not handed back gets those (logged, never
 * failing: the follower tries again, dbox_dovecot_adopt_pending); b is
 * then followed from it.  Returns 0 or the error of that sync. */
int dbox_dovecot_adopt(struct dbox_store *store, struct dovecot_box *b,
		       struct dbox_err *err);
/* Our messages of b at or above Dovecot's next uid (deliveries and
 * messages moved in that were not handed back) appended to its log as
 * Dovecot's save would (mdbox: the map first); 1 if there were some, 0
 * if none, -errno (err set; -EBADMSG: Dovecot's index of it is damaged
 * or has another uidvalidity). */
int dbox_dovecot_catch_up(struct dbox_store *store, struct dovecot_box *b,
			  struct dbox_err *err);

#endif
