/* dovecot-state.h - the in-memory state of one Dovecot index ("map").
 *
 * What dovecot.index holds and what the transaction log changes
 * (dovecot-index.md 3.4): the base header, the ordered extension list
 * (position = "map extension index" that log records refer to), the
 * keyword name list and the messages sorted by uid, each with a flag byte,
 * a keyword set and per-extension record bytes.
 *
 * Storage is by column (uids, flags, keyword bitmaps, one array per
 * extension) so that adding or resizing an extension touches one array.
 * Expunged messages are only marked during a replay and removed by
 * dovi_state_compact(); uids stay sorted, so lookups are binary searches.
 *
 * All memory is bounded by DOVI_MEM_LIMIT: a hostile file can't make the
 * reader allocate more; exceeding it is an error (-EFBIG).
 *
 * Not thread-safe: a state belongs to one reader object (internal). */
#ifndef DOVI_STATE_H
#define DOVI_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbox/store.h"

#define DOVI_BASE_SIZE 120          /* v7.3 base header */
#define DOVI_EXT_NAME_MAX 64        /* names are 1..63 characters */
#define DOVI_EXT_HDR_MAX (16u * 1024 * 1024 - 1)
#define DOVI_ERRORS_KEPT 16
#define DOVI_MEM_LIMIT ((size_t)512 * 1024 * 1024)

/* base header field offsets (dovecot-index.md 2.2) */
enum dovi_hdr_off {
	DOVI_H_MAJOR = 0,
	DOVI_H_MINOR = 1,
	DOVI_H_BASE_SIZE = 2,       /* u16 */
	DOVI_H_HEADER_SIZE = 4,
	DOVI_H_RECORD_SIZE = 8,
	DOVI_H_COMPAT = 12,         /* u8 */
	DOVI_H_INDEXID = 16,
	DOVI_H_FLAGS = 20,
	DOVI_H_UID_VALIDITY = 24,
	DOVI_H_NEXT_UID = 28,
	DOVI_H_MESSAGES_COUNT = 32,
	DOVI_H_SEEN_COUNT = 40,
	DOVI_H_DELETED_COUNT = 44,
	DOVI_H_FIRST_RECENT_UID = 48,
	DOVI_H_LOG_FILE_SEQ = 60,
	DOVI_H_LOG_TAIL_OFFSET = 64,
	DOVI_H_LOG_HEAD_OFFSET = 68,
	DOVI_H_OLD_SYNC_SIZE = 72,
	DOVI_H_LOG2_ROTATE_TIME = 76,
	DOVI_H_LAST_TEMP_SCAN = 80,
	DOVI_H_DAY_STAMP = 84,
	DOVI_H_DAY_FIRST_UID = 88,  /* 8 x u32 */
};

struct dovi_ext {
	char name[DOVI_EXT_NAME_MAX];
	uint32_t reset_id;
	uint32_t hdr_size;
	uint16_t record_size;
	uint16_t record_align;
	uint16_t record_offset;     /* as read from dovecot.index, else 0 */
	/* The header is materialised lazily: the first hdr_len bytes are in
	 * hdr, the rest (up to hdr_size) reads as zero.  A hostile log can
	 * announce 16 MiB headers without writing them. */
	uint8_t *hdr;
	size_t hdr_len;
	uint8_t *rec;               /* cap * record_size bytes, or NULL */
	/* Data length per message, or NULL when every message has
	 * record_size bytes.  Only a dovecot.index whose descriptor has
	 * record_offset 0 (where Dovecot skips its bounds check) can give
	 * messages fewer bytes than record_size; the reference reader keeps
	 * those short, and so do we, until the data is rewritten. */
	uint16_t *lens;
	bool is_keywords;           /* "keywords": data is in kwbits */
};

struct dovi_state {
	uint8_t base[DOVI_BASE_SIZE];

	struct dovi_ext *exts;
	unsigned ext_count, ext_cap;

	char **keywords;            /* valid UTF-8, list order = bit number */
	unsigned kw_count, kw_cap;

	uint32_t count, cap, dead;  /* dead = marked expunged, not compacted */
	uint32_t *uids;
	uint8_t *flags;
	uint8_t *gone;              /* 1 = expunged (until compaction) */
	uint8_t *kwbits;            /* cap * kw_stride bytes */
	size_t kw_stride;

	char *errors[DOVI_ERRORS_KEPT];
	unsigned error_count;       /* all, including ones not kept */

	bool truncated;             /* dovecot.index had fewer records */
	bool deleted;               /* INDEX_DELETED (external) seen */
	size_t hdr_bytes;           /* materialised ext headers + names */
};

static inline uint16_t dovi_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t dovi_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
}

static inline uint64_t dovi_le64(const uint8_t *p)
{
	return (uint64_t)dovi_le32(p) | (uint64_t)dovi_le32(p + 4) << 32;
}

static inline void dovi_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint64_t dovi_align(uint64_t n, uint64_t a)
{
	return (n + a - 1) & ~(a - 1);
}

static inline uint32_t dovi_hdr32(const struct dovi_state *st, unsigned off)
{
	return dovi_le32(st->base + off);
}

static inline void dovi_set_hdr32(struct dovi_state *st, unsigned off,
				  uint32_t v)
{
	dovi_put32(st->base + off, v);
}

/* A fresh, empty map as Dovecot allocates it (version 7.3, next_uid 1,
 * log_file_seq 1, no extensions).  NULL when out of memory. */
struct dovi_state *dovi_state_new(void);
void dovi_state_free(struct dovi_state *st);

/* Records a non-fatal sync error (Dovecot would log it and fsck). */
void dovi_state_error(struct dovi_state *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- extensions */
/* Position of the extension called name (exact match), or -1. */
int dovi_state_ext_find(const struct dovi_state *st, const char *name);
/* Appends an extension; every message gets zeroed data.  Returns its
 * position or -EFBIG/-ENOMEM (err set). */
int dovi_state_ext_add(struct dovi_state *st, const char *name,
		       uint32_t reset_id, uint32_t hdr_size,
		       uint16_t record_size, uint16_t record_align,
		       struct dbox_err *err);
/* Changes an extension's per-message size, keeping the first
 * min(old, new) bytes of every message's data. */
int dovi_state_ext_set_record_size(struct dovi_state *st, unsigned ext,
				   uint16_t record_size, struct dbox_err *err);
/* Changes hdr_size; bytes beyond a smaller size are dropped. */
void dovi_state_ext_set_hdr_size(struct dovi_state *st, unsigned ext,
				 uint32_t hdr_size);
/* Writes header bytes (off + len <= hdr_size, checked by the caller). */
int dovi_state_ext_hdr_write(struct dovi_state *st, unsigned ext,
			     uint32_t off, const void *data, size_t len,
			     struct dbox_err *err);
/* Copies header bytes [off, off+len) into buf, zero beyond hdr_size. */
void dovi_state_ext_hdr_read(const struct dovi_state *st, unsigned ext,
			     size_t off, void *buf, size_t len);
/* Zeroes the header and every message's data of the extension. */
void dovi_state_ext_clear(struct dovi_state *st, unsigned ext);
/* Message pos's data of the extension; *len_r bytes (see lens). */
uint8_t *dovi_state_ext_data(const struct dovi_state *st, unsigned ext,
			     uint32_t pos, size_t *len_r);
/* Marks message pos's data as full length (after a rewrite). */
void dovi_state_ext_data_full(struct dovi_state *st, unsigned ext,
			      uint32_t pos);

/* ---- messages */
/* Appends a message (uid must exceed every existing uid). */
int dovi_state_append(struct dovi_state *st, uint32_t uid, uint8_t flags,
		      struct dbox_err *err);
/* Position of the first message (live or not) with uid >= the argument. */
uint32_t dovi_state_lower_bound(const struct dovi_state *st, uint32_t uid);
/* Position of the live message with this uid; false if none. */
bool dovi_state_find(const struct dovi_state *st, uint32_t uid,
		     uint32_t *pos_r);
void dovi_state_expunge(struct dovi_state *st, uint32_t pos);
/* Removes expunged messages for good. */
void dovi_state_compact(struct dovi_state *st);

/* ---- keywords */
/* Position of the keyword, ASCII case-insensitively, or -1. */
int dovi_state_kw_find(const struct dovi_state *st, const char *name);
/* Appends a keyword name (copied); returns its position or -errno. */
int dovi_state_kw_append(struct dovi_state *st, const char *name,
			 struct dbox_err *err);
int dovi_state_kw_set(struct dovi_state *st, uint32_t pos, unsigned kw,
		      bool on, struct dbox_err *err);
bool dovi_state_kw_get(const struct dovi_state *st, uint32_t pos,
		       unsigned kw);
void dovi_state_kw_clear(struct dovi_state *st, uint32_t pos);

#endif
