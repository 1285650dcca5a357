/* kcache.c - the names the kernel caches (see kcache.h): the tree of
 * names other than a message's own, and recording and forgetting
 * lookups; the compact table of messages' names is in kcache-msg.c,
 * the check after a change in kcache-check.c. */
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "dboxfs.h"
#include "kcache.h"
#include "kcache-private.h"
#include "node.h"

/* The daemon's memory for names the kernel caches other than a message's
 * own (folders, cur/ new/, plain files, a node the kernel kept across a
 * move): ~110 bytes each (entry with its name and the tree's node), so
 * 2^16 names take ~7 MiB.  Messages' names are in the compact table of
 * kcache-msg.c (16 bytes each).  A kernel keeps every inode of a listed
 * folder while memory lasts, and the daemon must stay small however large
 * a folder is: past a bound a name gets the short timeout, and the kernel
 * asks again when it needs it. */
#define KCACHE_MAX (1u << 16)

/* a name to drop from the kernel's cache (kcache_drop_later) */
struct kc_drop {
	struct kc_drop *next;
	uint64_t parent;
	char name[];
};

int kcache_cmp_ino(const void *a, const void *b)
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
	return node_of(&v)->followed(&v);
}

/* Under the lock: the tree's entry of ino, or NULL. */
struct kc_entry *kcache_tree_find(struct kcache_state *kc, uint64_t ino)
{
	struct kc_entry key = { .ino = ino }, **found;

	DBOXFS_ASSERT_LOCKED(&kc->lock);
	found = tfind(&key, &kc->root, kcache_cmp_ino);
	return found != NULL ? *found : NULL;
}

/* Under the lock: the entry of ino with its name set to name (a new one
 * with carried lookups besides this one). */
static bool tree_record(struct kcache_state *kc, uint64_t parent,
			const char *name, uint64_t ino, uint32_t carried)
{
	struct kc_entry key = { .ino = ino }, **found, *e;

	DBOXFS_ASSERT_LOCKED(&kc->lock);
	found = tfind(&key, &kc->root, kcache_cmp_ino);
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
	if (tsearch(e, &kc->root, kcache_cmp_ino) == NULL) {
		entry_free(e);
		return false;
	}
	kc->count++;
	return true;
}

static void drop_push(struct kcache_state *kc, uint64_t parent,
		      const char *name);

/* Under the lock: the kernel looks up name, the message's name now (k),
 * while its recorded name shows other flags: a rename by another program
 * (Dovecot, followed) that the kernel met before the follower's check,
 * which then finds the record equal to the row and would leave the old
 * name in the kernel's cache for hours.  The old name (the BASE of this
 * one, the recorded info) is dropped by the follower's next pass. */
static void drop_replaced(struct kcache_state *kc, const struct kc_msg *k,
			  const char *name)
{
	const struct kc_msg *s = kcache_msg_find(kc, k->ino);
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
	drop_push(kc, kcache_msg_parent(s), old);
}

/* Under the lock: a message's own name in the compact table, any other
 * in the tree; the kernel's count follows the inode between them. */
static bool record(struct kcache_state *kc, uint64_t parent,
		   const char *name, uint64_t ino)
{
	struct kc_msg k;
	struct kc_msg *s;
	struct kc_entry *e = kcache_tree_find(kc, ino);
	uint32_t carried;

	DBOXFS_ASSERT_LOCKED(&kc->lock);
	if (kcache_msg_info_of(parent, name, ino, &k)) {
		drop_replaced(kc, &k, name);
		carried = e != NULL ? e->nlookup : 0;
		if (!kcache_msg_record(kc, &k, carried))
			return e != NULL &&
				tree_record(kc, parent, name, ino, 0);
		if (e != NULL) {
			tdelete(e, &kc->root, kcache_cmp_ino);
			entry_free(e);
			kc->count--;
		}
		return true;
	}
	s = kcache_msg_find(kc, ino);
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
	kcache_msg_remove(kc, s);
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

void kcache_forget(struct dboxfs *fs, uint64_t ino, uint64_t n)
{
	struct kcache_state *kc = &fs->kcache;
	struct kc_entry key = { .ino = ino }, **found, *e = NULL;

	pthread_mutex_lock(&kc->lock);
	found = kcache_msg_forget(kc, ino, n) ? NULL :
		tfind(&key, &kc->root, kcache_cmp_ino);
	if (found != NULL) {
		e = *found;
		if (e->nlookup < UINT32_MAX)
			e->nlookup = n >= e->nlookup ? 0 :
				e->nlookup - (uint32_t)n;
		if (e->nlookup == 0) {
			tdelete(e, &kc->root, kcache_cmp_ino);
			kc->count--;
		} else {
			e = NULL;
		}
	}
	pthread_mutex_unlock(&kc->lock);
	if (e != NULL)
		entry_free(e);
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
	kcache_free_removed(kc);
	tdestroy(kc->root, entry_free);
	kc->root = NULL;
	kc->count = 0;
	for (unsigned i = 0; i < KC_SEGS; i++) {
		kcache_msg_free(kc->segs[i].slots, kc->segs[i].nslots);
		kc->segs[i] = (struct kc_seg){ NULL, 0, 0, 0 };
	}
	pthread_mutex_unlock(&kc->lock);
}
