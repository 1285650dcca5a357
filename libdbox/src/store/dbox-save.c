/* dbox-save.c - save transactions (see dbox/save.h for the contract).
 *
 * A record is written as Dovecot writes it (dbox-format.md 2.7): a
 * placeholder header of zero bytes, the body, the metadata, and only then
 * the real header over the placeholder, so an interrupted record never has
 * a valid magic.  sdbox messages are whole files in the owner's scratch
 * directory until the commit renames them to u.<uid>; mdbox records are
 * appended to locked m.N files beyond their committed end. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbox/save.h"
#include "store/mdbox-file.h"
#include "store/store-private.h"

struct save_msg {
	int64_t mailbox_id;
	int64_t received, received_ns;
	uint32_t flags, keywords, uid, mode;
	bool in_new, new_info, has_base;
	bool synced;              /* sdbox: its file is durable */
	char guid[DBOX_GUID_MAX + 1];
	char base[DBOX_NAME_MAX + 1];
	struct dbox_vsize vs;
	uint64_t offset;          /* record start */
	uint64_t end;             /* record end */
	struct mdbox_append *app; /* mdbox */
	struct dfs_file *file;    /* sdbox: own temp file; mdbox: app->file */
	char tmp_path[PATH_MAX];  /* sdbox */
	/* a message small enough is gathered in memory and written as one
	 * record with one write; the bytes so far while staged */
	char *stage;
	size_t stage_len, stage_cap;
	bool staged;
};

#define STAGE_MAX (256u * 1024)

struct save_expunge {
	int64_t mailbox_id;
	uint32_t uid;
	uint32_t file_id;
	char path[PATH_MAX];
};

struct dbox_save_txn {
	struct dbox_store *store;
	struct save_msg *msgs;
	unsigned int count, cap;
	struct save_expunge *expunges;
	unsigned int expunge_count;
	struct mdbox_append *apps;
	bool writing;             /* msgs[count - 1] is open */

	pthread_mutex_t lock;     /* protects the two fields below */
	pthread_cond_t idle;
	unsigned int in_flight;   /* async appends not completed */
	int async_err;
};

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

static void txn_free(struct dbox_save_txn *txn, bool rollback);

static void wait_idle(struct dbox_save_txn *txn)
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
static int txn_settle(struct dbox_save_txn *txn, struct dbox_err *err)
{
	int ret;

	if (txn->writing)
		return dbox_fail(err, -EINVAL, "a message is not finished");
	wait_idle(txn);
	ret = txn_error(txn);
	if (ret < 0)
		return dbox_fail(err, ret, "write: %s", strerror(-ret));
	return 0;
}

static struct save_msg *msg_alloc(struct dbox_save_txn *txn)
{
	if (txn->count == txn->cap) {
		unsigned int cap = txn->cap ? txn->cap * 2 : 16;
		struct save_msg *m = realloc(txn->msgs, cap * sizeof(*m));

		if (m == NULL)
			return NULL;
		txn->msgs = m;
		txn->cap = cap;
	}
	memset(&txn->msgs[txn->count], 0, sizeof(txn->msgs[0]));
	return &txn->msgs[txn->count++];
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
	char hdr[64];
	size_t hlen = dbox_file_hdr_format(hdr, sizeof(hdr), dbox_now());
	unsigned long long seq = atomic_fetch_add(&store->tmp_seq, 1);
	int ret;

	if (dbox_path(m->tmp_path, sizeof(m->tmp_path), "%s/%llu.dbox",
		      store->owner_dir, seq) < 0)
		return dbox_fail(err, -ENAMETOOLONG, "path too long");
	ret = dfs_sync_open(store->fs, m->tmp_path, O_RDWR | O_CREAT | O_EXCL |
			    O_CLOEXEC, DBOX_FILE_MODE, &m->file);
	if (ret == 0)
		ret = dfs_sync_pwrite(m->file, hdr, hlen, 0);
	if (ret < 0)
		return dbox_fail(err, ret, "create %s: %s", m->tmp_path,
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
		ret = mdbox_append_get(txn->store, need, &app, err);
		if (ret < 0)
			return ret;
		app->next = txn->apps;
		txn->apps = app;
	}
	m->app = app;
	m->file = app->file;
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
	m = msg_alloc(txn);
	if (m == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
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
		if (m->app == NULL && m->file != NULL) {
			dfs_sync_close(m->file);
			unlink(m->tmp_path);
		}
		txn->count--;
		return ret;
	}
	txn->writing = true;
	return 0;
}

static struct save_msg *cur_msg(struct dbox_save_txn *txn)
{
	return txn->writing ? &txn->msgs[txn->count - 1] : NULL;
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
	wait_idle(txn);
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
	wait_idle(txn);
	ret = txn_error(txn);
	if (ret < 0)
		return dbox_fail(err, ret, "write %s: %s",
				 dfs_file_path(m->file), strerror(-ret));
	ret = write_trailer(txn, m, err);
	if (ret < 0)
		return ret;
	txn->writing = false;
	return 0;
}

int dbox_save_add_fd(struct dbox_save_txn *txn, int fd,
		     const struct dbox_save_opts *opts, struct dbox_err *err)
{
	enum { CHUNK = 256 * 1024 };
	struct dbox_save_opts o = *opts;
	char *buf = malloc(CHUNK);
	struct stat st;
	int ret;

	if (buf == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	if (o.size_hint == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		o.size_hint = (uint64_t)st.st_size;
	ret = dbox_save_msg_begin(txn, &o, err);
	while (ret == 0) {
		ssize_t n = read(fd, buf, CHUNK);

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

/* ------------------------------------------------------------- commit */

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int pending;
	int err;
};

static void sync_done(void *ctx, const struct dfs_result *res)
{
	struct sync_wait *w = ctx;

	pthread_mutex_lock(&w->lock);
	if (res->err < 0 && w->err == 0)
		w->err = res->err;
	if (--w->pending == 0)
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void sync_submit(struct sync_wait *w, struct dfs_file *f)
{
	pthread_mutex_lock(&w->lock);
	w->pending++;
	pthread_mutex_unlock(&w->lock);
	dfs_fsync(f, sync_done, w);
}

/* fdatasync every file of the transaction at once: the fs layer runs them
 * in parallel, so N files cost about one flush, not N in a row.  Files
 * made durable before (dbox_save_sync) are not synced again. */
static int sync_files(struct dbox_save_txn *txn, struct dbox_err *err)
{
	struct sync_wait w = { PTHREAD_MUTEX_INITIALIZER,
			       PTHREAD_COND_INITIALIZER, 1, 0 };

	for (struct mdbox_append *a = txn->apps; a != NULL; a = a->next) {
		if (a->synced_end != a->end)
			sync_submit(&w, a->file);
	}
	for (unsigned int i = 0; i < txn->count; i++) {
		if (txn->msgs[i].app == NULL && !txn->msgs[i].synced)
			sync_submit(&w, txn->msgs[i].file);
	}
	pthread_mutex_lock(&w.lock);
	w.pending--;
	while (w.pending > 0)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	if (w.err < 0)
		return dbox_fail(err, w.err, "fsync: %s", strerror(-w.err));
	for (struct mdbox_append *a = txn->apps; a != NULL; a = a->next)
		a->synced_end = a->end;
	for (unsigned int i = 0; i < txn->count; i++)
		txn->msgs[i].synced = true;
	return 0;
}

int dbox_save_sync(struct dbox_save_txn *txn, struct dbox_err *err)
{
	int ret = txn_settle(txn, err);

	return ret < 0 ? ret : sync_files(txn, err);
}

static bool finished(const struct dbox_save_txn *txn, unsigned int i)
{
	return i < txn->count && !(txn->writing && i == txn->count - 1);
}

int dbox_save_set_state(struct dbox_save_txn *txn, unsigned int i,
			uint32_t flags, uint32_t keywords,
			enum dbox_maildir_dir dir, struct dbox_err *err)
{
	if (!finished(txn, i))
		return dbox_fail(err, -EINVAL, "no such finished message");
	txn->msgs[i].flags = flags & DBOX_FLAGS_MASK;
	txn->msgs[i].keywords = keywords;
	txn->msgs[i].in_new = dir != DBOX_DIR_CUR;
	txn->msgs[i].new_info = dir == DBOX_DIR_NEW_INFO;
	return 0;
}

int dbox_save_set_mode(struct dbox_save_txn *txn, unsigned int i,
		       uint32_t mode, struct dbox_err *err)
{
	if (!finished(txn, i))
		return dbox_fail(err, -EINVAL, "no such finished message");
	txn->msgs[i].mode = mode;
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
	ret = txn_settle(src, err);
	if (ret < 0)
		return ret;
	for (unsigned int i = 0; i < src->count; i++) {
		struct save_msg *m = msg_alloc(dst);

		if (m == NULL) {
			dst->count -= i;
			return dbox_fail(err, -ENOMEM, "out of memory");
		}
	}
	memcpy(&dst->msgs[dst->count - src->count], src->msgs,
	       src->count * sizeof(*src->msgs));
	for (unsigned int i = 0; i < src->expunge_count; i++) {
		ret = dbox_save_expunge(dst, src->expunges[i].mailbox_id,
					src->expunges[i].uid, err);

		if (ret < 0) {
			dst->count -= src->count;
			dst->expunge_count -= i;
			return ret;
		}
	}
	/* after the apps of dst: its newest file stays the one it fills */
	for (tail = &dst->apps; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = src->apps;
	src->apps = NULL;
	src->count = 0;
	src->expunge_count = 0;
	txn_free(src, false);
	return 0;
}

/* Assigns uids mailbox by mailbox, in the order messages were added. */
static int assign_uids(struct dbox_save_txn *txn, struct dbox_err *err)
{
	for (unsigned int i = 0; i < txn->count; i++) {
		struct save_msg *m = &txn->msgs[i];
		int ret;

		if (m->uid != 0)
			continue;
		uint32_t n = 0, first;

		for (unsigned int j = i; j < txn->count; j++)
			n += txn->msgs[j].mailbox_id == m->mailbox_id;
		ret = dbox_mailbox_alloc_uids(txn->store, m->mailbox_id, n,
					      &first, err);
		if (ret < 0)
			return ret;
		for (unsigned int j = i; j < txn->count; j++) {
			if (txn->msgs[j].mailbox_id == m->mailbox_id)
				txn->msgs[j].uid = first++;
		}
	}
	return 0;
}

static int prepare_expunges(struct dbox_save_txn *txn, struct dbox_err *err)
{
	for (unsigned int i = 0; i < txn->expunge_count; i++) {
		struct save_expunge *e = &txn->expunges[i];
		struct dbox_msg msg;
		int ret = dbox_msg_get(txn->store, e->mailbox_id, e->uid, &msg,
				       err);

		if (ret < 0)
			return ret;
		e->file_id = msg.file_id;
		if (msg.file_id == 0)
			dbox_msg_file_path(txn->store, &msg, e->path,
					   sizeof(e->path));
	}
	return 0;
}

/* The owner journal names every u.N this commit creates or removes, so
 * that recovery can finish or undo it: a u.N in the journal whose row is
 * not in the index must not exist. */
static int write_journal(struct dbox_save_txn *txn, struct dbox_err *err)
{
	unsigned int n = txn->count + txn->expunge_count, k = 0;
	int64_t *boxes = calloc(n + 1, sizeof(*boxes));
	uint32_t *uids = calloc(n + 1, sizeof(*uids));
	int ret;

	if (boxes == NULL || uids == NULL) {
		free(boxes);
		free(uids);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	for (unsigned int i = 0; i < txn->count; i++, k++) {
		boxes[k] = txn->msgs[i].mailbox_id;
		uids[k] = txn->msgs[i].uid;
	}
	for (unsigned int i = 0; i < txn->expunge_count; i++) {
		if (txn->expunges[i].file_id != 0)
			continue;
		boxes[k] = txn->expunges[i].mailbox_id;
		uids[k++] = txn->expunges[i].uid;
	}
	ret = dbox_journal_write(txn->store, boxes, uids, k, err);
	free(boxes);
	free(uids);
	return ret;
}

static int sdbox_rename_all(struct dbox_save_txn *txn, struct dbox_err *err)
{
	char name[DBOX_NAME_MAX * 4 + 1], path[PATH_MAX];
	int64_t last_box = 0;
	int ret;

	for (unsigned int i = 0; i < txn->count; i++) {
		struct save_msg *m = &txn->msgs[i];

		ret = dbox_mailbox_name_of(txn->store, m->mailbox_id, name,
					   sizeof(name), err);
		if (ret == 0)
			ret = dbox_sdbox_path(txn->store, name, m->uid, path,
					      sizeof(path));
		if (ret == 0 && link(m->tmp_path, path) < 0)
			ret = dbox_fail(err, -errno, "link %s: %m", path);
		/* link, not rename: an existing u.N (a foreign file) must
		 * make the commit fail instead of being replaced */
		if (ret == 0)
			unlink(m->tmp_path);
		if (ret < 0)
			return ret;
		snprintf(m->tmp_path, sizeof(m->tmp_path), "%s", path);
		if (i > 0 && m->mailbox_id == last_box)
			continue;
		last_box = m->mailbox_id;
		ret = dbox_fsync_parent(path);
		if (ret < 0)
			return dbox_fail(err, ret, "fsync dir of %s: %s", path,
					 strerror(-ret));
	}
	return 0;
}

static int insert_rows(struct dbox_save_txn *txn, struct dbox_err *err)
{
	int64_t now = dbox_now();

	for (unsigned int i = 0; i < txn->count; i++) {
		struct save_msg *m = &txn->msgs[i];
		struct dbox_msg msg = { 0 };
		int ret;

		msg.mailbox_id = m->mailbox_id;
		msg.uid = m->uid;
		snprintf(msg.guid, sizeof(msg.guid), "%s", m->guid);
		msg.file_id = m->app != NULL ? m->app->file_id : 0;
		msg.offset = m->offset;
		msg.hdr_size = DBOX_MSG_HEADER_SIZE;
		msg.body_size = m->vs.size;
		msg.rec_size = m->end - m->offset;
		msg.size = m->vs.size;
		msg.vsize = m->vs.vsize;
		msg.received = m->received;
		msg.received_ns = m->received_ns;
		msg.saved = now;
		msg.flags = m->flags;
		msg.keywords = m->keywords;
		msg.in_new = m->in_new;
		msg.new_info = m->new_info;
		msg.mode = m->mode;
		if (m->has_base)
			snprintf(msg.base, sizeof(msg.base), "%s", m->base);
		else
			dbox_msg_derive_base(&msg, msg.base, sizeof(msg.base));
		ret = dbox_msg_insert(txn->store, &msg, err);
		if (ret == 0)
			ret = dbox_mailbox_touch(txn->store, m->mailbox_id,
						 m->in_new, !m->in_new, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int delete_expunged(struct dbox_save_txn *txn, struct dbox_err *err)
{
	for (unsigned int i = 0; i < txn->expunge_count; i++) {
		struct save_expunge *e = &txn->expunges[i];
		sqlite3_stmt *st = dindex_stmt(txn->store->idx,
					       DSTMT_MSG_DELETE, err);
		int ret;

		if (st == NULL)
			return -EIO;
		sqlite3_bind_int64(st, 1, e->mailbox_id);
		sqlite3_bind_int64(st, 2, e->uid);
		ret = dindex_step_done(txn->store->idx, st, err);
		if (ret == 0 && e->file_id != 0)
			ret = dbox_purge_mark(txn->store, e->file_id, err);
		if (ret == 0)
			ret = dbox_mailbox_touch(txn->store, e->mailbox_id,
						 true, true, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int commit_index(struct dbox_save_txn *txn, struct dbox_err *err)
{
	struct dbox_store *store = txn->store;
	bool sdbox = store->format == DBOX_FORMAT_SDBOX;
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	ret = assign_uids(txn, err);
	if (ret == 0)
		ret = prepare_expunges(txn, err);
	if (ret == 0 && sdbox)
		ret = write_journal(txn, err);
	if (ret == 0 && sdbox)
		ret = sdbox_rename_all(txn, err);
	for (struct mdbox_append *a = txn->apps; ret == 0 && a != NULL;
	     a = a->next)
		ret = mdbox_append_record(store, a, err);
	/* the replaced messages go first: a new one may take the name of
	 * one it replaces (rename(2) onto a message), which the index
	 * holds once per mailbox */
	if (ret == 0)
		ret = delete_expunged(txn, err);
	if (ret == 0)
		ret = insert_rows(txn, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

static void remove_expunged_files(struct dbox_save_txn *txn)
{
	for (unsigned int i = 0; i < txn->expunge_count; i++) {
		if (txn->expunges[i].file_id != 0)
			continue;
		dbox_fcache_drop(txn->store, txn->expunges[i].path);
		unlink(txn->expunges[i].path);
	}
}

static void txn_free(struct dbox_save_txn *txn, bool rollback)
{
	wait_idle(txn);
	for (unsigned int i = 0; i < txn->count; i++) {
		struct save_msg *m = &txn->msgs[i];

		free(m->stage);
		if (m->app != NULL)
			continue;
		if (m->file != NULL)
			dfs_sync_close(m->file);
		if (rollback)
			unlink(m->tmp_path);
	}
	while (txn->apps != NULL) {
		struct mdbox_append *a = txn->apps;

		txn->apps = a->next;
		mdbox_append_release(txn->store, a, rollback);
	}
	pthread_mutex_destroy(&txn->lock);
	pthread_cond_destroy(&txn->idle);
	free(txn->msgs);
	free(txn->expunges);
	free(txn);
}

int dbox_save_commit(struct dbox_save_txn *txn, uint32_t *uids_r,
		     struct dbox_err *err)
{
	int ret = txn_settle(txn, err);

	if (ret == 0)
		ret = sync_files(txn, err);
	if (ret == 0)
		ret = commit_index(txn, err);
	if (txn->store->format == DBOX_FORMAT_SDBOX) {
		if (ret < 0) {
			/* undo links that were made before the failure */
			for (unsigned int i = 0; i < txn->count; i++) {
				if (strncmp(txn->msgs[i].tmp_path,
					    txn->store->owner_dir,
					    strlen(txn->store->owner_dir)) != 0)
					unlink(txn->msgs[i].tmp_path);
			}
		}
		dbox_journal_remove(txn->store);
	}
	if (ret == 0) {
		remove_expunged_files(txn);
		for (unsigned int i = 0; uids_r != NULL && i < txn->count; i++)
			uids_r[i] = txn->msgs[i].uid;
	}
	txn_free(txn, ret < 0);
	return ret;
}

void dbox_save_rollback(struct dbox_save_txn *txn)
{
	txn_free(txn, true);
}
