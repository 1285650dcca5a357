/* dbox-dovecot-private.h - what the files of the Dovecot follower share:
 * dbox-dovecot.c (open, follow) keeps the mailboxes, dbox-dovecot-sync.c
 * syncs one from Dovecot's index, dbox-dovecot-files.c from its sdbox
 * files alone, dbox-dovecot-record.c reads the records.  Not public. */
#ifndef DBOX_DOVECOT_PRIVATE_H
#define DBOX_DOVECOT_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbox/dovecot-index.h"
#include "dbox/store.h"
#include "store/dbox-rfile.h"

struct dbox_dovecot;

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
};

struct dbox_dovecot {
	struct dovi_store *ds;
	struct dovecot_box *boxes;
	size_t count;
	int inotify_fd;
	bool unusable;             /* mdbox: a mailbox index cannot be read */
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

#endif
