/* dovecot-state.c - in-memory state of a Dovecot index (see
 * dovecot-state.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dovecot/dovecot-state.h"
#include "util/util.h"

struct dovi_state *dovi_state_new(void)
{
	struct dovi_state *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->base[DOVI_H_MAJOR] = 7;
	st->base[DOVI_H_MINOR] = 3;
	st->base[DOVI_H_BASE_SIZE] = DOVI_BASE_SIZE;
	dovi_set_hdr32(st, DOVI_H_HEADER_SIZE, DOVI_BASE_SIZE);
	dovi_set_hdr32(st, DOVI_H_RECORD_SIZE, 8);
	st->base[DOVI_H_COMPAT] = 0x01;
	dovi_set_hdr32(st, DOVI_H_LOG_FILE_SEQ, 1);
	dovi_set_hdr32(st, DOVI_H_NEXT_UID, 1);
	dovi_set_hdr32(st, DOVI_H_FIRST_RECENT_UID, 1);
	return st;
}

void dovi_state_free(struct dovi_state *st)
{
	if (st == NULL)
		return;
	for (unsigned i = 0; i < st->ext_count; i++) {
		free(st->exts[i].hdr);
		free(st->exts[i].rec);
		free(st->exts[i].lens);
	}
	free(st->exts);
	for (unsigned i = 0; i < st->kw_count; i++)
		free(st->keywords[i]);
	free(st->keywords);
	free(st->uids);
	free(st->flags);
	free(st->gone);
	free(st->kwbits);
	for (unsigned i = 0; i < DOVI_ERRORS_KEPT; i++)
		free(st->errors[i]);
	free(st);
}

void dovi_state_error(struct dovi_state *st, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (st->error_count < DOVI_ERRORS_KEPT) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		/* out of memory loses the text, not the count */
		st->errors[st->error_count] = strdup(buf);
	}
	st->error_count++;
}

/* ---- memory accounting ------------------------------------------------ */

static bool has_column(const struct dovi_ext *e)
{
	return !e->is_keywords && e->record_size > 0;
}

/* Bytes one message costs with the current layout. */
static size_t row_bytes(const struct dovi_state *st)
{
	size_t n = sizeof(uint32_t) + 2 + st->kw_stride;

	for (unsigned i = 0; i < st->ext_count; i++) {
		if (has_column(&st->exts[i]))
			n += st->exts[i].record_size;
		if (st->exts[i].lens != NULL)
			n += sizeof(uint16_t);
	}
	return n;
}

/* Would the state fit the budget with cap messages of row bytes each and
 * extra more header bytes? */
static int budget(const struct dovi_state *st, size_t cap, size_t row,
		  size_t extra, struct dbox_err *err)
{
	size_t limit = DOVI_MEM_LIMIT;

	if (st->hdr_bytes > limit || extra > limit - st->hdr_bytes ||
	    (row != 0 && cap > (limit - st->hdr_bytes - extra) / row))
		return dbox_fail(err, -EFBIG, "index state would need more "
				 "than %zu MiB (corrupted or hostile index?)",
				 limit >> 20);
	return 0;
}

/* ---- extensions ------------------------------------------------------- */

int dovi_state_ext_find(const struct dovi_state *st, const char *name)
{
	for (unsigned i = 0; i < st->ext_count; i++) {
		if (strcmp(st->exts[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

int dovi_state_ext_add(struct dovi_state *st, const char *name,
		       uint32_t reset_id, uint32_t hdr_size,
		       uint16_t record_size, uint16_t record_align,
		       struct dbox_err *err)
{
	struct dovi_ext *e;
	int ret;

	if (st->ext_count == st->ext_cap) {
		unsigned cap = st->ext_cap == 0 ? 8 : st->ext_cap * 2;

		/* each ext costs a descriptor; cap them via the budget */
		ret = budget(st, 0, 0, sizeof(*e) * cap, err);
		if (ret < 0)
			return ret;
		e = realloc(st->exts, sizeof(*e) * cap);
		if (e == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		st->exts = e;
		st->ext_cap = cap;
	}
	e = &st->exts[st->ext_count];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->reset_id = reset_id;
	e->hdr_size = hdr_size;
	e->record_align = record_align;
	e->is_keywords = strcmp(name, "keywords") == 0;
	st->hdr_bytes += sizeof(*e);
	st->ext_count++;
	ret = dovi_state_ext_set_record_size(st, st->ext_count - 1,
					     record_size, err);
	if (ret < 0) {
		st->ext_count--;
		st->hdr_bytes -= sizeof(*e);
		return ret;
	}
	return (int)st->ext_count - 1;
}

int dovi_state_ext_set_record_size(struct dovi_state *st, unsigned ext,
				   uint16_t record_size, struct dbox_err *err)
{
	struct dovi_ext *e = &st->exts[ext];
	uint16_t old = has_column(e) ? e->record_size : 0;
	uint8_t *rec = NULL;
	int ret;

	if (!e->is_keywords && record_size > 0) {
		ret = budget(st, st->cap, row_bytes(st) - old + record_size,
			     0, err);
		if (ret < 0)
			return ret;
		rec = calloc(st->cap > 0 ? st->cap : 1, record_size);
		if (rec == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		for (uint32_t i = 0; i < st->count && old > 0; i++) {
			memcpy(rec + (size_t)i * record_size,
			       e->rec + (size_t)i * old,
			       old < record_size ? old : record_size);
		}
	}
	free(e->rec);
	free(e->lens);
	e->lens = NULL;
	e->rec = rec;
	e->record_size = record_size;
	return 0;
}

void dovi_state_ext_set_hdr_size(struct dovi_state *st, unsigned ext,
				 uint32_t hdr_size)
{
	struct dovi_ext *e = &st->exts[ext];
	size_t keep = dovi_align(hdr_size, 8);

	/* Dovecot (and the reference reader) keep the header padded to 8:
	 * bytes past hdr_size but inside the padding survive a shrink and
	 * show up again if hdr_size grows back; bytes past the padding are
	 * dropped and must read as zero then. */
	if (e->hdr_len > keep)
		memset(e->hdr + keep, 0, e->hdr_len - keep);
	e->hdr_size = hdr_size;
}

int dovi_state_ext_hdr_write(struct dovi_state *st, unsigned ext,
			     uint32_t off, const void *data, size_t len,
			     struct dbox_err *err)
{
	struct dovi_ext *e = &st->exts[ext];
	size_t need = (size_t)off + len;

	if (len == 0)
		return 0;
	if (need > e->hdr_len) {
		size_t grow = need - e->hdr_len;
		uint8_t *p;
		int ret = budget(st, st->cap, row_bytes(st), grow, err);

		if (ret < 0)
			return ret;
		p = realloc(e->hdr, need);
		if (p == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		memset(p + e->hdr_len, 0, grow);
		e->hdr = p;
		e->hdr_len = need;
		st->hdr_bytes += grow;
	}
	memcpy(e->hdr + off, data, len);
	return 0;
}

void dovi_state_ext_hdr_read(const struct dovi_state *st, unsigned ext,
			     size_t off, void *buf, size_t len)
{
	const struct dovi_ext *e = &st->exts[ext];
	size_t have = e->hdr_len < e->hdr_size ? e->hdr_len : e->hdr_size;

	memset(buf, 0, len);
	if (off < have)
		memcpy(buf, e->hdr + off, have - off < len ? have - off : len);
}

void dovi_state_ext_clear(struct dovi_state *st, unsigned ext)
{
	struct dovi_ext *e = &st->exts[ext];

	/* only the visible part: see dovi_state_ext_set_hdr_size() */
	if (e->hdr_len > 0)
		memset(e->hdr, 0, e->hdr_len < e->hdr_size ? e->hdr_len :
		       e->hdr_size);
	if (e->rec != NULL)
		memset(e->rec, 0, (size_t)st->cap * e->record_size);
	free(e->lens);
	e->lens = NULL;
}

uint8_t *dovi_state_ext_data(const struct dovi_state *st, unsigned ext,
			     uint32_t pos, size_t *len_r)
{
	const struct dovi_ext *e = &st->exts[ext];

	if (e->rec == NULL) {
		*len_r = 0;
		return NULL;
	}
	*len_r = e->lens != NULL ? e->lens[pos] : e->record_size;
	return e->rec + (size_t)pos * e->record_size;
}

void dovi_state_ext_data_full(struct dovi_state *st, unsigned ext,
			      uint32_t pos)
{
	struct dovi_ext *e = &st->exts[ext];

	if (e->lens != NULL)
		e->lens[pos] = e->record_size;
}

/* ---- messages --------------------------------------------------------- */

static int grow_array(void **p, size_t old_n, size_t new_n, size_t elem)
{
	void *q = realloc(*p, new_n * elem);

	if (q == NULL)
		return -ENOMEM;
	memset((char *)q + old_n * elem, 0, (new_n - old_n) * elem);
	*p = q;
	return 0;
}

static int grow_columns(struct dovi_state *st, uint32_t cap)
{
	int ret = 0;

	ret |= grow_array((void **)&st->uids, st->cap, cap, sizeof(uint32_t));
	ret |= grow_array((void **)&st->flags, st->cap, cap, 1);
	ret |= grow_array((void **)&st->gone, st->cap, cap, 1);
	if (st->kw_stride > 0)
		ret |= grow_array((void **)&st->kwbits, st->cap, cap,
				  st->kw_stride);
	for (unsigned i = 0; i < st->ext_count; i++) {
		struct dovi_ext *e = &st->exts[i];

		if (e->rec != NULL)
			ret |= grow_array((void **)&e->rec, st->cap, cap,
					  e->record_size);
		if (e->lens != NULL)
			ret |= grow_array((void **)&e->lens, st->cap, cap,
					  sizeof(uint16_t));
	}
	/* columns that did grow stay valid at their new size; the
	 * smallest common size is what counts */
	if (ret == 0)
		st->cap = cap;
	return ret == 0 ? 0 : -ENOMEM;
}

static int reserve(struct dovi_state *st, uint32_t need, struct dbox_err *err)
{
	uint64_t cap;
	int ret;

	if (need <= st->cap)
		return 0;
	cap = st->cap < 16 ? 16 : (uint64_t)st->cap * 2;
	if (cap < need)
		cap = need;
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	if (budget(st, cap, row_bytes(st), 0, NULL) < 0)
		cap = need;
	ret = budget(st, cap, row_bytes(st), 0, err);
	if (ret < 0)
		return ret;
	if (grow_columns(st, (uint32_t)cap) < 0)
		return dbox_fail(err, -ENOMEM, "out of memory");
	return 0;
}

int dovi_state_append(struct dovi_state *st, uint32_t uid, uint8_t flags,
		      struct dbox_err *err)
{
	int ret = reserve(st, st->count + 1, err);

	if (ret < 0)
		return ret;
	/* the row may hold data of an expunged-and-compacted message */
	uint32_t pos = st->count++;

	st->uids[pos] = uid;
	st->flags[pos] = flags;
	st->gone[pos] = 0;
	if (st->kw_stride > 0)
		memset(st->kwbits + (size_t)pos * st->kw_stride, 0,
		       st->kw_stride);
	for (unsigned i = 0; i < st->ext_count; i++) {
		struct dovi_ext *e = &st->exts[i];

		if (e->rec != NULL)
			memset(e->rec + (size_t)pos * e->record_size, 0,
			       e->record_size);
		if (e->lens != NULL)
			e->lens[pos] = e->record_size;
	}
	return 0;
}

uint32_t dovi_state_lower_bound(const struct dovi_state *st, uint32_t uid)
{
	uint32_t lo = 0, hi = st->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (st->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool dovi_state_find(const struct dovi_state *st, uint32_t uid,
		     uint32_t *pos_r)
{
	uint32_t pos = dovi_state_lower_bound(st, uid);

	if (pos >= st->count || st->uids[pos] != uid || st->gone[pos])
		return false;
	*pos_r = pos;
	return true;
}

void dovi_state_expunge(struct dovi_state *st, uint32_t pos)
{
	if (!st->gone[pos]) {
		st->gone[pos] = 1;
		st->dead++;
	}
}

static void move_row(struct dovi_state *st, uint32_t to, uint32_t from)
{
	st->uids[to] = st->uids[from];
	st->flags[to] = st->flags[from];
	st->gone[to] = 0;
	if (st->kw_stride > 0)
		memcpy(st->kwbits + (size_t)to * st->kw_stride,
		       st->kwbits + (size_t)from * st->kw_stride,
		       st->kw_stride);
	for (unsigned i = 0; i < st->ext_count; i++) {
		struct dovi_ext *e = &st->exts[i];

		if (e->rec != NULL)
			memcpy(e->rec + (size_t)to * e->record_size,
			       e->rec + (size_t)from * e->record_size,
			       e->record_size);
		if (e->lens != NULL)
			e->lens[to] = e->lens[from];
	}
}

void dovi_state_compact(struct dovi_state *st)
{
	uint32_t to = 0;

	if (st->dead == 0)
		return;
	for (uint32_t from = 0; from < st->count; from++) {
		if (st->gone[from])
			continue;
		if (to != from)
			move_row(st, to, from);
		to++;
	}
	st->count = to;
	st->dead = 0;
}

/* ---- keywords --------------------------------------------------------- */

int dovi_state_kw_find(const struct dovi_state *st, const char *name)
{
	/* Dovecot's keyword hash compares with strcasecmp (ASCII only in
	 * the C locale, which a library must not depend on: compare by
	 * hand) */
	for (unsigned i = 0; i < st->kw_count; i++) {
		const unsigned char *a = (const unsigned char *)st->keywords[i];
		const unsigned char *b = (const unsigned char *)name;

		while (*a != '\0' && *b != '\0') {
			unsigned char x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;
			unsigned char y = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;

			if (x != y)
				break;
			a++;
			b++;
		}
		if (*a == '\0' && *b == '\0')
			return (int)i;
	}
	return -1;
}

int dovi_state_kw_append(struct dovi_state *st, const char *name,
			 struct dbox_err *err)
{
	size_t len = strlen(name) + 1 + sizeof(char *);
	int ret = budget(st, st->cap, row_bytes(st), len, err);
	char *copy;

	if (ret < 0)
		return ret;
	if (st->kw_count == st->kw_cap) {
		unsigned cap = st->kw_cap == 0 ? 8 : st->kw_cap * 2;
		char **p = realloc(st->keywords, sizeof(*p) * cap);

		if (p == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		st->keywords = p;
		st->kw_cap = cap;
	}
	copy = strdup(name);
	if (copy == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	st->keywords[st->kw_count++] = copy;
	st->hdr_bytes += len;
	return (int)st->kw_count - 1;
}

/* Widens every message's keyword bitmap to hold keyword number kw. */
static int kw_widen(struct dovi_state *st, unsigned kw, struct dbox_err *err)
{
	size_t stride = st->kw_stride, want = kw / 8 + 1;
	uint8_t *p;
	int ret;

	if (want <= stride)
		return 0;
	/* round up so that sets of many keywords don't widen one by one */
	want = dovi_align(want, 8);
	ret = budget(st, st->cap, row_bytes(st) - stride + want, 0, err);
	if (ret < 0)
		return ret;
	p = calloc(st->cap > 0 ? st->cap : 1, want);
	if (p == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < st->count && stride > 0; i++)
		memcpy(p + i * want, st->kwbits + i * stride, stride);
	free(st->kwbits);
	st->kwbits = p;
	st->kw_stride = want;
	return 0;
}

int dovi_state_kw_set(struct dovi_state *st, uint32_t pos, unsigned kw,
		      bool on, struct dbox_err *err)
{
	uint8_t *b;

	if (!on && kw / 8 >= st->kw_stride)
		return 0;
	if (on) {
		int ret = kw_widen(st, kw, err);

		if (ret < 0)
			return ret;
	}
	b = st->kwbits + (size_t)pos * st->kw_stride + kw / 8;
	if (on)
		*b |= (uint8_t)(1u << (kw % 8));
	else
		*b &= (uint8_t)~(1u << (kw % 8));
	return 0;
}

bool dovi_state_kw_get(const struct dovi_state *st, uint32_t pos,
		       unsigned kw)
{
	if (kw / 8 >= st->kw_stride)
		return false;
	return (st->kwbits[(size_t)pos * st->kw_stride + kw / 8] >>
		(kw % 8)) & 1;
}

void dovi_state_kw_clear(struct dovi_state *st, uint32_t pos)
{
	if (st->kw_stride > 0)
		memset(st->kwbits + (size_t)pos * st->kw_stride, 0,
		       st->kw_stride);
}
