/* dovecot-logwrite.h - appends transactions to Dovecot's own transaction
 * log (dovecot.index.log, dovecot-index.md 3), as Dovecot itself does.
 *
 * Used where a takeover mount changes a message Dovecot knows: the same
 * change goes into Dovecot's log, so Dovecot (and its force-resync, which
 * starts from the index it has) shows what the mount showed.  A
 * transaction is built in memory (dovi_logwrite_*_add) and appended with
 * one write at the end of the log under Dovecot's lock on it (an fcntl
 * write lock on the whole file, Dovecot's default lock_method), then made
 * durable.  A log that is missing, rotated away, marked corrupted or has
 * an unfinished transaction at its end is never written.  Not
 * thread-safe: one transaction is owned by one thread. */
#ifndef DOVI_LOGWRITE_H
#define DOVI_LOGWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbox/store.h"

struct dovi_logwrite;

/* An empty transaction; NULL when out of memory. */
struct dovi_logwrite *dovi_logwrite_new(void);
void dovi_logwrite_free(struct dovi_logwrite *w);
/* Records added so far. */
unsigned dovi_logwrite_count(const struct dovi_logwrite *w);

/* Commits it as a sync does: only onto a log whose backend has synced
 * all of it, followed by the update of the tail offset past it (the mdbox
 * map is only ever written this way). */
void dovi_logwrite_set_synced(struct dovi_logwrite *w);

/* Commits it only onto the log with file_seq seq that ends at end1 or
 * end2 (where its reader and our own last commit left it): else -EAGAIN,
 * someone else wrote meanwhile. */
void dovi_logwrite_expect(struct dovi_logwrite *w, uint32_t seq,
			  uint64_t end1, uint64_t end2);
/* After a commit: the log's file_seq and where our records start and
 * end in it. */
void dovi_logwrite_end(const struct dovi_logwrite *w, uint32_t *seq_r,
		       uint64_t *start_r, uint64_t *end_r);

/* EXTERNAL APPEND of a new message uid (above the index's next_uid). */
void dovi_logwrite_append_add(struct dovi_logwrite *w, uint32_t uid,
			      uint8_t flags);
/* EXT_REC_UPDATE of the introduced extension: uid's data (len = the
 * intro's record_size). */
void dovi_logwrite_ext_rec_add(struct dovi_logwrite *w, uint32_t uid,
			       const void *data, size_t len);

/* FLAG_UPDATE of uid1..uid2: flags = (flags & ~remove) | add. */
void dovi_logwrite_flags_add(struct dovi_logwrite *w, uint32_t uid1,
			     uint32_t uid2, uint8_t add, uint8_t remove);
/* KEYWORD_UPDATE of one name for uid1..uid2 (Dovecot registers a name it
 * does not know yet when it applies this). */
void dovi_logwrite_keyword_add(struct dovi_logwrite *w, bool add,
			       const char *name, uint32_t uid1,
			       uint32_t uid2);
/* EXTERNAL EXPUNGE_GUID: the message is gone from the backend. */
void dovi_logwrite_expunge_add(struct dovi_logwrite *w, uint32_t uid,
			       const uint8_t guid[16]);

/* EXT_INTRO of an existing extension by name, as it is (the records
 * after it that use an extension refer to the last intro). */
void dovi_logwrite_ext_intro_add(struct dovi_logwrite *w, const char *name,
				 uint32_t reset_id, uint32_t hdr_size,
				 uint16_t record_size, uint16_t record_align);
/* EXT_HDR_UPDATE of the introduced extension's header bytes
 * [offset, offset+len) (len > 0, offset + len <= 65535). */
void dovi_logwrite_ext_hdr_add(struct dovi_logwrite *w, uint16_t offset,
			       const void *data, size_t len);
/* External HEADER_UPDATE of the 4 bytes at offset of the index's base
 * header (uid_validity, next_uid, ...). */
void dovi_logwrite_header_add(struct dovi_logwrite *w, uint16_t offset,
			      uint32_t value);
/* EXT_ATOMIC_INC of the introduced extension's number for uid. */
void dovi_logwrite_atomic_inc_add(struct dovi_logwrite *w, uint32_t uid,
				  int32_t diff);

/* Appends the transaction to the log at path (a BOUNDARY first when it
 * has two records or more), waiting at most timeout_ms for the lock, and
 * fdatasyncs it.  Returns 0; -ENOENT (no log), -EBADMSG (a log Dovecot
 * must repair first), -ETIMEDOUT (locked too long), -ENOMEM (a record
 * could not be added), another -errno; err says why.  Nothing is written
 * unless all of it is. */
int dovi_logwrite_commit(struct dovi_logwrite *w, const char *path,
			 unsigned timeout_ms, struct dbox_err *err);

/* Dovecot's lock of the log at path held across more than one append,
 * for what must happen under it (as Dovecot's own sync lock: the mdbox
 * map's new file ids).  take: waits at most timeout_ms, as
 * dovi_logwrite_commit (errors as its); append: w appended as
 * dovi_logwrite_commit appends it, the lock kept; release: the lock
 * dropped (lk may be NULL).  One thread. */
struct dovi_loglock;
int dovi_loglock_take(const char *path, unsigned timeout_ms,
		      struct dovi_loglock **lk_r, struct dbox_err *err);
int dovi_loglock_append(struct dovi_loglock *lk, struct dovi_logwrite *w,
			struct dbox_err *err);
void dovi_loglock_release(struct dovi_loglock *lk);

/* Makes the first log of a new mailbox at path with the transaction as
 * its first records (prev_file_seq 0: it starts from an empty index, as
 * Dovecot's own first log of a mailbox).  Written whole to Dovecot's
 * lock file of a log being made (path.newlock, taken with O_EXCL as
 * Dovecot takes it: -EBUSY while Dovecot holds it), made durable, then
 * linked into place: -EEXIST when a log is there already (Dovecot made
 * one meanwhile), and nobody ever reads a log that lacks part of it. */
int dovi_logwrite_create(struct dovi_logwrite *w, const char *path,
			 struct dbox_err *err);

#endif
