/* dbox-dovecot-sync.c - one mailbox of a store that Dovecot owns: our
 * mailbox row and message rows made equal to Dovecot's index of it
 * (uids, flags, keywords, \Recent; new messages' records read). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "dbox/dovecot-index.h"
#include "index/dindex-mailbox.h"
#include "index/dindex-msg.h"
#include "index/dindex-owed.h"
#include "index/dindex-unconfirmed.h"
#include "store/dbox-dovecot-private.h"
#include "store/dbox-rfile.h"
#include "store/dbox-scan.h"
#include "store/store-private.h"

/* -------------------------------------------------------------- sync */

/* Dovecot keyword index -> ours (by name; -1 beyond the 26 letters). */
static int map_keywords(struct dbox_store *store, struct dovecot_box *b,
			int *map, unsigned int n, struct dbox_err *err)
{
	for (unsigned int i = 0; i < n; i++) {
		const char *name = dovi_mailbox_keyword(b->db, i);
		int idx = name != NULL ? dbox_mailbox_keyword_index(store, b->id,
			name, NULL) : -1;

		map[i] = idx;
		if (idx == -ENOSPC)
			dbox_log(DBOX_LOG_INFO, "mailbox %s: keyword %s has no "
				 "maildir letter left", b->name, name);
		else if (idx < 0 && idx != -EINVAL && name != NULL)
			return dbox_fail(err, idx, "keyword %s", name);
	}
	return 0;
}

/* Flags and new/ state: a message is in new/ while it is \Recent and has
 * no flags, as Dovecot's maildir driver keeps it. */
static void state_of(const struct dovi_message *dm, uint32_t first_recent,
		     uint32_t *flags, bool *in_new)
{
	*flags = dm->flags & DOVI_SYSTEM_FLAGS;
	*in_new = first_recent != 0 && dm->uid >= first_recent && *flags == 0;
}

static uint32_t keyword_bits(struct dovecot_box *b, const int *kwmap,
			     unsigned int nkw, const struct dovi_message *dm)
{
	uint32_t bits = 0;

	for (unsigned int i = 0; i < dm->keyword_count; i++) {
		for (unsigned int k = 0; k < nkw; k++) {
			const char *name = dovi_mailbox_keyword(b->db, k);

			if (name != NULL && kwmap[k] >= 0 &&
			    strcmp(name, dm->keywords[i]) == 0)
				bits |= 1u << kwmap[k];
		}
	}
	return bits;
}

/* A mailbox of that name that Dovecot made anew (another mailbox GUID or
 * uidvalidity) is another mailbox: its uids name other messages, so
 * nothing we knew of the old one (rows, maildir names, keywords) may
 * stay. */
static int forget_other_mailbox(struct dbox_store *store,
				struct dovecot_box *b,
				const struct dbox_mailbox *box,
				struct dbox_err *err)
{
	uint32_t uidv = dovi_mailbox_uid_validity(b->db);
	uint8_t g[16];
	char guid[33] = "";
	bool same_guid = true;
	int ret;

	if (dovi_mailbox_guid(b->db, g)) {
		for (int i = 0; i < 16; i++)
			snprintf(guid + i * 2, 3, "%02x", g[i]);
		same_guid = strcmp(guid, box->guid) == 0;
	}
	if (same_guid && (uidv == 0 || uidv == box->uidvalidity))
		return 0;
	dbox_log(DBOX_LOG_INFO, "mailbox %s was made anew by Dovecot; "
		 "indexing it from scratch", b->name);
	ret = dindex_mailbox_forget(store->idx, box->id, err);
	return ret < 0 ? ret : dbox_mailbox_touch(store, box->id, true, true,
						  err);
}

int dbox_dovecot_collect_uid(void *ctx, const struct dbox_msg *m)
{
	struct our_rows *o = ctx;

	if (o->count == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 256;
		uint32_t *p = realloc(o->uids, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		o->uids = p;
		o->cap = cap;
	}
	o->uids[o->count++] = m->uid;
	return 0;
}

/* Dovecot's records are in uid order (mail-index.h), so binary search. */
static bool has_uid(const struct dovi_message *msgs, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (msgs[mid].uid == uid)
			return true;
		if (msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* A uidvalidity for a mailbox that Dovecot has not indexed: from
 * Dovecot's own counter in the tree when we may write it, so that Dovecot
 * never hands out the same value; else the clock, as Dovecot does when
 * its counter is unusable. */
uint32_t dbox_dovecot_new_uidvalidity(struct dbox_store *store)
{
	return store->readonly ? (uint32_t)dbox_now() :
		dbox_uidvalidity_next(store->root);
}

/* The mailbox GUID: Dovecot's, else ours, else a new one. */
static void box_guid(struct dovecot_box *b, const char *ours, char guid[33])
{
	uint8_t g[16];

	if (dovi_mailbox_guid(b->db, g)) {
		for (int i = 0; i < 16; i++)
			snprintf(guid + i * 2, 3, "%02x", g[i]);
	} else if (ours != NULL && ours[0] != '\0') {
		snprintf(guid, 33, "%s", ours);
	} else {
		dbox_guid_generate(guid);
	}
}

/* A mailbox Dovecot has no index of keeps our row; earlier versions
 * copied Dovecot's zeroes into it. */
static int keep_ours(struct dbox_store *store, const struct dbox_mailbox *box,
		     struct dbox_err *err)
{
	uint32_t uv;

	if (box->uidvalidity != 0 && box->next_uid != 0)
		return 0;
	uv = box->uidvalidity != 0 ? box->uidvalidity :
		dbox_dovecot_new_uidvalidity(store);
	return dindex_mailbox_resync(store->idx, box->id, uv, 0, NULL, err);
}

/* The (file, offset) of every record the mdbox map references, sorted. */
struct map_keys {
	uint64_t *keys;
	size_t count;
};

static int key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t *dbox_dovecot_listed_map_uids(struct dbox_dovecot *dv, size_t *n_r)
{
	size_t total = 0, n = 0;
	uint64_t *uids;

	for (size_t i = 0; i < dv->count; i++)
		total += dv->boxes[i].db != NULL ?
			dovi_mailbox_count(dv->boxes[i].db) : 0;
	uids = calloc(total + 1, sizeof(*uids));
	for (size_t i = 0; uids != NULL && i < dv->count; i++) {
		const struct dovi_message *msgs;

		if (dv->boxes[i].db == NULL)
			continue;
		msgs = dovi_mailbox_messages(dv->boxes[i].db);
		for (size_t j = 0; j < dovi_mailbox_count(dv->boxes[i].db); j++)
			if (msgs[j].have_map_uid)
				uids[n++] = msgs[j].map_uid;
	}
	if (uids != NULL)
		qsort(uids, n, sizeof(*uids), key_cmp);
	*n_r = n;
	return uids;
}

/* The records of the map that some mailbox of Dovecot's lists: one the
 * map has but no mailbox lists is a message a takeover mount moved to a
 * folder Dovecot has no index of (it expunged it from the source). */
static int map_keys_load(struct dovecot_box *b, struct map_keys *mk)
{
	struct dovi_index *map = dovi_store_map(b->ds, NULL);
	uint32_t n = map != NULL ? dovi_index_count(map) : 0;
	size_t nlisted = 0;
	uint64_t *listed = b->dv != NULL ?
		dbox_dovecot_listed_map_uids(b->dv, &nlisted) : NULL;

	mk->count = 0;
	mk->keys = calloc(n + 1, sizeof(*mk->keys));
	if (mk->keys == NULL || (b->dv != NULL && listed == NULL)) {
		free(listed);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t uid = dovi_index_uid(map, i);
		uint32_t file_id, offset, size;
		uint16_t refs;
		bool have_refs;

		if (listed != NULL && bsearch(&uid, listed, nlisted,
					      sizeof(uid), key_cmp) == NULL)
			continue;
		if (dovi_index_map_rec(map, i, &file_id, &offset, &size,
				       &have_refs, &refs))
			mk->keys[mk->count++] = (uint64_t)file_id << 32 | offset;
	}
	free(listed);
	qsort(mk->keys, mk->count, sizeof(*mk->keys), key_cmp);
	return 0;
}

/* A message only we know of: its dbox record is there, and no index of
 * Dovecot's references it (mdbox: the map; sdbox: the mailbox's index). */
static bool only_ours(struct dbox_store *store, struct dovecot_box *b,
		      const struct map_keys *mk, const struct dbox_msg *m)
{
	const struct dbox_msg_where *w = dbox_msg_where(m);
	uint64_t key = (uint64_t)w->file_id << 32 | (uint32_t)w->offset;
	char path[PATH_MAX];
	struct stat st;

	if (dbox_msg_file_path(store, m, path, sizeof(path)) < 0 ||
	    stat(path, &st) < 0 || (uint64_t)st.st_size <= w->offset)
		return false;
	if (store->format == DBOX_FORMAT_SDBOX)
		return !has_uid(dovi_mailbox_messages(b->db),
				dovi_mailbox_count(b->db), m->uid);
	return bsearch(&key, mk->keys, mk->count, sizeof(key),
		       key_cmp) == NULL;
}

struct drop_ctx {
	struct dbox_store *store;
	struct dovecot_box *b;
	struct map_keys mk;
	struct our_rows gone;
};

static int collect_theirs(void *ctx, const struct dbox_msg *m)
{
	struct drop_ctx *dc = ctx;

	return only_ours(dc->store, dc->b, &dc->mk, m) ? 0 :
		dbox_dovecot_collect_uid(&dc->gone, m);
}

/* Dovecot rebuilt the mailbox, or indexed one made through a takeover
 * mount (another uidvalidity): its list replaces ours, except messages
 * it cannot know yet (delivered through the mount since, not resynced). */
static int drop_theirs(struct dbox_store *store, struct dovecot_box *b,
		       struct dbox_err *err)
{
	struct drop_ctx dc = { store, b, { NULL, 0 }, { NULL, 0, 0 } };
	int ret = store->format == DBOX_FORMAT_MDBOX ?
		map_keys_load(b, &dc.mk) : 0;

	if (ret == 0)
		ret = dbox_msg_list(store, b->id, 0, -1, 0, collect_theirs, &dc,
				    err);
	for (size_t i = 0; ret >= 0 && i < dc.gone.count; i++)
		ret = dindex_msg_delete(store->idx, b->id, dc.gone.uids[i],
					err);
	free(dc.mk.keys);
	free(dc.gone.uids);
	if (ret == -ENOMEM)
		return dbox_fail(err, ret, "out of memory");
	return ret < 0 ? ret : dbox_mailbox_touch(store, b->id, true, true,
						  err);
}

static int any_owed(void *ctx, const struct dindex_owed *o)
{
	(void)o;
	*(bool *)ctx = true;
	return 1;
}

/* Dovecot made the mailbox anew (another uidvalidity: its index was
 * lost or rebuilt): what it was owed names messages of the old one.
 * What the mount kept that Dovecot lacks now (drop_theirs) is appended
 * by the follower's catch-up instead, as a takeover mount's start
 * would. */
static int owed_anew(struct dbox_store *store, int64_t id,
		     struct dbox_err *err)
{
	struct dindex_owed o = { .mailbox_id = id, .kind = DINDEX_OWED_APPEND };
	bool any = false;
	int ret = dindex_owed_each(store->idx, id, any_owed, &any, err);

	if (ret >= 0 && any)
		ret = dindex_owed_forget(store->idx, id, err);
	if (ret >= 0 && any)
		ret = dindex_owed_add(store->idx, &o, err);
	return ret < 0 ? ret : 0;
}

/* Our row of a mailbox from Dovecot's header.  *known_r: Dovecot speaks
 * for the uids below it; rows at or above it are deliveries through a
 * takeover mount that Dovecot has not seen yet, and stay.  A mailbox that
 * Dovecot has no index of (uidvalidity 0: made through a takeover mount,
 * or its index files are gone) keeps our row as it is, *known_r 0; with
 * another uidvalidity, what drop_theirs leaves is ours, *known_r 0. */
static int upsert_mailbox(struct dbox_store *store, struct dovecot_box *b,
			  uint32_t *known_r, struct dbox_err *err)
{
	uint32_t uv = dovi_mailbox_uid_validity(b->db);
	uint32_t next = dovi_mailbox_next_uid(b->db);
	struct dbox_mailbox box;
	char guid[33];
	int ret = dbox_mailbox_lookup(store, b->name, &box, NULL);

	next = next > 0 ? next : 1;
	if (ret == -ENOENT) {
		box_guid(b, NULL, guid);
		ret = dbox_mailbox_insert(store, b->name, guid, uv != 0 ? uv :
					  dbox_dovecot_new_uidvalidity(store), next,
					  &box, err);
	}
	if (ret < 0)
		return ret;
	b->id = box.id;
	/* read-only: nothing of ours is in the tree, so another mailbox GUID
	 * or uidvalidity is another mailbox (made anew by Dovecot) */
	if (store->readonly && uv != 0 &&
	    (ret = forget_other_mailbox(store, b, &box, err)) < 0)
		return ret;
	*known_r = uv == 0 || uv != box.uidvalidity ? 0 : next;
	if (uv == 0)
		return keep_ours(store, &box, err);
	if (uv != box.uidvalidity && (ret = drop_theirs(store, b, err)) < 0)
		return ret;
	if (uv != box.uidvalidity && (ret = owed_anew(store, box.id, err)) < 0)
		return ret;
	if (uv == box.uidvalidity && box.next_uid > next)
		next = box.next_uid;
	box_guid(b, box.guid, guid);
	/* above every uid we hold, so that ours are never given again */
	return dindex_mailbox_resync(store->idx, box.id, uv, next, guid, err);
}

/* Rows of uids that Dovecot speaks for (below known) and does not list:
 * Dovecot expunged them. */
static int delete_gone(struct dbox_store *store, struct dovecot_box *b,
		       const struct dovi_message *msgs, size_t n,
		       uint32_t known, struct dbox_err *err)
{
	struct our_rows o = { 0 };
	int ret = dbox_msg_list(store, b->id, 0, -1, 0,
				dbox_dovecot_collect_uid, &o, err);

	for (size_t i = 0; ret >= 0 && i < o.count; i++) {
		if (o.uids[i] >= known || has_uid(msgs, n, o.uids[i]))
			continue;
		ret = dindex_msg_delete(store->idx, b->id, o.uids[i], err);
		if (ret == 0)
			ret = dbox_mailbox_touch(store, b->id, true, true, err);
	}
	free(o.uids);
	return ret < 0 ? ret : 0;
}

static bool dovecot_lists_guid(struct dovecot_box *b, const char *guid)
{
	const struct dovi_message *msgs = dovi_mailbox_messages(b->db);
	size_t n = dovi_mailbox_count(b->db);

	for (size_t i = 0; strlen(guid) == 32 && i < n; i++) {
		if (msgs[i].have_guid &&
		    dbox_dovecot_guid_matches(guid, &msgs[i]))
			return true;
	}
	return false;
}

/* For the caller's copies kept under the old uid (a mount's pending/
 * files): told after the commit (dbox_dovecot_renumbered_done).  Out of
 * memory, the copy keeps its old name, which the mount's start-up sweep
 * still recognises (sweep_pending_done). */
static void note_renumber(struct dbox_store *store, struct dovecot_box *b,
			  uint32_t from, uint32_t to)
{
	struct dbox_dovecot *dv = b->dv;

	if (store->renumbered == NULL || dv == NULL)
		return;
	if (dv->nrenum == dv->caprenum) {
		size_t cap = dv->caprenum == 0 ? 8 : dv->caprenum * 2;
		struct dbox_renumber *v = realloc(dv->renum,
						  cap * sizeof(*v));

		if (v == NULL)
			return;
		dv->renum = v;
		dv->caprenum = cap;
	}
	dv->renum[dv->nrenum++] = (struct dbox_renumber){ b->id, from, to };
}

/* mdbox: Dovecot gave a uid that we gave to a delivery through a takeover
 * mount (which it did not know) to another message.  Ours moves to a
 * fresh uid and keeps its name, unless Dovecot lists it under a uid of
 * its own (a resync): then that row is the one.  Either way a record not
 * durable yet is made so first, as for a move (dbox_msg_move): a flush
 * that took the mount's spool file kept for it syncs the records of its
 * marks by uid, and would find Dovecot's message under the old one (or
 * none); the mark moves with ours too.  The spool file follows after
 * the commit (note_renumber). */
static int renumber_ours(struct dbox_store *store, struct dovecot_box *b,
			 const struct dbox_msg *old, struct dbox_err *err)
{
	uint32_t fresh = 0;
	bool carried;
	int ret = dbox_unconfirmed_sync_one(store, b->id, old->uid, err);

	if (ret < 0)
		return ret;
	if (dovecot_lists_guid(b, old->guid))
		return dindex_msg_delete(store->idx, b->id, old->uid, err);
	ret = dbox_mailbox_alloc_uids(store, b->id, 1, &fresh, err);
	if (ret == 0)
		ret = dindex_unconfirmed_move(store->idx, b->id, old->uid,
					      b->id, fresh, &carried, err);
	if (ret == 0 && carried)
		atomic_store(&store->unconfirmed, true);
	if (ret == 0)
		ret = dindex_msg_set_uid(store->idx, b->id, old->uid, fresh,
					 err);
	/* the old uid is Dovecot's message's now: a mark left there would
	 * have the next open after a cut check Dovecot's record (and drop
	 * its row when it cannot read it), or say "removed" for our file
	 * when Dovecot's message goes */
	if (ret == 0)
		ret = dindex_unconfirmed_forget(store->idx, b->id, old->uid,
						err);
	if (ret == 0)
		note_renumber(store, b, old->uid, fresh);
	return ret;
}

void dbox_dovecot_renumbered_done(struct dbox_store *store,
				  struct dbox_dovecot *dv, bool committed)
{
	for (size_t i = 0; committed && i < dv->nrenum; i++)
		store->renumbered(store->renumbered_ctx, dv->renum[i].box,
				  dv->renum[i].from, dv->renum[i].to);
	dv->nrenum = 0;
}

/* uid 0 is no uid: an earlier version gave it to a delivery into a folder
 * made through a takeover mount, and the folder did not list it.  It moves
 * to a fresh uid (sdbox: its u.0 file with it). */
static int repair_uid0(struct dbox_store *store, struct dovecot_box *b,
		       struct dbox_err *err)
{
	char from[PATH_MAX] = "", to[PATH_MAX];
	struct dbox_msg m;
	int ret;

	if (store->readonly || dbox_msg_get(store, b->id, 0, &m, NULL) < 0)
		return 0;
	if (dbox_msg_where(&m)->file_id == 0)
		dbox_msg_file_path(store, &m, from, sizeof(from));
	ret = dbox_mailbox_alloc_uids(store, b->id, 1, &m.uid, err);
	if (ret == 0 && from[0] != '\0') {
		ret = dbox_msg_file_path(store, &m, to, sizeof(to));
		if (ret == 0 && link(from, to) < 0)
			ret = dbox_fail(err, -errno, "link %s: %m", to);
	}
	if (ret == 0)
		ret = dindex_msg_set_uid(store->idx, b->id, 0, m.uid, err);
	if (ret == 0 && from[0] != '\0') {
		dbox_fcache_drop(store, from);
		unlink(from);
	}
	if (ret == 0)
		dbox_log(DBOX_LOG_INFO, "mailbox %s: the message with uid 0 "
			 "is uid %u now", b->name, m.uid);
	return ret;
}

/* Dovecot gave msg the flags of another message of ours with the same
 * base (two files of a maildir, cur/X:2,S and cur/X:2,F, that Dovecot
 * now flags alike): names are unique per directory, so the one Dovecot
 * changed takes a base of its own.  Both stay listed, as Dovecot has
 * both; hiding one (what a maildir's rename would do) would show fewer
 * messages than Dovecot's. */
static int rename_apart(struct dbox_store *store, const struct dbox_msg *msg,
			uint32_t flags, uint32_t kw, bool in_new,
			struct dbox_err *err)
{
	char base[DBOX_NAME_MAX + 1];

	dbox_msg_derive_base(msg, base, sizeof(base));
	return dindex_msg_set_name(store->idx, msg->mailbox_id, msg->uid, base,
				   flags, kw, in_new, false, err);
}

/* The uids of the mailbox's messages whose flags, or whose expunge,
 * Dovecot is owed (dindex-owed.h): Dovecot's state of them is older than
 * ours until the follower hands ours back. */
struct owed_uids {
	struct our_rows flags, gone;
};

static int owed_add(struct our_rows *o, uint32_t uid)
{
	struct dbox_msg m = { .uid = uid };

	return o->count > 0 && o->uids[o->count - 1] == uid ? 0 :
		dbox_dovecot_collect_uid(o, &m);
}

static int collect_owed(void *ctx, const struct dindex_owed *o)
{
	struct owed_uids *ou = ctx;

	if (o->kind == DINDEX_OWED_FLAGS)
		return owed_add(&ou->flags, o->uid);
	return o->kind == DINDEX_OWED_EXPUNGE ? owed_add(&ou->gone, o->uid) :
		0;
}

static bool owed_has(const struct our_rows *o, uint32_t uid)
{
	size_t lo = 0, hi = o->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (o->uids[mid] == uid)
			return true;
		if (o->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* One message: inserted, updated or left as it is; ours_owed: its
 * flags are owed to Dovecot, so ours stay. */
static int sync_message(struct dbox_store *store, struct dovecot_box *b,
			const struct dovi_message *dm, uint32_t flags,
			uint32_t kw, bool in_new, bool ours_owed,
			struct dbox_rfile *r, struct dbox_err *err)
{
	struct dbox_msg old, msg;
	bool have = dbox_msg_get(store, b->id, dm->uid, &old, NULL) == 0;
	bool moved = have && store->format == DBOX_FORMAT_MDBOX &&
		(dbox_msg_where(&old)->file_id != dm->file_id ||
		 dbox_msg_where(&old)->offset != dm->offset);
	int ret;

	if (have && ours_owed) {
		flags = old.flags;
		kw = old.keywords;
		in_new = old.in_new;
	}

	/* P has no flag in Dovecot's index: Dovecot's maildir driver keeps
	 * it in the name when it changes the others, so do we */
	if (have)
		flags |= old.flags & DBOX_FLAG_PASSED;
	/* a maildir never moves a message back from cur/ to new/, and a
	 * name in new/ has no keywords: an old message that the mount moved
	 * to cur/ without flags (Dovecot still calls it \Recent) stays */
	in_new = in_new && kw == 0 && !(have && !old.in_new);
	if (have && !moved) {
		/* a name in new/ with flags is a maildir client's (spec 2,
		 * Dovecot's maildir driver makes them): the flags it handed
		 * to Dovecot do not move it to cur/ under the client */
		if (old.flags == flags && old.keywords == kw &&
		    (old.in_new == in_new || (old.in_new && old.new_info)))
			return 0;
		ret = dindex_msg_set_flags(store->idx, b->id, dm->uid, flags,
					   kw, in_new, err);
		if (ret == -EEXIST)
			ret = rename_apart(store, &old, flags, kw, in_new,
					   err);
		return ret < 0 ? ret : dbox_mailbox_touch(store, b->id, true,
							  true, err);
	}
	ret = dbox_dovecot_read_record(store, b, dm, r, &msg);
	if (ret < 0)
		return ret == -ENOENT || ret == -EBADMSG ? 0 : ret;
	msg.flags = flags;
	msg.keywords = kw;
	msg.in_new = in_new;
	if (have && strcmp(old.guid, msg.guid) != 0) {
		ret = renumber_ours(store, b, &old, err);
		if (ret < 0)
			return ret;
		have = false;
	}
	if (have) {
		/* a purge moved the record: same message, new place */
		ret = dindex_msg_delete(store->idx, b->id, dm->uid, err);
		if (ret < 0)
			return ret;
		snprintf(msg.base, sizeof(msg.base), "%s", old.base);
	}
	/* one message per base, as before names were the key: a flag
	 * change Dovecot makes later can then never meet another's name */
	if (!have && dbox_msg_lookup_base(store, b->id, msg.base, NULL,
					  NULL) == 0)
		dbox_msg_derive_base(&msg, msg.base, sizeof(msg.base));
	ret = dbox_msg_insert(store, &msg, NULL);
	if (ret == -EEXIST) {
		/* a name from N that another message has: derive one */
		dbox_msg_derive_base(&msg, msg.base, sizeof(msg.base));
		ret = dbox_msg_insert(store, &msg, err);
	}
	return ret < 0 ? ret : dbox_mailbox_touch(store, b->id, in_new,
						   !in_new, err);
}

int dbox_dovecot_sync_box(struct dbox_store *store, struct dovecot_box *b,
			  struct dbox_err *err)
{
	const struct dovi_message *msgs = dovi_mailbox_messages(b->db);
	size_t n = dovi_mailbox_count(b->db);
	unsigned int nkw = dovi_mailbox_keyword_count(b->db);
	struct dbox_rfile r;
	struct dovi_header hdr = { 0 };
	struct owed_uids owed = { { 0 }, { 0 } };
	int *kwmap = calloc(nkw + 1, sizeof(*kwmap));
	uint32_t known = 0;
	int ret = kwmap == NULL ? -ENOMEM : upsert_mailbox(store, b, &known,
							   err);

	dbox_rfile_init(&r);
	if (dovi_mailbox_index(b->db) != NULL)
		dovi_index_header(dovi_mailbox_index(b->db), &hdr);
	if (ret == 0)
		ret = repair_uid0(store, b, err);
	if (ret == 0)
		ret = map_keywords(store, b, kwmap, nkw, err);
	if (ret == 0)
		ret = delete_gone(store, b, msgs, n, known, err);
	if (ret == 0)
		ret = dindex_owed_each(store->idx, b->id, collect_owed, &owed,
				       err);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		uint32_t flags, kw;
		bool in_new;

		/* expunged by us: not back until Dovecot has it gone */
		if (owed_has(&owed.gone, msgs[i].uid))
			continue;
		state_of(&msgs[i], hdr.first_recent_uid, &flags, &in_new);
		kw = keyword_bits(b, kwmap, nkw, &msgs[i]);
		ret = sync_message(store, b, &msgs[i], flags, kw, in_new,
				   owed_has(&owed.flags, msgs[i].uid), &r,
				   err);
	}
	dbox_rfile_close(&r);
	free(owed.flags.uids);
	free(owed.gone.uids);
	free(kwmap);
	if (ret == -ENOMEM)
		return dbox_fail(err, ret, "out of memory");
	return ret;
}

