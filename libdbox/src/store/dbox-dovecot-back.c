/* dbox-dovecot-back.c - a takeover mount's changes handed back to
 * Dovecot: what the mount changes in a message Dovecot knows goes into
 * that mailbox's dovecot.index.log as well, as Dovecot's own IMAP server
 * would write it, so that Dovecot shows what the mount showed.
 *
 * Called inside the index write transaction of the change: the follower
 * (dbox_store_follow) syncs under that same lock, so it reads Dovecot's
 * log either before the change or with it, and finds our row already
 * equal to what the log says; our own records thus change nothing when
 * it replays them.  A failure (no log, locked too long, damaged) is
 * logged and leaves our change as it is. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dbox/dovecot-index.h"
#include "dovecot/dovecot-logwrite.h"
#include "store/dbox-dovecot-private.h"
#include "store/store-private.h"

/* Dovecot waits up to 3 minutes for its log lock; a mount that waits
 * holds its index write lock meanwhile, so it gives up sooner. */
#define BACK_LOCK_TIMEOUT_MS 10000

/* The box we follow for our mailbox id, if Dovecot has an index of it,
 * brought up to date: a message delivered or moved in through the mount
 * a moment ago is Dovecot's already.  What the refresh read is the
 * follower's to sync (resync), as if it had read it itself. */
static struct dovecot_box *box_of(struct dbox_store *store, int64_t id)
{
	struct dbox_dovecot *dv = store->dovecot;
	struct dbox_err err;

	if (dv == NULL || store->readonly)
		return NULL;
	for (size_t i = 0; i < dv->count; i++) {
		struct dovecot_box *b = &dv->boxes[i];
		bool changed = false;

		if (b->id != id || b->db == NULL)
			continue;
		if (dovi_mailbox_refresh(b->db, &changed, &err) < 0) {
			dbox_log(DBOX_LOG_WARNING, "mailbox %s: a change not "
				 "handed back to Dovecot: %s", b->name,
				 err.msg);
			return NULL;
		}
		b->resync |= changed;
		return dovi_mailbox_index(b->db) != NULL ? b : NULL;
	}
	return NULL;
}

/* Dovecot's record of uid, as the follower last read it. */
static const struct dovi_message *known(struct dovecot_box *b, uint32_t uid)
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
static int commit(struct dovecot_box *b, struct dovi_logwrite *w,
		  const char *what)
{
	char path[PATH_MAX];
	struct dbox_err err = { 0 };
	int ret;

	if (dovi_logwrite_count(w) == 0)
		return 0;
	ret = dbox_path(path, sizeof(path), "%s.log",
			dovi_index_prefix(dovi_mailbox_index(b->db)));
	if (ret == 0)
		ret = dovi_logwrite_commit(w, path, BACK_LOCK_TIMEOUT_MS, &err);
	if (ret < 0)
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: %s not handed back "
			 "to Dovecot: %s", b->name, what,
			 err.msg[0] != '\0' ? err.msg : strerror(-ret));
	else
		note_end(b, w);
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

void dbox_dovecot_back_flags(struct dbox_store *store,
			     const struct dbox_msg *old, uint32_t flags,
			     uint32_t keywords)
{
	struct dovecot_box *b = box_of(store, old->mailbox_id);
	uint8_t was = old->flags & DOVI_SYSTEM_FLAGS;
	uint8_t now = flags & DOVI_SYSTEM_FLAGS;
	struct dovi_logwrite *w;

	if (b == NULL || known(b, old->uid) == NULL ||
	    (was == now && old->keywords == keywords))
		return;
	w = dovi_logwrite_new();
	if (w == NULL) {
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: flags not handed back "
			 "to Dovecot: out of memory", b->name);
		return;
	}
	if (was != now)
		dovi_logwrite_flags_add(w, old->uid, old->uid, now & ~was,
					was & ~now);
	add_keywords(store, b, w, old->uid, old->keywords, keywords);
	commit(b, w, "a flag change");
	dovi_logwrite_free(w);
}

/* The binary GUID of an expunge record: Dovecot's, else ours (32 hex
 * digits), else zeroes (Dovecot does not check it when it applies one). */
static void expunge_guid(const struct dovi_message *dm, const char *ours,
			 uint8_t guid[16])
{
	memset(guid, 0, 16);
	if (dm->have_guid) {
		memcpy(guid, dm->guid, 16);
		return;
	}
	for (int i = 0; strlen(ours) == 32 && i < 16; i++) {
		unsigned int v;

		if (sscanf(ours + i * 2, "%2x", &v) != 1)
			break;
		guid[i] = (uint8_t)v;
	}
}

static int map_ref(struct dovecot_box *b, uint32_t map_uid, int32_t diff);

/* The external expunge of msg in b; unref: mdbox, the map counts one
 * reference less. */
static void expunge_in(struct dbox_store *store, struct dovecot_box *b,
		       const struct dovi_message *dm,
		       const struct dbox_msg *msg, bool unref)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	uint8_t guid[16];

	if (w == NULL) {
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: expunge not handed "
			 "back to Dovecot: out of memory", b->name);
		return;
	}
	expunge_guid(dm, msg->guid, guid);
	/* what Dovecot's own sync writes once the message is gone */
	dovi_logwrite_expunge_add(w, msg->uid, guid);
	/* the mailbox first: a map count left too high only keeps bytes */
	if (commit(b, w, "an expunge") == 0 && unref &&
	    store->format == DBOX_FORMAT_MDBOX && dm->have_map_uid &&
	    dm->in_map && dm->have_refcount && dm->refcount > 0)
		map_ref(b, dm->map_uid, -1);
	dovi_logwrite_free(w);
}

void dbox_dovecot_back_expunge(struct dbox_store *store,
			       const struct dbox_msg *msg)
{
	struct dovecot_box *b = box_of(store, msg->mailbox_id);
	const struct dovi_message *dm = b != NULL ? known(b, msg->uid) : NULL;

	if (dm != NULL)
		expunge_in(store, b, dm, msg, true);
}

/* mdbox: the map's refcount of map_uid changed by diff, written as
 * Dovecot's map sync writes it (its purge frees a record at 0). */
static int map_ref(struct dovecot_box *b, uint32_t map_uid, int32_t diff)
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
		ret = dovi_logwrite_commit(w, path, BACK_LOCK_TIMEOUT_MS, &err);
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
			const struct dbox_msg *to)
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
		/* struct mdbox_mail_index_record: map_uid, save_date */
		uint8_t rec[8];

		for (int i = 0; i < 4; i++) {
			rec[i] = (uint8_t)(dm->map_uid >> (8 * i));
			rec[4 + i] = (uint8_t)(dm->save_date >> (8 * i));
		}
		ext_rec(b, w, "mdbox", 8, 4, to->uid, rec);
		if (dm->have_guid)
			ext_rec(b, w, "guid", 16, 1, to->uid, dm->guid);
	}
	add_keywords(store, b, w, to->uid, 0, to->keywords);
	ret = commit(b, w, dm != NULL ? "a message moved in" :
		     "a delivery");
	if (ret == 0)
		b->back_next = to->uid + 1;
	dovi_logwrite_free(w);
	return ret;
}

void dbox_dovecot_back_move(struct dbox_store *store,
			    const struct dbox_msg *from,
			    const struct dbox_msg *to)
{
	/* both refreshed before dm is taken: a refresh moves the list */
	struct dovecot_box *dst = box_of(store, to->mailbox_id);
	struct dovecot_box *src = box_of(store, from->mailbox_id);
	const struct dovi_message *dm = src != NULL ? known(src, from->uid) :
		NULL;
	bool mdbox = store->format == DBOX_FORMAT_MDBOX;

	if (dm == NULL || (mdbox && (!dm->have_map_uid || !dm->in_map)))
		return;
	if (dst == NULL || !is_next(dst, to->uid)) {
		/* gone from the source all the same, or it would come back
		 * there (the follower shows what Dovecot lists); mdbox: the
		 * map keeps counting it, so nothing purges its bytes */
		dbox_log(DBOX_LOG_INFO, "mailbox %s: a message moved out to "
			 "where Dovecot sees it only after doveadm "
			 "force-resync (%s)", src->name, dst == NULL ?
			 "a folder it has no index of" : "a folder with "
			 "deliveries it has not indexed");
		expunge_in(store, src, dm, from, false);
		return;
	}
	/* as Dovecot's own move: a copy (the map counts one more
	 * reference), then the expunge of the original */
	if (mdbox && map_ref(src, dm->map_uid, 1) < 0)
		return;
	if (append_msg(store, dst, dm, to) < 0) {
		if (mdbox)
			map_ref(src, dm->map_uid, -1);
		return;
	}
	dbox_dovecot_back_expunge(store, from);
}

void dbox_dovecot_back_saved(struct dbox_store *store,
			     const struct dbox_msg *msg)
{
	struct dovecot_box *b = box_of(store, msg->mailbox_id);

	/* mdbox: the record is in no map of Dovecot's (that would need a
	 * map append of its own) */
	if (b == NULL || store->format != DBOX_FORMAT_SDBOX ||
	    !is_next(b, msg->uid))
		return;
	append_msg(store, b, NULL, msg);
}
