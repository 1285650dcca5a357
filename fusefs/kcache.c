/* kcache.c - the names the kernel caches (see kcache.h). */
#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "attr.h"
#include "dboxfs.h"
#include "kcache.h"

/* The daemon's memory for names the kernel caches other than a message's
 * own (folders, cur/ new/, plain files, a node the kernel kept across a
 * move): ~110 bytes each (entry with its name and the tree's node), so
 * 2^16 names take ~7 MiB.  Messages' names are in the compact table below
 * (16 bytes each).  A kernel keeps every inode of a listed folder while
 * memory lasts, and the daemon must stay small however large a folder is:
 * past a bound a name gets the short timeout, and the kernel asks again
 * when it needs it. */
#define KCACHE_MAX (1u << 16)

/* One allocation with its name: the node of the tree, the entry and the
 * name were three (~150 bytes a name). */
struct kc_entry {
	uint64_t ino;
	uint64_t parent;
	uint32_t nlookup;        /* the kernel's count, capped (see record) */
	bool stale;              /* invalidated; kept until the forget */
	char name[];
};

/* a name to look up again, copied out of the table */
struct kc_item {
	uint64_t ino, parent;
	char *name;
};

/* a name to drop from the kernel's cache (kcache_drop_later) */
struct kc_drop {
	struct kc_drop *next;
	uint64_t parent;
	char name[];
};

static int cmp_ino(const void *a, const void *b)
{
	const struct kc_entry *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void entry_free(void *p)
{
	free(p);
}

static struct kc_entry *entry_new(uint64_t parent, const char *name,
				  uint64_t ino)
{
	size_t len = strlen(name);
	struct kc_entry *e = malloc(sizeof(*e) + len + 1);

	if (e == NULL)
		return NULL;
	e->ino = ino;
	e->parent = parent;
	e->nlookup = 1;
	e->stale = false;
	memcpy(e->name, name, len + 1);
	return e;
}

/* Names in a plain directory beside the store and in tmp/ change only
 * through the mount, where the kernel sees every change itself. */
static bool needs_record(uint64_t parent)
{
	struct view_ino v;

	if (!view_ino_decode(parent, &v))
		return false;
	return v.kind != VK_PLAIN && !(v.kind == VK_SUB && v.sub == SUB_TMP);
}

/* ------------------------------------------------- message names, compact
 *
 * A message's name is its BASE, which the index keeps for the life of the
 * message, and its info (flags, keywords, whether new/ shows it with
 * ":2,"), which changes.  So a name the kernel caches for a message needs
 * only the info it had then: 16 bytes in an open-addressing table keyed
 * by inode, instead of ~110 with the name.  The name is built again from
 * the index when a check needs it; a message gone from the index (expunged
 * or moved away) has no BASE there any more: the store records the rows
 * this process removes (a followed Dovecot's expunges too), and the check
 * takes the BASE from there.  A message not found there either (removed
 * by another process, or past the record's bound) has its directory's
 * name dropped from the kernel's cache, which drops every name below it
 * (the kernel asks again for those it needs).  Names that are not a message's own in
 * its own folder (a node the kernel kept across a move) stay in the tree
 * with their name. */

#define KC_TOMB 1u               /* removed slot (never a message's inode) */
#define KC_LOAD_NUM 7            /* at most 7/8 of the slots in use */
#define KC_LOAD_DEN 8
/* The table is KC_SEGS tables (kcache.h) by the hash's top bits. */
#define KC_SEG_BITS KCACHE_SEG_BITS
#define KC_SEGS KCACHE_SEGS
#define KC_SLOTS_MIN 256u    /* a page of slots */
/* 64 x 18,750 = 1,200,000 slots of 16 bytes (18.3 MiB) hold 1,050,000
 * names: every message of a listed folder of a million, with the daemon's
 * memory goal (32 MiB) met; past it a name gets the short timeout. */
#define KC_SLOTS_MAX (1200000u / KC_SEGS)

#define KM_FLAGS 0x1ffu          /* dbox flags (DBOX_FLAG_*) */
#define KM_NEW (1u << 9)         /* in new/ */
#define KM_NEW_INFO (1u << 10)   /* in new/ with ":2,FLAGS" */
#define KM_STALE (1u << 11)      /* invalidated; kept until the forget */
#define KM_SEEN (1u << 12)       /* met in a check's read of its folder */
#define KM_INFO (KM_FLAGS | KM_NEW | KM_NEW_INFO)
#define KM_COUNT_SHIFT 13
#define KM_COUNT_MAX (UINT32_MAX >> KM_COUNT_SHIFT)

struct kc_msg {
	uint64_t ino;            /* 0: free, KC_TOMB: removed */
	uint32_t keywords;
	uint32_t meta;           /* KM_*, the kernel's count above them */
};

static uint32_t km_count(uint32_t meta)
{
	return meta >> KM_COUNT_SHIFT;
}

static uint32_t km_with_count(uint32_t meta, uint32_t n)
{
	return (meta & ((1u << KM_COUNT_SHIFT) - 1)) | n << KM_COUNT_SHIFT;
}

static uint32_t km_hash(uint64_t ino)
{
	return (uint32_t)((ino * 0x9e3779b97f4a7c15ull) >> 32);
}

static struct kc_seg *km_seg(struct kcache_state *kc, uint64_t ino)
{
	return &kc->segs[km_hash(ino) >> (32 - KC_SEG_BITS)];
}

static size_t km_home(uint64_t ino, size_t n)
{
	uint32_t h = km_hash(ino) << KC_SEG_BITS;

	return (size_t)(((uint64_t)h * n) >> 32);
}

/* The slot of ino, or NULL. */
static struct kc_msg *km_find(struct kcache_state *kc, uint64_t ino)
{
	struct kc_seg *g = km_seg(kc, ino);

	if (g->nslots == 0 || ino <= KC_TOMB)
		return NULL;
	for (size_t i = km_home(ino, g->nslots);; i = (i + 1) % g->nslots) {
		if (g->slots[i].ino == ino)
			return &g->slots[i];
		if (g->slots[i].ino == 0)
			return NULL;
	}
}

/* Puts an entry whose inode is not in the table yet into a free or
 * removed slot (there is one: the load is bounded). */
static struct kc_msg *km_place(struct kc_msg *t, size_t n, uint64_t ino)
{
	size_t i = km_home(ino, n);

	while (t[i].ino != 0 && t[i].ino != KC_TOMB)
		i = (i + 1) % n;
	return &t[i];
}

/* A table's slots, zeroed, mapped on their own: from malloc, the freed
 * tables of a growing folder stayed in the worker threads' arenas (37.7
 * instead of 26.4 MiB RSS after listing a million). */
static struct kc_msg *km_alloc(size_t n)
{
	void *p = mmap(NULL, n * sizeof(struct kc_msg),
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void km_free(struct kc_msg *t, size_t n)
{
	if (t != NULL)
		munmap(t, n * sizeof(*t));
}

/* Room for one more entry: rehashed into a table sized for the live
 * ones (which also clears the removed slots).  false: at the bound, or
 * during a check. */
static bool km_room(struct kcache_state *kc, struct kc_seg *g)
{
	size_t n = g->nlive + g->nlive / 2 + 1;
	struct kc_msg *t;

	if ((g->nused + 1) * KC_LOAD_DEN <= g->nslots * KC_LOAD_NUM)
		return true;
	if (kc->checking)
		return false;
	n = n < KC_SLOTS_MIN ? KC_SLOTS_MIN : n > KC_SLOTS_MAX ?
		KC_SLOTS_MAX : n;
	/* near the bound a rehash would win a few slots for a copy of all:
	 * refused until forgets make room */
	if ((g->nlive + n / 16) * KC_LOAD_DEN > n * KC_LOAD_NUM)
		return false;
	t = km_alloc(n);
	if (t == NULL)
		return false;
	for (size_t i = 0; i < g->nslots; i++) {
		if (g->slots[i].ino > KC_TOMB)
			*km_place(t, n, g->slots[i].ino) = g->slots[i];
	}
	km_free(g->slots, g->nslots);
	g->slots = t;
	g->nslots = n;
	g->nused = g->nlive;
	return true;
}

/* Whether name is the one the index gives message ino in parent, given
 * the info it shows (info_r: the info to keep). */
static bool km_info_of(uint64_t parent, const char *name, uint64_t ino,
		       struct kc_msg *info_r)
{
	struct view_ino d, v;
	struct dbox_msg m;
	char again[DBOX_NAME_MAX + 48];
	const char *info;

	if (!view_ino_decode(parent, &d) || !view_ino_decode(ino, &v) ||
	    d.kind != VK_SUB || d.sub == SUB_TMP || v.kind != VK_MSG ||
	    v.box != d.box)
		return false;
	memset(&m, 0, sizeof(m));
	view_name_split(name, m.base, sizeof(m.base), &info);
	m.in_new = d.sub == SUB_NEW;
	m.new_info = info != NULL;
	if (info != NULL &&
	    !dbox_maildir_info_parse(info, true, &m.flags, &m.keywords))
		return false;
	if ((m.flags & ~KM_FLAGS) != 0)
		return false;
	view_msg_name(&m, again, sizeof(again));
	if (strcmp(again, name) != 0)
		return false;
	info_r->ino = ino;
	info_r->keywords = m.keywords;
	info_r->meta = m.flags | (m.in_new ? KM_NEW : 0) |
		(m.new_info && m.in_new ? KM_NEW_INFO : 0);
	return true;
}

/* Under the lock: the kernel has one more lookup of the message's name
 * described by k (its count carried from the tree's entry: carried). */
static bool km_record(struct kcache_state *kc, const struct kc_msg *k,
		      uint32_t carried)
{
	struct kc_msg *s = km_find(kc, k->ino);
	struct kc_seg *g = km_seg(kc, k->ino);
	uint32_t n;

	DBOXFS_ASSERT_LOCKED(&kc->lock);
	if (s == NULL) {
		if (!km_room(kc, g))
			return false;
		if (carried >= KM_COUNT_MAX)
			carried = KM_COUNT_MAX - 1;   /* kept for good */
		s = km_place(g->slots, g->nslots, k->ino);
		if (s->ino == 0)
			g->nused++;
		g->nlive++;
		*s = (struct kc_msg){ k->ino, k->keywords,
				      km_with_count(k->meta, carried) };
	}
	s->keywords = k->keywords;
	n = km_count(s->meta);
	/* a count that would wrap keeps the entry for good, which is safe
	 * (it is only checked, never trusted) */
	if (n < KM_COUNT_MAX)
		n++;
	s->meta = km_with_count(k->meta, n);
	return true;
}

static void km_remove(struct kcache_state *kc, struct kc_msg *s)
{
	km_seg(kc, s->ino)->nlive--;
	s->ino = KC_TOMB;
}

/* Under the lock: the tree's entry of ino, or NULL. */
static struct kc_entry *tree_find(struct kcache_state *kc, uint64_t ino)
{
	struct kc_entry key = { .ino = ino }, **found;

	DBOXFS_ASSERT_LOCKED(&kc->lock);
	found = tfind(&key, &kc->root, cmp_ino);
	return found != NULL ? *found : NULL;
}

/* Under the lock: the entry of ino with its name set to name (a new one
 * with carried lookups besides this one). */
static bool tree_record(struct kcache_state *kc, uint64_t parent,
			const char *name, uint64_t ino, uint32_t carried)
{
	struct kc_entry key = { .ino = ino }, **found, *e;

	DBOXFS_ASSERT_LOCKED(&kc->lock);
	found = tfind(&key, &kc->root, cmp_ino);
	if (found != NULL) {
		e = *found;
		if (e->parent != parent || strcmp(e->name, name) != 0) {
			struct kc_entry *renamed = entry_new(parent, name,
							     ino);

			if (renamed == NULL)
				return false;
			renamed->nlookup = e->nlookup;
			/* the tree orders by inode only: the node may take
			 * the new entry in place */
			*found = renamed;
			free(e);
			e = renamed;
		}
		e->stale = false;
		/* a count that would wrap keeps the entry for good, which
		 * is safe (it is only checked, never trusted) */
		if (e->nlookup < UINT32_MAX)
			e->nlookup++;
		return true;
	}
	if (kc->count >= KCACHE_MAX)
		return false;
	e = entry_new(parent, name, ino);
	if (e == NULL)
		return false;
	e->nlookup += carried;
	if (tsearch(e, &kc->root, cmp_ino) == NULL) {
		entry_free(e);
		return false;
	}
	kc->count++;
	return true;
}

static void drop_push(struct kcache_state *kc, uint64_t parent,
		      const char *name);
static uint64_t km_parent(const struct kc_msg *s);

/* Under the lock: the kernel looks up name, the message's name now (k),
 * while its recorded name shows other flags: a rename by another program
 * (Dovecot, followed) that the kernel met before the follower's check,
 * which then finds the record equal to the row and would leave the old
 * name in the kernel's cache for hours.  The old name (the BASE of this
 * one, the recorded info) is dropped by the follower's next pass. */
static void km_drop_replaced(struct kcache_state *kc, const struct kc_msg *k,
			     const char *name)
{
	const struct kc_msg *s = km_find(kc, k->ino);
	char old[DBOX_NAME_MAX + 48];
	struct dbox_msg m;
	const char *info;

	if (s == NULL || (s->meta & KM_STALE) ||
	    ((s->meta & KM_INFO) == (k->meta & KM_INFO) &&
	     s->keywords == k->keywords))
		return;
	memset(&m, 0, sizeof(m));
	view_name_split(name, m.base, sizeof(m.base), &info);
	m.flags = s->meta & KM_FLAGS;
	m.keywords = s->keywords;
	m.in_new = (s->meta & KM_NEW) != 0;
	m.new_info = (s->meta & KM_NEW_INFO) != 0;
	view_msg_name(&m, old, sizeof(old));
	drop_push(kc, km_parent(s), old);
}

/* Under the lock: a message's own name in the compact table, any other
 * in the tree; the kernel's count follows the inode between them. */
static bool record(struct kcache_state *kc, uint64_t parent,
		   const char *name, uint64_t ino)
{
	struct kc_msg k;
	struct kc_msg *s;
	struct kc_entry *e = tree_find(kc, ino);
	uint32_t carried;

	DBOXFS_ASSERT_LOCKED(&kc->lock);
	if (km_info_of(parent, name, ino, &k)) {
		km_drop_replaced(kc, &k, name);
		carried = e != NULL ? e->nlookup : 0;
		if (!km_record(kc, &k, carried))
			return e != NULL &&
				tree_record(kc, parent, name, ino, 0);
		if (e != NULL) {
			tdelete(e, &kc->root, cmp_ino);
			entry_free(e);
			kc->count--;
		}
		return true;
	}
	s = km_find(kc, ino);
	if (s == NULL)
		return tree_record(kc, parent, name, ino, 0);
	if (kc->count >= KCACHE_MAX) {
		/* the old name stays recorded, with this lookup counted */
		if (km_count(s->meta) < KM_COUNT_MAX)
			s->meta = km_with_count(s->meta,
						km_count(s->meta) + 1);
		return false;
	}
	carried = km_count(s->meta);
	if (carried == KM_COUNT_MAX)
		carried = UINT32_MAX - 1;   /* kept for good there too */
	if (!tree_record(kc, parent, name, ino, carried))
		return false;
	km_remove(kc, s);
	return true;
}

double kcache_add(struct dboxfs *fs, uint64_t parent, const char *name,
		  uint64_t ino)
{
	struct kcache_state *kc = &fs->kcache;
	bool ok;

	if (!needs_record(parent))
		return fs->cache_timeout;
	pthread_mutex_lock(&kc->lock);
	ok = record(kc, parent, name, ino);
	pthread_mutex_unlock(&kc->lock);
	return ok ? fs->cache_timeout : fs->entry_timeout;
}

/* Under the lock: whether ino was in the compact table. */
static bool km_forget(struct kcache_state *kc, uint64_t ino, uint64_t n)
{
	struct kc_msg *s = km_find(kc, ino);
	uint32_t c;

	DBOXFS_ASSERT_LOCKED(&kc->lock);
	if (s == NULL)
		return false;
	c = km_count(s->meta);
	if (c < KM_COUNT_MAX) {
		c = n >= c ? 0 : c - (uint32_t)n;
		s->meta = km_with_count(s->meta, c);
	}
	if (c == 0)
		km_remove(kc, s);
	return true;
}

void kcache_forget(struct dboxfs *fs, uint64_t ino, uint64_t n)
{
	struct kcache_state *kc = &fs->kcache;
	struct kc_entry key = { .ino = ino }, **found, *e = NULL;

	pthread_mutex_lock(&kc->lock);
	found = km_forget(kc, ino, n) ? NULL :
		tfind(&key, &kc->root, cmp_ino);
	if (found != NULL) {
		e = *found;
		if (e->nlookup < UINT32_MAX)
			e->nlookup = n >= e->nlookup ? 0 :
				e->nlookup - (uint32_t)n;
		if (e->nlookup == 0) {
			tdelete(e, &kc->root, cmp_ino);
			kc->count--;
		} else {
			e = NULL;
		}
	}
	pthread_mutex_unlock(&kc->lock);
	if (e != NULL)
		entry_free(e);
}

/* ------------------------------------------------------------- checks */

struct collect {
	const int64_t *boxes;
	int n;
	struct kc_item *items;
	size_t count, cap;
	bool failed;
};

/* Whether a name in this directory can have changed: folder-level
 * directories always (they are few), cur/ and new/ of changed folders. */
static bool in_scope(const struct collect *c, uint64_t parent)
{
	struct view_ino v;

	if (!view_ino_decode(parent, &v) || v.kind == VK_PLAIN)
		return false;
	if (v.kind != VK_SUB || c->n < 0)
		return true;
	for (int i = 0; i < c->n; i++) {
		if (c->boxes[i] == v.box)
			return true;
	}
	return false;
}

/* twalk_r's action: ctx is the struct collect */
static void collect_one(const void *node, VISIT which, void *ctx)
{
	const struct kc_entry *e = *(struct kc_entry *const *)node;
	struct collect *c = ctx;
	struct kc_item *grown;

	if ((which != postorder && which != leaf) || c->failed || e->stale ||
	    !in_scope(c, e->parent))
		return;
	if (c->count == c->cap) {
		c->cap = c->cap == 0 ? 256 : c->cap * 2;
		grown = realloc(c->items, c->cap * sizeof(*grown));
		if (grown == NULL) {
			c->failed = true;
			return;
		}
		c->items = grown;
	}
	c->items[c->count] = (struct kc_item){ e->ino, e->parent,
					       strdup(e->name) };
	if (c->items[c->count].name == NULL)
		c->failed = true;
	else
		c->count++;
}

static void mark_stale(struct kcache_state *kc, const struct kc_item *it)
{
	struct kc_entry key = { .ino = it->ino }, **found;

	pthread_mutex_lock(&kc->lock);
	found = tfind(&key, &kc->root, cmp_ino);
	if (found != NULL && (*found)->parent == it->parent &&
	    strcmp((*found)->name, it->name) == 0)
		(*found)->stale = true;
	pthread_mutex_unlock(&kc->lock);
}

/* Whether the name leads elsewhere now (a plain file that is still no
 * message or folder is the backing tree's, which only the mount
 * changes). */
static bool is_stale(struct dboxfs *fs, const struct kc_item *it)
{
	struct view_ino dir;
	struct stat st;
	int ret;

	if (!view_ino_decode(it->parent, &dir))
		return false;
	ret = attr_resolve_view(fs, &dir, it->name, &st);
	if (ret == 0)
		return st.st_ino != it->ino;
	return ret == -ENOENT && (it->ino >> 60) != VK_PLAIN;
}

static void invalidate(struct dboxfs *fs, const struct kc_item *it)
{
	struct stat st;

	fuse_lowlevel_notify_inval_entry(fs->se, it->parent, it->name,
					 strlen(it->name));
	/* gone altogether (not only renamed): its attributes and cached
	 * pages go too */
	if (attr_get(fs, it->ino, &st) == -ENOENT)
		fuse_lowlevel_notify_inval_inode(fs->se, it->ino, 0, 0);
	mark_stale(&fs->kcache, it);
}

/* ------------------------------------------- checks of message names */

#define KC_BATCH 512     /* entries copied out of the table at a time */

static uint64_t km_parent(const struct kc_msg *s)
{
	return view_ino_sub((int64_t)(s->ino >> 32 & VIEW_MAILBOX_MAX),
			    s->meta & KM_NEW ? SUB_NEW : SUB_CUR);
}

static void km_mark_stale(struct kcache_state *kc, const struct kc_msg *k)
{
	struct kc_msg *s;

	pthread_mutex_lock(&kc->lock);
	s = km_find(kc, k->ino);
	if (s != NULL && s->keywords == k->keywords &&
	    (s->meta & KM_INFO) == (k->meta & KM_INFO))
		s->meta |= KM_STALE;
	pthread_mutex_unlock(&kc->lock);
}

/* A message gone from the index: its name cannot be built any more, so
 * the name of its directory (cur/ or new/) goes from the kernel's cache,
 * and with it every name below it. */
static void km_drop_dir(struct dboxfs *fs, uint64_t dir)
{
	struct kc_entry *e;
	uint64_t parent = 0;
	char *name = NULL;

	pthread_mutex_lock(&fs->kcache.lock);
	e = tree_find(&fs->kcache, dir);
	if (e != NULL) {
		parent = e->parent;
		name = strdup(e->name);
	}
	pthread_mutex_unlock(&fs->kcache.lock);
	if (name == NULL)
		return;
	fuse_lowlevel_notify_inval_entry(fs->se, parent, name,
					 strlen(name));
	free(name);
}

static int cmp_removed(const void *a, const void *b)
{
	const struct dbox_removed *x = a, *y = b;

	if (x->mailbox_id != y->mailbox_id)
		return x->mailbox_id < y->mailbox_id ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Invalidates the name the message k had with every BASE the store
 * recorded for its row as it went (one, unless a uid came back);
 * whether there was one. */
static bool km_drop_removed(struct dboxfs *fs, const struct kc_msg *k)
{
	struct kcache_state *kc = &fs->kcache;
	struct dbox_removed key = {
		.mailbox_id = (int64_t)(k->ino >> 32 & VIEW_MAILBOX_MAX),
		.uid = (uint32_t)k->ino };
	const struct dbox_removed *r;
	char name[DBOX_NAME_MAX + 48];
	struct dbox_msg m;
	size_t at;

	if (kc->nremoved == 0)
		return false;
	r = bsearch(&key, kc->removed, kc->nremoved, sizeof(key),
		    cmp_removed);
	if (r == NULL)
		return false;
	at = (size_t)(r - kc->removed);
	while (at > 0 && cmp_removed(&kc->removed[at - 1], &key) == 0)
		at--;
	for (; at < kc->nremoved && cmp_removed(&kc->removed[at], &key) == 0;
	     at++) {
		memset(&m, 0, sizeof(m));
		memcpy(m.base, kc->removed[at].base, sizeof(m.base));
		/* the info of the name the kernel has, not of the row */
		m.flags = k->meta & KM_FLAGS;
		m.keywords = k->keywords;
		m.in_new = (k->meta & KM_NEW) != 0;
		m.new_info = (k->meta & KM_NEW_INFO) != 0;
		view_msg_name(&m, name, sizeof(name));
		fuse_lowlevel_notify_inval_entry(fs->se, km_parent(k), name,
						 strlen(name));
	}
	return true;
}

/* The message gone from the index: its name goes, or if the store did
 * not record it, the name of its directory (*dropped: the directory
 * already dropped in this check). */
static void km_check_gone(struct dboxfs *fs, const struct kc_msg *k,
			  uint64_t *dropped)
{
	uint64_t parent = km_parent(k);

	if (!km_drop_removed(fs, k)) {
		if (*dropped != parent)
			km_drop_dir(fs, parent);
		*dropped = parent;
	}
	fuse_lowlevel_notify_inval_inode(fs->se, k->ino, 0, 0);
	km_mark_stale(&fs->kcache, k);
}

/* Whether the recorded name of the message m (the index's row now) was
 * invalidated. */
static bool km_check_found(struct dboxfs *fs, const struct kc_msg *k,
			   struct dbox_msg *m)
{
	char name[DBOX_NAME_MAX + 48], now[DBOX_NAME_MAX + 48];
	uint64_t parent = km_parent(k);
	bool in_new;

	/* the name it has now is the recorded one, or that leads elsewhere
	 * (names are unique in a directory) */
	view_msg_name(m, now, sizeof(now));
	in_new = m->in_new;
	m->flags = k->meta & KM_FLAGS;
	m->keywords = k->keywords;
	m->in_new = (k->meta & KM_NEW) != 0;
	m->new_info = (k->meta & KM_NEW_INFO) != 0;
	view_msg_name(m, name, sizeof(name));
	if (in_new == m->in_new && strcmp(now, name) == 0)
		return false;
	fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
	km_mark_stale(&fs->kcache, k);
	return true;
}

/* Whether the message's recorded name was invalidated, by one query of
 * its row; *dropped as for km_check_gone. */
static bool km_check_one(struct dboxfs *fs, const struct kc_msg *k,
			 uint64_t *dropped)
{
	struct dbox_msg m;
	int ret = dbox_msg_get(fs->store,
			       (int64_t)(k->ino >> 32 & VIEW_MAILBOX_MAX),
			       (uint32_t)k->ino, &m, NULL);

	if (ret == -ENOENT) {
		km_check_gone(fs, k, dropped);
		return true;
	}
	return ret == 0 && km_check_found(fs, k, &m);
}

/* ------------------------------------ checks of a folder's rows at once
 *
 * A listed folder has a recorded name for (nearly) every message, and a
 * change in it checked each of them with a query of its own: a folder's
 * rows read in pages check them for a fraction of that (measured in
 * bench/RESULTS.md, "Scale").  Each name met there is marked KM_SEEN;
 * the names not met (their message gone, or recorded meanwhile) are
 * checked one by one after, as before. */

#define KC_WALK_MIN 256      /* fewer recorded names: a query each */
#define KC_WALK_SHARE 8      /* ... or fewer than 1/8 of the folder's uids */
#define KC_PAGE 1024         /* rows a query */

struct km_walk {
	struct dboxfs *fs;
	uint32_t last_uid;
	int invalidated;
};

static int km_walk_row(void *ctx, const struct dbox_msg *row)
{
	struct km_walk *w = ctx;
	struct kcache_state *kc = &w->fs->kcache;
	struct dbox_msg m = *row;
	struct kc_msg k = { 0 }, *s;

	w->last_uid = m.uid;
	pthread_mutex_lock(&kc->lock);
	s = km_find(kc, view_ino_msg(m.mailbox_id, m.uid));
	if (s != NULL) {
		s->meta |= KM_SEEN;
		k = *s;
	}
	pthread_mutex_unlock(&kc->lock);
	if (s != NULL && !(k.meta & KM_STALE))
		w->invalidated += km_check_found(w->fs, &k, &m);
	return 0;
}

/* Checks the recorded names of box's messages against its rows; false if
 * it did not (too few names for it). */
static bool km_walk_box(struct dboxfs *fs, int64_t box, size_t recorded,
			int *invalidated)
{
	struct km_walk w = { fs, 0, 0 };
	struct dbox_mailbox mb;
	int got;

	if (recorded < KC_WALK_MIN ||
	    dbox_mailbox_get(fs->store, box, &mb, NULL) < 0 ||
	    recorded * KC_WALK_SHARE < mb.next_uid)
		return false;
	do {
		got = dbox_msg_list(fs->store, box, w.last_uid, -1, KC_PAGE,
				    km_walk_row, &w, NULL);
	} while (got == KC_PAGE);
	/* after an error the names not met are checked one by one */
	*invalidated += w.invalidated;
	return true;
}

/* Recorded names (not stale) of each of c's folders (counts[i] for
 * c->boxes[i]). */
static void km_count_boxes(struct kcache_state *kc, const struct collect *c,
			   size_t *counts)
{
	for (unsigned seg = 0; seg < KC_SEGS; seg++) {
		pthread_mutex_lock(&kc->lock);
		for (size_t at = 0; at < kc->segs[seg].nslots; at++) {
			const struct kc_msg *s = &kc->segs[seg].slots[at];
			int64_t box = (int64_t)(s->ino >> 32 &
						VIEW_MAILBOX_MAX);

			if (s->ino <= KC_TOMB || (s->meta & KM_STALE))
				continue;
			for (int i = 0; i < c->n; i++)
				counts[i] += c->boxes[i] == box;
		}
		pthread_mutex_unlock(&kc->lock);
	}
}

/* Whether a slot still needs a query of its own: in scope, not stale,
 * and not met in its folder's rows.  Clears KM_SEEN. */
static bool km_needs_one(struct kc_msg *s, const struct collect *c,
			 const bool *walked)
{
	bool seen = (s->meta & KM_SEEN) != 0;
	int64_t box = (int64_t)(s->ino >> 32 & VIEW_MAILBOX_MAX);

	s->meta &= ~KM_SEEN;
	if (s->ino <= KC_TOMB || (s->meta & KM_STALE) ||
	    !in_scope(c, km_parent(s)))
		return false;
	if (seen && walked != NULL) {
		for (int i = 0; i < c->n; i++) {
			if (c->boxes[i] == box && walked[i])
				return false;
		}
	}
	return true;
}

/* The compact table, a batch at a time (the lock is not held while the
 * index is read); no rehash meanwhile, so no entry moves.  walked[i]:
 * c->boxes[i]'s names met in its rows are checked already. */
static int km_check_rest(struct dboxfs *fs, const struct collect *c,
			 const bool *walked)
{
	struct kcache_state *kc = &fs->kcache;
	struct kc_msg batch[KC_BATCH];
	uint64_t dropped = 0;
	size_t seg = 0, at = 0, got;
	bool more;
	int n = 0;

	do {
		got = 0;
		pthread_mutex_lock(&kc->lock);
		for (; seg < KC_SEGS && got < KC_BATCH; seg++, at = 0) {
			struct kc_seg *g = &kc->segs[seg];

			for (; at < g->nslots && got < KC_BATCH; at++) {
				if (km_needs_one(&g->slots[at], c, walked))
					batch[got++] = g->slots[at];
			}
			if (at < g->nslots)
				break;   /* the batch is full */
		}
		more = seg < KC_SEGS;
		pthread_mutex_unlock(&kc->lock);
		for (size_t i = 0; i < got; i++)
			n += km_check_one(fs, &batch[i], &dropped);
	} while (more);
	return n;
}

static int km_check(struct dboxfs *fs, const struct collect *c)
{
	struct kcache_state *kc = &fs->kcache;
	size_t *counts = c->n > 0 ? calloc((size_t)c->n, sizeof(*counts)) :
		NULL;
	bool *walked = c->n > 0 ? calloc((size_t)c->n, sizeof(*walked)) :
		NULL;
	int n = 0;

	pthread_mutex_lock(&kc->lock);
	kc->checking = true;
	pthread_mutex_unlock(&kc->lock);
	if (counts != NULL && walked != NULL) {
		km_count_boxes(kc, c, counts);
		for (int i = 0; i < c->n; i++)
			walked[i] = km_walk_box(fs, c->boxes[i], counts[i],
						&n);
	}
	n += km_check_rest(fs, c, counts != NULL ? walked : NULL);
	pthread_mutex_lock(&kc->lock);
	kc->checking = false;
	pthread_mutex_unlock(&kc->lock);
	free(counts);
	free(walked);
	return n;
}

/* The rows the store removed before this check (read before the index
 * is, so that a message the check finds gone was recorded by then, if
 * by this process). */
static void take_removed(struct dboxfs *fs)
{
	struct kcache_state *kc = &fs->kcache;
	int n = dbox_store_take_removed(fs->store, &kc->removed);

	kc->nremoved = n > 0 ? (size_t)n : 0;
	if (kc->nremoved > 1)
		qsort(kc->removed, kc->nremoved, sizeof(*kc->removed),
		      cmp_removed);
}

static void free_removed(struct kcache_state *kc)
{
	free(kc->removed);
	kc->removed = NULL;
	kc->nremoved = 0;
}

int kcache_check(struct dboxfs *fs, const int64_t *boxes, int n)
{
	struct collect c = { .boxes = boxes, .n = n };
	int dropped = 0, ret;

	take_removed(fs);

	pthread_mutex_lock(&fs->kcache.lock);
	twalk_r(fs->kcache.root, collect_one, &c);
	pthread_mutex_unlock(&fs->kcache.lock);
	for (size_t i = 0; i < c.count; i++) {
		if (is_stale(fs, &c.items[i])) {
			invalidate(fs, &c.items[i]);
			dropped++;
		}
		free(c.items[i].name);
	}
	free(c.items);
	ret = dropped + km_check(fs, &c);
	free_removed(&fs->kcache);
	return ret;
}

/* Under the lock: name in parent queued for kcache_drop_pending. */
static void drop_push(struct kcache_state *kc, uint64_t parent,
		      const char *name)
{
	size_t len = strlen(name);
	struct kc_drop *d = malloc(sizeof(*d) + len + 1);

	DBOXFS_ASSERT_LOCKED(&kc->lock);
	if (d == NULL)
		return;  /* it stays cached (a moved node: the ring answers) */
	d->parent = parent;
	memcpy(d->name, name, len + 1);
	d->next = kc->drops;
	kc->drops = d;
}

void kcache_drop_later(struct dboxfs *fs, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&fs->kcache.lock);
	drop_push(&fs->kcache, parent, name);
	pthread_mutex_unlock(&fs->kcache.lock);
}

void kcache_drop_pending(struct dboxfs *fs)
{
	struct kc_drop *d, *next;

	pthread_mutex_lock(&fs->kcache.lock);
	d = fs->kcache.drops;
	fs->kcache.drops = NULL;
	pthread_mutex_unlock(&fs->kcache.lock);
	for (; d != NULL; d = next) {
		next = d->next;
		fuse_lowlevel_notify_inval_entry(fs->se, d->parent, d->name,
						 strlen(d->name));
		free(d);
	}
}

void kcache_free_all(struct dboxfs *fs)
{
	struct kcache_state *kc = &fs->kcache;
	struct kc_drop *d, *next;

	pthread_mutex_lock(&kc->lock);
	for (d = kc->drops; d != NULL; d = next) {
		next = d->next;
		free(d);
	}
	kc->drops = NULL;
	free_removed(kc);
	tdestroy(kc->root, entry_free);
	kc->root = NULL;
	kc->count = 0;
	for (unsigned i = 0; i < KC_SEGS; i++) {
		km_free(kc->segs[i].slots, kc->segs[i].nslots);
		kc->segs[i] = (struct kc_seg){ NULL, 0, 0, 0 };
	}
	pthread_mutex_unlock(&kc->lock);
}
