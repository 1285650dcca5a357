/* dovi-build.h - builds Dovecot index and log byte images for the unit
 * tests of libdbox/src/dovecot, byte by byte as dovecot-index.md lays
 * them out (so that the tests check the reader against the format, not
 * against itself), and writes them into a private temporary directory.
 * Header-only; static functions; single-threaded tests. */
#ifndef DOVI_BUILD_H
#define DOVI_BUILD_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		REQUIRE(b->p != NULL);
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static inline void buf_u8(struct buf *b, uint8_t v)
{
	buf_add(b, &v, 1);
}

static inline void buf_u16(struct buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	buf_add(b, x, 2);
}

static inline void buf_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24) };

	buf_add(b, x, 4);
}

static inline void buf_zero(struct buf *b, size_t n)
{
	while (n-- > 0)
		buf_u8(b, 0);
}

static inline void buf_pad(struct buf *b, size_t align)
{
	while (b->len % align != 0)
		buf_u8(b, 0);
}

static inline void buf_set32(struct buf *b, size_t off, uint32_t v)
{
	REQUIRE(off + 4 <= b->len);
	b->p[off] = (uint8_t)v;
	b->p[off + 1] = (uint8_t)(v >> 8);
	b->p[off + 2] = (uint8_t)(v >> 16);
	b->p[off + 3] = (uint8_t)(v >> 24);
}

static inline void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- logs (dovecot-index.md 3) */

enum {
	T_EXPUNGE = 0x1 | 0xcd90,
	T_APPEND = 0x2,
	T_FLAG_UPDATE = 0x4,
	T_HEADER_UPDATE = 0x20,
	T_EXT_INTRO = 0x40,
	T_EXT_RESET = 0x80,
	T_EXT_HDR_UPDATE = 0x100,
	T_EXT_REC_UPDATE = 0x200,
	T_KEYWORD_UPDATE = 0x400,
	T_KEYWORD_RESET = 0x800,
	T_EXT_ATOMIC_INC = 0x1000,
	T_EXPUNGE_GUID = 0x2000 | 0xcd90,
	T_MODSEQ_UPDATE = 0x8000,
	T_EXT_HDR_UPDATE32 = 0x10000,
	T_INDEX_DELETED = 0x20000,
	T_INDEX_UNDELETED = 0x40000,
	T_BOUNDARY = 0x80000,
	T_EXTERNAL = 0x10000000,
};

#define TEST_INDEXID 0x6b000001u

static inline void log_header(struct buf *b, uint32_t indexid, uint32_t seq,
		       uint32_t prev_seq, uint32_t prev_off)
{
	buf_u8(b, 1);           /* major */
	buf_u8(b, 3);           /* minor */
	buf_u16(b, 40);         /* hdr_size */
	buf_u32(b, indexid);
	buf_u32(b, seq);
	buf_u32(b, prev_seq);
	buf_u32(b, prev_off);
	buf_u32(b, 1700000000); /* create_stamp */
	buf_u32(b, 0);          /* initial_modseq */
	buf_u32(b, 0);
	buf_u8(b, 1);           /* compat: little-endian */
	buf_zero(b, 7);
}

static inline void size_word(uint32_t size, uint8_t out[4])
{
	uint32_t v = size / 4;

	out[0] = (uint8_t)(0x80 | ((v >> 21) & 0x7f));
	out[1] = (uint8_t)(0x80 | ((v >> 14) & 0x7f));
	out[2] = (uint8_t)(0x80 | ((v >> 7) & 0x7f));
	out[3] = (uint8_t)(0x80 | (v & 0x7f));
}

/* One record: size word, type, payload padded to 4. */
static inline void log_rec(struct buf *b, uint32_t type,
			   const struct buf *payload)
{
	uint8_t w[4];
	size_t n = payload->len, padded = (n + 3) & ~(size_t)3;

	size_word((uint32_t)(8 + padded), w);
	buf_add(b, w, 4);
	buf_u32(b, type);
	buf_add(b, payload->p, n);
	buf_zero(b, padded - n);
}

/* Payload builders: each returns a fresh buffer (caller frees). */
static inline struct buf pl_append(uint32_t uid, uint8_t flags)
{
	struct buf p = { 0 };

	buf_u32(&p, uid);
	buf_u8(&p, flags);
	buf_zero(&p, 3);
	return p;
}

static inline struct buf pl_range(uint32_t uid1, uint32_t uid2)
{
	struct buf p = { 0 };

	buf_u32(&p, uid1);
	buf_u32(&p, uid2);
	return p;
}

static inline struct buf pl_flags(uint32_t uid1, uint32_t uid2, uint8_t add,
			   uint8_t remove)
{
	struct buf p = pl_range(uid1, uid2);

	buf_u8(&p, add);
	buf_u8(&p, remove);
	buf_zero(&p, 2);
	return p;
}

static inline struct buf pl_hdr32(uint16_t off, uint32_t value)
{
	struct buf p = { 0 };

	buf_u16(&p, off);
	buf_u16(&p, 4);
	buf_u32(&p, value);
	return p;
}

static inline void intro_add(struct buf *p, uint32_t ext_id, uint32_t reset_id,
		      uint32_t hdr_size, uint16_t rsize, uint16_t ralign,
		      uint16_t flags, const char *name)
{
	buf_u32(p, ext_id);
	buf_u32(p, reset_id);
	buf_u32(p, hdr_size);
	buf_u16(p, rsize);
	buf_u16(p, ralign);
	buf_u16(p, flags);
	buf_u16(p, (uint16_t)strlen(name));
	buf_add(p, name, strlen(name));
	buf_pad(p, 4);
}

/* ext intro by name (ext_id 0xffffffff), NO_SHRINK as current writers */
static inline struct buf pl_intro(const char *name, uint32_t reset_id,
			   uint32_t hdr_size, uint16_t rsize, uint16_t ralign)
{
	struct buf p = { 0 };

	intro_add(&p, 0xffffffffu, reset_id, hdr_size, rsize, ralign, 1, name);
	return p;
}

static inline struct buf pl_rec_update(uint32_t uid, const void *data, size_t n)
{
	struct buf p = { 0 };

	buf_u32(&p, uid);
	buf_add(&p, data, n);
	buf_pad(&p, 4);
	return p;
}

static inline struct buf pl_keyword(uint8_t type, const char *name,
				    uint32_t uid1,
			     uint32_t uid2)
{
	struct buf p = { 0 };

	buf_u8(&p, type);
	buf_u8(&p, 0);
	buf_u16(&p, (uint16_t)strlen(name));
	buf_add(&p, name, strlen(name));
	buf_pad(&p, 4);
	buf_u32(&p, uid1);
	buf_u32(&p, uid2);
	return p;
}

static inline struct buf pl_atomic_inc(uint32_t uid, int32_t diff)
{
	struct buf p = { 0 };

	buf_u32(&p, uid);
	buf_u32(&p, (uint32_t)diff);
	return p;
}

static inline struct buf pl_guid_expunge(uint32_t uid)
{
	struct buf p = { 0 };

	buf_u32(&p, uid);
	buf_zero(&p, 16);
	return p;
}

/* Adds a record from a payload builder and frees the payload. */
#define REC(logbuf, type, payload_expr) do { \
	struct buf _p = (payload_expr); \
	log_rec((logbuf), (type), &_p); \
	buf_free(&_p); } while (0)

/* ---- dovecot.index (dovecot-index.md 2) */

struct idx_ext {
	const char *name;
	uint32_t reset_id;
	uint32_t hdr_size;
	const void *hdr;
	uint16_t record_offset, record_size, record_align;
};

/* Base header + extension descriptors; records are added by the caller
 * with idx_record().  Returns the header size. */
static inline size_t idx_header(struct buf *b, uint32_t record_size,
			 uint32_t next_uid, uint32_t count, uint32_t log_seq,
			 uint32_t head_off, const struct idx_ext *exts,
			 unsigned n_exts)
{
	buf_u8(b, 7);
	buf_u8(b, 3);
	buf_u16(b, 120);
	buf_u32(b, 0);                  /* header_size, set below */
	buf_u32(b, record_size);
	buf_u8(b, 1);
	buf_zero(b, 3);
	buf_u32(b, TEST_INDEXID);
	buf_u32(b, 0);                  /* flags */
	buf_u32(b, 1700000001);         /* uid_validity */
	buf_u32(b, next_uid);
	buf_u32(b, count);
	buf_zero(b, 12);                /* recent, seen, deleted counts */
	buf_u32(b, 1);                  /* first_recent_uid */
	buf_zero(b, 8);                 /* lowwaters */
	buf_u32(b, log_seq);
	buf_u32(b, head_off);           /* tail */
	buf_u32(b, head_off);           /* head */
	buf_zero(b, 120 - 72);
	for (unsigned i = 0; i < n_exts; i++) {
		const struct idx_ext *e = &exts[i];

		buf_u32(b, e->hdr_size);
		buf_u32(b, e->reset_id);
		buf_u16(b, e->record_offset);
		buf_u16(b, e->record_size);
		buf_u16(b, e->record_align);
		buf_u16(b, (uint16_t)strlen(e->name));
		buf_add(b, e->name, strlen(e->name));
		buf_pad(b, 8);
		if (e->hdr_size > 0) {
			if (e->hdr != NULL)
				buf_add(b, e->hdr, e->hdr_size);
			else
				buf_zero(b, e->hdr_size);
		}
		buf_pad(b, 8);
	}
	buf_set32(b, 4, (uint32_t)b->len);
	return b->len;
}

/* One record: uid, flags, then bytes at the given offsets. */
static inline void idx_record(struct buf *b, uint32_t record_size, uint32_t uid,
		       uint8_t flags, unsigned n, const uint16_t *offs,
		       const void *const *data, const uint16_t *lens)
{
	size_t start = b->len;

	buf_zero(b, record_size);
	buf_set32(b, start, uid);
	b->p[start + 4] = flags;
	for (unsigned i = 0; i < n; i++)
		memcpy(b->p + start + offs[i], data[i], lens[i]);
}

/* ---- files */

static char test_dir[256];

static inline void tmpdir_make(void)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/dovi-test.XXXXXX");
	REQUIRE(mkdtemp(test_dir) != NULL);
}

static inline void tmpdir_clean(void)
{
	DIR *d = opendir(test_dir);
	struct dirent *de;
	char path[512];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", test_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static inline void tmpdir_remove(void)
{
	tmpdir_clean();
	rmdir(test_dir);
}

static inline void write_file(const char *name, const struct buf *b)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", test_dir, name);
	f = fopen(path, "wb");
	REQUIRE(f != NULL);
	REQUIRE(fwrite(b->p, 1, b->len, f) == b->len);
	REQUIRE(fclose(f) == 0);
}

/* the prefix path of the index in test_dir */
static inline const char *prefix(void)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/dovecot.index", test_dir);
	return p;
}

#endif
