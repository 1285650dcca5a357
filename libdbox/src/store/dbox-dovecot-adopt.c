/* dbox-dovecot-adopt.c - a mailbox of a takeover mount that Dovecot has
 * no index of (its directory was there before the mount made it, an
 * older mount made it, or Dovecot's index files of it are gone) gets the
 * first log of one, as Dovecot's own first sync of it writes it, with
 * every message the mount shows in it: Dovecot then lists exactly those,
 * with our uids, flags, keywords, uidvalidity and mailbox GUID, and what
 * goes into it later is handed back as into any mailbox of Dovecot's.
 *
 * Done in the first pass when the store opens, under our index write
 * lock (as every hand-back), and again while mounted by the follower
 * (dbox_dovecot_adopt_pending) for a mailbox that still wants it: one
 * whose directory another program made meanwhile, one that was busy at
 * the start, one with deliveries that were not handed back.  The log
 * is written whole to Dovecot's lock file of a log being made and
 * linked into place: a Dovecot that makes its own meanwhile keeps its
 * own (-EEXIST; the follower then takes Dovecot's list), one that makes
 * its own after finds ours under that lock and keeps it (with our
 * uidvalidity and GUID: mail-transaction-log-file.c, dbox-storage.c),
 * and nobody reads half of ours.  mdbox: first the map, under Dovecot's lock
 * on its log, as Dovecot's save: the records of our messages it lacks
 * (deliveries into the mailbox that were not handed back) and the
 * reference counts of those it has (a message moved in while Dovecot had
 * no index of the mailbox is counted by no mailbox of Dovecot's); a map
 * record no mailbox lists only keeps its bytes, and force-resync finds
 * it. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dbox/dovecot-index.h"
#include "dovecot/dovecot-logwrite.h"
#include "store/dbox-dovecot-private.h"
#include "store/dbox-msg-storage.h"
#include "store/store-private.h"

/* The store's start waits for Dovecot's locks (one mailbox after the
 * other): a log that stays locked for this long is left, and so is
 * the map for the other mailboxes (dv->map_busy); the follower tries
 * again (dbox_dovecot_adopt_pending). */
#define ADOPT_LOCK_MS 2000

/* While mounted, the follower tries Dovecot's locks once and never
 * waits: it holds our index write lock meanwhile, which every change
 * through the mount waits for.  A mailbox directory seen without an
 * index is left alone ADOPT_SETTLE_MS first: Dovecot's own mailbox
 * create makes the directory, then its index (a log of ours linked in
 * between would be kept, but its create would then fail as "already
 * exists").  A mailbox that stays busy or failing is tried again after
 * ADOPT_RETRY_MS, twice as long each time, up to ADOPT_RETRY_MAX_MS. */
#define ADOPT_LIVE_LOCK_MS 0
#define ADOPT_SETTLE_MS 1000
#define ADOPT_RETRY_MS 1000
#define ADOPT_RETRY_MAX_MS 60000

/* Offset of next_uid in the index's base header (dovecot-index.md 2.2). */
#define HDR_NEXT_UID 28

/* One message of ours, as the mailbox log lists it. */
struct adopt_msg {
	uint32_t uid, keywords, map_uid, save_date;
	uint8_t flags;
	bool have_guid;
	uint8_t guid[16];
};

/* mdbox: a record of Dovecot's map, by where it is in the m.N files. */
struct map_ent {
	uint64_t key;              /* file_id << 32 | offset */
	uint32_t map_uid;
	bool have_refs;
	uint16_t refs;
	uint32_t here;             /* our messages of the mailbox on it */
};

struct adopt {
	struct dbox_store *store;
	struct dovecot_box *b;
	struct adopt_msg *msgs;
	size_t count, cap;
	/* mdbox */
	struct dovi_index *map;
	struct map_ent *ents;
	size_t nents;
	struct dovi_logwrite *mapw;
	uint32_t next_map_uid, highest;
	unsigned lock_ms;          /* the longest wait for Dovecot's locks */
	struct dbox_err *err;
};

static int ent_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct map_ent *)a)->key;
	uint64_t y = ((const struct map_ent *)b)->key;

	return x < y ? -1 : x > y;
}

/* The map's records, sorted by where they are. */
static int load_map(struct adopt *a)
{
	uint32_t n = dovi_index_count(a->map);

	a->ents = calloc(n + 1, sizeof(*a->ents));
	if (a->ents == NULL)
		return dbox_fail(a->err, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		struct map_ent *e = &a->ents[a->nents];
		uint32_t file_id, offset, size;

		if (!dovi_index_map_rec(a->map, i, &file_id, &offset, &size,
					&e->have_refs, &e->refs))
			continue;
		e->key = (uint64_t)file_id << 32 | offset;
		e->map_uid = dovi_index_uid(a->map, i);
		a->nents++;
	}
	qsort(a->ents, a->nents, sizeof(*a->ents), ent_cmp);
	return 0;
}

/* mdbox: the map uid of msg's record, a new one (its records added to
 * the map's transaction) when the map has none there. */
static int map_uid_of(struct adopt *a, const struct dbox_msg *msg,
		      uint32_t *map_uid_r)
{
	const struct dbox_msg_where *w = dbox_msg_where(msg);
	struct map_ent key = { .key = (uint64_t)w->file_id << 32 |
			       (uint32_t)w->offset };
	struct map_ent *e = w->offset > UINT32_MAX ? NULL :
		bsearch(&key, a->ents, a->nents, sizeof(key), ent_cmp);

	if (e != NULL) {
		e->here++;
		*map_uid_r = e->map_uid;
		return 0;
	}
	*map_uid_r = a->next_map_uid++;
	return dbox_dovecot_map_records(a->map, a->mapw, msg, *map_uid_r,
					&a->highest, a->err);
}

/* Whether msg's record is where our row says (Dovecot's rebuild would
 * not find it otherwise: it is left out). */
static bool record_there(struct dbox_store *store, const struct dbox_msg *m)
{
	char path[PATH_MAX];
	struct stat st;

	return dbox_msg_file_path(store, m, path, sizeof(path)) == 0 &&
		stat(path, &st) == 0 &&
		(uint64_t)st.st_size > dbox_msg_where(m)->offset;
}

static int collect(void *ctx, const struct dbox_msg *msg)
{
	struct adopt *a = ctx;
	struct adopt_msg *am;

	if (!record_there(a->store, msg)) {
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: uid %u left out of "
			 "Dovecot's new index: its record is gone", a->b->name,
			 msg->uid);
		return 0;
	}
	if (a->count == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct adopt_msg *p = realloc(a->msgs, cap * sizeof(*p));

		if (p == NULL)
			return dbox_fail(a->err, -ENOMEM, "out of memory");
		a->msgs = p;
		a->cap = cap;
	}
	am = &a->msgs[a->count++];
	memset(am, 0, sizeof(*am));
	am->uid = msg->uid;
	am->flags = msg->flags & DOVI_SYSTEM_FLAGS;
	am->keywords = msg->keywords;
	am->save_date = (uint32_t)msg->saved;
	am->have_guid = dbox_dovecot_guid_bin(msg->guid, am->guid);
	return a->map != NULL ? map_uid_of(a, msg, &am->map_uid) : 0;
}

/* How many times the mailboxes of Dovecot's list map_uid. */
static uint32_t listed_count(const uint64_t *listed, size_t n,
			     uint32_t map_uid)
{
	size_t lo = 0, hi = n;
	uint32_t count = 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (listed[mid] < map_uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo < n && listed[lo++] == map_uid)
		count++;
	return count;
}

/* The reference counts of the map records that our messages are on:
 * one per mailbox of Dovecot's that lists it, this one included. */
static int map_refcounts(struct adopt *a)
{
	size_t nlisted = 0;
	uint64_t *listed = dbox_dovecot_listed_map_uids(a->b->dv, &nlisted);
	struct dovi_ext_info info;

	if (listed == NULL)
		return dbox_fail(a->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < a->nents; i++) {
		struct map_ent *e = &a->ents[i];
		int64_t diff = e->have_refs ? (int64_t)e->here + listed_count(
			listed, nlisted, e->map_uid) - e->refs : 0;

		if (e->here == 0 || diff == 0 ||
		    !dovi_index_ext_info(a->map, dovi_index_ext(a->map, "ref"),
					 &info))
			continue;
		dovi_logwrite_ext_intro_add(a->mapw, "ref", info.reset_id,
					    info.hdr_size, info.record_size,
					    info.record_align);
		dovi_logwrite_atomic_inc_add(a->mapw, e->map_uid,
					     (int32_t)diff);
	}
	free(listed);
	return 0;
}

/* mdbox: the map ready to be written (the records' map uids are the
 * map's next ones: the commit goes only onto the log as we read it). */
static int map_begin(struct adopt *a)
{
	struct dovi_header hdr = { 0 };
	int ret;

	if (a->b->dv->map_busy)
		return dbox_fail(a->err, -ETIMEDOUT, "Dovecot's map log was "
				 "locked for over %u ms", a->lock_ms);
	a->map = dovi_store_map(a->b->ds, a->err);
	if (a->map == NULL)
		return -ENOENT;
	/* with what the mailbox before this one wrote into it */
	ret = dovi_index_refresh(a->map, NULL, a->err);
	if (ret < 0)
		return ret;
	dovi_index_header(a->map, &hdr);
	if (hdr.uid_validity == 0 || hdr.next_uid == 0)
		return dbox_fail(a->err, -EBADMSG, "the map has no uids yet");
	a->mapw = dovi_logwrite_new();
	if (a->mapw == NULL)
		return dbox_fail(a->err, -ENOMEM, "out of memory");
	dovi_logwrite_set_synced(a->mapw);
	dovi_logwrite_expect(a->mapw, hdr.log_file_seq,
			     hdr.log_file_head_offset,
			     hdr.log_file_head_offset);
	a->next_map_uid = hdr.next_uid;
	a->highest = dbox_dovecot_map_highest(a->map);
	return load_map(a);
}

static int map_commit(struct adopt *a)
{
	char path[PATH_MAX];
	int ret = map_refcounts(a);

	if (ret < 0 || dovi_logwrite_count(a->mapw) == 0)
		return ret;
	ret = dbox_path(path, sizeof(path), "%s.log",
			dovi_index_prefix(a->map));
	if (ret < 0)
		return dbox_fail(a->err, ret, "map path too long");
	ret = dovi_logwrite_commit(a->mapw, path, a->lock_ms, a->err);
	a->b->dv->map_busy |= ret == -ETIMEDOUT;
	return ret;
}

static void keyword_recs(struct adopt *a, struct dovi_logwrite *w)
{
	char *names[DBOX_MAX_KEYWORDS] = { 0 }, buf[DBOX_MAX_KEYWORDS * 256];

	if (dbox_mailbox_keywords(a->store, a->b->id, names, buf, sizeof(buf),
				  NULL) < 0)
		return;
	for (int k = 0; k < DBOX_MAX_KEYWORDS; k++) {
		for (size_t i = 0; names[k] != NULL && names[k][0] != '\0' &&
		     i < a->count; i++) {
			if (a->msgs[i].keywords & (1u << k))
				dovi_logwrite_keyword_add(w, true, names[k],
							  a->msgs[i].uid,
							  a->msgs[i].uid);
		}
	}
}

/* One extension's records of every message (as Dovecot's transaction
 * writes them: the appends first, then each extension's updates),
 * introduced as idx has it (or as Dovecot registers it when it has none
 * yet; left out when idx's records are too small for it). */
static void ext_recs(struct adopt *a, struct dovi_logwrite *w,
		     const struct dovi_index *idx, bool guid)
{
	const char *name = guid ? "guid" : "mdbox";
	struct dovi_ext_info info = { 0, 0, guid ? 16 : 8, guid ? 1 : 4 };
	uint16_t size = info.record_size;
	uint8_t rec[8];

	if (idx != NULL)
		dovi_index_ext_info(idx, dovi_index_ext(idx, name), &info);
	if (info.record_size < size)
		return;
	dovi_logwrite_ext_intro_add(w, name, info.reset_id, info.hdr_size,
				    info.record_size, info.record_align);
	for (size_t i = 0; i < a->count; i++) {
		const struct adopt_msg *m = &a->msgs[i];

		if (guid && m->have_guid) {
			dovi_logwrite_ext_rec_add(w, m->uid, m->guid, size);
		} else if (!guid) {
			dbox_dovecot_mdbox_rec(rec, m->map_uid, m->save_date);
			dovi_logwrite_ext_rec_add(w, m->uid, rec, size);
		}
	}
}

/* Every message: its append, then (mdbox) its map uid and GUID, then
 * its keywords; the next uid raised to ours. */
static void msg_recs(struct adopt *a, struct dovi_logwrite *w,
		     const struct dovi_index *idx, uint32_t next_uid)
{
	uint32_t next = 1;

	for (size_t i = 0; i < a->count; i++) {
		dovi_logwrite_append_add(w, a->msgs[i].uid, a->msgs[i].flags);
		next = a->msgs[i].uid + 1;
	}
	if (a->map != NULL) {
		ext_recs(a, w, idx, false);
		ext_recs(a, w, idx, true);
	}
	keyword_recs(a, w);
	if (next_uid > next)
		dovi_logwrite_header_add(w, HDR_NEXT_UID, next_uid);
}

/* The mailbox's first log: its GUID, uidvalidity, every message, next
 * uid as ours (above every uid we gave). */
static int box_log(struct adopt *a, const struct dbox_mailbox *box)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	uint8_t guid[16];
	char path[PATH_MAX];
	int ret = w == NULL ? -ENOMEM : 0;

	if (ret == 0 && !dbox_dovecot_guid_bin(box->guid, guid))
		ret = dbox_fail(a->err, -EINVAL, "GUID %s is not Dovecot's "
				"form", box->guid);
	if (ret == 0)
		ret = dbox_dovecot_first_records(a->store, a->b->ds, w, guid,
						 box->uidvalidity, a->err);
	if (ret == 0) {
		msg_recs(a, w, NULL, box->next_uid);
		ret = dbox_path(path, sizeof(path), "%s/dovecot.index.log",
				dovi_mailbox_dir(a->b->db));
	}
	if (ret == 0)
		ret = dovi_logwrite_create(w, path, a->err);
	dovi_logwrite_free(w);
	return ret;
}

static void adopt_free(struct adopt *a)
{
	dovi_logwrite_free(a->mapw);
	free(a->ents);
	free(a->msgs);
}

/* Our messages of b written into Dovecot's map (mdbox) and b's new
 * log. */
static int write_index(struct dbox_store *store, struct dovecot_box *b,
		       unsigned lock_ms, struct dbox_err *err)
{
	struct adopt a = { .store = store, .b = b, .lock_ms = lock_ms,
			   .err = err };
	struct dbox_mailbox box;
	int ret = dbox_mailbox_get(store, b->id, &box, err);

	if (ret == 0 && store->format == DBOX_FORMAT_MDBOX)
		ret = map_begin(&a);
	if (ret == 0)
		ret = dbox_msg_list(store, b->id, 0, -1, 0, collect, &a, err);
	if (ret > 0)
		ret = 0;   /* how many there were */
	if (ret == 0 && a.map != NULL)
		ret = map_commit(&a);
	if (ret == 0)
		ret = box_log(&a, &box);
	adopt_free(&a);
	return ret;
}

static int count_one(void *ctx, const struct dbox_msg *msg)
{
	(void)msg;
	*(bool *)ctx = true;
	return 1;
}

/* Our messages of b above uid `after` appended onto its log as the
 * follower last read it. */
static int append_ours(struct adopt *a, const struct dbox_mailbox *box,
		       uint32_t after)
{
	const struct dovi_index *idx = dovi_mailbox_index(a->b->db);
	struct dovi_logwrite *w = NULL;
	struct dovi_header hdr;
	char path[PATH_MAX];
	int ret = 0;

	if (a->store->format == DBOX_FORMAT_MDBOX)
		ret = map_begin(a);
	if (ret == 0)
		ret = dbox_msg_list(a->store, box->id, after, -1, 0, collect, a,
				    a->err);
	if (ret > 0)
		ret = 0;
	if (ret == 0 && a->map != NULL)
		ret = map_commit(a);
	if (ret == 0 && (w = dovi_logwrite_new()) == NULL)
		ret = dbox_fail(a->err, -ENOMEM, "out of memory");
	if (ret == 0) {
		dovi_index_header(idx, &hdr);
		/* a uid Dovecot gave since would make these appends ones it
		 * refuses */
		dovi_logwrite_expect(w, hdr.log_file_seq,
				     hdr.log_file_head_offset,
				     hdr.log_file_head_offset);
		msg_recs(a, w, idx, box->next_uid);
		ret = dbox_path(path, sizeof(path), "%s.log",
				dovi_index_prefix(idx));
	}
	if (ret == 0)
		ret = dovi_logwrite_commit(w, path, a->lock_ms, a->err);
	dovi_logwrite_free(w);
	return ret;
}

/* Deliveries into a mailbox Dovecot has that were not handed back (its
 * log was locked, damaged or missing then; mdbox: its map log had a
 * change its backend had not synced): our rows at or above Dovecot's
 * next uid, appended as Dovecot's save would.  Else a move into it
 * could not be handed back either (Dovecot speaks for every uid below
 * its next one).  Returns 1 when there were some. */
static int catch_up(struct dbox_store *store, struct dovecot_box *b,
		    unsigned lock_ms, struct dbox_err *err)
{
	struct adopt a = { .store = store, .b = b, .lock_ms = lock_ms,
			   .err = err };
	uint32_t next = dovi_mailbox_next_uid(b->db);
	struct dbox_mailbox box;
	bool any = false;
	int ret = dbox_mailbox_get(store, b->id, &box, err);

	if (ret < 0 || next == 0 ||
	    dovi_mailbox_uid_validity(b->db) != box.uidvalidity ||
	    dovi_index_error_count(dovi_mailbox_index(b->db)) > 0)
		return ret;
	/* (cheap when there are none: the map is read only if there are) */
	ret = dbox_msg_list(store, b->id, next - 1, -1, 1, count_one, &any,
			    err);
	if (ret >= 0 && any)
		ret = append_ours(&a, &box, next - 1);
	adopt_free(&a);
	return ret < 0 ? ret : any;
}

/* One try: 1 when Dovecot got an index of b or its deliveries, 0 when
 * there was nothing to hand back, else -errno (err says why). */
static int adopt_try(struct dbox_store *store, struct dovecot_box *b,
		     unsigned lock_ms, struct dbox_err *err)
{
	int ret;

	if (dovi_mailbox_index(b->db) != NULL)
		return catch_up(store, b, lock_ms, err);
	ret = write_index(store, b, lock_ms, err);
	return ret < 0 ? ret : 1;
}

static void adopt_warn(struct dovecot_box *b, bool none, int ret,
		       const struct dbox_err *werr)
{
	if (none)
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: not handed back to "
			 "Dovecot, which has no index of it (it sees it after "
			 "doveadm force-resync): %s", b->name,
			 werr->msg[0] != '\0' ? werr->msg : strerror(-ret));
	else
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: deliveries not handed "
			 "back to Dovecot (it sees them after doveadm "
			 "force-resync): %s", b->name,
			 werr->msg[0] != '\0' ? werr->msg : strerror(-ret));
}

/* b handed back: followed from Dovecot's index now, as any mailbox of
 * Dovecot's; changes nothing of ours (same uidvalidity, the same
 * list). */
static int adopted(struct dbox_store *store, struct dovecot_box *b,
		   bool none, struct dbox_err *err)
{
	int ret;

	dbox_log(DBOX_LOG_INFO, "mailbox %s: %s", b->name, none ?
		 "Dovecot's index of it made with the messages the mount "
		 "shows" : "deliveries Dovecot had not indexed handed back");
	b->behind = false;
	ret = dovi_mailbox_refresh(b->db, NULL, err);
	return ret < 0 ? ret : dbox_dovecot_sync_box(store, b, err);
}

int dbox_dovecot_adopt(struct dbox_store *store, struct dovecot_box *b,
		       struct dbox_err *err)
{
	struct dbox_err werr = { 0 };
	bool none;
	int ret;

	if (store->readonly || b->db == NULL || b->id == 0)
		return 0;
	none = dovi_mailbox_index(b->db) == NULL;
	ret = adopt_try(store, b, ADOPT_LOCK_MS, &werr);
	if (ret < 0) {
		/* the follower tries again while mounted, quietly */
		adopt_warn(b, none, ret, &werr);
		b->adopt_warned = true;
		b->behind = !none;
		atomic_store(&b->dv->adopt_due, true);
	}
	return ret <= 0 ? 0 : adopted(store, b, none, err);
}

/* ------------------------------------------------- while mounted */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether Dovecot is making b's first log (its lock is there) or has
 * made it since the follower last read b: then it is Dovecot's. */
static bool dovecot_indexing(struct dovecot_box *b, struct dbox_err *err)
{
	char path[PATH_MAX];
	struct stat st;

	if (dbox_path(path, sizeof(path), "%s/dovecot.index.log.newlock",
		      dovi_mailbox_dir(b->db)) < 0)
		return true;
	if (stat(path, &st) == 0) {
		dbox_fail(err, -EBUSY, "%s is there: Dovecot is making the "
			  "log", path);
		return true;
	}
	path[strlen(path) - strlen(".newlock")] = '\0';
	if (stat(path, &st) < 0)
		return false;
	dbox_fail(err, -EBUSY, "%s is there (Dovecot's, which it cannot "
		  "read)", path);
	return true;
}

/* Whether b still wants handing back: Dovecot has no index of it (and
 * it is no sdbox mailbox read from its files alone), or it has
 * deliveries that were not handed back. */
static bool adopt_wanted(struct dbox_store *store, struct dovecot_box *b)
{
	if (b->db == NULL || b->id == 0)
		return false;
	if (dovi_mailbox_index(b->db) != NULL)
		return b->behind;
	return !dbox_dovecot_sdbox_unusable(store, b);
}

/* A try that failed: the next after the backoff; one warning for a
 * mailbox that fails, or stays busy for ADOPT_RETRY_MAX_MS. */
static void adopt_failed(struct dovecot_box *b, bool none, int ret,
			 const struct dbox_err *werr, uint64_t now)
{
	bool busy = ret == -EBUSY || ret == -EAGAIN || ret == -ETIMEDOUT ||
		ret == -EEXIST || ret == -ESTALE;

	if (!b->adopt_warned &&
	    (!busy || b->adopt_backoff >= ADOPT_RETRY_MAX_MS)) {
		adopt_warn(b, none, ret, werr);
		b->adopt_warned = true;
	}
	b->adopt_backoff = b->adopt_backoff == 0 ? ADOPT_RETRY_MS :
		b->adopt_backoff * 2;
	if (b->adopt_backoff > ADOPT_RETRY_MAX_MS)
		b->adopt_backoff = ADOPT_RETRY_MAX_MS;
	b->adopt_at = now + b->adopt_backoff;
}

/* One mailbox's turn: *wanted_r set when it still wants handing back. */
static int adopt_due_one(struct dbox_store *store, struct dovecot_box *b,
			 uint64_t now, bool *wanted_r, struct dbox_err *err)
{
	struct dbox_err werr = { 0 };
	bool none = b->db != NULL && dovi_mailbox_index(b->db) == NULL;
	int ret;

	if (!adopt_wanted(store, b)) {
		b->adopt_since = b->adopt_at = 0;
		b->adopt_backoff = 0;
		b->adopt_warned = false;
		return 0;
	}
	*wanted_r = true;
	if (b->adopt_since == 0)
		b->adopt_since = now;
	if (now < b->adopt_since + ADOPT_SETTLE_MS || now < b->adopt_at)
		return 0;
	/* what the follower read of it is synced (box_of may have refreshed
	 * it since), our last append read back */
	if (b->resync || (!none && b->back_next > dovi_mailbox_next_uid(b->db)))
		return 0;
	if (none && dovecot_indexing(b, &werr)) {
		adopt_failed(b, none, -EBUSY, &werr, now);
		return 0;
	}
	ret = adopt_try(store, b, ADOPT_LIVE_LOCK_MS, &werr);
	if (ret < 0) {
		adopt_failed(b, none, ret, &werr, now);
		return 0;
	}
	b->behind = false;
	b->adopt_since = b->adopt_at = 0;
	b->adopt_backoff = 0;
	b->adopt_warned = false;
	return ret == 0 ? 0 : adopted(store, b, none, err);
}

int dbox_dovecot_adopt_pending(struct dbox_store *store, struct dbox_err *err)
{
	struct dbox_dovecot *dv = store->dovecot;
	uint64_t now = now_ms();
	bool wanted = false;
	int ret;

	if (dv == NULL || store->readonly || !atomic_load(&dv->adopt_due))
		return 0;
	ret = dindex_write_begin(store->idx, err);
	if (ret == 0) {
		dv->map_busy = false;   /* this pass's */
		for (size_t i = 0; ret == 0 && i < dv->count; i++)
			ret = adopt_due_one(store, &dv->boxes[i], now, &wanted,
					    err);
		/* set again under this lock by whoever finds another one */
		atomic_store(&dv->adopt_due, wanted || ret < 0);
		if (ret == 0)
			ret = dindex_write_commit(store->idx, err);
		else
			dindex_write_rollback(store->idx);
		dbox_dovecot_renumbered_done(store, dv, ret == 0);
	}
	if (ret < 0)
		dbox_log(DBOX_LOG_WARNING, "handing back to Dovecot: %s",
			 err != NULL && err->msg[0] != '\0' ? err->msg :
			 strerror(-ret));
	return ret;
}

int dbox_dovecot_catch_up(struct dbox_store *store, struct dovecot_box *b,
			  struct dbox_err *err)
{
	const struct dovi_index *idx = dovi_mailbox_index(b->db);
	struct dbox_mailbox box;
	int ret = idx == NULL ? dbox_fail(err, -ENOENT, "Dovecot has no "
					  "index of it") : 0;

	if (ret == 0)
		ret = dbox_mailbox_get(store, b->id, &box, err);
	if (ret == 0 && (dovi_index_error_count(idx) > 0 ||
			 dovi_mailbox_uid_validity(b->db) != box.uidvalidity))
		ret = dbox_fail(err, -EBADMSG, "Dovecot's index of it is "
				"damaged or of another uidvalidity");
	return ret < 0 ? ret : catch_up(store, b, ADOPT_LIVE_LOCK_MS, err);
}
