/* kcache-private.h - what the files of kcache share (never included
 * outside kcache*.c): the tree's entries (kcache.c), the compact table of
 * messages' names (kcache-msg.c), both walked by the check
 * (kcache-check.c). */
#ifndef DBOXFS_KCACHE_PRIVATE_H
#define DBOXFS_KCACHE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kcache.h"
#include "view.h"

/* One allocation with its name: the node of the tree, the entry and the
 * name were three (~150 bytes a name). */
struct kc_entry {
	uint64_t ino;
	uint64_t parent;
	uint32_t nlookup;        /* the kernel's count, capped (see record) */
	bool stale;              /* invalidated; kept until the forget */
	char name[];
};

#define KC_TOMB 1u               /* removed slot (never a message's inode) */
#define KC_SEGS KCACHE_SEGS

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

static inline uint32_t km_count(uint32_t meta)
{
	return meta >> KM_COUNT_SHIFT;
}

static inline uint32_t km_with_count(uint32_t meta, uint32_t n)
{
	return (meta & ((1u << KM_COUNT_SHIFT) - 1)) | n << KM_COUNT_SHIFT;
}

/* The directory (cur/ or new/) whose name a slot records. */
static inline uint64_t kcache_msg_parent(const struct kc_msg *s)
{
	return view_ino_sub((int64_t)(s->ino >> 32 & VIEW_MAILBOX_MAX),
			    s->meta & KM_NEW ? SUB_NEW : SUB_CUR);
}

/* kcache.c: the tree's order (by inode), and its entry of ino or NULL */
int kcache_cmp_ino(const void *a, const void *b);
struct kc_entry *kcache_tree_find(struct kcache_state *kc, uint64_t ino);

/* kcache-msg.c: the compact table */
/* The slot of ino, or NULL. */
struct kc_msg *kcache_msg_find(struct kcache_state *kc, uint64_t ino);
/* Whether name is the one the index gives message ino in parent, given
 * the info it shows (info_r: the info to keep). */
bool kcache_msg_info_of(uint64_t parent, const char *name, uint64_t ino,
			struct kc_msg *info_r);
/* The kernel has one more lookup of the message's name described by k
 * (its count carried from the tree's entry: carried); false if there is
 * no room. */
bool kcache_msg_record(struct kcache_state *kc, const struct kc_msg *k,
		       uint32_t carried);
void kcache_msg_remove(struct kcache_state *kc, struct kc_msg *s);
/* The kernel dropped n lookups of ino: whether ino was in the table. */
bool kcache_msg_forget(struct kcache_state *kc, uint64_t ino, uint64_t n);
/* Unmaps a segment's slots (t may be NULL). */
void kcache_msg_free(struct kc_msg *t, size_t n);

/* kcache-check.c: frees the removed rows a check took (kc->removed) */
void kcache_free_removed(struct kcache_state *kc);

#endif
