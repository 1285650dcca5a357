/* dbox-dovecot.c - the index of a store that Dovecot owns, taken from
 * Dovecot's own index files (dovecot.index*, the mdbox map), never written.
 *
 * Dovecot's indexes give uids, flags, keywords, uidvalidity, \Recent and,
 * for mdbox, which mailbox holds which map record; the dbox files give the
 * bytes, GUIDs and dates.  A full pass makes our index equal to that;
 * dbox_store_follow() re-reads only what the transaction logs added and
 * syncs the mailboxes that changed.  Where Dovecot's indexes cannot be
 * used at all, the store is indexed from its files alone, and the log
 * says so. */
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
#include "store/dbox-rfile.h"
#include "store/dbox-scan.h"
#include "store/store-private.h"

struct dovecot_box {
	struct dovi_mailbox *db;   /* NULL: its index is unusable (sdbox) */
	struct dovi_store *ds;     /* Dovecot's store (the mdbox map) */
	int64_t id;                /* ours */
	char *name;
	char *storage;             /* on-disk name */
	bool warned;               /* the files-alone fallback was logged */
};

struct dbox_dovecot {
	struct dovi_store *ds;
	struct dovecot_box *boxes;
	size_t count;
	int inotify_fd;
	bool unusable;             /* mdbox: a mailbox index cannot be read */
};

/* ---------------------------------------------------------- records */

/* The last file read, kept while Dovecot's records of one m.N follow
 * each other; failures are logged once per file. */
static bool reader_open(struct dbox_rfile *r, const char *path)
{
	char reason[256];
	int e = 0;

	switch (dbox_rfile_open(r, path, &e, reason, sizeof(reason))) {
	case DBOX_RFILE_READY:
		return true;
	case DBOX_RFILE_CANNOT_OPEN:
		if (e != EBADMSG)  /* logged already */
			dbox_log(DBOX_LOG_WARNING, "%s: %s", path, strerror(e));
		return false;
	case DBOX_RFILE_BAD_HEADER:
		dbox_log(DBOX_LOG_WARNING, "Corrupted dbox file %s: %s", path,
			 reason);
		return false;
	default:
		return false;
	}
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
		c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A 32-hex-digit GUID string against the binary GUID of Dovecot's guid
 * extension; other strings are hashed by Dovecot and cannot be checked
 * without SHA-1 - they pass. */
static bool guid_matches(const char *guid, const struct dovi_message *dm)
{
	if (!dm->have_guid || guid == NULL || strlen(guid) != 32)
		return true;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(guid[i * 2]), lo = hexval(guid[i * 2 + 1]);

		if (hi < 0 || lo < 0)
			return true;
		if ((uint8_t)(hi << 4 | lo) != dm->guid[i])
			return false;
	}
	return true;
}

/* Reads the record of a Dovecot message into msg (storage fields). */
static int read_record(struct dbox_store *store, struct dovecot_box *b,
		       const struct dovi_message *dm, struct dbox_rfile *r,
		       struct dbox_msg *msg)
{
	char path[PATH_MAX], reason[256];
	struct dbox_record rec;
	uint64_t offset;
	struct stat st;

	if (store->format == DBOX_FORMAT_MDBOX) {
		if (!dm->in_map)
			return -ENOENT;
		dbox_mdbox_path(store, dm->file_id, path, sizeof(path));
	} else if (dovi_mailbox_sdbox_path(b->db, dm->uid, path,
					   sizeof(path)) < 0) {
		return -ENOENT;
	}
	if (!reader_open(r, path))
		return -EBADMSG;
	offset = store->format == DBOX_FORMAT_MDBOX ? dm->offset :
		r->hdr.length;
	if (dbox_rfile_record(r, offset, &rec, reason, sizeof(reason)) < 0) {
		dbox_log(DBOX_LOG_WARNING, "Corrupted dbox file %s (around "
			 "%s): mailbox %s uid %u left out", path, reason,
			 b->name, dm->uid);
		return -EBADMSG;
	}
	if (!guid_matches(rec.meta.guid, dm)) {
		/* never show one message as another */
		dbox_log(DBOX_LOG_WARNING, "%s offset %llu: GUID %s is not the "
			 "one Dovecot's index has for %s uid %u; left out", path,
			 (unsigned long long)offset, rec.meta.guid, b->name,
			 dm->uid);
		dbox_record_clear(&rec);
		return -EBADMSG;
	}
	memset(msg, 0, sizeof(*msg));
	dbox_msg_from_record(msg, &rec);
	msg->file_id = store->format == DBOX_FORMAT_MDBOX ? dm->file_id : 0;
	msg->uid = dm->uid;
	msg->mailbox_id = b->id;
	if (dm->have_map_uid && dm->save_date != 0)
		msg->saved = dm->save_date;
	else
		msg->saved = fstat(r->fd, &st) == 0 ? st.st_ctime : 0;
	if (rec.meta.maildir_base != NULL &&
	    strchr(rec.meta.maildir_base, '/') == NULL)
		snprintf(msg->base, sizeof(msg->base), "%s",
			 rec.meta.maildir_base);
	else
		dbox_msg_derive_base(msg, msg->base, sizeof(msg->base));
	dbox_record_clear(&rec);
	return 0;
}

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

struct our_rows {
	uint32_t *uids;
	size_t count, cap;
};

static int collect_uid(void *ctx, const struct dbox_msg *m)
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
static uint32_t new_uidvalidity(struct dbox_store *store)
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
	uv = box->uidvalidity != 0 ? box->uidvalidity : new_uidvalidity(store);
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

static int map_keys_load(struct dovecot_box *b, struct map_keys *mk)
{
	struct dovi_index *map = dovi_store_map(b->ds, NULL);
	uint32_t n = map != NULL ? dovi_index_count(map) : 0;

	mk->count = 0;
	mk->keys = calloc(n + 1, sizeof(*mk->keys));
	if (mk->keys == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t file_id, offset, size;
		uint16_t refs;
		bool have_refs;

		if (dovi_index_map_rec(map, i, &file_id, &offset, &size,
				       &have_refs, &refs))
			mk->keys[mk->count++] = (uint64_t)file_id << 32 | offset;
	}
	qsort(mk->keys, mk->count, sizeof(*mk->keys), key_cmp);
	return 0;
}

/* A message only we know of: its dbox record is there, and no index of
 * Dovecot's references it (mdbox: the map; sdbox: the mailbox's index). */
static bool only_ours(struct dbox_store *store, struct dovecot_box *b,
		      const struct map_keys *mk, const struct dbox_msg *m)
{
	uint64_t key = (uint64_t)m->file_id << 32 | (uint32_t)m->offset;
	char path[PATH_MAX];
	struct stat st;

	if (dbox_msg_file_path(store, m, path, sizeof(path)) < 0 ||
	    stat(path, &st) < 0 || (uint64_t)st.st_size <= m->offset)
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
		collect_uid(&dc->gone, m);
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
					  new_uidvalidity(store), next, &box,
					  err);
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
	int ret = dbox_msg_list(store, b->id, 0, -1, 0, collect_uid, &o, err);

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
		if (msgs[i].have_guid && guid_matches(guid, &msgs[i]))
			return true;
	}
	return false;
}

/* mdbox: Dovecot gave a uid that we gave to a delivery through a takeover
 * mount (which it did not know) to another message.  Ours moves to a
 * fresh uid and keeps its name, unless Dovecot lists it under a uid of
 * its own (a resync): then that row is the one. */
static int renumber_ours(struct dbox_store *store, struct dovecot_box *b,
			 const struct dbox_msg *old, struct dbox_err *err)
{
	uint32_t fresh = 0;
	bool listed = dovecot_lists_guid(b, old->guid);
	int ret = listed ? 0 : dbox_mailbox_alloc_uids(store, b->id, 1, &fresh,
						       err);

	if (ret < 0)
		return ret;
	if (listed)
		return dindex_msg_delete(store->idx, b->id, old->uid, err);
	return dindex_msg_set_uid(store->idx, b->id, old->uid, fresh, err);
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
	if (m.file_id == 0)
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

/* One message: inserted, updated or left as it is. */
static int sync_message(struct dbox_store *store, struct dovecot_box *b,
			const struct dovi_message *dm, uint32_t flags,
			uint32_t kw, bool in_new, struct dbox_rfile *r,
			struct dbox_err *err)
{
	struct dbox_msg old, msg;
	bool have = dbox_msg_get(store, b->id, dm->uid, &old, NULL) == 0;
	bool moved = have && store->format == DBOX_FORMAT_MDBOX &&
		(old.file_id != dm->file_id || old.offset != dm->offset);
	int ret;

	if (have && !moved) {
		if (old.flags == flags && old.keywords == kw &&
		    old.in_new == in_new)
			return 0;
		ret = dindex_msg_set_flags(store->idx, b->id, dm->uid, flags,
					   kw, in_new, err);
		if (ret == -EEXIST)
			ret = rename_apart(store, &old, flags, kw, in_new,
					   err);
		return ret < 0 ? ret : dbox_mailbox_touch(store, b->id, true,
							  true, err);
	}
	ret = read_record(store, b, dm, r, &msg);
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

static int sync_box(struct dbox_store *store, struct dovecot_box *b,
		    struct dbox_err *err)
{
	const struct dovi_message *msgs = dovi_mailbox_messages(b->db);
	size_t n = dovi_mailbox_count(b->db);
	unsigned int nkw = dovi_mailbox_keyword_count(b->db);
	struct dbox_rfile r;
	struct dovi_header hdr = { 0 };
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
	for (size_t i = 0; ret == 0 && i < n; i++) {
		uint32_t flags, kw;
		bool in_new;

		state_of(&msgs[i], hdr.first_recent_uid, &flags, &in_new);
		kw = keyword_bits(b, kwmap, nkw, &msgs[i]);
		ret = sync_message(store, b, &msgs[i], flags, kw, in_new, &r,
				   err);
	}
	dbox_rfile_close(&r);
	free(kwmap);
	return ret;
}

/* ------------------------------------------- sdbox: the files alone */

struct files_ctx {
	struct dbox_store *store;
	struct dovecot_box *b;
	struct dbox_err *err;
	uint32_t max_uid;
};

static int files_record(void *ctx, const char *mailbox, uint32_t file_id,
			uint32_t uid, const struct dbox_record *rec)
{
	struct files_ctx *fc = ctx;
	struct dbox_msg msg = { 0 };
	int ret;

	if (uid > fc->max_uid)
		fc->max_uid = uid;
	if (dbox_msg_get(fc->store, fc->b->id, uid, NULL, NULL) == 0)
		return 0;  /* known: keep the state we had */
	dbox_msg_from_record(&msg, rec);
	msg.mailbox_id = fc->b->id;
	msg.uid = uid;
	msg.saved = dbox_now();
	dbox_msg_derive_base(&msg, msg.base, sizeof(msg.base));
	ret = dbox_msg_insert(fc->store, &msg, fc->err);
	return ret < 0 ? ret : dbox_mailbox_touch(fc->store, fc->b->id, false,
						   true, fc->err);
}

static void files_problem(void *ctx, const char *path, uint64_t offset,
			  const char *what)
{
	dbox_log(DBOX_LOG_WARNING, "%s (offset %llu): %s", path,
		 (unsigned long long)offset, what);
}

static int sync_box_files(struct dbox_store *store, struct dovecot_box *b,
			  struct dbox_err *err)
{
	struct dbox_scan_ops ops = { .record = files_record,
				     .problem = files_problem };
	struct files_ctx fc = { store, b, err, 0 };
	struct dbox_mailbox box;
	struct our_rows o = { 0 };
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *e;
	uint64_t good;
	DIR *d;
	int ret = dbox_mailbox_lookup(store, b->name, &box, NULL);

	if (!b->warned) {
		dbox_log(DBOX_LOG_WARNING, "mailbox %s: its messages come from "
			 "its u.N files alone (no flags or keywords)", b->name);
		b->warned = true;
	}
	if (ret == -ENOENT) {
		char guid[33];

		dbox_guid_generate(guid);
		ret = dbox_mailbox_insert(store, b->name, guid,
					  new_uidvalidity(store), 1, &box, err);
	}
	if (ret < 0)
		return ret;
	b->id = box.id;
	if (dbox_path(dir, sizeof(dir), "%s/%s/%s/%s", store->root,
		      DBOX_MAILBOX_DIR, b->storage, DBOX_MAIL_DIRNAME) < 0)
		return 0;
	d = opendir(dir);
	while (d != NULL && ret == 0 && (e = readdir(d)) != NULL) {
		char *end;
		unsigned long uid = strncmp(e->d_name, "u.", 2) == 0 ?
			strtoul(e->d_name + 2, &end, 10) : 0;

		if (uid == 0 || uid > UINT32_MAX || *end != '\0' ||
		    dbox_path(path, sizeof(path), "%s/%s", dir, e->d_name) < 0)
			continue;
		ret = dbox_scan_file(path, 0, &ops, &fc, b->name, 0,
				     (uint32_t)uid, &good);
	}
	if (d != NULL)
		closedir(d);
	/* rows whose file is gone */
	if (ret == 0)
		ret = dbox_msg_list(store, b->id, 0, -1, 0, collect_uid, &o, err);
	for (size_t i = 0; ret >= 0 && i < o.count; i++) {
		struct stat st;

		dbox_sdbox_path(store, b->name, o.uids[i], path, sizeof(path));
		if (stat(path, &st) == 0)
			continue;
		ret = dindex_msg_delete(store->idx, b->id, o.uids[i], err);
	}
	free(o.uids);
	return ret < 0 ? ret : dindex_mailbox_raise_next_uid(store->idx, b->id,
							     fc.max_uid, err);
}

/* sdbox: an index that is missing or broken while u.N files are there.
 * A missing one of a mailbox we hold is no loss: it is one made through a
 * takeover mount (Dovecot indexes it at its next look), or one whose
 * files were indexed already. */
static bool sdbox_index_unusable(struct dbox_store *store,
				 struct dovecot_box *b)
{
	const struct dovi_index *idx;
	char dir[PATH_MAX];
	struct dirent *e;
	bool files = false;
	DIR *d;

	if (store->format != DBOX_FORMAT_SDBOX)
		return false;
	if (b->db == NULL)
		return true;
	idx = dovi_mailbox_index(b->db);
	if (idx != NULL && dovi_index_error_count(idx) == 0)
		return false;
	if (idx == NULL &&
	    dbox_mailbox_lookup(store, b->name, NULL, NULL) == 0)
		return false;
	if (dovi_mailbox_count(b->db) > 0)
		return false;
	if (dbox_path(dir, sizeof(dir), "%s", dovi_mailbox_dir(b->db)) < 0 ||
	    (d = opendir(dir)) == NULL)
		return false;
	while (!files && (e = readdir(d)) != NULL)
		files = strncmp(e->d_name, "u.", 2) == 0;
	closedir(d);
	return files;
}

/* ----------------------------------------------------- open, follow */

static void dovecot_free_boxes(struct dbox_dovecot *dv)
{
	for (size_t i = 0; i < dv->count; i++) {
		dovi_mailbox_free(dv->boxes[i].db);
		free(dv->boxes[i].name);
		free(dv->boxes[i].storage);
	}
	free(dv->boxes);
	dv->boxes = NULL;
	dv->count = 0;
}

void dbox_dovecot_free(struct dbox_dovecot *dv)
{
	if (dv == NULL)
		return;
	dovecot_free_boxes(dv);
	dovi_store_free(dv->ds);
	if (dv->inotify_fd >= 0)
		close(dv->inotify_fd);
	free(dv);
}

static int watch_dir(struct dbox_dovecot *dv, const char *dir)
{
	if (dv->inotify_fd < 0)
		return 0;
	/* log appends, rotations, new index files, new and removed
	 * mailbox directories */
	return inotify_add_watch(dv->inotify_fd, dir, IN_MODIFY | IN_CREATE |
				 IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM |
				 IN_CLOSE_WRITE) < 0 ? -errno : 0;
}

/* (Re)loads the mailbox list: opens new mailboxes, drops gone ones. */
static int load_boxes(struct dbox_store *store, struct dbox_dovecot *dv,
		      struct dbox_err *err)
{
	struct dovi_mailbox_name *names = NULL;
	struct dovecot_box *boxes;
	size_t n = 0, kept = 0;
	int ret = dovi_store_list(dv->ds, &names, &n, err);

	if (ret < 0)
		return ret;
	boxes = calloc(n + 1, sizeof(*boxes));
	if (boxes == NULL) {
		dovi_mailbox_names_free(names, n);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct dovecot_box *b = &boxes[kept];

		if (!names[i].name_valid ||
		    !dbox_mailbox_name_valid(names[i].name)) {
			dbox_log(DBOX_LOG_WARNING, "mailbox directory %s: name "
				 "not usable, left out", names[i].storage_name);
			continue;
		}
		/* reuse the reader of a mailbox we follow already */
		for (size_t j = 0; j < dv->count; j++) {
			if (dv->boxes[j].name != NULL &&
			    strcmp(dv->boxes[j].name, names[i].name) == 0) {
				*b = dv->boxes[j];
				memset(&dv->boxes[j], 0, sizeof(dv->boxes[j]));
			}
		}
		if (b->name == NULL) {
			b->name = strdup(names[i].name);
			b->storage = strdup(names[i].storage_name);
		}
		if (b->db == NULL && dovi_mailbox_open_storage_name(dv->ds,
				names[i].storage_name, &b->db, err) < 0) {
			b->db = NULL;
			if (store->format == DBOX_FORMAT_MDBOX)
				dv->unusable = true;
			if (!b->warned)
				dbox_log(DBOX_LOG_WARNING, "mailbox %s: Dovecot's "
					 "index cannot be used (%s)", b->name,
					 err != NULL ? err->msg : "unreadable");
		}
		if (b->db != NULL)
			watch_dir(dv, dovi_mailbox_dir(b->db));
		b->ds = dv->ds;
		kept++;
	}
	dovi_mailbox_names_free(names, n);
	dovecot_free_boxes(dv);
	dv->boxes = boxes;
	dv->count = kept;
	return 0;
}

static int delete_other_mailboxes(struct dbox_store *store,
				  struct dbox_dovecot *dv,
				  struct dbox_err *err)
{
	int64_t *ids = calloc(dv->count + 1, sizeof(*ids));
	int ret;

	if (ids == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < dv->count; i++)
		ids[i] = dv->boxes[i].id;
	ret = dindex_mailbox_keep_only(store->idx, ids, dv->count, err);
	free(ids);
	return ret;
}

static int sync_all(struct dbox_store *store, struct dbox_dovecot *dv,
		    bool only_changed, int64_t *changed, size_t max,
		    size_t *nchanged, struct dbox_err *err)
{
	size_t before = dv->count;
	bool list_changed;
	/* the mailbox directories are listed under the write lock: a
	 * mailbox made, renamed or removed through the mount changes its
	 * directory and its row in one transaction, so the list and our rows
	 * agree */
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	ret = load_boxes(store, dv, err);
	if (ret == 0 && dv->unusable && !only_changed)
		ret = -EOPNOTSUPP;   /* mdbox: which mailbox has what is lost */
	list_changed = dv->count != before;
	for (size_t i = 0; ret == 0 && i < dv->count; i++) {
		struct dovecot_box *b = &dv->boxes[i];
		bool box_changed = true;

		if (b->db != NULL &&
		    dovi_mailbox_refresh(b->db, &box_changed, err) < 0) {
			dbox_log(DBOX_LOG_WARNING, "mailbox %s: %s", b->name,
				 err != NULL ? err->msg : "refresh failed");
			continue;  /* keep what we had */
		}
		if (sdbox_index_unusable(store, b)) {
			ret = sync_box_files(store, b, err);
			if (ret == 0 && *nchanged < max)
				changed[(*nchanged)++] = b->id;
			continue;
		}
		if (b->db == NULL || (only_changed && !box_changed && b->id != 0))
			continue;
		/* a new name (a rename by Dovecot keeps the count) */
		list_changed |= b->id == 0;
		ret = sync_box(store, b, err);
		if (ret == 0 && *nchanged < max)
			changed[(*nchanged)++] = b->id;
	}
	if (ret == 0 && (!only_changed || list_changed))
		ret = delete_other_mailboxes(store, dv, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

/* The first full pass.  Returns 0, or -EOPNOTSUPP when Dovecot's indexes
 * cannot be used at all (the caller then indexes the files alone). */
int dbox_dovecot_reindex(struct dbox_store *store, struct dbox_err *err)
{
	struct dbox_dovecot *dv = calloc(1, sizeof(*dv));
	enum dovi_format fmt = store->format == DBOX_FORMAT_MDBOX ?
		DOVI_MDBOX : DOVI_SDBOX;
	int64_t changed[1];
	size_t n = 0;
	char dir[PATH_MAX];
	int ret;

	if (dv == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	dv->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	ret = dovi_store_open(store->root, fmt, &dv->ds, err);
	if (ret == 0 && fmt == DOVI_MDBOX && dovi_store_map(dv->ds, err) == NULL)
		ret = -EBADMSG;
	if (ret < 0) {
		dbox_log(DBOX_LOG_WARNING, "Dovecot's indexes of %s cannot be "
			 "used (%s); indexing the dbox files alone: flags and "
			 "keywords are lost and expunged mdbox messages that "
			 "were not purged come back", store->root,
			 err != NULL ? err->msg : "");
		dbox_dovecot_free(dv);
		return -EOPNOTSUPP;
	}
	dbox_path(dir, sizeof(dir), "%s/%s", store->root, DBOX_MAILBOX_DIR);
	watch_dir(dv, dir);
	if (fmt == DOVI_MDBOX) {
		dbox_path(dir, sizeof(dir), "%s/%s", store->root,
			  DBOX_STORAGE_DIR);
		watch_dir(dv, dir);
	}
	ret = sync_all(store, dv, false, changed, 0, &n, err);
	if (ret == -EOPNOTSUPP)
		dbox_log(DBOX_LOG_WARNING, "Dovecot's indexes of %s cannot be "
			 "used (a mailbox index is unreadable); indexing the "
			 "dbox files alone: flags and keywords are lost and "
			 "expunged mdbox messages that were not purged come "
			 "back", store->root);
	if (ret < 0) {
		dbox_dovecot_free(dv);
		return ret;
	}
	dbox_dovecot_free(store->dovecot);
	store->dovecot = dv;
	return 0;
}

int dbox_store_follow(struct dbox_store *store, int64_t *changed, size_t max,
		      struct dbox_err *err)
{
	char buf[4096];
	size_t n = 0;
	int ret;

	if (store->dovecot == NULL)
		return 0;
	/* drain the events; the refresh below finds what they were */
	while (read(store->dovecot->inotify_fd, buf, sizeof(buf)) > 0)
		;
	ret = sync_all(store, store->dovecot, true, changed, max, &n, err);
	return ret < 0 ? ret : (int)n;
}

int dbox_store_watch_fd(struct dbox_store *store)
{
	return store->dovecot != NULL ? store->dovecot->inotify_fd : -1;
}
