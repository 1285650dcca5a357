/* dbox-dovecot-back.c - a takeover mount's changes handed back to
 * Dovecot: what the mount changes in a message Dovecot knows goes into
 * that mailbox's dovecot.index.log as well, as Dovecot's own IMAP server
 * would write it, so that Dovecot shows what the mount showed.
 *
 * Called inside the index write transaction of the change: the follower
 * (dbox_store_follow) syncs under that same lock, so it reads Dovecot's
 * log either before the change or with it, and finds our row already
 * equal to what the log says; our own records thus change nothing when
 * it replays them.  A failure (no log, locked too long, damaged) leaves
 * our change as it is and records in that same transaction that Dovecot
 * is owed it (dindex-owed.h): the follower hands it back later
 * (dbox-dovecot-owed.c) and keeps our state of the message meanwhile. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbox/dovecot-index.h"
#include "dovecot/dovecot-logwrite.h"
#include "dovecot/dovecot-mailboxlog.h"
#include "index/dindex-owed.h"
#include "store/dbox-msg-storage.h"
#include "store/dbox-dovecot-private.h"
#include "store/store-private.h"

/* Offsets in the index's base header (dovecot-index.md 2.2). */
#define HDR_UID_VALIDITY 24
#define HDR_NEXT_UID 28

struct dovecot_box *dbox_dovecot_box(struct dbox_store *store, int64_t id)
{
	struct dbox_dovecot *dv = store->dovecot;

	for (size_t i = 0; dv != NULL && i < dv->count; i++) {
		if (dv->boxes[i].id == id && dv->boxes[i].db != NULL)
			return &dv->boxes[i];
	}
	return NULL;
}

int dbox_dovecot_refresh(struct dovecot_box *b, struct dbox_err *err)
{
	bool changed = false;
	int ret = dovi_mailbox_refresh(b->db, &changed, err);

	b->resync |= changed;
	return ret;
}

/* The box we follow for our mailbox id, if Dovecot has an index of it,
 * brought up to date: a message delivered or moved in through the mount
 * a moment ago is Dovecot's already.  What the refresh read is the
 * follower's to sync (resync), as if it had read it itself.  *owe_r:
 * the change is owed (its index could not be read, or changes of that
 * mailbox are owed already: no wait for a log still locked). */
static struct dovecot_box *box_of(struct dbox_store *store, int64_t id,
				  bool *owe_r)
{
	struct dovecot_box *b = store->readonly ? NULL :
		dbox_dovecot_box(store, id);
	struct dbox_err err;

	*owe_r = false;
	if (b == NULL)
		return NULL;
	if (b->owed) {
		*owe_r = true;
		return NULL;
	}
	if (dbox_dovecot_refresh(b, &err) < 0) {
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: a change not handed "
			 "back to Dovecot yet: %s", b->name, err.msg);
		*owe_r = true;
		return NULL;
	}
	return dovi_mailbox_index(b->db) != NULL ? b : NULL;
}

/* A delivery or a move into b not handed back (nor the ones after it,
 * is_next): the follower hands them back (dbox_dovecot_adopt_pending). */
static void left_behind(struct dovecot_box *b)
{
	b->behind = true;
	atomic_store(&b->dv->adopt_due, true);
}

/* Records that Dovecot is owed o, in the transaction of the change. */
static int owe_row(struct dbox_store *store, const struct dindex_owed *o)
{
	struct dovecot_box *b = dbox_dovecot_box(store, o->mailbox_id);
	struct dbox_err err = { 0 };
	int ret = dindex_owed_add(store->idx, o, &err);

	if (ret < 0)
		dbox_log(DBOX_LOG_ERROR, "mailbox %lld: a change Dovecot is "
			 "owed not recorded: %s", (long long)o->mailbox_id,
			 err.msg);
	else if (b != NULL)
		b->owed = true;
	/* the adoption pass's catch-up of it may come first */
	if (ret == 0 && b != NULL && o->kind == DINDEX_OWED_APPEND)
		left_behind(b);
	return ret;
}

/* The same for a change of (box, uid) (guid, unref: an expunge's). */
static int owe(struct dbox_store *store, int64_t box, uint32_t uid,
	       enum dindex_owed_kind kind, const char *guid, bool unref)
{
	struct dindex_owed o = { .mailbox_id = box, .uid = uid, .kind = kind,
				 .unref = unref };

	snprintf(o.guid, sizeof(o.guid), "%s", guid != NULL ? guid : "");
	return owe_row(store, &o);
}

/* The flags and keywords of old changed: what they were is the base
 * (dindex_owed.base_flags). */
static int owe_flags(struct dbox_store *store, const struct dbox_msg *old)
{
	struct dindex_owed o = { .mailbox_id = old->mailbox_id,
				 .uid = old->uid, .kind = DINDEX_OWED_FLAGS,
				 .base_flags = old->flags,
				 .base_keywords = old->keywords };

	return owe_row(store, &o);
}

const struct dovi_message *dbox_dovecot_known(struct dovecot_box *b,
					      uint32_t uid)
{
	const struct dovi_message *msgs = dovi_mailbox_messages(b->db);
	size_t lo = 0, hi = dovi_mailbox_count(b->db);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (msgs[mid].uid == uid)
			return &msgs[mid];
		if (msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Where the follower's reader of b left its log. */
static void read_pos(struct dovecot_box *b, uint32_t *seq_r, uint64_t *end_r)
{
	struct dovi_header hdr;

	dovi_index_header(dovi_mailbox_index(b->db), &hdr);
	*seq_r = hdr.log_file_seq;
	*end_r = hdr.log_file_head_offset;
}

/* After a write into b's log: is its end still one that only the reader
 * and we made? */
static void note_end(struct dovecot_box *b, const struct dovi_logwrite *w)
{
	uint32_t seq, rseq;
	uint64_t start, end, rend;

	dovi_logwrite_end(w, &seq, &start, &end);
	read_pos(b, &rseq, &rend);
	if (seq == rseq && (start == rend ||
			    (b->back_seq == seq && start == b->back_end))) {
		b->back_seq = seq;
		b->back_end = end;
	} else {
		b->back_seq = 0;
	}
}

/* Appends w to the log of b; logs what went wrong. */
int dbox_dovecot_commit(struct dovecot_box *b, struct dovi_logwrite *w,
			unsigned lock_ms, struct dbox_err *err)
{
	char path[PATH_MAX];
	int ret;

	if (dovi_logwrite_count(w) == 0)
		return 0;
	ret = dbox_path(path, sizeof(path), "%s.log",
			dovi_index_prefix(dovi_mailbox_index(b->db)));
	if (ret < 0)
		return dbox_fail(err, ret, "log path too long");
	ret = dovi_logwrite_commit(w, path, lock_ms, err);
	if (ret == 0)
		note_end(b, w);
	return ret;
}

/* A change made in a request: waits for Dovecot's lock as long as the
 * store was told (dbox_open_opts.dovecot_lock_ms); logs a failure. */
static int commit(struct dovecot_box *b, struct dovi_logwrite *w,
		  const char *what)
{
	struct dbox_err err = { 0 };
	int ret = dbox_dovecot_commit(b, w, b->dv->lock_ms, &err);

	if (ret < 0)
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: %s not handed back "
			 "to Dovecot yet: %s", b->name, what,
			 err.msg[0] != '\0' ? err.msg : strerror(-ret));
	return ret;
}

/* The keyword changes between two of our keyword sets, by name. */
static void add_keywords(struct dbox_store *store, struct dovecot_box *b,
			 struct dovi_logwrite *w, uint32_t uid,
			 uint32_t old_kw, uint32_t new_kw)
{
	char *names[DBOX_MAX_KEYWORDS] = { 0 }, buf[DBOX_MAX_KEYWORDS * 256];
	int n = old_kw == new_kw ? -1 : dbox_mailbox_keywords(store, b->id,
		names, buf, sizeof(buf), NULL);

	for (int i = 0; n >= 0 && i < DBOX_MAX_KEYWORDS; i++) {
		uint32_t bit = 1u << i;

		if (names[i] == NULL || names[i][0] == '\0' ||
		    ((old_kw ^ new_kw) & bit) == 0)
			continue;
		dovi_logwrite_keyword_add(w, (new_kw & bit) != 0, names[i],
					  uid, uid);
	}
}

int dbox_dovecot_back_flags(struct dbox_store *store,
			    const struct dbox_msg *old, uint32_t flags,
			    uint32_t keywords)
{
	uint8_t was = old->flags & DOVI_SYSTEM_FLAGS;
	uint8_t now = flags & DOVI_SYSTEM_FLAGS;
	struct dovecot_box *b;
	struct dovi_logwrite *w;
	bool owe_it;
	int ret;

	if (was == now && old->keywords == keywords)
		return 0;
	b = box_of(store, old->mailbox_id, &owe_it);
	if (b == NULL || dbox_dovecot_known(b, old->uid) == NULL)
		return owe_it ? owe_flags(store, old) : 0;
	w = dovi_logwrite_new();
	ret = w == NULL ? -ENOMEM : 0;
	if (ret == 0 && was != now)
		dovi_logwrite_flags_add(w, old->uid, old->uid, now & ~was,
					was & ~now);
	if (ret == 0) {
		add_keywords(store, b, w, old->uid, old->keywords, keywords);
		ret = commit(b, w, "a flag change");
	}
	dovi_logwrite_free(w);
	return ret < 0 ? owe_flags(store, old) : 0;
}

/* The binary GUID of an expunge record: Dovecot's, else ours (32 hex
 * digits), else zeroes (Dovecot does not check it when it applies one). */
static void expunge_guid(const struct dovi_message *dm, const char *ours,
			 uint8_t guid[16])
{
	memset(guid, 0, 16);
	if (dm->have_guid)
		memcpy(guid, dm->guid, 16);
	else
		dbox_dovecot_guid_bin(ours, guid);
}

void dbox_dovecot_expunge_rec(struct dovi_logwrite *w,
			      const struct dovi_message *dm, const char *ours)
{
	uint8_t guid[16];

	expunge_guid(dm, ours, guid);
	/* what Dovecot's own sync writes once the message is gone */
	dovi_logwrite_expunge_add(w, dm->uid, guid);
}

bool dbox_dovecot_counted(const struct dbox_store *store,
			  const struct dovi_message *dm)
{
	return store->format == DBOX_FORMAT_MDBOX && dm->have_map_uid &&
		dm->in_map && dm->have_refcount && dm->refcount > 0;
}

/* The external expunge of msg in b; unref: mdbox, the map counts one
 * reference less. */
static int expunge_in(struct dbox_store *store, struct dovecot_box *b,
		      const struct dovi_message *dm,
		      const struct dbox_msg *msg, bool unref)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	int ret = w == NULL ? -ENOMEM : 0;

	if (ret == 0) {
		dbox_dovecot_expunge_rec(w, dm, msg->guid);
		ret = commit(b, w, "an expunge");
	}
	dovi_logwrite_free(w);
	if (ret < 0)
		return owe(store, msg->mailbox_id, msg->uid,
			   DINDEX_OWED_EXPUNGE, msg->guid, unref);
	/* the mailbox first: a map count left too high only keeps bytes */
	if (unref && dbox_dovecot_counted(store, dm))
		dbox_dovecot_map_ref(b, dm->map_uid, -1, b->dv->lock_ms);
	return 0;
}

int dbox_dovecot_back_expunge(struct dbox_store *store,
			      const struct dbox_msg *msg)
{
	bool owe_it;
	struct dovecot_box *b = box_of(store, msg->mailbox_id, &owe_it);
	const struct dovi_message *dm = b != NULL ?
		dbox_dovecot_known(b, msg->uid) : NULL;

	if (owe_it)
		return owe(store, msg->mailbox_id, msg->uid,
			   DINDEX_OWED_EXPUNGE, msg->guid, true);
	return dm != NULL ? expunge_in(store, b, dm, msg, true) : 0;
}

int dbox_dovecot_map_ref(struct dovecot_box *b, uint32_t map_uid,
			 int32_t diff, unsigned lock_ms)
{
	struct dovi_index *map = dovi_store_map(b->ds, NULL);
	struct dovi_logwrite *w = dovi_logwrite_new();
	struct dovi_ext_info info;
	char path[PATH_MAX];
	struct dbox_err err = { 0 };
	int ret = w == NULL ? -ENOMEM : 0;

	if (ret == 0 && (map == NULL ||
			 !dovi_index_ext_info(map, dovi_index_ext(map, "ref"),
					      &info)))
		ret = dbox_fail(&err, -ENOENT, "no refcounts in the map");
	if (ret == 0)
		ret = dbox_path(path, sizeof(path), "%s.log",
				dovi_index_prefix(map));
	if (ret == 0) {
		dovi_logwrite_set_synced(w);
		dovi_logwrite_ext_intro_add(w, "ref", info.reset_id,
					    info.hdr_size, info.record_size,
					    info.record_align);
		dovi_logwrite_atomic_inc_add(w, map_uid, diff);
		ret = dovi_logwrite_commit(w, path, lock_ms, &err);
	}
	if (ret < 0)
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: the map's count of "
			 "map uid %u not handed back to Dovecot: %s", b->name,
			 map_uid, err.msg[0] != '\0' ? err.msg : strerror(-ret));
	dovi_logwrite_free(w);
	return ret;
}

/* An extension record in w, introduced as the mailbox has it (or as
 * Dovecot registers it when the mailbox has none yet). */
static void ext_rec(struct dovecot_box *b, struct dovi_logwrite *w,
		    const char *name, uint16_t size, uint16_t align,
		    uint32_t uid, const void *data)
{
	const struct dovi_index *idx = dovi_mailbox_index(b->db);
	struct dovi_ext_info info = { 0, 0, size, align };

	dovi_index_ext_info(idx, dovi_index_ext(idx, name), &info);
	if (info.record_size < size)
		return;   /* not Dovecot's layout: leave it out */
	dovi_logwrite_ext_intro_add(w, name, info.reset_id, info.hdr_size,
				    info.record_size, info.record_align);
	dovi_logwrite_ext_rec_add(w, uid, data, size);
}

/* Whether uid is the one Dovecot gives next in b.  Dovecot speaks for
 * every uid below its next one: an append above a uid of ours that it
 * does not list (a delivery it has not indexed) would make that one
 * expunged. */
static bool is_next(struct dovecot_box *b, uint32_t uid)
{
	uint32_t next = dovi_mailbox_next_uid(b->db);

	return uid == (b->back_next > next ? b->back_next : next);
}

/* The message `to` appended, as Dovecot's save (mdbox, dm: the record of
 * the message moved in, for its map uid, save date and GUID). */
static int append_msg(struct dbox_store *store, struct dovecot_box *b,
			const struct dovi_message *dm,
			const struct dbox_msg *to, const char *what)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	uint32_t rseq;
	uint64_t rend;
	int ret;

	if (w == NULL)
		return -ENOMEM;
	/* a uid Dovecot gave since we last read its log would make this
	 * append one Dovecot refuses */
	read_pos(b, &rseq, &rend);
	dovi_logwrite_expect(w, rseq, rend, b->back_seq == rseq ?
			     b->back_end : rend);
	dovi_logwrite_append_add(w, to->uid, to->flags & DOVI_SYSTEM_FLAGS);
	if (dm != NULL && store->format == DBOX_FORMAT_MDBOX) {
		uint8_t rec[8];

		dbox_dovecot_mdbox_rec(rec, dm->map_uid, dm->save_date);
		ext_rec(b, w, "mdbox", 8, 4, to->uid, rec);
		if (dm->have_guid)
			ext_rec(b, w, "guid", 16, 1, to->uid, dm->guid);
	}
	add_keywords(store, b, w, to->uid, 0, to->keywords);
	ret = commit(b, w, what);
	if (ret == 0)
		b->back_next = to->uid + 1;
	dovi_logwrite_free(w);
	return ret;
}

/* A move of `from` to `to` owed whole: the destination's append (its
 * catch-up, dbox_dovecot_catch_up, counts the map reference) before the
 * source's expunge, which then counts one less. */
static int owe_move(struct dbox_store *store, const struct dbox_msg *from,
		    const struct dbox_msg *to)
{
	int ret = owe(store, to->mailbox_id, to->uid, DINDEX_OWED_APPEND, NULL,
		      false);

	return ret < 0 ? ret : owe(store, from->mailbox_id, from->uid,
				   DINDEX_OWED_EXPUNGE, from->guid, true);
}

/* Moved out of src (dm: Dovecot's record, NULL: its index unreadable)
 * to where Dovecot has no index (an adoption gives it one).  Gone from
 * the source all the same, or it would come back there (the follower
 * shows what Dovecot lists); mdbox: the map keeps counting it, so
 * nothing purges its bytes. */
static int move_out(struct dbox_store *store, struct dovecot_box *src,
		    const struct dovi_message *dm, const struct dbox_msg *from)
{
	dbox_log(DBOX_LOG_INFO, "mailbox %s: a message moved out to a folder "
		 "Dovecot has no index of (Dovecot sees it there after the "
		 "next mount's start, or doveadm force-resync)", src->name);
	if (dm == NULL)
		return owe(store, from->mailbox_id, from->uid,
			   DINDEX_OWED_EXPUNGE, from->guid, false);
	return expunge_in(store, src, dm, from, false);
}

int dbox_dovecot_back_move(struct dbox_store *store,
			   const struct dbox_msg *from,
			   const struct dbox_msg *to)
{
	bool owe_dst, owe_src, mdbox = store->format == DBOX_FORMAT_MDBOX;
	/* both refreshed before dm is taken: a refresh moves the list */
	struct dovecot_box *dst = box_of(store, to->mailbox_id, &owe_dst);
	struct dovecot_box *src = box_of(store, from->mailbox_id, &owe_src);
	const struct dovi_message *dm = src != NULL ?
		dbox_dovecot_known(src, from->uid) : NULL;
	bool dst_followed = dst != NULL || owe_dst;

	if (dm == NULL && !owe_src)
		/* Dovecot did not know it: the destination's catch-up
		 * appends it (it has a uid Dovecot has not given yet) */
		return dst_followed ? owe(store, to->mailbox_id, to->uid,
					  DINDEX_OWED_APPEND, NULL, false) : 0;
	if (dm != NULL && mdbox && (!dm->have_map_uid || !dm->in_map))
		return 0;
	if (!dst_followed)
		return move_out(store, src != NULL ? src :
				dbox_dovecot_box(store, from->mailbox_id), dm,
				from);
	if (dm == NULL || dst == NULL || !is_next(dst, to->uid))
		return owe_move(store, from, to);
	/* as Dovecot's own move: a copy (the map counts one more
	 * reference), then the expunge of the original */
	if (mdbox && dbox_dovecot_map_ref(src, dm->map_uid, 1,
					  src->dv->lock_ms) < 0)
		return owe_move(store, from, to);
	if (append_msg(store, dst, dm, to, "a message moved in") < 0) {
		if (mdbox)
			dbox_dovecot_map_ref(src, dm->map_uid, -1,
					     src->dv->lock_ms);
		return owe_move(store, from, to);
	}
	return expunge_in(store, src, dm, from, true);
}

/* Little-endian v at p. */
static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The extension name of the map as it is, introduced in w; false (err
 * set) when the map has none of at least record_size bytes. */
static bool map_intro(struct dovi_index *map, struct dovi_logwrite *w,
		      const char *name, uint16_t record_size,
		      struct dbox_err *err)
{
	struct dovi_ext_info info;

	if (!dovi_index_ext_info(map, dovi_index_ext(map, name), &info) ||
	    info.record_size < record_size) {
		dbox_fail(err, -ENOENT, "no '%s' records in the map", name);
		return false;
	}
	dovi_logwrite_ext_intro_add(w, name, info.reset_id, info.hdr_size,
				    info.record_size, info.record_align);
	return true;
}

uint32_t dbox_dovecot_map_highest(const struct dovi_index *map)
{
	uint32_t highest, rebuild;

	return dovi_index_map_hdr(map, &highest, &rebuild) ? highest :
		UINT32_MAX;
}

/* The map header's highest file id set to file_id (w's "map" extension
 * introduced). */
static void map_highest_add(struct dovi_logwrite *w, uint32_t file_id)
{
	uint8_t hdr[4];

	le32(hdr, file_id);
	dovi_logwrite_ext_hdr_add(w, 0, hdr, sizeof(hdr));
}

int dbox_dovecot_map_highest_records(struct dovi_index *map,
				     struct dovi_logwrite *w,
				     uint32_t file_id, struct dbox_err *err)
{
	if (!map_intro(map, w, "map", 12, err))
		return -ENOENT;
	map_highest_add(w, file_id);
	return 0;
}

int dbox_dovecot_map_records(struct dovi_index *map, struct dovi_logwrite *w,
			     const struct dbox_msg *msg, uint32_t map_uid,
			     uint32_t *highest, struct dbox_err *err)
{
	const struct dbox_msg_where *where = dbox_msg_where(msg);
	uint8_t rec[12], ref[2] = { 1, 0 };

	if (where->offset > UINT32_MAX || where->compression != DBOX_COMP_NONE)
		return dbox_fail(err, -EFBIG, "its record is past 4 GiB or "
				 "compressed, which the map cannot say");
	le32(rec, where->file_id);
	le32(rec + 4, (uint32_t)where->offset);
	/* as Dovecot: an entry over 4 GiB is its file's last, size 0 */
	le32(rec + 8, where->rec_size > UINT32_MAX ? 0 :
	     (uint32_t)where->rec_size);
	dovi_logwrite_append_add(w, map_uid, 0);
	if (!map_intro(map, w, "map", sizeof(rec), err))
		return -ENOENT;
	dovi_logwrite_ext_rec_add(w, map_uid, rec, sizeof(rec));
	if (*highest != UINT32_MAX && where->file_id > *highest) {
		map_highest_add(w, where->file_id);
		*highest = where->file_id;
	}
	if (!map_intro(map, w, "ref", sizeof(ref), err))
		return -ENOENT;
	dovi_logwrite_ext_rec_add(w, map_uid, ref, sizeof(ref));
	return 0;
}

/* mdbox: msg added to the map; *map_uid_r: its new map uid.  Only onto
 * a map log that its backend has synced whole and that ends where we
 * last read it: the uid given is then the map's next. */
static int map_append(struct dovecot_box *b, const struct dbox_msg *msg,
		      uint32_t *map_uid_r)
{
	struct dovi_index *map = dovi_store_map(b->ds, NULL);
	struct dovi_logwrite *w = dovi_logwrite_new();
	struct dovi_header hdr = { 0 };
	char path[PATH_MAX];
	struct dbox_err err = { 0 };
	uint32_t highest = map != NULL ? dbox_dovecot_map_highest(map) : 0;
	int ret = w == NULL ? -ENOMEM : 0;

	if (ret == 0 && map == NULL)
		ret = dbox_fail(&err, -ENOENT, "no map");
	if (ret == 0)
		dovi_index_header(map, &hdr);
	if (ret == 0 && (hdr.uid_validity == 0 || hdr.next_uid == 0))
		ret = dbox_fail(&err, -EBADMSG, "the map has no uids yet");
	if (ret == 0)
		ret = dbox_path(path, sizeof(path), "%s.log",
				dovi_index_prefix(map));
	if (ret == 0) {
		dovi_logwrite_set_synced(w);
		dovi_logwrite_expect(w, hdr.log_file_seq,
				     hdr.log_file_head_offset,
				     hdr.log_file_head_offset);
		ret = dbox_dovecot_map_records(map, w, msg, hdr.next_uid,
					       &highest, &err);
	}
	if (ret == 0)
		ret = dovi_logwrite_commit(w, path, b->dv->lock_ms, &err);
	if (ret < 0)
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: a delivery not handed "
			 "back to Dovecot (map): %s", b->name,
			 err.msg[0] != '\0' ? err.msg : strerror(-ret));
	*map_uid_r = hdr.next_uid;
	dovi_logwrite_free(w);
	return ret;
}

void dbox_dovecot_mdbox_rec(uint8_t rec[8], uint32_t map_uid,
			    uint32_t save_date)
{
	for (int i = 0; i < 4; i++) {
		rec[i] = (uint8_t)(map_uid >> (8 * i));
		rec[4 + i] = (uint8_t)(save_date >> (8 * i));
	}
}

bool dbox_dovecot_guid_bin(const char *hex, uint8_t guid[16])
{
	if (strlen(hex) != 32)
		return false;
	for (int i = 0; i < 16; i++) {
		unsigned int v;

		if (sscanf(hex + i * 2, "%2x", &v) != 1)
			return false;
		guid[i] = (uint8_t)v;
	}
	return true;
}

int dbox_dovecot_back_saved(struct dbox_store *store,
			    const struct dbox_msg *msg)
{
	bool owe_it;
	struct dovecot_box *b = box_of(store, msg->mailbox_id, &owe_it);
	struct dovi_message dm = { 0 };
	int ret;

	if (b == NULL && !owe_it)
		return 0;
	/* not the uid Dovecot gives next (deliveries it has not indexed):
	 * the catch-up appends them all */
	if (b == NULL || !is_next(b, msg->uid))
		ret = -EAGAIN;
	else if (store->format != DBOX_FORMAT_MDBOX)
		ret = append_msg(store, b, NULL, msg, "a delivery");
	/* the map first (as Dovecot's save): a map record no mailbox
	 * lists only keeps its bytes, and the catch-up finds it */
	else
		ret = map_append(b, msg, &dm.map_uid);
	if (ret == 0 && store->format == DBOX_FORMAT_MDBOX) {
		dm.have_map_uid = true;
		dm.save_date = (uint32_t)msg->saved;
		dm.have_guid = dbox_dovecot_guid_bin(msg->guid, dm.guid);
		ret = append_msg(store, b, &dm, msg, "a delivery");
	}
	return ret < 0 ? owe(store, msg->mailbox_id, msg->uid,
			     DINDEX_OWED_APPEND, NULL, false) : 0;
}

/* (Dovecot's mailbox create writes its GUID in the format's header
 * extension: sdbox dbox-hdr: rebuild count, GUID, flags; mdbox
 * mdbox-hdr: the map's uid_validity, GUID, flags.) */
int dbox_dovecot_first_records(struct dbox_store *store,
			       struct dovi_store *ds, struct dovi_logwrite *w,
			       const uint8_t guid[16], uint32_t uidvalidity,
			       struct dbox_err *err)
{
	bool mdbox = store->format == DBOX_FORMAT_MDBOX;
	struct dovi_index *map = mdbox ? dovi_store_map(ds, err) : NULL;
	struct dovi_header mh = { 0 };
	uint8_t hdr[24] = { 0 };

	if (mdbox && map == NULL)
		return -ENOENT;
	if (map != NULL)
		dovi_index_header(map, &mh);
	le32(hdr, mh.uid_validity);
	memcpy(hdr + 4, guid, 16);
	dovi_logwrite_ext_intro_add(w, mdbox ? "mdbox-hdr" : "dbox-hdr", 0,
				    sizeof(hdr), 0, 0);
	dovi_logwrite_ext_hdr_add(w, 0, hdr, sizeof(hdr));
	dovi_logwrite_header_add(w, HDR_UID_VALIDITY, uidvalidity);
	dovi_logwrite_header_add(w, HDR_NEXT_UID, 1);
	return 0;
}

void dbox_dovecot_back_created(struct dbox_store *store, const char *dir,
			       const char *name, const char *guid_hex,
			       uint32_t uidvalidity)
{
	struct dovi_logwrite *w;
	char path[PATH_MAX];
	uint8_t guid[16];
	struct dbox_err err = { 0 };
	int ret;

	if (store->dovecot == NULL || store->readonly)
		return;
	w = dovi_logwrite_new();
	ret = w == NULL ? -ENOMEM : 0;
	if (ret == 0 && !dbox_dovecot_guid_bin(guid_hex, guid))
		ret = dbox_fail(&err, -EINVAL, "GUID %s is not Dovecot's "
				"form", guid_hex);
	if (ret == 0)
		ret = dbox_dovecot_first_records(store, store->dovecot->ds, w,
						 guid, uidvalidity, &err);
	if (ret == 0)
		ret = dbox_path(path, sizeof(path), "%s/dovecot.index.log",
				dir);
	if (ret == 0)
		ret = dovi_logwrite_create(w, path, &err);
	if (ret < 0)
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: not handed back to "
			 "Dovecot (it sees it after doveadm force-resync): "
			 "%s", name, err.msg[0] != '\0' ? err.msg :
			 strerror(-ret));
	dovi_logwrite_free(w);
}

/* Logged, never failing: the mailbox is deleted or renamed for us. */
static void mboxlog(struct dbox_store *store, const char *name,
		    enum dovi_mboxlog_type type, const uint8_t id[16])
{
	struct dbox_err err = { 0 };

	if (dovi_mboxlog_append(store->root, type, id, &err) < 0)
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: its delete or rename "
			 "not handed back to Dovecot's mailbox log (a "
			 "doveadm sync may undo it): %s", name, err.msg);
}

/* One character of a name as Dovecot shows it, at out: with
 * BROKENCHAR, that character and the separator inside a part are
 * escaped as it and two lowercase hex digits (imap-utf7.c
 * imap_utf7_to_utf8_escaped; a name of ours has no control characters
 * and is valid UTF-8, the rest of what it escapes).  Returns the
 * length written. */
static size_t vname_char(const struct dbox_store *store, char c, char *out)
{
	char esc = store->dovecot_escape;

	if (c == '/') {
		*out = store->dovecot_sep;
		return 1;
	}
	if (esc != '\0' && (c == esc || c == store->dovecot_sep)) {
		snprintf(out, 4, "%c%02x", esc, (unsigned char)c);
		return 3;
	}
	*out = c;
	return 1;
}

/* The hash Dovecot's mailbox log names a mailbox by: of its vname, the
 * name as Dovecot shows it (mailbox_name_get_sha128), i.e. the
 * namespace's prefix and the name's parts (UTF-8, as ours) joined by
 * its separator (mailbox-list.c mailbox_list_default_get_vname).  The
 * user's INBOX is "INBOX" whatever the prefix
 * (mailbox_list_storage_name_prepare).  False: out of memory. */
static bool name_hash(const struct dbox_store *store, const char *name,
		      uint8_t id[16])
{
	const char *prefix = store->dovecot_prefix;
	size_t o;
	char *vname;

	if (prefix == NULL || strcmp(name, "INBOX") == 0)
		prefix = "";
	o = strlen(prefix);
	vname = malloc(o + strlen(name) * 3 + 1);
	if (vname == NULL)
		return false;
	memcpy(vname, prefix, o);
	for (const char *p = name; *p != '\0'; p++)
		o += vname_char(store, *p, vname + o);
	vname[o] = '\0';
	dovi_mboxlog_name_hash(vname, id);
	free(vname);
	return true;
}

/* name_hash, or a warning saying which record is left out */
static void mboxlog_named(struct dbox_store *store, const char *name,
			  enum dovi_mboxlog_type type)
{
	uint8_t id[16];

	if (name_hash(store, name, id))
		mboxlog(store, name, type, id);
	else
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: its delete or rename "
			 "not handed back to Dovecot's mailbox log (a "
			 "doveadm sync may undo it): out of memory", name);
}

void dbox_dovecot_back_deleted(struct dbox_store *store, const char *name,
			       const char *guid_hex, bool dir_gone)
{
	uint8_t id[16];

	if (store->dovecot == NULL || store->readonly)
		return;
	if (dbox_dovecot_guid_bin(guid_hex, id))
		mboxlog(store, name, DOVI_MBOXLOG_DELETE_MAILBOX, id);
	if (dir_gone)
		mboxlog_named(store, name, DOVI_MBOXLOG_DELETE_DIR);
}

void dbox_dovecot_back_renamed(struct dbox_store *store, const char *to)
{
	if (store->dovecot == NULL || store->readonly)
		return;
	mboxlog_named(store, to, DOVI_MBOXLOG_RENAME);
}
