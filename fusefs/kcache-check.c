/* kcache-check.c - the check of the names the kernel caches after a
 * change (kcache_check, see kcache.h): the tree's names looked up again,
 * messages' names against their rows, and the invalidations. */
#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "dboxfs.h"
#include "kcache.h"
#include "kcache-private.h"
#include "node.h"

/* a name to look up again, copied out of the table */
struct kc_item {
	uint64_t ino, parent;
	char *name;
};

/* ------------------------------------------------------------- checks */

struct collect {
	const int64_t *boxes;
	int n;
	struct kc_item *items;
	size_t count, cap;
	bool failed;
};

/* Whether a name in this directory can have changed: its kind says
 * (node.h: in_scope). */
static bool in_scope(const struct collect *c, uint64_t parent)
{
	struct view_ino v;

	return view_ino_decode(parent, &v) &&
	       node_of(&v)->in_scope(&v, c->boxes, c->n);
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
	found = tfind(&key, &kc->root, kcache_cmp_ino);
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

static void km_mark_stale(struct kcache_state *kc, const struct kc_msg *k)
{
	struct kc_msg *s;

	pthread_mutex_lock(&kc->lock);
	s = kcache_msg_find(kc, k->ino);
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
	e = kcache_tree_find(&fs->kcache, dir);
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
		fuse_lowlevel_notify_inval_entry(fs->se, kcache_msg_parent(k), name,
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
	uint64_t parent = kcache_msg_parent(k);

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
	uint64_t parent = kcache_msg_parent(k);
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
	s = kcache_msg_find(kc, view_ino_msg(m.mailbox_id, m.uid));
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
	    !in_scope(c, kcache_msg_parent(s)))
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

void kcache_free_removed(struct kcache_state *kc)
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
	kcache_free_removed(&fs->kcache);
	return ret;
}
