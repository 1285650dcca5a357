/* dovecot-reader.c - the index reader object: a loaded index that follows
 * its log afterwards (dovecot-index.md 5.3), and its accessors.  Public
 * API: dbox/dovecot-index.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbox/dovecot-index.h"
#include "dovecot/dovecot-file.h"
#include "dovecot/dovecot-load.h"
#include "dovecot/dovecot-log.h"
#include "dovecot/dovecot-replay.h"
#include "dovecot/dovecot-state.h"
#include "util/util.h"

struct dovi_index {
	char *prefix;
	struct dovi_state *st;
	struct dovi_load_info info;
	struct dovi_log *head;      /* the .log, fd kept; NULL: index alone */
	struct dovi_file_sig index_sig;     /* dovecot.index if head == NULL */
	bool need_reload;
};

/* ---- the reader object ------------------------------------------------ */

static void index_take(struct dovi_index *idx, struct dovi_load *ld)
{
	dovi_state_free(idx->st);
	dovi_log_free(idx->head);
	idx->st = ld->st;
	idx->head = ld->head;
	idx->info = ld->info;
	idx->need_reload = false;
	memset(&idx->index_sig, 0, sizeof(idx->index_sig));
	if (idx->head == NULL)
		dovi_file_sig_get(idx->prefix, &idx->index_sig);
}

int dovi_index_open(const char *prefix, struct dovi_index **idx_r,
		    struct dbox_err *err)
{
	struct dovi_index *idx = calloc(1, sizeof(*idx));
	struct dovi_load ld;
	int ret;

	if (idx == NULL || (idx->prefix = strdup(prefix)) == NULL) {
		free(idx);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	ret = dovi_load(prefix, &ld, err);
	if (ret < 0) {
		dovi_index_free(idx);
		return ret;
	}
	index_take(idx, &ld);
	*idx_r = idx;
	return 0;
}

void dovi_index_free(struct dovi_index *idx)
{
	if (idx == NULL)
		return;
	dovi_state_free(idx->st);
	dovi_log_free(idx->head);
	free(idx->prefix);
	free(idx);
}

static int reload(struct dovi_index *idx, bool *changed_r,
		  struct dbox_err *err)
{
	struct dovi_load ld;
	int ret = dovi_load(idx->prefix, &ld, err);

	if (ret < 0) {
		idx->need_reload = true;
		return ret;
	}
	index_take(idx, &ld);
	*changed_r = true;
	return 0;
}

/* Does the head log's header still say what it said when we read it?
 * Dovecot marks a corrupted log by writing indexid 0 into it. */
static bool head_unchanged(const struct dovi_log *log)
{
	uint8_t buf[DOVI_LOG_HDR_FULL];
	struct dovi_log now;
	ssize_t n;

	n = pread(log->fd, buf, sizeof(buf), 0);
	if (n < DOVI_LOG_HDR_MIN)
		return false;
	memset(&now, 0, sizeof(now));
	if (dovi_log_parse_header(&now, buf, (size_t)n, NULL) < 0)
		return false;
	return now.indexid == log->indexid && now.file_seq == log->file_seq &&
		now.hdr_size == log->hdr_size &&
		now.prev_file_seq == log->prev_file_seq &&
		now.prev_file_offset == log->prev_file_offset;
}

/* Reads what was appended to log after its sync_offset; *from_r = the old
 * sync_offset.  Returns 1 if the log is still consistent, 0 if it must be
 * reloaded, or -errno. */
static int read_tail(struct dovi_log *log, uint64_t *from_r,
		     struct dbox_err *err)
{
	struct stat st;
	int ret;

	*from_r = log->sync_offset;
	if (!head_unchanged(log) || fstat(log->fd, &st) < 0)
		return 0;
	/* 2.3 only truncates garbage after the last complete transaction */
	if ((uint64_t)st.st_size < log->sync_offset)
		return 0;
	ret = dovi_log_read_from(log, log->sync_offset, err);
	if (ret < 0)
		return ret;
	if (dovi_load_validate(log, *from_r, log->sync_offset, err) < 0) {
		/* stay before the bad record: nothing of it is applied */
		log->sync_offset = *from_r;
		return -EBADMSG;
	}
	return 1;
}

static int apply_tail(struct dovi_index *idx, struct dovi_replay *rp,
		      struct dovi_log *log, uint64_t from,
		      struct dbox_err *err)
{
	int ret = dovi_load_apply(rp, log, from, log->sync_offset, err);

	if (ret < 0)
		idx->need_reload = true;
	return ret;
}

/* The .log is the same file: apply what was appended. */
static int follow_append(struct dovi_index *idx, bool *changed_r,
			 struct dbox_err *err)
{
	struct dovi_replay rp;
	uint64_t from;
	int ret = read_tail(idx->head, &from, err);

	if (ret <= 0)
		return ret == 0 ? reload(idx, changed_r, err) : ret;
	if (from == idx->head->sync_offset)
		return 0;
	dovi_replay_init(&rp, idx->st);
	ret = apply_tail(idx, &rp, idx->head, from, err);
	dovi_replay_finish(&rp);
	if (ret < 0)
		return ret;
	dovi_load_set_position(idx->st, &idx->info, idx->head);
	*changed_r = true;
	return 0;
}

/* Does next (the new .log) continue old exactly, with valid records? */
static bool continues(const struct dovi_log *next, const struct dovi_log *old)
{
	return next->indexid == old->indexid &&
		next->prev_file_seq == old->file_seq &&
		next->prev_file_offset == old->sync_offset &&
		dovi_load_validate(next, next->hdr_size, next->sync_offset,
				   NULL) == 0;
}

/* The .log was rotated: finish the old file through our descriptor, then
 * continue in the new one if it continues the old one exactly. */
static int follow_rotation(struct dovi_index *idx, const char *path,
			   bool *changed_r, struct dbox_err *err)
{
	struct dovi_log *old = idx->head, *next = NULL;
	struct dovi_replay rp;
	uint64_t from;
	int ret = read_tail(old, &from, err);

	if (ret <= 0)
		return ret == 0 ? reload(idx, changed_r, err) : ret;
	ret = dovi_log_open(path, true, &next, err);
	if (ret == -ENOENT || ret == -EBADMSG ||
	    (ret == 0 && !continues(next, old))) {
		dovi_log_free(next);
		return reload(idx, changed_r, err);
	}
	if (ret < 0) {
		/* the old file's tail isn't applied yet: read it again */
		old->sync_offset = from;
		return ret;
	}
	dovi_replay_init(&rp, idx->st);
	ret = apply_tail(idx, &rp, old, from, err);
	if (ret == 0)
		ret = apply_tail(idx, &rp, next, next->hdr_size, err);
	dovi_replay_finish(&rp);
	idx->head = next;
	dovi_log_free(old);
	if (ret < 0)
		return ret;
	dovi_load_set_position(idx->st, &idx->info, next);
	*changed_r = true;
	return 0;
}

static int refresh_no_log(struct dovi_index *idx, const char *log_path,
			  bool *changed_r, struct dbox_err *err)
{
	struct dovi_file_sig sig;

	dovi_file_sig_get(idx->prefix, &sig);
	if (access(log_path, F_OK) == 0 ||
	    !dovi_file_sig_equal(&sig, &idx->index_sig))
		return reload(idx, changed_r, err);
	return 0;
}

int dovi_index_refresh(struct dovi_index *idx, bool *changed_r,
		       struct dbox_err *err)
{
	char path[4096];
	bool dummy;
	struct stat st;

	if (changed_r == NULL)
		changed_r = &dummy;
	*changed_r = false;
	if (dbox_path(path, sizeof(path), "%s.log", idx->prefix) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long: %s.log",
				 idx->prefix);
	if (idx->need_reload)
		return reload(idx, changed_r, err);
	if (idx->head == NULL)
		return refresh_no_log(idx, path, changed_r, err);
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return reload(idx, changed_r, err);
		return dbox_fail(err, -errno, "stat(%s): %s", path,
				 strerror(errno));
	}
	if (st.st_ino != idx->head->ino || st.st_dev != idx->head->dev)
		return follow_rotation(idx, path, changed_r, err);
	return follow_append(idx, changed_r, err);
}

/* ---- accessors -------------------------------------------------------- */

const char *dovi_index_prefix(const struct dovi_index *idx)
{
	return idx->prefix;
}

void dovi_index_header(const struct dovi_index *idx, struct dovi_header *hdr)
{
	const struct dovi_state *st = idx->st;

	hdr->indexid = dovi_hdr32(st, DOVI_H_INDEXID);
	hdr->flags = dovi_hdr32(st, DOVI_H_FLAGS);
	hdr->uid_validity = dovi_hdr32(st, DOVI_H_UID_VALIDITY);
	hdr->next_uid = dovi_hdr32(st, DOVI_H_NEXT_UID);
	hdr->messages_count = st->count;
	hdr->first_recent_uid = dovi_hdr32(st, DOVI_H_FIRST_RECENT_UID);
	hdr->log_file_seq = dovi_hdr32(st, DOVI_H_LOG_FILE_SEQ);
	hdr->log_file_head_offset = dovi_hdr32(st, DOVI_H_LOG_HEAD_OFFSET);
}

const struct dovi_load_info *dovi_index_info(const struct dovi_index *idx)
{
	return &idx->info;
}

unsigned dovi_index_error_count(const struct dovi_index *idx)
{
	return idx->st->error_count;
}

const char *dovi_index_error(const struct dovi_index *idx, unsigned i)
{
	if (i >= idx->st->error_count || i >= DOVI_ERRORS_KEPT)
		return NULL;
	return idx->st->errors[i] != NULL ? idx->st->errors[i] :
		"(message lost: out of memory)";
}

bool dovi_index_deleted(const struct dovi_index *idx)
{
	return idx->st->deleted;
}

uint32_t dovi_index_count(const struct dovi_index *idx)
{
	return idx->st->count;
}

uint32_t dovi_index_uid(const struct dovi_index *idx, uint32_t pos)
{
	return pos < idx->st->count ? idx->st->uids[pos] : 0;
}

uint8_t dovi_index_flags(const struct dovi_index *idx, uint32_t pos)
{
	return pos < idx->st->count ? idx->st->flags[pos] : 0;
}

bool dovi_index_lookup(const struct dovi_index *idx, uint32_t uid,
		       uint32_t *pos_r)
{
	return dovi_state_find(idx->st, uid, pos_r);
}

unsigned dovi_index_keyword_count(const struct dovi_index *idx)
{
	return idx->st->kw_count;
}

const char *dovi_index_keyword(const struct dovi_index *idx, unsigned kw)
{
	return kw < idx->st->kw_count ? idx->st->keywords[kw] : NULL;
}

bool dovi_index_has_keyword(const struct dovi_index *idx, uint32_t pos,
			    unsigned kw)
{
	return pos < idx->st->count && dovi_state_kw_get(idx->st, pos, kw);
}

int dovi_index_ext(const struct dovi_index *idx, const char *name)
{
	return dovi_state_ext_find(idx->st, name);
}

bool dovi_index_ext_info(const struct dovi_index *idx, int ext,
			 struct dovi_ext_info *info_r)
{
	const struct dovi_ext *e;

	if (ext < 0 || (unsigned)ext >= idx->st->ext_count)
		return false;
	e = &idx->st->exts[ext];
	info_r->reset_id = e->reset_id;
	info_r->hdr_size = e->hdr_size;
	info_r->record_size = e->record_size;
	info_r->record_align = e->record_align;
	return true;
}

const uint8_t *dovi_index_ext_record(const struct dovi_index *idx, int ext,
				     uint32_t pos, size_t *len_r)
{
	*len_r = 0;
	if (ext < 0 || (unsigned)ext >= idx->st->ext_count ||
	    pos >= idx->st->count)
		return NULL;
	return dovi_state_ext_data(idx->st, (unsigned)ext, pos, len_r);
}

size_t dovi_index_ext_header(const struct dovi_index *idx, int ext,
			     size_t off, void *buf, size_t len)
{
	const struct dovi_ext *e;

	if (ext < 0 || (unsigned)ext >= idx->st->ext_count) {
		memset(buf, 0, len);
		return 0;
	}
	e = &idx->st->exts[ext];
	dovi_state_ext_hdr_read(idx->st, (unsigned)ext, off, buf, len);
	if (off >= e->hdr_size)
		return 0;
	return e->hdr_size - off < len ? e->hdr_size - off : len;
}

bool dovi_index_mdbox_rec(const struct dovi_index *idx, uint32_t pos,
			  uint32_t *map_uid_r, uint32_t *save_date_r)
{
	size_t len;
	const uint8_t *d = dovi_index_ext_record(idx,
						 dovi_index_ext(idx, "mdbox"),
						 pos, &len);

	if (d == NULL || len < 8)
		return false;
	*map_uid_r = dovi_le32(d);
	*save_date_r = dovi_le32(d + 4);
	return true;
}

bool dovi_index_map_rec(const struct dovi_index *map, uint32_t pos,
			uint32_t *file_id_r, uint32_t *offset_r,
			uint32_t *size_r, bool *have_refcount_r,
			uint16_t *refcount_r)
{
	int map_ext = dovi_index_ext(map, "map");
	int ref_ext = dovi_index_ext(map, "ref");
	size_t len, rlen;
	const uint8_t *d = dovi_index_ext_record(map, map_ext, pos, &len);
	const uint8_t *r = dovi_index_ext_record(map, ref_ext, pos, &rlen);

	if (d == NULL || len < 12)
		return false;
	*file_id_r = dovi_le32(d);
	*offset_r = dovi_le32(d + 4);
	*size_r = dovi_le32(d + 8);
	*have_refcount_r = r != NULL && rlen >= 2;
	*refcount_r = *have_refcount_r ? dovi_le16(r) : 0;
	return true;
}

bool dovi_index_map_hdr(const struct dovi_index *map,
			uint32_t *highest_file_id_r,
			uint32_t *rebuild_count_r)
{
	int ext = dovi_index_ext(map, "map");
	uint8_t b[8];

	if (ext < 0 || dovi_index_ext_header(map, ext, 0, b, 8) < 8)
		return false;
	*highest_file_id_r = dovi_le32(b);
	*rebuild_count_r = dovi_le32(b + 4);
	return true;
}
