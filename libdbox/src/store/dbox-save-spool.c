/* dbox-save-spool.c - a save transaction's finished messages beyond its
 * window: the spool file they go to when the window is full (and are read
 * back from, in order, by the commit), and the calls that change a
 * finished message (state, mode) or move them all to another transaction
 * (merge), wherever the message is. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbox/save.h"
#include "index/dindex-msg.h"
#include "store/dbox-save-private.h"
#include "store/mdbox-file.h"
#include "store/store-private.h"

/* The spool: an unlinked file beside the scratch files (not in /tmp,
 * which may be memory), else an anonymous temp file. */
static int spool_open(struct dbox_save_txn *txn, struct dbox_err *err)
{
	int fd;

	if (txn->spool != NULL)
		return fseeko(txn->spool, 0, SEEK_END) == 0 ? 0 :
			dbox_fail(err, -errno, "spool: %m");
	fd = open(txn->store->owner_dir, O_TMPFILE | O_RDWR | O_CLOEXEC,
		  0600);
	txn->spool = fd >= 0 ? fdopen(fd, "w+") : tmpfile();
	if (txn->spool == NULL) {
		if (fd >= 0)
			close(fd);
		return dbox_fail(err, -errno, "spool file: %m");
	}
	return 0;
}

static int spool_put(FILE *f, const struct save_msg *m)
{
	struct spool_rec r = {
		.mailbox_id = m->mailbox_id, .received = m->received,
		.received_ns = m->received_ns, .offset = m->offset,
		.end = m->end, .size = m->vs.size, .vsize = m->vs.vsize,
		.tmp_seq = m->tmp_seq, .flags = m->flags,
		.keywords = m->keywords, .mode = m->mode,
		.file_id = m->file_id, .preset_uid = m->preset_uid,
		.guid_len = (uint16_t)strlen(m->guid),
		.base_len = (uint16_t)strlen(m->base),
		.in_new = m->in_new, .new_info = m->new_info,
		.has_base = m->has_base, .keep_dir_mtime = m->keep_dir_mtime,
	};

	if (fwrite(&r, sizeof(r), 1, f) != 1 ||
	    fwrite(m->guid, 1, r.guid_len, f) != r.guid_len ||
	    fwrite(m->base, 1, r.base_len, f) != r.base_len)
		return -EIO;
	return 0;
}

static int spool_get(FILE *f, struct save_msg *m)
{
	struct spool_rec r;

	if (fread(&r, sizeof(r), 1, f) != 1 || r.guid_len > DBOX_GUID_MAX ||
	    r.base_len > DBOX_NAME_MAX)
		return -EIO;
	memset(m, 0, sizeof(*m));
	if (fread(m->guid, 1, r.guid_len, f) != r.guid_len ||
	    fread(m->base, 1, r.base_len, f) != r.base_len)
		return -EIO;
	m->mailbox_id = r.mailbox_id;
	m->received = r.received;
	m->received_ns = r.received_ns;
	m->offset = r.offset;
	m->end = r.end;
	m->vs.size = r.size;
	m->vs.vsize = r.vsize;
	m->tmp_seq = r.tmp_seq;
	m->flags = r.flags;
	m->keywords = r.keywords;
	m->mode = r.mode;
	m->file_id = r.file_id;
	m->preset_uid = r.preset_uid;
	m->in_new = r.in_new;
	m->new_info = r.new_info;
	m->has_base = r.has_base;
	m->keep_dir_mtime = r.keep_dir_mtime;
	m->synced = true;
	return 0;
}

/* The window is full: its files are made durable and closed, and the
 * messages go to the spool. */
int dbox_save_spill(struct dbox_save_txn *txn, struct dbox_err *err)
{
	unsigned int n = txn->count - txn->spilled;
	int ret = dbox_save_sync_files(txn, false, err);

	if (ret == 0)
		ret = spool_open(txn, err);
	for (unsigned int i = 0; ret == 0 && i < n; i++) {
		struct save_msg *m = &txn->msgs[i];

		if (m->app == NULL && m->file != NULL) {
			dfs_sync_close(m->file);
			m->file = NULL;
		}
		if (spool_put(txn->spool, m) < 0)
			ret = dbox_fail(err, -EIO, "write spool: %m");
	}
	if (ret == 0)
		txn->spilled += n;
	return ret;
}

/* Calls fn for messages 0..limit-1 in order, spooled ones as copies. */
int dbox_save_each_msg(struct dbox_save_txn *txn, unsigned int limit,
		       dbox_save_msg_fn *fn, void *ctx, struct dbox_err *err)
{
	struct save_msg copy;
	unsigned int i = 0;
	int ret = 0;

	if (txn->spilled > 0 && (fflush(txn->spool) != 0 ||
				 fseeko(txn->spool, 0, SEEK_SET) != 0))
		return dbox_fail(err, -EIO, "spool: %m");
	for (; ret == 0 && i < txn->spilled && i < limit; i++) {
		ret = spool_get(txn->spool, &copy);
		if (ret < 0)
			return dbox_fail(err, ret, "read spool: %m");
		ret = fn(txn, &copy, i, ctx, err);
	}
	for (; ret == 0 && i < txn->count && i < limit; i++)
		ret = fn(txn, dbox_save_msg_at(txn, i), i, ctx, err);
	return ret;
}

static bool finished(const struct dbox_save_txn *txn, unsigned int i)
{
	return i < txn->count && !(txn->writing && i == txn->count - 1);
}

/* Finished message i to change: in the window, or its spool record read
 * into *copy at *off_r (written back by msg_put_back). */
static int msg_get(struct dbox_save_txn *txn, unsigned int i,
		   struct save_msg *copy, struct save_msg **m_r, off_t *off_r,
		   struct dbox_err *err)
{
	if (!finished(txn, i))
		return dbox_fail(err, -EINVAL, "no such finished message");
	if (i >= txn->spilled) {
		*m_r = dbox_save_msg_at(txn, i);
		return 0;
	}
	if (fflush(txn->spool) != 0 || fseeko(txn->spool, 0, SEEK_SET) != 0)
		return dbox_fail(err, -EIO, "spool: %m");
	for (unsigned int k = 0; k <= i; k++) {
		*off_r = ftello(txn->spool);
		if (spool_get(txn->spool, copy) < 0)
			return dbox_fail(err, -EIO, "read spool: %m");
	}
	*m_r = copy;
	return 0;
}

static int msg_put_back(struct dbox_save_txn *txn, struct save_msg *m,
			const struct save_msg *copy, off_t off,
			struct dbox_err *err)
{
	if (m != copy)
		return 0;
	if (fseeko(txn->spool, off, SEEK_SET) != 0 ||
	    spool_put(txn->spool, m) < 0 || fflush(txn->spool) != 0)
		return dbox_fail(err, -EIO, "write spool: %m");
	return 0;
}

int dbox_save_set_state(struct dbox_save_txn *txn, unsigned int i,
			uint32_t flags, uint32_t keywords,
			enum dbox_maildir_dir dir, struct dbox_err *err)
{
	struct save_msg copy, *m;
	off_t off = 0;
	int ret = msg_get(txn, i, &copy, &m, &off, err);

	if (ret < 0)
		return ret;
	m->flags = flags & DBOX_FLAGS_MASK;
	m->keywords = keywords;
	m->in_new = dir != DBOX_DIR_CUR;
	m->new_info = dir == DBOX_DIR_NEW_INFO;
	return msg_put_back(txn, m, &copy, off, err);
}

int dbox_save_set_mode(struct dbox_save_txn *txn, unsigned int i,
		       uint32_t mode, struct dbox_err *err)
{
	struct save_msg copy, *m;
	off_t off = 0;
	int ret = msg_get(txn, i, &copy, &m, &off, err);

	if (ret < 0)
		return ret;
	m->mode = mode;
	return msg_put_back(txn, m, &copy, off, err);
}

static int merge_msg(struct dbox_save_txn *src, struct save_msg *m,
		     unsigned int i, void *ctx, struct dbox_err *err)
{
	struct dbox_save_txn *dst = ctx;
	struct save_msg *d;
	int ret = dbox_save_msg_alloc(dst, &d, err);

	(void)src;
	(void)i;
	if (ret < 0)
		return ret;
	*d = *m;
	/* the file (if open) is dst's now */
	m->file = NULL;
	return dbox_save_box_add(dst, m->mailbox_id, m->preset_uid, 1) < 0 ?
		dbox_fail(err, -ENOMEM, "out of memory") : 0;
}

/* Room in dst's window for all of src, so that the merge cannot fail
 * half way (a merge too big for the window moves what it can). */
static int merge_reserve(struct dbox_save_txn *dst, unsigned int n,
			 struct dbox_err *err)
{
	unsigned int have = dst->count - dst->spilled;
	struct save_msg *m;

	if (have + n > WINDOW || have + n <= dst->cap)
		return 0;
	m = realloc(dst->msgs, WINDOW * sizeof(*m));
	if (m == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	dst->msgs = m;
	dst->cap = WINDOW;
	return 0;
}

int dbox_save_merge(struct dbox_save_txn *dst, struct dbox_save_txn *src,
		    struct dbox_err *err)
{
	struct mdbox_append **tail;
	int ret;

	if (dst == src || dst->store != src->store)
		return dbox_fail(err, -EINVAL, "not two transactions of a store");
	if (dst->writing)
		return dbox_fail(err, -EINVAL, "a message is not finished");
	ret = dbox_save_settle(src, err);
	if (ret == 0)
		ret = merge_reserve(dst, src->count, err);
	for (unsigned int i = 0; ret == 0 && i < src->box_count; i++)
		ret = dbox_save_box_add(dst, src->boxes[i].id,
					src->boxes[i].preset, 0) < 0 ?
			dbox_fail(err, -ENOMEM, "out of memory") : 0;
	if (ret < 0)
		return ret;
	/* cannot fail if src fits in dst's window (reserved above) */
	ret = dbox_save_each_msg(src, src->count, merge_msg, dst, err);
	for (unsigned int i = 0; ret == 0 && i < src->expunge_count; i++)
		ret = dbox_save_expunge(dst, src->expunges[i].mailbox_id,
					src->expunges[i].uid, err);
	if (ret < 0)
		return ret;
	/* after the apps of dst: its newest file stays the one it fills */
	for (tail = &dst->apps; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = src->apps;
	src->apps = NULL;
	src->count = 0;
	src->spilled = 0;
	src->expunge_count = 0;
	dbox_save_txn_free(src, false);
	return 0;
}

