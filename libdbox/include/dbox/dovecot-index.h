/* dbox/dovecot-index.h - read-only reader of Dovecot 2.3's own index files.
 *
 * Reads dovecot.index + dovecot.index.log (+ .log.2) of one mailbox, or the
 * mdbox map index storage/dovecot.map.index*, and replays the transaction
 * log on top of the main file exactly as Dovecot does (spec:
 * dovecot-index.md; its reference reader dovecot-index-reader.py gives
 * the expected values, and tests compare with both it and doveadm).  On
 * top of that it
 * lists the mailboxes of an sdbox/mdbox store and joins each mailbox's
 * messages with the mdbox map.
 *
 * The reader never writes, never locks and opens everything O_RDONLY:
 * Dovecot's own readers don't lock either.  Files that change while being
 * read are re-read (log appends are picked up by the next refresh).
 *
 * Errors: functions return 0 (or a count) on success and a negative errno
 * on failure; `err` (may be NULL) then holds a message for the log.
 *   -ENOENT   the index files (or the mailbox) don't exist
 *   -EBADMSG  the files are unusable as Dovecot would see them (Dovecot
 *             would rebuild the index from the mail files); the message
 *             says why
 *   -ESTALE   mdbox: mailbox and map index disagree (map_uid_validity);
 *             normally a race with a writer, retry later
 *   -EFBIG    a file (over 1 GiB) or the in-memory state (over 512 MiB)
 *             would exceed the reader's limits: hostile input
 *   -ENOMEM, other -errno from the system.
 * A refresh failing with -EBADMSG, -ESTALE or -ENOENT leaves the previous
 * state in place; after -EFBIG/-ENOMEM the state may be partly updated
 * and the next refresh reloads it from scratch.
 *
 * Threading: an object may be used by one thread at a time.  Different
 * objects are independent, except that the mailboxes of one dovi_store
 * share the store's map reader: use a store and all its mailboxes from one
 * thread at a time (or under one lock).  Nothing here is async-signal-safe.
 *
 * Ownership: every *_open() result is freed with the matching *_free().
 * Pointers returned by accessors point into the object and stay valid
 * until its next refresh or free. */
#ifndef DBOX_DOVECOT_INDEX_H
#define DBOX_DOVECOT_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbox/store.h"             /* struct dbox_err */

#ifdef __cplusplus
extern "C" {
#endif

/* The flag byte of an index record: Dovecot's MAIL_* values. */
enum dovi_flag {
	DOVI_FLAG_ANSWERED = 0x01,
	DOVI_FLAG_FLAGGED = 0x02,
	DOVI_FLAG_DELETED = 0x04,
	DOVI_FLAG_SEEN = 0x08,
	DOVI_FLAG_DRAFT = 0x10,
	DOVI_FLAG_BACKEND = 0x40,   /* dbox: (to be) in ALT storage */
	DOVI_FLAG_DIRTY = 0x80,     /* not used by dbox */
};
#define DOVI_SYSTEM_FLAGS 0x1f      /* the IMAP-visible ones */

/* ===================================================================
 * One index: a mailbox's dovecot.index* or the map's dovecot.map.index*
 * =================================================================== */

struct dovi_index;

/* Selected base header fields of the current state (dovecot-index.md 2.2;
 * log_file_seq/head_offset = how far the log has been applied). */
struct dovi_header {
	uint32_t indexid;
	uint32_t flags;
	uint32_t uid_validity;
	uint32_t next_uid;
	uint32_t messages_count;
	uint32_t first_recent_uid;  /* \Recent = uid >= this */
	uint32_t log_file_seq;
	uint32_t log_file_head_offset;
};

/* How the state was obtained (the reference reader's "info"). */
struct dovi_load_info {
	bool index_file;            /* started from dovecot.index */
	bool reset;                 /* replay started at a reset log */
	bool replayed;              /* a log was read (false: index alone) */
	uint32_t from_seq, from_offset;     /* replay start, when replayed */
	uint32_t to_seq, to_offset;         /* log position reached */
	char index_ignored[200];    /* why dovecot.index was not used, or "" */
	char warning[100];          /* e.g. "no transaction log", or "" */
};

/* Loads the index whose files are PREFIX, PREFIX.log and PREFIX.log.2
 * (prefix = ".../dbox-Mails/dovecot.index" or
 * ".../storage/dovecot.map.index").  A missing dovecot.index is normal;
 * without any of the files the result is -ENOENT.  The state follows
 * dovecot-index.md 5.1, including the fallbacks of section 6: a damaged
 * dovecot.index is ignored when the log chain reaches a reset log
 * (reported in dovi_index_info()->index_ignored). */
int dovi_index_open(const char *prefix, struct dovi_index **idx_r,
		    struct dbox_err *err);
void dovi_index_free(struct dovi_index *idx);

/* Applies what was appended to the log since the last load/refresh.  A
 * rotated log (new .log inode) is finished through the old descriptor and
 * followed into the new file when it continues the old one; a reset log,
 * an indexid change, a shrunken log or anything inconsistent makes it
 * reload everything.  *changed_r (may be NULL): true if any log record
 * was applied or the state was reloaded (a few records, such as
 * bookkeeping header updates, change nothing visible). */
int dovi_index_refresh(struct dovi_index *idx, bool *changed_r,
		       struct dbox_err *err);

const char *dovi_index_prefix(const struct dovi_index *idx);
void dovi_index_header(const struct dovi_index *idx, struct dovi_header *hdr_r);
const struct dovi_load_info *dovi_index_info(const struct dovi_index *idx);
/* Non-fatal sync errors met while replaying (Dovecot would log them and
 * fsck): their number, and the text of the first few (NULL beyond). */
unsigned dovi_index_error_count(const struct dovi_index *idx);
const char *dovi_index_error(const struct dovi_index *idx, unsigned i);
/* An external INDEX_DELETED record was seen: the mailbox is being
 * deleted. */
bool dovi_index_deleted(const struct dovi_index *idx);

/* Messages, in uid order, addressed by position 0 .. count-1. */
uint32_t dovi_index_count(const struct dovi_index *idx);
uint32_t dovi_index_uid(const struct dovi_index *idx, uint32_t pos);
uint8_t dovi_index_flags(const struct dovi_index *idx, uint32_t pos);
/* Position of the message with this uid; false if there is none. */
bool dovi_index_lookup(const struct dovi_index *idx, uint32_t uid,
		       uint32_t *pos_r);

/* The keyword list (names never disappear; bit number = position).
 * Names are valid UTF-8 (ill-formed bytes become U+FFFD). */
unsigned dovi_index_keyword_count(const struct dovi_index *idx);
const char *dovi_index_keyword(const struct dovi_index *idx, unsigned kw);
bool dovi_index_has_keyword(const struct dovi_index *idx, uint32_t pos,
			    unsigned kw);

/* Extensions by name ("mdbox", "guid", "map", "ref", "dbox-hdr", ...);
 * -1 if absent. */
int dovi_index_ext(const struct dovi_index *idx, const char *name);
/* What an extension's intro says of it (a writer's EXT_INTRO of it
 * repeats these, dovecot-index.md 3.4); false if ext is none. */
struct dovi_ext_info {
	uint32_t reset_id;
	uint32_t hdr_size;
	uint16_t record_size;
	uint16_t record_align;
};
bool dovi_index_ext_info(const struct dovi_index *idx, int ext,
			 struct dovi_ext_info *info_r);
/* Per-message data of an extension: *len_r bytes (0 and NULL when the
 * extension has none). */
const uint8_t *dovi_index_ext_record(const struct dovi_index *idx, int ext,
				     uint32_t pos, size_t *len_r);
/* Copies header bytes [off, off+len) of an extension to buf and returns
 * how many of them lie inside its header (the rest is zeroed). */
size_t dovi_index_ext_header(const struct dovi_index *idx, int ext,
			     size_t off, void *buf, size_t len);

/* mdbox helpers on the raw index (false when the data isn't there):
 * a mailbox message's `mdbox` record, and a map record's `map`/`ref`. */
bool dovi_index_mdbox_rec(const struct dovi_index *idx, uint32_t pos,
			  uint32_t *map_uid_r, uint32_t *save_date_r);
bool dovi_index_map_rec(const struct dovi_index *map, uint32_t pos,
			uint32_t *file_id_r, uint32_t *offset_r,
			uint32_t *size_r, bool *have_refcount_r,
			uint16_t *refcount_r);
/* The map's `map` header: the highest m.<file_id> ever allocated and the
 * storage rebuild count. */
bool dovi_index_map_hdr(const struct dovi_index *map,
			uint32_t *highest_file_id_r,
			uint32_t *rebuild_count_r);

/* ===================================================================
 * Stores and mailboxes
 * =================================================================== */

enum dovi_format {
	DOVI_SDBOX = 1,
	DOVI_MDBOX = 2,
};

struct dovi_store;
struct dovi_mailbox;

struct dovi_mailbox_name {
	char *name;                 /* UTF-8, hierarchy separated by '/' */
	char *storage_name;         /* as on disk (modified UTF-7) */
	/* false: the on-disk name is not valid modified UTF-7 and name is
	 * a copy of storage_name */
	bool name_valid;
};

/* A store root with the default layout (dbox-format.md 1.2/1.3): mailboxes
 * in ROOT/mailboxes/NAME/dbox-Mails, the mdbox map in ROOT/storage. */
int dovi_store_open(const char *root, enum dovi_format format,
		    struct dovi_store **store_r, struct dbox_err *err);
void dovi_store_free(struct dovi_store *store);
const char *dovi_store_root(const struct dovi_store *store);
/* Dovecot's INDEX= directory of mail_location: the index files are read
 * from there (DIR/mailboxes/NAME/dovecot.index*, the mdbox map's
 * DIR/storage/dovecot.map.index*) instead of from inside the tree.  Set
 * before any mailbox is opened.  -errno if DIR is no directory. */
int dovi_store_set_index_root(struct dovi_store *store, const char *dir,
			      struct dbox_err *err);
/* The INDEX= directory, or the root when the index is in the tree. */
const char *dovi_store_index_root(const struct dovi_store *store);
enum dovi_format dovi_store_format(const struct dovi_store *store);

/* The mailboxes: every directory D under ROOT/mailboxes that has a
 * D/dbox-Mails directory, sorted by storage name.  Free the list with
 * dovi_mailbox_names_free(). */
int dovi_store_list(struct dovi_store *store,
		    struct dovi_mailbox_name **list_r, size_t *count_r,
		    struct dbox_err *err);
void dovi_mailbox_names_free(struct dovi_mailbox_name *list, size_t count);

/* mdbox: the store's map index, loaded by the first mailbox refresh (or
 * here); NULL for sdbox (err set). */
struct dovi_index *dovi_store_map(struct dovi_store *store,
				  struct dbox_err *err);

/* One message as a mailbox shows it. */
struct dovi_message {
	uint32_t uid;
	uint8_t flags;              /* enum dovi_flag bits */
	unsigned keyword_count;
	const char *const *keywords;        /* in keyword-list order */
	/* mdbox */
	bool have_map_uid;
	uint32_t map_uid;
	uint32_t save_date;
	bool in_map;                /* the map has map_uid: the fields below */
	uint32_t file_id;           /* storage/m.<file_id> */
	uint32_t offset;            /* of the dbox message header in it */
	uint32_t size;              /* of the whole entry (0: last one, size
				     * unknown - Dovecot main, > 4 GiB) */
	bool have_refcount;
	uint16_t refcount;
	bool have_guid;             /* mdbox `guid` ext (binary GUID) */
	uint8_t guid[16];
};

/* Opens a mailbox by its UTF-8 name (as dovi_store_list() gives it) and
 * loads it (dovi_mailbox_refresh()).  -ENOENT if it doesn't exist.  A
 * mailbox directory without index files is empty, as Dovecot shows it
 * (dovi_mailbox_index() is NULL until the files appear). */
int dovi_mailbox_open(struct dovi_store *store, const char *name,
		      struct dovi_mailbox **box_r, struct dbox_err *err);
/* The same by on-disk (modified UTF-7) name, e.g. for a listed name whose
 * name_valid is false. */
int dovi_mailbox_open_storage_name(struct dovi_store *store,
				   const char *storage_name,
				   struct dovi_mailbox **box_r,
				   struct dbox_err *err);
void dovi_mailbox_free(struct dovi_mailbox *box);

/* Brings the mailbox (and for mdbox the map, read after the mailbox) up to
 * date and rebuilds the message list.  mdbox: a message whose map_uid the
 * map lacks makes the map be re-read once; if it is still missing the
 * message was expunged meanwhile and is hidden (dovi_mailbox_hidden()).
 * *changed_r (may be NULL): whether the message list, the keyword names,
 * uid_validity or next_uid differ from before the call. */
int dovi_mailbox_refresh(struct dovi_mailbox *box, bool *changed_r,
			 struct dbox_err *err);

const char *dovi_mailbox_name(const struct dovi_mailbox *box);
/* The directory with the mailbox's index (and sdbox's u.<uid> files). */
const char *dovi_mailbox_dir(const struct dovi_mailbox *box);
/* Where the mailbox's dovecot.index* files are: dovi_mailbox_dir(), or
 * under the store's INDEX= directory. */
const char *dovi_mailbox_index_dir(const struct dovi_mailbox *box);
const struct dovi_index *dovi_mailbox_index(const struct dovi_mailbox *box);
uint32_t dovi_mailbox_uid_validity(const struct dovi_mailbox *box);
uint32_t dovi_mailbox_next_uid(const struct dovi_mailbox *box);
/* The mailbox GUID from dbox-hdr/mdbox-hdr; false if not (yet) known. */
bool dovi_mailbox_guid(const struct dovi_mailbox *box, uint8_t guid_r[16]);
/* The mailbox's keyword names (never shrinks; dovi_message.keywords point
 * into it). */
unsigned dovi_mailbox_keyword_count(const struct dovi_mailbox *box);
const char *dovi_mailbox_keyword(const struct dovi_mailbox *box, unsigned i);
size_t dovi_mailbox_count(const struct dovi_mailbox *box);
const struct dovi_message *
dovi_mailbox_messages(const struct dovi_mailbox *box);
/* mdbox: messages left out because the map lacks their map_uid. */
size_t dovi_mailbox_hidden(const struct dovi_mailbox *box);

/* sdbox: path of the message file (primary storage), i.e.
 * <dovi_mailbox_dir()>/u.<uid>.  -ENAMETOOLONG if buf is too small. */
int dovi_mailbox_sdbox_path(const struct dovi_mailbox *box, uint32_t uid,
			    char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
