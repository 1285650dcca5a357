/* dovecot-load.c - loading an index from scratch: dovecot.index, which
 * log files to replay from where, and the fallbacks of dovecot-index.md
 * 5.1 and 6 (see dovecot-load.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dovecot/dovecot-file.h"
#include "dovecot/dovecot-load.h"
#include "dovecot/dovecot-mainfile.h"
#include "util/util.h"

#define LOAD_ATTEMPTS 3

/* One file of the replay chain and where replaying starts in it. */
struct chain_link {
	struct dovi_log *log;
	uint64_t start;
};

/* Copies a message, cut to fit (these are log texts). */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int path_with(char *buf, size_t len, const char *prefix,
		     const char *suffix, struct dbox_err *err)
{
	if (dbox_path(buf, len, "%s%s", prefix, suffix) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long: %s%s",
				 prefix, suffix);
	return 0;
}

/* ---- opening the logs ------------------------------------------------- */

/* Opens .log.2 and .log as the reference reader does; logs[0..*n_r) in
 * seq order, the last one being .log.  Without a .log there are none: a
 * lone .log.2 is not consulted (3.6). */
static int open_logs(const char *prefix, struct dovi_log *logs[2],
		     unsigned *n_r, struct dbox_err *err)
{
	char path[4096], path2[4096];
	struct dovi_log *log2 = NULL, *log = NULL;
	int ret;

	*n_r = 0;
	if (path_with(path, sizeof(path), prefix, ".log", err) < 0 ||
	    path_with(path2, sizeof(path2), prefix, ".log.2", err) < 0)
		return -ENAMETOOLONG;
	if (access(path, F_OK) < 0)
		return 0;
	ret = dovi_log_open(path2, false, &log2, err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	ret = dovi_log_open(path, true, &log, err);
	if (ret < 0) {
		dovi_log_free(log2);
		/* vanished meanwhile: a rotation, let the caller retry */
		return ret == -ENOENT ? -EAGAIN : ret;
	}
	if (log->indexid == 0) {
		dovi_log_free(log2);
		dovi_log_free(log);
		return dbox_fail(err, -EBADMSG, "%s is marked corrupted",
				 path);
	}
	/* indexid 0 = marked corrupted; seq not below .log's = stale or the
	 * same inode in the middle of a rotation */
	if (log2 != NULL && (log2->indexid == 0 ||
			     log2->file_seq >= log->file_seq)) {
		dovi_log_free(log2);
		log2 = NULL;
	}
	if (log2 != NULL)
		logs[(*n_r)++] = log2;
	logs[(*n_r)++] = log;
	return 0;
}

/* ---- choosing the chain (5.1 steps 3-6) ------------------------------- */

/* Builds the chain of files from (start_seq, start_off) to the head.
 * Returns the number of links, or -EBADMSG. */
static int build_chain(struct dovi_log **logs, unsigned n, uint64_t start_seq,
		       uint64_t start_off, struct chain_link *chain,
		       struct dbox_err *err)
{
	const struct dovi_log *head = logs[n - 1];
	unsigned count = 0;
	uint64_t seq = start_seq;

	while (seq <= head->file_seq) {
		unsigned i, r;

		for (i = 0; i < n && logs[i]->file_seq != seq; i++)
			;
		if (i < n) {
			chain[count].log = logs[i];
			chain[count].start = seq == start_seq ? start_off :
				logs[i]->hdr_size;
			count++;
			seq++;
			continue;
		}
		/* a missing file is fine if a later one starts afresh */
		for (r = 0; r < n; r++) {
			if (logs[r]->file_seq >= seq &&
			    logs[r]->prev_file_seq == 0)
				break;
		}
		if (r == n)
			return dbox_fail(err, -EBADMSG, "log file seq %llu is "
					 "missing", (unsigned long long)seq);
		count = 0;
		seq = logs[r]->file_seq;
	}
	return (int)count;
}

/* The newest reset file in the chain discards the state before it,
 * unless replay starts in the middle of that very file (5.1 step 5). */
static int apply_reset(struct dovi_load *ld, struct chain_link *chain,
		       unsigned *count, struct dbox_err *err)
{
	for (unsigned k = *count; k-- > 0;) {
		const struct dovi_log *lf = chain[k].log;
		struct dovi_state *fresh;

		if (lf->prev_file_seq != 0)
			continue;
		if (k == 0 && chain[0].start != lf->hdr_size)
			return 0;
		fresh = dovi_state_new();
		if (fresh == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		dovi_set_hdr32(fresh, DOVI_H_INDEXID,
			       dovi_hdr32(ld->st, DOVI_H_INDEXID));
		dovi_state_free(ld->st);
		ld->st = fresh;
		memmove(chain, chain + k, sizeof(*chain) * (*count - k));
		*count -= k;
		chain[0].start = chain[0].log->hdr_size;
		ld->info.reset = true;
		return 0;
	}
	return 0;
}

static int check_chain(struct chain_link *chain, unsigned count,
		       struct dbox_err *err)
{
	const struct dovi_log *f0 = chain[0].log;

	if (chain[0].start == 0)
		chain[0].start = f0->hdr_size;
	if (chain[0].start < f0->hdr_size || chain[0].start > f0->sync_offset)
		return dbox_fail(err, -EBADMSG, "start offset %llu invalid "
				 "for log seq %u (size %llu)",
				 (unsigned long long)chain[0].start,
				 f0->file_seq,
				 (unsigned long long)f0->sync_offset);
	for (unsigned i = 0; i + 1 < count; i++) {
		const struct dovi_log *a = chain[i].log, *b = chain[i + 1].log;

		if (b->prev_file_seq == a->file_seq &&
		    b->prev_file_offset != a->sync_offset)
			return dbox_fail(err, -EBADMSG, "log seq %u size %llu "
					 "!= next file's prev_file_offset %u",
					 a->file_seq,
					 (unsigned long long)a->sync_offset,
					 b->prev_file_offset);
	}
	return 0;
}

/* ---- replaying -------------------------------------------------------- */

/* Validates the records of log from..to without applying them, so that a
 * refresh can refuse a bad batch before touching the state. */
int dovi_load_validate(const struct dovi_log *log, uint64_t from, uint64_t to,
		    struct dbox_err *err)
{
	struct dovi_log_rec rec;
	int ret;

	while ((ret = dovi_log_next(log, &from, to, &rec, err)) > 0) {
		uint32_t t = dovi_log_real_type(rec.type);

		if (!dovi_log_record_valid(t, rec.payload, rec.size))
			return dbox_fail(err, -EBADMSG, "%s seq %u offset "
					 "%llu: invalid record (type 0x%x)",
					 log->path, log->file_seq,
					 (unsigned long long)rec.offset,
					 rec.type);
	}
	return ret;
}

int dovi_load_apply(struct dovi_replay *rp, const struct dovi_log *log,
		       uint64_t from, uint64_t to, struct dbox_err *err)
{
	struct dovi_log_rec rec;
	int ret;

	while ((ret = dovi_log_next(log, &from, to, &rec, err)) > 0) {
		ret = dovi_replay_apply(rp, rec.type, rec.payload, rec.size,
					err);
		if (ret < 0)
			return ret;
	}
	return ret;
}

void dovi_load_set_position(struct dovi_state *st, struct dovi_load_info *info,
			 const struct dovi_log *head)
{
	dovi_set_hdr32(st, DOVI_H_LOG_FILE_SEQ, head->file_seq);
	dovi_set_hdr32(st, DOVI_H_LOG_HEAD_OFFSET, (uint32_t)head->sync_offset);
	info->to_seq = head->file_seq;
	info->to_offset = (uint32_t)head->sync_offset;
}

static int replay_chain(struct dovi_load *ld, struct chain_link *chain,
			unsigned count, struct dbox_err *err)
{
	struct dovi_replay rp;
	int ret = 0;

	for (unsigned i = 0; i < count && ret == 0; i++)
		ret = dovi_load_validate(chain[i].log, chain[i].start,
			       chain[i].log->sync_offset, err);
	dovi_replay_init(&rp, ld->st);
	for (unsigned i = 0; i < count && ret == 0; i++)
		ret = dovi_load_apply(&rp, chain[i].log, chain[i].start,
				  chain[i].log->sync_offset, err);
	dovi_replay_finish(&rp);
	return ret;
}

/* Starting position for the replay: the index's (seq, head offset), or
 * (1, 0) without one; moved to the next file's start when the index ends
 * exactly where that file begins (5.1 step 3). */
static int start_position(struct dovi_load *ld, struct dovi_log **logs,
			  unsigned n, uint64_t *seq_r, uint64_t *off_r,
			  struct dbox_err *err)
{
	const struct dovi_log *head = logs[n - 1];

	*seq_r = dovi_hdr32(ld->st, DOVI_H_LOG_FILE_SEQ);
	*off_r = dovi_hdr32(ld->st, DOVI_H_LOG_HEAD_OFFSET);
	for (unsigned i = 0; i < n; i++) {
		if (logs[i]->prev_file_seq != 0 &&
		    logs[i]->prev_file_seq == *seq_r &&
		    logs[i]->prev_file_offset == *off_r) {
			*seq_r = logs[i]->file_seq;
			*off_r = logs[i]->hdr_size;
			break;
		}
	}
	if (*seq_r > head->file_seq)
		return dbox_fail(err, -EBADMSG, "index points to log seq %llu, "
				 "newest log is %u", (unsigned long long)*seq_r,
				 head->file_seq);
	return 0;
}

/* Everything after the logs are open (5.1 steps 3-7). */
static int replay_logs(struct dovi_load *ld, struct dovi_log **logs, unsigned n,
		       struct dbox_err *err)
{
	struct chain_link chain[2];
	uint64_t seq, off;
	int ret = start_position(ld, logs, n, &seq, &off, err), count;
	unsigned cnt;

	if (ret < 0)
		return ret;
	count = build_chain(logs, n, seq, off, chain, err);
	if (count < 0)
		return count;
	cnt = (unsigned)count;
	ret = apply_reset(ld, chain, &cnt, err);
	if (ret == 0)
		ret = check_chain(chain, cnt, err);
	if (ret < 0)
		return ret;
	ld->info.replayed = true;
	ld->info.from_seq = chain[0].log->file_seq;
	ld->info.from_offset = (uint32_t)chain[0].start;
	ret = replay_chain(ld, chain, cnt, err);
	if (ret < 0)
		return ret;
	dovi_load_set_position(ld->st, &ld->info, logs[n - 1]);
	return 0;
}

static void free_logs(struct dovi_log **logs, unsigned n, struct dovi_load *ld)
{
	for (unsigned i = 0; i < n; i++) {
		if (ld != NULL && logs[i] == ld->head)
			continue;
		dovi_log_free(logs[i]);
	}
}

/* Sets up the state to replay onto and drops logs of another indexid. */
static int replay_head_check(struct dovi_load *ld, struct dovi_log **logs,
			     unsigned *n, struct dbox_err *err)
{
	const struct dovi_log *head = logs[*n - 1];

	if (ld->st == NULL) {
		/* empty map at (1, 0): works only if the chain reaches a
		 * file that starts from scratch */
		ld->st = dovi_state_new();
		if (ld->st == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		dovi_set_hdr32(ld->st, DOVI_H_INDEXID, head->indexid);
	} else if (dovi_hdr32(ld->st, DOVI_H_INDEXID) != head->indexid) {
		/* someone recreated the index (6.4) */
		return dbox_fail(err, -EBADMSG, "indexid mismatch between "
				 "index (%u) and log (%u)",
				 dovi_hdr32(ld->st, DOVI_H_INDEXID),
				 head->indexid);
	}
	if (*n == 2 && logs[0]->indexid != head->indexid) {
		dovi_log_free(logs[0]);
		logs[0] = logs[1];
		*n = 1;
	}
	return 0;
}

/* Replays the log chain on top of ld->st (NULL: no usable index). */
static int replay(const char *prefix, struct dovi_load *ld,
		  struct dbox_err *err)
{
	struct dovi_log *logs[2];
	unsigned n;
	int ret;

	ld->info.index_file = ld->st != NULL;
	ret = open_logs(prefix, logs, &n, err);
	if (ret < 0)
		return ret;
	if (n == 0) {
		if (ld->st == NULL && ld->info.index_ignored[0] != '\0')
			return dbox_fail(err, -EBADMSG, "%s unusable (%s) and "
					 "no log", prefix,
					 ld->info.index_ignored);
		if (ld->st == NULL)
			return dbox_fail(err, -ENOENT, "%s: neither index nor "
					 "log exists", prefix);
		snprintf(ld->info.warning, sizeof(ld->info.warning),
			 "no transaction log");
		return 0;
	}
	ret = replay_head_check(ld, logs, &n, err);
	if (ret == 0)
		ret = replay_logs(ld, logs, n, err);
	if (ret == 0)
		ld->head = logs[n - 1];
	free_logs(logs, n, ret == 0 ? ld : NULL);
	return ret;
}

/* ---- a whole load (5.1) ----------------------------------------------- */

void dovi_load_clear(struct dovi_load *ld)
{
	dovi_state_free(ld->st);
	dovi_log_free(ld->head);
	memset(ld, 0, sizeof(*ld));
}

/* A dovecot.index with fewer records than messages_count: Dovecot's
 * rebuild ends up with a replay of the whole chain when the chain reaches
 * a reset log (6.5); try that first. */
static int load_truncated(const char *prefix, struct dovi_load *ld,
			  struct dbox_err *err)
{
	struct dovi_load full;
	struct dbox_err e2;
	int ret;

	memset(&full, 0, sizeof(full));
	full.info = ld->info;
	snprintf(full.info.index_ignored, sizeof(full.info.index_ignored),
		 "truncated index");
	ret = replay(prefix, &full, &e2);
	if (ret == 0) {
		dovi_load_clear(ld);
		*ld = full;
		return 1;
	}
	dovi_load_clear(&full);
	if (ret != -EBADMSG && err != NULL)
		*err = e2;
	return ret == -EBADMSG ? 0 : ret;
}

static int load_once(const char *prefix, struct dovi_load *ld,
		     struct dbox_err *err)
{
	struct dbox_err e2;
	int ret;

	memset(ld, 0, sizeof(*ld));
	ret = dovi_mainfile_read(prefix, &ld->st, &e2);
	if (ret == -EBADMSG) {
		/* Dovecot ignores a broken dovecot.index and goes by the
		 * log alone (possible if the chain reaches a reset log) */
		copy_str(ld->info.index_ignored,
			 sizeof(ld->info.index_ignored), e2.msg);
		ld->st = NULL;
	} else if (ret < 0) {
		if (err != NULL)
			*err = e2;
		return ret;
	}
	if (ld->st != NULL && ld->st->truncated) {
		ret = load_truncated(prefix, ld, err);
		if (ret < 0)
			dovi_load_clear(ld);
		if (ret != 0)
			return ret < 0 ? ret : 0;
	}
	ret = replay(prefix, ld, err);
	if (ret < 0)
		dovi_load_clear(ld);
	return ret;
}

static void files_sig(const char *prefix, struct dovi_file_sig sig[3])
{
	static const char *const suffix[] = { "", ".log", ".log.2" };
	char path[4096];

	for (unsigned i = 0; i < 3; i++) {
		memset(&sig[i], 0, sizeof(sig[i]));
		if (dbox_path(path, sizeof(path), "%s%s", prefix,
			      suffix[i]) == 0)
			dovi_file_sig_get(path, &sig[i]);
	}
}

static bool sigs_equal(const struct dovi_file_sig a[3],
		       const struct dovi_file_sig b[3])
{
	for (unsigned i = 0; i < 3; i++) {
		if (!dovi_file_sig_equal(&a[i], &b[i]))
			return false;
	}
	return true;
}

/* Loads, retrying while a writer changes the files under our feet (an
 * inconsistent view is normally a race, 5.3). */
int dovi_load(const char *prefix, struct dovi_load *ld, struct dbox_err *err)
{
	struct dovi_file_sig before[3], after[3];
	int ret = -EAGAIN;

	for (unsigned attempt = 0; attempt < LOAD_ATTEMPTS; attempt++) {
		files_sig(prefix, before);
		ret = load_once(prefix, ld, err);
		if (ret != -EBADMSG && ret != -EAGAIN)
			break;
		files_sig(prefix, after);
		if (ret == -EBADMSG && sigs_equal(before, after))
			break;
	}
	if (ret == -EAGAIN)
		dbox_fail(err, -EBADMSG, "%s.log keeps changing while read",
			  prefix);
	return ret == -EAGAIN ? -EBADMSG : ret;
}
