/* dbox-save.c - save transactions (see dbox/save.h for the contract).
 *
 * A record is written as Dovecot writes it (dbox-format.md 2.7): a
 * placeholder header of zero bytes, the body, the metadata, and only then
 * the real header over the placeholder, so an interrupted record never has
 * a valid magic.  sdbox messages are whole files in the owner's scratch
 * directory until the commit renames them to u.<uid>; mdbox records are
 * appended to locked m.N files beyond their committed end.
 *
 * Memory and descriptors do not grow with the transaction: the newest
 * messages are kept in a small window; when it is full, their files are
 * made durable and closed (sdbox) and their state goes to an unlinked
 * spool file, which the commit reads back in order; an m.N the
 * transaction created is made durable and closed once it is full.  Per
 * mailbox only a count is kept, so uids are allocated in one range per
 * mailbox. */
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

int dbox_save_begin(struct dbox_store *store, struct dbox_save_txn **txn_r,
		    struct dbox_err *err)
{
	struct dbox_save_txn *txn;

	if (store->readonly)
		return dbox_fail(err, -EROFS, "store is read-only");
	txn = calloc(1, sizeof(*txn));
	if (txn == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	txn->store = store;
	pthread_mutex_init(&txn->lock, NULL);
	pthread_cond_init(&txn->idle, NULL);
	*txn_r = txn;
	return 0;
}

unsigned int dbox_save_count(const struct dbox_save_txn *txn)
{
	return txn->count;
}

void dbox_save_wait_idle(struct dbox_save_txn *txn)
{
	pthread_mutex_lock(&txn->lock);
	while (txn->in_flight > 0)
		pthread_cond_wait(&txn->idle, &txn->lock);
	pthread_mutex_unlock(&txn->lock);
}

static int txn_error(struct dbox_save_txn *txn)
{
	int ret;

	pthread_mutex_lock(&txn->lock);
	ret = txn->async_err;
	pthread_mutex_unlock(&txn->lock);
	return ret;
}

/* The transaction has all its messages finished and no write in flight:
 * 0, or the error of an asynchronous write that failed. */
int dbox_save_settle(struct dbox_save_txn *txn, struct dbox_err *err)
{
	int ret;

	if (txn->writing)
		return dbox_fail(err, -EINVAL, "a message is not finished");
	dbox_save_wait_idle(txn);
	ret = txn_error(txn);
	if (ret < 0)
		return dbox_fail(err, ret, "write: %s", strerror(-ret));
	return 0;
}

struct save_msg *dbox_save_msg_at(struct dbox_save_txn *txn, unsigned int i)
{
	return &txn->msgs[i - txn->spilled];
}

int dbox_save_tmp_path(const struct dbox_save_txn *txn, unsigned long long seq,
		       char *buf, size_t size)
{
	return dbox_path(buf, size, "%s/%llu.dbox", txn->store->owner_dir,
			 seq);
}

bool dbox_save_is_sdbox(const struct dbox_save_txn *txn)
{
	return txn->store->format == DBOX_FORMAT_SDBOX;
}

struct save_box *dbox_save_box_find(struct dbox_save_txn *txn, int64_t id,
				  uint32_t preset)
{
	for (unsigned int i = 0; i < txn->box_count; i++) {
		if (txn->boxes[i].id == id && txn->boxes[i].preset == preset)
			return &txn->boxes[i];
	}
	return NULL;
}

int dbox_save_box_add(struct dbox_save_txn *txn, int64_t id, uint32_t preset,
		      uint32_t n)
{
	struct save_box *b = dbox_save_box_find(txn, id, preset);

	if (b == NULL) {
		b = realloc(txn->boxes, (txn->box_count + 1) * sizeof(*b));
		if (b == NULL)
			return -ENOMEM;
		txn->boxes = b;
		b = &b[txn->box_count++];
		*b = (struct save_box){ .id = id, .preset = preset };
	}
	b->count += n;
	return 0;
}

int dbox_save_msg_alloc(struct dbox_save_txn *txn, struct save_msg **m_r,
			struct dbox_err *err)
{
	unsigned int n = txn->count - txn->spilled;

	if (n == WINDOW) {
		int ret = dbox_save_spill(txn, err);

		if (ret < 0)
			return ret;
		n = 0;
	}
	if (n == txn->cap) {
		unsigned int cap = txn->cap ? txn->cap * 2 : 4;
		struct save_msg *m = realloc(txn->msgs, cap * sizeof(*m));

		if (m == NULL)
			return dbox_fail(err, -ENOMEM, "out of memory");
		txn->msgs = m;
		txn->cap = cap;
	}
	memset(&txn->msgs[n], 0, sizeof(txn->msgs[0]));
	txn->count++;
	*m_r = &txn->msgs[n];
	return 0;
}

static int copy_opts(struct save_msg *m, const struct dbox_save_opts *o,
		     struct dbox_err *err)
{
	int64_t now_ns = dbox_now_ns();

	m->mailbox_id = o->mailbox_id;
	m->received = o->received >= 0 ? o->received : now_ns / 1000000000;
	m->received_ns = o->received >= 0 ? o->received_ns :
		now_ns % 1000000000;
	m->flags = o->flags & DBOX_FLAGS_MASK;
	m->keywords = o->keywords;
	m->in_new = o->in_new;
	m->new_info = o->in_new && o->new_info;
	m->mode = o->mode;
	m->preset_uid = o->uid;
	m->keep_dir_mtime = o->keep_dir_mtime;
	if (o->guid != NULL) {
		if (!dbox_meta_value_valid(o->guid) || o->guid[0] == '\0' ||
		    strlen(o->guid) > DBOX_GUID_MAX)
			return dbox_fail(err, -EINVAL, "invalid GUID");
		snprintf(m->guid, sizeof(m->guid), "%s", o->guid);
	} else {
		dbox_guid_generate(m->guid);
	}
	if (o->base != NULL) {
		if (o->base[0] == '\0' || strlen(o->base) > DBOX_NAME_MAX ||
		    strchr(o->base, '/') != NULL ||
		    !dbox_meta_value_valid(o->base))
			return dbox_fail(err, -EINVAL, "invalid maildir name");
		snprintf(m->base, sizeof(m->base), "%s", o->base);
		m->has_base = true;
	}
	return 0;
}

static int sdbox_msg_open(struct dbox_save_txn *txn, struct save_msg *m,
			  struct dbox_err *err)
{
	struct dbox_store *store = txn->store;
	char hdr[64], path[PATH_MAX];
	size_t hlen = dbox_file_hdr_format(hdr, sizeof(hdr), dbox_now());
	int ret;

	m->tmp_seq = atomic_fetch_add(&store->tmp_seq, 1);
	if (dbox_save_tmp_path(txn, m->tmp_seq, path, sizeof(path)) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long");
	ret = dfs_sync_open(store->fs, path, O_RDWR | O_CREAT | O_EXCL |
			    O_CLOEXEC, DBOX_FILE_MODE, &m->file);
	if (ret == 0)
		ret = dfs_sync_pwrite(m->file, hdr, hlen, 0);
	if (ret < 0)
		return dbox_fail(err, ret, "create %s: %s", path,
				 strerror(-ret));
	m->offset = hlen;
	return 0;
}

static int mdbox_msg_open(struct dbox_save_txn *txn, struct save_msg *m,
			  uint64_t need, struct dbox_err *err)
{
	struct mdbox_append *app = txn->apps;
	uint64_t rotate = txn->store->rotate_size;
	int ret;

	/* keep filling this transaction's newest file while it has room */
	if (app == NULL || app->end + need >= rotate || need >= rotate) {
		/* the full one is done with: descriptors stay few */
		ret = app != NULL ? mdbox_append_close(app, err) : 0;
		if (ret == 0)
			ret = mdbox_append_get(txn->store, need, &app, err);
		if (ret < 0)
			return ret;
		app->next = txn->apps;
		txn->apps = app;
	}
	m->app = app;
	m->file = app->file;
	m->file_id = app->file_id;
	m->offset = app->end;
	return 0;
}

int dbox_save_msg_begin(struct dbox_save_txn *txn,
			const struct dbox_save_opts *opts,
			struct dbox_err *err)
{
	static const unsigned char zero_hdr[DBOX_MSG_HEADER_SIZE];
	struct save_msg *m;
	struct dbox_mailbox box;
	int ret;

	if (txn->writing)
		return dbox_fail(err, -EBUSY, "previous message not finished");
	ret = dbox_mailbox_get(txn->store, opts->mailbox_id, &box, err);
	if (ret < 0)
		return ret;
	if (opts->uid != 0 && opts->uid >= box.next_uid)
		return dbox_fail(err, -EINVAL, "uid %u of mailbox %s was not "
				 "reserved", opts->uid, box.name);
	ret = dbox_save_msg_alloc(txn, &m, err);
	if (ret < 0)
		return ret;
	ret = copy_opts(m, opts, err);
	if (ret == 0)
		ret = txn->store->format == DBOX_FORMAT_MDBOX ?
			mdbox_msg_open(txn, m, opts->size_hint, err) :
			sdbox_msg_open(txn, m, err);
	if (ret == 0 && opts->size_hint > 0 && opts->size_hint <= STAGE_MAX) {
		m->stage_cap = opts->size_hint;
		m->stage = malloc(m->stage_cap);
		m->staged = m->stage != NULL;
	}
	/* the placeholder: a crash leaves a record without magic */
	if (ret == 0 && !m->staged) {
		ret = dfs_sync_pwrite(m->file, zero_hdr, sizeof(zero_hdr),
				      (off_t)m->offset);
		if (ret < 0)
			dbox_fail(err, ret, "write %s: %s",
				  dfs_file_path(m->file), strerror(-ret));
	}
	if (ret < 0) {
		char path[PATH_MAX];

		if (m->app == NULL && m->file != NULL) {
			dfs_sync_close(m->file);
			if (dbox_save_tmp_path(txn, m->tmp_seq, path,
					       sizeof(path)) == 0)
				unlink(path);
		}
		free(m->stage);
		txn->count--;
		return ret;
	}
	txn->writing = true;
	return 0;
}

static struct save_msg *cur_msg(struct dbox_save_txn *txn)
{
	return txn->writing ? dbox_save_msg_at(txn, txn->count - 1) : NULL;
}

static off_t body_pos(const struct save_msg *m)
{
	return (off_t)(m->offset + DBOX_MSG_HEADER_SIZE + m->vs.size);
}

/* The message outgrew its hint (or is written asynchronously): what was
 * gathered goes to the file behind the placeholder, as for any other. */
static int unstage(struct save_msg *m, struct dbox_err *err)
{
	static const unsigned char zero_hdr[DBOX_MSG_HEADER_SIZE];
	int ret;

	if (!m->staged)
		return 0;
	ret = dfs_sync_pwrite(m->file, zero_hdr, sizeof(zero_hdr),
			      (off_t)m->offset);
	if (ret == 0 && m->stage_len > 0)
		ret = dfs_sync_pwrite(m->file, m->stage, m->stage_len,
				      (off_t)(m->offset + DBOX_MSG_HEADER_SIZE));
	free(m->stage);
	m->stage = NULL;
	m->staged = false;
	if (ret < 0)
		return dbox_fail(err, ret, "write %s: %s",
				 dfs_file_path(m->file), strerror(-ret));
	return 0;
}

/* 1 if the bytes were gathered, 0 if the message must go to the file */
static int stage_append(struct save_msg *m, const void *data, size_t len)
{
	if (m->stage_len + len > STAGE_MAX)
		return 0;
	if (m->stage_len + len > m->stage_cap) {
		size_t cap = (m->stage_len + len) * 2;
		char *p;

		if (cap > STAGE_MAX)
			cap = STAGE_MAX;
		p = realloc(m->stage, cap);
		if (p == NULL)
			return 0;
		m->stage = p;
		m->stage_cap = cap;
	}
	memcpy(m->stage + m->stage_len, data, len);
	m->stage_len += len;
	dbox_vsize_update(&m->vs, data, len);
	return 1;
}

int dbox_save_write(struct dbox_save_txn *txn, const void *data, size_t len,
		    struct dbox_err *err)
{
	struct save_msg *m = cur_msg(txn);
	int ret;

	if (m == NULL)
		return dbox_fail(err, -EINVAL, "no message started");
	if (m->staged && stage_append(m, data, len))
		return 0;
	ret = unstage(m, err);
	if (ret < 0)
		return ret;
	dbox_save_wait_idle(txn);
	ret = dfs_sync_pwrite(m->file, data, len, body_pos(m));
	if (ret < 0)
		return dbox_fail(err, ret, "write %s: %s",
				 dfs_file_path(m->file), strerror(-ret));
	dbox_vsize_update(&m->vs, data, len);
	return 0;
}

struct async_write {
	struct dbox_save_txn *txn;
	dbox_save_cb *cb;
	void *ctx;
};

static void async_write_done(void *ctx, const struct dfs_result *res)
{
	struct async_write *aw = ctx;
	struct dbox_save_txn *txn = aw->txn;

	pthread_mutex_lock(&txn->lock);
	if (res->err < 0 && txn->async_err == 0)
		txn->async_err = res->err;
	txn->in_flight--;
	pthread_cond_broadcast(&txn->idle);
	pthread_mutex_unlock(&txn->lock);
	if (aw->cb != NULL)
		aw->cb(aw->ctx, res->err);
	free(aw);
}

void dbox_save_write_async(struct dbox_save_txn *txn, const void *data,
			   size_t len, dbox_save_cb *cb, void *ctx)
{
	struct save_msg *m = cur_msg(txn);
	struct async_write *aw;
	off_t pos;

	if (m == NULL || (aw = malloc(sizeof(*aw))) == NULL ||
	    unstage(m, NULL) < 0) {
		free(m == NULL ? NULL : aw);
		cb(ctx, m == NULL ? -EINVAL : -ENOMEM);
		return;
	}
	*aw = (struct async_write){ txn, cb, ctx };
	/* positions are fixed at submission, so completions may come back
	 * in any order without reordering the body */
	pos = body_pos(m);
	dbox_vsize_update(&m->vs, data, len);
	pthread_mutex_lock(&txn->lock);
	txn->in_flight++;
	pthread_mutex_unlock(&txn->lock);
	dfs_pwrite(m->file, data, len, pos, async_write_done, aw);
}

/* header + body + metadata in one write: the record is either complete or
 * beyond the committed end, where recovery cuts it off */
static int write_staged(struct save_msg *m, const unsigned char *hdr,
			const char *meta, size_t mlen)
{
	size_t n = DBOX_MSG_HEADER_SIZE + m->stage_len + mlen;
	char *rec = malloc(n);
	int ret;

	if (rec == NULL)
		return -ENOMEM;
	memcpy(rec, hdr, DBOX_MSG_HEADER_SIZE);
	memcpy(rec + DBOX_MSG_HEADER_SIZE, m->stage, m->stage_len);
	memcpy(rec + DBOX_MSG_HEADER_SIZE + m->stage_len, meta, mlen);
	ret = dfs_sync_pwrite(m->file, rec, n, (off_t)m->offset);
	free(rec);
	free(m->stage);
	m->stage = NULL;
	m->staged = false;
	return ret;
}

static int write_trailer(struct dbox_save_txn *txn, struct save_msg *m,
			 struct dbox_err *err)
{
	struct dbox_meta meta = { 0 };
	unsigned char hdr[DBOX_MSG_HEADER_SIZE];
	char box_name[DBOX_NAME_MAX * 4 + 1], storage[PATH_MAX];
	size_t mlen;
	char *mbuf;
	int ret;

	meta.guid = m->guid;
	meta.received = m->received;
	meta.has_received = true;
	meta.vsize = m->vs.vsize;
	meta.has_vsize = true;
	if (m->has_base)
		meta.maildir_base = m->base;
	if (m->app != NULL) {
		/* B: where a rebuild puts the message (storage name) */
		ret = dbox_mailbox_name_of(txn->store, m->mailbox_id, box_name,
					   sizeof(box_name), err);
		if (ret < 0)
			return ret;
		if (dbox_name_to_storage(box_name, storage,
					 sizeof(storage)) == 0)
			meta.orig_mailbox = storage;
		/* room for a move to rewrite B in place (mdbox-orig.c) */
		if (meta.orig_mailbox != NULL)
			meta.pad = strlen(storage) + 4 < DBOX_META_ORIG_ROOM ?
				DBOX_META_ORIG_ROOM - strlen(storage) - 2 : 2;
	}
	mbuf = dbox_meta_format(&meta, &mlen);
	if (mbuf == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	dbox_msg_hdr_format(hdr, m->vs.size);
	if (m->staged) {
		ret = write_staged(m, hdr, mbuf, mlen);
		free(mbuf);
		if (ret < 0)
			return dbox_fail(err, ret, "write %s: %s",
					 dfs_file_path(m->file),
					 strerror(-ret));
		m->end = (uint64_t)body_pos(m) + mlen;
		if (m->app != NULL)
			m->app->end = m->end;
		return 0;
	}
	ret = dfs_sync_pwrite(m->file, mbuf, mlen, body_pos(m));
	free(mbuf);
	if (ret == 0)
		ret = dfs_sync_pwrite(m->file, hdr, sizeof(hdr),
				      (off_t)m->offset);
	if (ret < 0)
		return dbox_fail(err, ret, "write %s: %s",
				 dfs_file_path(m->file), strerror(-ret));
	m->end = (uint64_t)body_pos(m) + mlen;
	if (m->app != NULL)
		m->app->end = m->end;
	return 0;
}

int dbox_save_msg_finish(struct dbox_save_txn *txn, struct dbox_err *err)
{
	struct save_msg *m = cur_msg(txn);
	int ret;

	if (m == NULL)
		return dbox_fail(err, -EINVAL, "no message started");
	dbox_save_wait_idle(txn);
	ret = txn_error(txn);
	if (ret < 0)
		return dbox_fail(err, ret, "write %s: %s",
				 dfs_file_path(m->file), strerror(-ret));
	ret = write_trailer(txn, m, err);
	if (ret == 0 &&
	    dbox_save_box_add(txn, m->mailbox_id, m->preset_uid, 1) < 0)
		ret = dbox_fail(err, -ENOMEM, "out of memory");
	if (ret < 0)
		return ret;
	txn->writing = false;
	return 0;
}

int dbox_save_add_fd(struct dbox_save_txn *txn, int fd,
		     const struct dbox_save_opts *opts, struct dbox_err *err)
{
	enum { CHUNK = 256 * 1024, SMALL_CHUNK = 64 * 1024 };
	struct dbox_save_opts o = *opts;
	struct stat st;
	size_t chunk;
	char *buf;
	int ret;

	if (o.size_hint == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		o.size_hint = (uint64_t)st.st_size;
	/* a message of a few KiB (nearly every delivery) is read with a
	 * buffer that malloc takes from its heap: a large one is mapped
	 * and unmapped for each message (two system calls, a page fault,
	 * and a TLB flush on the other CPUs running the daemon's threads) */
	chunk = o.size_hint > 0 && o.size_hint < SMALL_CHUNK ? SMALL_CHUNK :
		CHUNK;
	buf = malloc(chunk);
	if (buf == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	ret = dbox_save_msg_begin(txn, &o, err);
	while (ret == 0) {
		ssize_t n = read(fd, buf, chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = dbox_fail(err, -errno, "read: %m");
			break;
		}
		if (n == 0)
			break;
		ret = dbox_save_write(txn, buf, (size_t)n, err);
	}
	free(buf);
	if (ret == 0)
		ret = dbox_save_msg_finish(txn, err);
	return ret;
}

int dbox_save_expunge(struct dbox_save_txn *txn, int64_t mailbox_id,
		      uint32_t uid, struct dbox_err *err)
{
	struct save_expunge *e = realloc(txn->expunges, (txn->expunge_count +
					 1) * sizeof(*e));

	if (e == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	txn->expunges = e;
	e = &e[txn->expunge_count++];
	memset(e, 0, sizeof(*e));
	e->mailbox_id = mailbox_id;
	e->uid = uid;
	return 0;
}
