/* cookie.h - readdir cookies (the offsets of directory entries), kept
 * apart from readdir.c so that they can be tested alone.
 *
 * 1 ".", 2 "..", 3..5 cur/new/tmp, 6 dovecot-keywords, then
 * FOLDER_COOKIE_BASE + mailbox id for folders (fs layout: then
 * FOLDER_KEPT_COOKIE_BASE + identity for parents holding no mailbox),
 * or for messages FOLDER_COOKIE_BASE + uid, then BACKING_COOKIE_BASE +
 * the index of a backing entry in the directory handle's snapshot.  A
 * listing resumes after any cookie it gave, however the directory
 * changed since. */
#ifndef DBOXFS_COOKIE_H
#define DBOXFS_COOKIE_H

#include <stdint.h>

#include "folders.h"

enum { CK_DOT = 1, CK_DOTDOT, CK_CUR, CK_NEW, CK_TMP, CK_KW };
#define BACKING_COOKIE_BASE (1ull << 40)

static inline uint64_t cookie_msg(uint32_t uid)
{
	return FOLDER_COOKIE_BASE + (uint64_t)uid;
}

/* The uid a message listing resumes after (0: from the first). */
static inline uint32_t cookie_msg_after(uint64_t off)
{
	return off > FOLDER_COOKIE_BASE ? (uint32_t)(off - FOLDER_COOKIE_BASE)
		: 0;
}

static inline uint64_t cookie_backing(uint64_t i)
{
	return BACKING_COOKIE_BASE + i;
}

/* The first backing entry (snapshot index) a listing resumes at. */
static inline uint64_t cookie_backing_first(uint64_t off)
{
	return off >= BACKING_COOKIE_BASE ? off - BACKING_COOKIE_BASE + 1 : 0;
}

#endif
