/* dovecot-replay.c - applying log records to a state (see
 * dovecot-replay.h).  Each function handles one record type as described
 * in dovecot-index.md 3.4. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dovecot/dovecot-log.h"
#include "dovecot/dovecot-mainfile.h"
#include "dovecot/dovecot-replay.h"
#include "dovecot/utf8.h"
#include "util/util.h"

#define NO_EXT 0xffffffffu
#define INTRO_SIZE 20
#define INTRO_NO_SHRINK 0x01

void dovi_replay_init(struct dovi_replay *rp, struct dovi_state *st)
{
	rp->st = st;
	rp->cur = DOVI_CUR_NONE;
	rp->ignore = false;
	rp->rec_size = 0;
}

static uint32_t next_uid(const struct dovi_state *st)
{
	return dovi_hdr32(st, DOVI_H_NEXT_UID);
}

static void update_count(struct dovi_state *st)
{
	dovi_set_hdr32(st, DOVI_H_MESSAGES_COUNT, st->count - st->dead);
}

/* ---- messages --------------------------------------------------------- */

static int append(struct dovi_state *st, const uint8_t *p, size_t n,
		  struct dbox_err *err)
{
	for (size_t o = 0; o + 8 <= n; o += 8) {
		uint32_t uid = dovi_le32(p + o);
		int ret;

		/* uids stay strictly increasing even where next_uid has
		 * wrapped to 0 (a hostile main file ending at uid 2^32-1);
		 * appending uid 2^32-1 would wrap it */
		if (uid < next_uid(st) || uid == UINT32_MAX ||
		    (st->count > 0 && uid <= st->uids[st->count - 1])) {
			dovi_state_error(st, "append uid %u < next_uid %u", uid,
					 next_uid(st));
			break;
		}
		ret = dovi_state_append(st, uid, p[o + 4], err);
		if (ret < 0)
			return ret;
		dovi_set_hdr32(st, DOVI_H_NEXT_UID, uid + 1);
	}
	update_count(st);
	return 0;
}

static void expunge_range(struct dovi_state *st, uint32_t uid1, uint32_t uid2)
{
	for (uint32_t pos = dovi_state_lower_bound(st, uid1);
	     pos < st->count && st->uids[pos] <= uid2; pos++)
		dovi_state_expunge(st, pos);
}

static void expunge(struct dovi_state *st, uint32_t t, const uint8_t *p,
		    size_t n)
{
	if (t == DOVI_T_EXPUNGE) {
		for (size_t o = 0; o + 8 <= n; o += 8)
			expunge_range(st, dovi_le32(p + o),
				      dovi_le32(p + o + 4));
	} else {
		for (size_t o = 0; o + 20 <= n; o += 20)
			expunge_range(st, dovi_le32(p + o), dovi_le32(p + o));
	}
	/* compact now and then so that many expunges stay linear */
	if (st->dead > st->count / 2)
		dovi_state_compact(st);
	update_count(st);
}

static void flag_update(struct dovi_state *st, const uint8_t *p, size_t n)
{
	for (size_t o = 0; o + 12 <= n; o += 12) {
		uint32_t pos = dovi_state_lower_bound(st, dovi_le32(p + o));
		uint32_t uid2 = dovi_le32(p + o + 4);
		uint8_t add = p[o + 8], remove = p[o + 9];

		for (; pos < st->count && st->uids[pos] <= uid2; pos++) {
			if (!st->gone[pos])
				st->flags[pos] = (uint8_t)((st->flags[pos] &
							    ~remove) | add);
		}
	}
}

static void header_update(struct dovi_state *st, const uint8_t *p, size_t n)
{
	uint16_t base_size = dovi_le16(st->base + DOVI_H_BASE_SIZE);
	uint32_t orig_next = next_uid(st);
	uint32_t orig_tail = dovi_hdr32(st, DOVI_H_LOG_TAIL_OFFSET);

	for (uint64_t i = 0, next; i + 4 <= n; i = next) {
		uint32_t off = dovi_le16(p + i), size = dovi_le16(p + i + 2);
		uint32_t end = off + size < DOVI_BASE_SIZE ? off + size :
			DOVI_BASE_SIZE;
		uint64_t avail = n - (i + 4);

		if (off >= base_size || off + size > base_size) {
			dovi_state_error(st, "header update outside range "
					 "%u+%u", off, size);
			break;
		}
		/* data missing: Dovecot would read past the record (and the
		 * reference reader mangles its header); treat it like any
		 * other corrupt chunk */
		if (off < end && avail < end - off) {
			dovi_state_error(st, "header update runs past its "
					 "record");
			break;
		}
		if (off < end)
			memcpy(st->base + off, p + i + 4, end - off);
		next = dovi_align(i + 4 + size, 4);
	}
	/* next_uid never shrinks; the tail offset is the backend's
	 * bookkeeping, not state */
	if (next_uid(st) < orig_next)
		dovi_set_hdr32(st, DOVI_H_NEXT_UID, orig_next);
	dovi_set_hdr32(st, DOVI_H_LOG_TAIL_OFFSET, orig_tail);
}

/* ---- extensions ------------------------------------------------------- */

/* Resizes an existing extension to an intro's sizes (3.4 "Resize"). */
static int ext_resize(struct dovi_state *st, unsigned idx, uint32_t hdr_size,
		      uint16_t rsize, uint16_t ralign, bool no_shrink,
		      struct dbox_err *err)
{
	struct dovi_ext *e = &st->exts[idx];
	uint64_t old_pad = dovi_align(e->hdr_size, 8);
	uint64_t new_pad = dovi_align(hdr_size, 8);

	if (e->record_align == ralign && e->record_size == rsize) {
		if (new_pad < old_pad ? no_shrink : e->hdr_size == hdr_size)
			return 0;
	}
	if (new_pad >= old_pad || !no_shrink)
		dovi_state_ext_set_hdr_size(st, idx, hdr_size);
	if (e->record_align < ralign ||
	    (e->record_align > ralign && !no_shrink))
		e->record_align = ralign;
	if (e->record_size < rsize || (e->record_size > rsize && !no_shrink))
		return dovi_state_ext_set_record_size(st, idx, rsize, err);
	return 0;
}

static bool intro_sizes_valid(uint32_t hdr_size, uint16_t rsize,
			      uint16_t ralign)
{
	if (rsize == 0 && hdr_size == 0)
		return false;
	if (hdr_size > DOVI_EXT_HDR_MAX)
		return false;
	return rsize == 0 || (ralign != 0 && ralign <= 8 && rsize < 32768);
}

/* One intro of an EXT_INTRO payload.  Returns 1 to go on with the next
 * intro, 0 to stop (corrupt), or a negative errno. */
static int ext_intro_one(struct dovi_replay *rp, const uint8_t *in,
			 struct dbox_err *err)
{
	struct dovi_state *st = rp->st;
	uint32_t ext_id = dovi_le32(in), reset_id = dovi_le32(in + 4);
	uint32_t hdr_size = dovi_le32(in + 8);
	uint16_t rsize = dovi_le16(in + 12), ralign = dovi_le16(in + 14);
	uint16_t nsize = dovi_le16(in + 18);
	bool no_shrink = (dovi_le16(in + 16) & INTRO_NO_SHRINK) != 0;
	char name[DOVI_EXT_NAME_MAX] = "";
	int idx = -1;

	rp->cur = DOVI_CUR_BROKEN;
	rp->ignore = true;
	rp->rec_size = 0;
	if (ext_id != NO_EXT && ext_id >= st->ext_count) {
		dovi_state_error(st, "ext intro for unknown id %u", ext_id);
		return 0;
	}
	if (ext_id == NO_EXT && nsize == 0) {
		dovi_state_error(st, "ext intro without id or name");
		return 0;
	}
	if (ext_id != NO_EXT) {
		idx = (int)ext_id;
		memcpy(name, st->exts[idx].name, sizeof(name));
	} else if (dovi_ext_name_valid(in + INTRO_SIZE, nsize)) {
		memcpy(name, in + INTRO_SIZE, nsize);
		name[nsize] = '\0';
		idx = dovi_state_ext_find(st, name);
	}
	if (strcmp(name, "keywords") == 0) {
		dovi_state_error(st, "ext intro for keywords");
		return 0;
	}
	/* an invalid name leaves name empty: rejected here */
	if (name[0] == '\0' || !intro_sizes_valid(hdr_size, rsize, ralign)) {
		dovi_state_error(st, "broken ext intro for \"%s\"", name);
		return 0;
	}
	rp->rec_size = rsize;
	if (idx < 0) {
		idx = dovi_state_ext_add(st, name, reset_id, hdr_size, rsize,
					 ralign, err);
		if (idx < 0)
			return idx;
		rp->ignore = false;
	} else if (reset_id == st->exts[idx].reset_id) {
		int ret = ext_resize(st, (unsigned)idx, hdr_size, rsize,
				     ralign, no_shrink, err);

		if (ret < 0)
			return ret;
		rp->ignore = false;
	}
	/* else: written before the ext was reset; its updates are stale */
	rp->cur = idx;
	return 1;
}

static int ext_intro(struct dovi_replay *rp, const uint8_t *p, size_t n,
		     struct dbox_err *err)
{
	uint64_t i = 0;

	while (i + INTRO_SIZE <= n) {
		const uint8_t *in = p + i;
		int ret;

		i = dovi_align(i + INTRO_SIZE + dovi_le16(in + 18), 4);
		ret = ext_intro_one(rp, in, err);
		if (ret <= 0)
			return ret;
	}
	return 0;
}

/* Common check of the records that work on the current extension. */
static bool have_cur(struct dovi_replay *rp, const char *what)
{
	if (rp->cur == DOVI_CUR_NONE) {
		dovi_state_error(rp->st, "%s without intro", what);
		return false;
	}
	return !rp->ignore;
}

static void ext_reset(struct dovi_replay *rp, const uint8_t *p, size_t n)
{
	struct dovi_state *st = rp->st;

	if (n < 4) {
		dovi_state_error(st, "ext reset: invalid record size");
		return;
	}
	if (rp->cur == DOVI_CUR_NONE) {
		dovi_state_error(st, "ext reset without intro");
		return;
	}
	/* a reset applies even when the intro's reset_id was stale */
	if (rp->cur == DOVI_CUR_BROKEN)
		return;
	st->exts[rp->cur].reset_id = dovi_le32(p);
	if (n < 5 || p[4] == 0)
		dovi_state_ext_clear(st, (unsigned)rp->cur);
}

static int ext_hdr_update(struct dovi_replay *rp, const uint8_t *p, size_t n,
			  bool wide, struct dbox_err *err)
{
	struct dovi_state *st = rp->st;
	uint64_t hsz = wide ? 8 : 4;

	if (!have_cur(rp, "ext hdr update"))
		return 0;
	for (uint64_t i = 0; i < n;) {
		uint64_t off, size;
		int ret;

		if (i + hsz > n) {
			dovi_state_error(st, "ext hdr update: invalid size");
			return 0;
		}
		off = wide ? dovi_le32(p + i) : dovi_le16(p + i);
		size = wide ? dovi_le32(p + i + 4) : dovi_le16(p + i + 2);
		if (i + hsz + size > n) {
			dovi_state_error(st, "ext hdr update: invalid size");
			return 0;
		}
		if (off + size > st->exts[rp->cur].hdr_size) {
			dovi_state_error(st, "ext hdr update outside header");
			return 0;
		}
		ret = dovi_state_ext_hdr_write(st, (unsigned)rp->cur,
					       (uint32_t)off, p + i + hsz,
					       (size_t)size, err);
		if (ret < 0)
			return ret;
		i = dovi_align(i + hsz + size, 4);
	}
	return 0;
}

/* uid check shared by ext rec updates and atomic incs */
static bool ext_uid_ok(struct dovi_state *st, uint32_t uid, const char *what)
{
	if (uid == 0 || uid >= next_uid(st)) {
		dovi_state_error(st, "%s for invalid uid %u", what, uid);
		return false;
	}
	return true;
}

static void ext_rec_update(struct dovi_replay *rp, const uint8_t *p, size_t n)
{
	struct dovi_state *st = rp->st;
	size_t step = (size_t)dovi_align(4 + (uint64_t)rp->rec_size, 4);

	if (!have_cur(rp, "ext rec update"))
		return;
	for (size_t o = 0; o < n; o += step) {
		uint32_t uid, pos;
		uint8_t *dst;
		size_t len;

		if (o + step > n) {
			dovi_state_error(st, "ext rec update: invalid size");
			return;
		}
		uid = dovi_le32(p + o);
		if (!ext_uid_ok(st, uid, "ext rec update"))
			return;
		if (!dovi_state_find(st, uid, &pos))
			continue;   /* expunged meanwhile */
		dst = dovi_state_ext_data(st, (unsigned)rp->cur, pos, &len);
		if (dst == NULL)
			continue;   /* header-only extension */
		len = st->exts[rp->cur].record_size;
		memset(dst, 0, len);
		memcpy(dst, p + o + 4, rp->rec_size < len ? rp->rec_size : len);
		dovi_state_ext_data_full(st, (unsigned)rp->cur, pos);
	}
}

/* Adds diff to the little-endian number of size bytes at d; false if the
 * result would leave 0 .. 2^(8*size)-1. */
static bool add_le(uint8_t *d, unsigned size, int32_t diff)
{
	uint64_t v = 0, max = size == 8 ? UINT64_MAX :
		(UINT64_C(1) << (8 * size)) - 1;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)d[i] << (8 * i);
	if (diff < 0 && (uint64_t)(-(int64_t)diff) > v)
		return false;
	if (diff > 0 && (uint64_t)diff > max - v)
		return false;
	v = diff < 0 ? v - (uint64_t)(-(int64_t)diff) : v + (uint64_t)diff;
	for (unsigned i = 0; i < size; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	return true;
}

static void ext_atomic_inc(struct dovi_replay *rp, const uint8_t *p, size_t n)
{
	struct dovi_state *st = rp->st;
	unsigned size = rp->rec_size;

	if (!have_cur(rp, "ext atomic inc"))
		return;
	for (size_t o = 0; o + 8 <= n; o += 8) {
		uint32_t uid = dovi_le32(p + o), pos;
		uint8_t *d;
		size_t len;

		if (!ext_uid_ok(st, uid, "ext atomic inc"))
			return;
		if (!dovi_state_find(st, uid, &pos))
			continue;
		if (size != 1 && size != 2 && size != 4 && size != 8) {
			dovi_state_error(st, "ext atomic inc with invalid "
					 "size %u", size);
			return;
		}
		d = dovi_state_ext_data(st, (unsigned)rp->cur, pos, &len);
		if (d == NULL || len < size ||
		    !add_le(d, size, (int32_t)dovi_le32(p + o + 4))) {
			dovi_state_error(st, "ext atomic inc out of range "
					 "uid=%u", uid);
			return;
		}
	}
}

/* ---- keywords --------------------------------------------------------- */

static int keyword_index(struct dovi_state *st, const uint8_t *p, size_t len,
			 struct dbox_err *err)
{
	char *name = dovi_utf8_sanitize(p, len);
	int idx;

	if (name == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	idx = dovi_state_kw_find(st, name);
	if (idx < 0) {
		/* added even by a removal, as Dovecot does */
		idx = dovi_state_kw_append(st, name, err);
		/* the keywords ext takes the next map ext index */
		if (idx >= 0 && dovi_state_ext_find(st, "keywords") < 0) {
			int ret = dovi_state_ext_add(st, "keywords", 0, 0, 0,
						     1, err);
			if (ret < 0)
				idx = ret;
		}
	}
	free(name);
	return idx;
}

static int keyword_update(struct dovi_state *st, const uint8_t *p, size_t n,
			  struct dbox_err *err)
{
	uint16_t nsize = dovi_le16(p + 2);
	size_t seqset = (size_t)dovi_align(4 + (uint64_t)nsize, 4);
	int kw = keyword_index(st, p + 4, nsize, err);

	if (kw < 0)
		return kw;
	for (size_t o = seqset; o + 8 <= n; o += 8) {
		uint32_t pos = dovi_state_lower_bound(st, dovi_le32(p + o));
		uint32_t uid2 = dovi_le32(p + o + 4);

		for (; pos < st->count && st->uids[pos] <= uid2; pos++) {
			int ret = 0;

			if (st->gone[pos] || p[0] > 1)
				continue;
			ret = dovi_state_kw_set(st, pos, (unsigned)kw,
						p[0] == 0, err);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

static void keyword_reset(struct dovi_state *st, const uint8_t *p, size_t n)
{
	for (size_t o = 0; o + 8 <= n; o += 8) {
		uint32_t pos = dovi_state_lower_bound(st, dovi_le32(p + o));
		uint32_t uid2 = dovi_le32(p + o + 4);

		for (; pos < st->count && st->uids[pos] <= uid2; pos++)
			dovi_state_kw_clear(st, pos);
	}
}

/* ---- dispatcher ------------------------------------------------------- */

int dovi_replay_apply(struct dovi_replay *rp, uint32_t type,
		      const uint8_t *p, size_t n, struct dbox_err *err)
{
	struct dovi_state *st = rp->st;
	uint32_t t = dovi_log_real_type(type);
	bool external = (type & DOVI_T_EXTERNAL) != 0;

	switch (t) {
	case DOVI_T_APPEND:
		return append(st, p, n, err);
	case DOVI_T_EXPUNGE:
	case DOVI_T_EXPUNGE_GUID:
		/* without EXTERNAL it is only a request (4.3) */
		if (external)
			expunge(st, t, p, n);
		return 0;
	case DOVI_T_FLAG_UPDATE:
		flag_update(st, p, n);
		return 0;
	case DOVI_T_HEADER_UPDATE:
		header_update(st, p, n);
		return 0;
	case DOVI_T_EXT_INTRO:
		return ext_intro(rp, p, n, err);
	case DOVI_T_EXT_RESET:
		ext_reset(rp, p, n);
		return 0;
	case DOVI_T_EXT_HDR_UPDATE:
	case DOVI_T_EXT_HDR_UPDATE32:
		return ext_hdr_update(rp, p, n, t == DOVI_T_EXT_HDR_UPDATE32,
				      err);
	case DOVI_T_EXT_REC_UPDATE:
		ext_rec_update(rp, p, n);
		return 0;
	case DOVI_T_EXT_ATOMIC_INC:
		ext_atomic_inc(rp, p, n);
		return 0;
	case DOVI_T_KEYWORD_UPDATE:
		return keyword_update(st, p, n, err);
	case DOVI_T_KEYWORD_RESET:
		keyword_reset(st, p, n);
		return 0;
	case DOVI_T_INDEX_DELETED:
		if (external)
			st->deleted = true;
		return 0;
	case DOVI_T_INDEX_UNDELETED:
		st->deleted = false;
		return 0;
	case DOVI_T_MODSEQ_UPDATE:
	case DOVI_T_BOUNDARY:
	case DOVI_T_ATTRIBUTE_UPDATE:
		return 0;
	default:
		dovi_state_error(st, "unknown record type 0x%x", type);
		return 0;
	}
}

void dovi_replay_finish(struct dovi_replay *rp)
{
	dovi_state_compact(rp->st);
}
