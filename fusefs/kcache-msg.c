/* kcache-msg.c - the compact table of the names the kernel caches for
 * messages (see kcache-private.h): 16 bytes a name, in segments each
 * rehashed on its own. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dboxfs.h"
#include "kcache.h"
#include "kcache-private.h"

/* A message's name is its BASE, which the index keeps for the life of the
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

#define KC_LOAD_NUM 7            /* at most 7/8 of the slots in use */
#define KC_LOAD_DEN 8
/* The table is KC_SEGS tables (kcache.h) by the hash's top bits. */
#define KC_SEG_BITS KCACHE_SEG_BITS
#define KC_SLOTS_MIN 256u    /* a page of slots */
/* 64 x 18,750 = 1,200,000 slots of 16 bytes (18.3 MiB) hold 1,050,000
 * names: every message of a listed folder of a million, with the daemon's
 * memory goal (32 MiB) met; past it a name gets the short timeout. */
#define KC_SLOTS_MAX (1200000u / KC_SEGS)

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
struct kc_msg *kcache_msg_find(struct kcache_state *kc, uint64_t ino)
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

void kcache_msg_free(struct kc_msg *t, size_t n)
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
	kcache_msg_free(g->slots, g->nslots);
	g->slots = t;
	g->nslots = n;
	g->nused = g->nlive;
	return true;
}

/* Whether name is the one the index gives message ino in parent, given
 * the info it shows (info_r: the info to keep). */
bool kcache_msg_info_of(uint64_t parent, const char *name, uint64_t ino,
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
bool kcache_msg_record(struct kcache_state *kc, const struct kc_msg *k,
		       uint32_t carried)
{
	struct kc_msg *s = kcache_msg_find(kc, k->ino);
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

void kcache_msg_remove(struct kcache_state *kc, struct kc_msg *s)
{
	km_seg(kc, s->ino)->nlive--;
	s->ino = KC_TOMB;
}

/* Under the lock: whether ino was in the compact table. */
bool kcache_msg_forget(struct kcache_state *kc, uint64_t ino, uint64_t n)
{
	struct kc_msg *s = kcache_msg_find(kc, ino);
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
		kcache_msg_remove(kc, s);
	return true;
}
