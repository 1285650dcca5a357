/* kcache.c - the names the kernel caches (see kcache.h). */
#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "dboxfs.h"
#include "kcache.h"

/* The daemon's memory for names the kernel caches: ~110 bytes each
 * (entry with its name, ~50 bytes for a message, and the tree's node),
 * so 2^16 names take ~7 MiB.  A kernel keeps every inode of a listed
 * folder while memory lasts (a million for a folder of a million), and
 * the daemon must stay small however large a folder is: past this a name
 * gets the short timeout, and the kernel asks again when it needs it. */
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

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *root;
static size_t count;
static struct kc_drop *drops;   /* under the lock */

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

/* Under the lock: the entry of ino with its name set to name. */
static bool record(uint64_t parent, const char *name, uint64_t ino)
{
	struct kc_entry key = { .ino = ino }, **found, *e;

	found = tfind(&key, &root, cmp_ino);
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
	if (count >= KCACHE_MAX)
		return false;
	e = entry_new(parent, name, ino);
	if (e == NULL)
		return false;
	if (tsearch(e, &root, cmp_ino) == NULL) {
		entry_free(e);
		return false;
	}
	count++;
	return true;
}

double kcache_add(uint64_t parent, const char *name, uint64_t ino)
{
	bool ok;

	if (!needs_record(parent))
		return dboxfs.cache_timeout;
	pthread_mutex_lock(&lock);
	ok = record(parent, name, ino);
	pthread_mutex_unlock(&lock);
	return ok ? dboxfs.cache_timeout : dboxfs.entry_timeout;
}

void kcache_forget(uint64_t ino, uint64_t n)
{
	struct kc_entry key = { .ino = ino }, **found, *e = NULL;

	pthread_mutex_lock(&lock);
	found = tfind(&key, &root, cmp_ino);
	if (found != NULL) {
		e = *found;
		if (e->nlookup < UINT32_MAX)
			e->nlookup = n >= e->nlookup ? 0 :
				e->nlookup - (uint32_t)n;
		if (e->nlookup == 0) {
			tdelete(e, &root, cmp_ino);
			count--;
		} else {
			e = NULL;
		}
	}
	pthread_mutex_unlock(&lock);
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

/* twalk has no context argument */
static struct collect *collecting;

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

static void collect_one(const void *node, VISIT which, int depth)
{
	const struct kc_entry *e = *(struct kc_entry *const *)node;
	struct collect *c = collecting;
	struct kc_item *grown;

	(void)depth;
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

static void mark_stale(const struct kc_item *it)
{
	struct kc_entry key = { .ino = it->ino }, **found;

	pthread_mutex_lock(&lock);
	found = tfind(&key, &root, cmp_ino);
	if (found != NULL && (*found)->parent == it->parent &&
	    strcmp((*found)->name, it->name) == 0)
		(*found)->stale = true;
	pthread_mutex_unlock(&lock);
}

/* Whether the name leads elsewhere now (a plain file that is still no
 * message or folder is the backing tree's, which only the mount
 * changes). */
static bool is_stale(const struct kc_item *it)
{
	struct view_ino dir;
	struct stat st;
	int ret;

	if (!view_ino_decode(it->parent, &dir))
		return false;
	ret = attr_resolve_view(&dboxfs, &dir, it->name, &st);
	if (ret == 0)
		return st.st_ino != it->ino;
	return ret == -ENOENT && (it->ino >> 60) != VK_PLAIN;
}

static void invalidate(const struct kc_item *it)
{
	struct stat st;

	fuse_lowlevel_notify_inval_entry(dboxfs.se, it->parent, it->name,
					 strlen(it->name));
	/* gone altogether (not only renamed): its attributes and cached
	 * pages go too */
	if (attr_get(&dboxfs, it->ino, &st) == -ENOENT)
		fuse_lowlevel_notify_inval_inode(dboxfs.se, it->ino, 0, 0);
	mark_stale(it);
}

int kcache_check(const int64_t *boxes, int n)
{
	struct collect c = { .boxes = boxes, .n = n };
	int dropped = 0;

	pthread_mutex_lock(&lock);
	collecting = &c;
	twalk(root, collect_one);
	collecting = NULL;
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < c.count; i++) {
		if (is_stale(&c.items[i])) {
			invalidate(&c.items[i]);
			dropped++;
		}
		free(c.items[i].name);
	}
	free(c.items);
	return dropped;
}

void kcache_drop_later(uint64_t parent, const char *name)
{
	size_t len = strlen(name);
	struct kc_drop *d = malloc(sizeof(*d) + len + 1);

	if (d == NULL)
		return;  /* the moved ring still answers for a while */
	d->parent = parent;
	memcpy(d->name, name, len + 1);
	pthread_mutex_lock(&lock);
	d->next = drops;
	drops = d;
	pthread_mutex_unlock(&lock);
}

void kcache_drop_pending(void)
{
	struct kc_drop *d, *next;

	pthread_mutex_lock(&lock);
	d = drops;
	drops = NULL;
	pthread_mutex_unlock(&lock);
	for (; d != NULL; d = next) {
		next = d->next;
		fuse_lowlevel_notify_inval_entry(dboxfs.se, d->parent, d->name,
						 strlen(d->name));
		free(d);
	}
}

void kcache_free_all(void)
{
	struct kc_drop *d, *next;

	pthread_mutex_lock(&lock);
	for (d = drops; d != NULL; d = next) {
		next = d->next;
		free(d);
	}
	drops = NULL;
	tdestroy(root, entry_free);
	root = NULL;
	count = 0;
	pthread_mutex_unlock(&lock);
}
