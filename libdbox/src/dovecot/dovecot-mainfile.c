/* dovecot-mainfile.c - parsing dovecot.index (see dovecot-mainfile.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dovecot/dovecot-file.h"
#include "dovecot/dovecot-mainfile.h"
#include "dovecot/utf8.h"
#include "util/util.h"

#define EXT_DESC_SIZE 16

bool dovi_ext_name_valid(const uint8_t *name, size_t len)
{
	if (len == 0 || len >= DOVI_EXT_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == ' '))
			return false;
	}
	return true;
}

/* The base header checks that make the whole file unusable (2.2). */
static int check_base(const uint8_t *d, size_t len, struct dbox_err *err)
{
	uint16_t base_size;
	uint32_t header_size;

	if (len > 0 && d[DOVI_H_MAJOR] != 7)
		return dbox_fail(err, -EBADMSG, "major version %u != 7",
				 d[DOVI_H_MAJOR]);
	if (len < DOVI_BASE_SIZE)
		return dbox_fail(err, -EBADMSG, "file too small (%zu)", len);
	base_size = dovi_le16(d + DOVI_H_BASE_SIZE);
	header_size = dovi_le32(d + DOVI_H_HEADER_SIZE);
	if (dovi_le32(d + DOVI_H_FLAGS) & 0x01)
		return dbox_fail(err, -EBADMSG, "header's corrupted flag is "
				 "set");
	if (d[DOVI_H_COMPAT] != 0x01)
		return dbox_fail(err, -EBADMSG, "compat_flags %u: not a "
				 "little-endian index", d[DOVI_H_COMPAT]);
	if (base_size < DOVI_BASE_SIZE || header_size < base_size)
		return dbox_fail(err, -EBADMSG, "corrupted header sizes (base "
				 "%u, full %u)", base_size, header_size);
	if (header_size > len)
		return dbox_fail(err, -EBADMSG, "header size %u larger than "
				 "file (%zu)", header_size, len);
	if (dovi_le32(d + DOVI_H_RECORD_SIZE) < 8)
		return dbox_fail(err, -EBADMSG, "record_size too small (%u)",
				 dovi_le32(d + DOVI_H_RECORD_SIZE));
	return 0;
}

/* mail_index_map_ext_hdr_check()'s rules for one descriptor. */
static int check_ext(const uint8_t *desc, const char *name,
		     uint32_t record_size, struct dbox_err *err)
{
	uint32_t hdr_size = dovi_le32(desc);
	uint16_t roff = dovi_le16(desc + 8), rsize = dovi_le16(desc + 10);
	uint16_t ralign = dovi_le16(desc + 12);

	if (rsize == 0 && hdr_size == 0)
		return dbox_fail(err, -EBADMSG, "extension %s: invalid field "
				 "values", name);
	if (rsize != 0) {
		if (ralign == 0 || ralign > 8 || rsize >= 32768)
			return dbox_fail(err, -EBADMSG, "extension %s: bad "
					 "record align/size", name);
		/* record_offset 0 is not checked, as in Dovecot (it means
		 * "not placed yet" when an ext is being introduced) */
		if (roff != 0 && ((uint32_t)roff + rsize > record_size ||
				  roff % ralign != 0 ||
				  record_size % ralign != 0))
			return dbox_fail(err, -EBADMSG, "extension %s: bad "
					 "record offset", name);
	}
	if (hdr_size > DOVI_EXT_HDR_MAX)
		return dbox_fail(err, -EBADMSG, "extension %s: header too "
				 "large (%u)", name, hdr_size);
	return 0;
}

/* Parses the descriptor at *off and registers the extension; advances
 * *off to the next one. */
static int parse_ext(struct dovi_state *st, const uint8_t *d,
		     uint32_t header_size, uint64_t *off, struct dbox_err *err)
{
	const uint8_t *desc = d + *off;
	uint32_t hdr_size;
	uint16_t nsize;
	uint64_t data_off, next;
	char name[DOVI_EXT_NAME_MAX];
	int ret, idx;

	if (*off + EXT_DESC_SIZE >= header_size)
		return dbox_fail(err, -EBADMSG, "extension header goes "
				 "outside header");
	hdr_size = dovi_le32(desc);
	nsize = dovi_le16(desc + 14);
	data_off = *off + dovi_align(EXT_DESC_SIZE + (uint64_t)nsize, 8);
	if (data_off > header_size)
		return dbox_fail(err, -EBADMSG, "extension name goes outside "
				 "header");
	next = data_off + dovi_align(hdr_size, 8);
	if (next > header_size)
		return dbox_fail(err, -EBADMSG, "extension header data goes "
				 "outside header");
	if (!dovi_ext_name_valid(desc + EXT_DESC_SIZE, nsize))
		return dbox_fail(err, -EBADMSG, "extension #%u: invalid name",
				 st->ext_count);
	memcpy(name, desc + EXT_DESC_SIZE, nsize);
	name[nsize] = '\0';
	ret = check_ext(desc, name, dovi_hdr32(st, DOVI_H_RECORD_SIZE), err);
	if (ret < 0)
		return ret;
	if (dovi_state_ext_find(st, name) >= 0)
		return dbox_fail(err, -EBADMSG, "duplicate extension %s", name);
	idx = dovi_state_ext_add(st, name, dovi_le32(desc + 4), hdr_size,
				 dovi_le16(desc + 10), dovi_le16(desc + 12),
				 err);
	if (idx < 0)
		return idx;
	st->exts[idx].record_offset = dovi_le16(desc + 8);
	/* keep the padding too: see dovi_state_ext_set_hdr_size() */
	ret = dovi_state_ext_hdr_write(st, (unsigned)idx, 0, d + data_off,
				       (size_t)(next - data_off), err);
	if (ret < 0)
		return ret;
	*off = next;
	return 0;
}

static int parse_exts(struct dovi_state *st, const uint8_t *d,
		      struct dbox_err *err)
{
	uint32_t header_size = dovi_hdr32(st, DOVI_H_HEADER_SIZE);
	uint64_t off = dovi_align(dovi_le16(d + DOVI_H_BASE_SIZE), 8);

	while (off < header_size) {
		int ret = parse_ext(st, d, header_size, &off, err);

		if (ret < 0)
			return ret;
	}
	return 0;
}

int dovi_mainfile_keywords(struct dovi_state *st, unsigned ext,
			   struct dbox_err *err)
{
	const struct dovi_ext *e = &st->exts[ext];
	size_t hlen = e->hdr_size < e->hdr_len ? e->hdr_size : e->hdr_len;
	const uint8_t *h = e->hdr;
	uint64_t count, names;

	if (hlen < 4)
		return 0;
	count = dovi_le32(h);
	names = 4 + 8 * count;
	if (names > hlen)
		return dbox_fail(err, -EBADMSG, "keywords_count larger than "
				 "header size");
	for (uint64_t i = 0; i < count; i++) {
		uint64_t p = names + dovi_le32(h + 4 + 8 * i + 4);
		const uint8_t *end;
		char *name;
		int ret;

		if (p >= hlen ||
		    (end = memchr(h + p, '\0', hlen - (size_t)p)) == NULL)
			return dbox_fail(err, -EBADMSG, "keyword name_offset "
					 "outside header");
		if (end == h + p)
			return dbox_fail(err, -EBADMSG, "empty keyword name "
					 "in header");
		name = dovi_utf8_sanitize(h + p, (size_t)(end - (h + p)));
		if (name == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		ret = dovi_state_kw_append(st, name, err);
		free(name);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Extensions whose data Dovecot would read past the record (see lens in
 * dovecot-state.h) get per-message lengths. */
static int alloc_lens(struct dovi_state *st, struct dbox_err *err)
{
	uint32_t rsize = dovi_hdr32(st, DOVI_H_RECORD_SIZE);

	for (unsigned i = 0; i < st->ext_count; i++) {
		struct dovi_ext *e = &st->exts[i];

		if (e->rec == NULL ||
		    (uint32_t)e->record_offset + e->record_size <= rsize)
			continue;
		e->lens = calloc(st->cap > 0 ? st->cap : 1, sizeof(uint16_t));
		if (e->lens == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
	}
	return 0;
}

/* Copies one record's extension data and keyword bits. */
static int load_record_data(struct dovi_state *st, uint32_t pos,
			    const uint8_t *rec, uint32_t rsize, int kw_ext,
			    struct dbox_err *err)
{
	for (unsigned i = 0; i < st->ext_count; i++) {
		struct dovi_ext *e = &st->exts[i];
		size_t n, len;
		uint8_t *dst = dovi_state_ext_data(st, i, pos, &len);

		if (dst == NULL)
			continue;
		n = e->record_offset >= rsize ? 0 : rsize - e->record_offset;
		if (n > e->record_size)
			n = e->record_size;
		memcpy(dst, rec + e->record_offset, n);
		if (e->lens != NULL)
			e->lens[pos] = (uint16_t)n;
	}
	if (kw_ext < 0)
		return 0;
	const struct dovi_ext *k = &st->exts[kw_ext];
	size_t off = k->record_offset, n = k->record_size;

	n = off >= rsize ? 0 : (rsize - off < n ? rsize - off : n);
	for (unsigned kw = 0; kw < st->kw_count && kw / 8 < n; kw++) {
		if ((rec[off + kw / 8] >> (kw % 8)) & 1) {
			int ret = dovi_state_kw_set(st, pos, kw, true, err);

			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

static int parse_records(struct dovi_state *st, const uint8_t *d, size_t len,
			 struct dbox_err *err)
{
	uint32_t header_size = dovi_hdr32(st, DOVI_H_HEADER_SIZE);
	uint32_t rsize = dovi_hdr32(st, DOVI_H_RECORD_SIZE);
	uint64_t count = dovi_hdr32(st, DOVI_H_MESSAGES_COUNT);
	uint64_t avail = (len - header_size) / rsize;
	int kw_ext = dovi_state_ext_find(st, "keywords");
	uint32_t last_uid = 0;
	int ret = alloc_lens(st, err);

	if (ret < 0)
		return ret;
	if (count > avail) {
		dovi_state_error(st, "messages_count too large (%llu > %llu)",
				 (unsigned long long)count,
				 (unsigned long long)avail);
		st->truncated = true;
		count = avail;
	}
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *rec = d + header_size + i * rsize;
		uint32_t uid = dovi_le32(rec);

		if (uid <= last_uid) {
			dovi_state_error(st, "record uid %u <= previous %u "
					 "dropped", uid, last_uid);
			continue;
		}
		last_uid = uid;
		ret = dovi_state_append(st, uid, rec[4], err);
		if (ret < 0)
			return ret;
		ret = load_record_data(st, st->count - 1, rec, rsize, kw_ext,
				       err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The fsck-style repairs of mail_index_map_check_header(). */
static void check_counters(struct dovi_state *st)
{
	uint32_t next_uid = dovi_hdr32(st, DOVI_H_NEXT_UID);
	uint32_t last = st->count > 0 ? st->uids[st->count - 1] : 0;

	dovi_set_hdr32(st, DOVI_H_MESSAGES_COUNT, st->count);
	if (dovi_hdr32(st, DOVI_H_UID_VALIDITY) == 0 && next_uid != 1)
		dovi_state_error(st, "uid_validity=0 but next_uid=%u",
				 next_uid);
	if (next_uid == 0 || (st->count > 0 && last >= next_uid)) {
		dovi_state_error(st, "next_uid %u <= last uid %u", next_uid,
				 last);
		/* last can be 0xffffffff only with a hostile file; the
		 * next_uid then wraps to 0 and append() refuses every uid
		 * not above the last one, which is the safe outcome */
		dovi_set_hdr32(st, DOVI_H_NEXT_UID, last + 1);
	}
}

/* Kernel of the parse, with the state already allocated. */
static int parse_into(struct dovi_state *st, const uint8_t *d, size_t len,
		      struct dbox_err *err)
{
	int ret = check_base(d, len, err), kw;

	if (ret < 0)
		return ret;
	memcpy(st->base, d, DOVI_BASE_SIZE);
	if (st->base[DOVI_H_MINOR] < 3) {
		/* pre-2.2 files: obsolete fields read as zero */
		dovi_set_hdr32(st, DOVI_H_OLD_SYNC_SIZE, 0);
		dovi_set_hdr32(st, DOVI_H_LOG2_ROTATE_TIME, 0);
		dovi_set_hdr32(st, DOVI_H_LAST_TEMP_SCAN, 0);
	}
	ret = parse_exts(st, d, err);
	if (ret < 0)
		return ret;
	kw = dovi_state_ext_find(st, "keywords");
	if (kw >= 0) {
		ret = dovi_mainfile_keywords(st, (unsigned)kw, err);
		if (ret < 0)
			return ret;
	}
	ret = parse_records(st, d, len, err);
	if (ret < 0)
		return ret;
	check_counters(st);
	return 0;
}

int dovi_mainfile_parse(const uint8_t *data, size_t len,
			struct dovi_state **st_r, struct dbox_err *err)
{
	struct dovi_state *st = dovi_state_new();
	int ret;

	if (st == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	ret = parse_into(st, data, len, err);
	if (ret < 0) {
		dovi_state_free(st);
		return ret;
	}
	*st_r = st;
	return 0;
}

int dovi_mainfile_read(const char *path, struct dovi_state **st_r,
		       struct dbox_err *err)
{
	uint8_t *data;
	size_t len;
	int fd = dovi_file_open(path, err), ret;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	ret = dovi_file_read(fd, 0, path, &data, &len, err);
	close(fd);
	if (ret < 0)
		return ret;
	ret = dovi_mainfile_parse(data, len, st_r, err);
	free(data);
	return ret < 0 ? ret : 1;
}
