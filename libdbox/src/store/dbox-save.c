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
#include "store/mdbox-file.h"
#include "store/store-private.h"

struct save_msg {
	int64_t mailbox_id;
	int64_t received, received_ns;
	uint32_t flags, keywords, uid, mode;
	uint32_t preset_uid;      /* dbox_save_opts.uid */
	uint32_t file_id;         /* mdbox: m.N; sdbox: 0 */
	bool in_new, new_info, has_base, keep_dir_mtime;
	bool synced;              /* sdbox: its file is durable */
	char guid[DBOX_GUID_MAX + 1];
	char base[DBOX_NAME_MAX + 1];
	struct dbox_vsize vs;
	uint64_t offset;          /* record start */
	uint64_t end;             /* record end */
	unsigned long long tmp_seq; /* sdbox: owner_dir/<tmp_seq>.dbox */
	struct mdbox_append *app; /* mdbox, while in the window */
	struct dfs_file *file;    /* sdbox: own temp file while open;
				   * mdbox: app->file */
	/* a message small enough is gathered in memory and written as one
	 * record with one write; the bytes so far while staged */
	char *stage;
	size_t stage_len, stage_cap;
	bool staged;
};

#define STAGE_MAX (256u * 1024)

/* Messages kept in memory; also the most sdbox temp files open at once
 * (a transaction of any size fits in a small RLIMIT_NOFILE). */
#define WINDOW 64

/* A spooled message: this, then its guid and base (no NULs). */
struct spool_rec {
	int64_t mailbox_id, received, received_ns;
	uint64_t offset, end, size, vsize, tmp_seq;
	uint32_t flags, keywords, mode, file_id, preset_uid;
	uint16_t guid_len, base_len;
	uint8_t in_new, new_info, has_base, keep_dir_mtime;
};

/* Messages of the transaction per mailbox, and at the commit their uids;
 * a message whose uid the caller reserved (dbox_save_opts.uid) has an
 * entry of its own, with that uid as its range. */
struct save_box {
	int64_t id;
	uint32_t preset;          /* the reserved uid, 0: allocated */
	uint32_t count;
	uint32_t first, next;
};

struct save_expunge {
	int64_t mailbox_id;
	uint32_t uid;
	uint32_t file_id;
	bool in_new;              /* the directory it goes from */
	char path[PATH_MAX];
};

struct dbox_save_txn {
	struct dbox_store *store;
	struct save_msg *msgs;    /* the window: messages spilled..count-1 */
	unsigned int count, cap;
	unsigned int spilled;     /* messages 0..spilled-1 are in the spool */
	FILE *spool;
	struct save_box *boxes;
	unsigned int box_count;
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

static struct save_msg *msg_at(struct dbox_save_txn *txn, unsigned int i)
{
	return &txn->msgs[i - txn->spilled];
}

static int tmp_path(const struct dbox_save_txn *txn, unsigned long long seq,
		    char *buf, size_t size)
{
	return dbox_path(buf, size, "%s/%llu.dbox", txn->store->owner_dir,
			 seq);
}

static bool is_sdbox(const struct dbox_save_txn *txn)
{
	return txn->store->format == DBOX_FORMAT_SDBOX;
}

static struct save_box *box_find(struct dbox_save_txn *txn, int64_t id,
				  uint32_t preset)
{
	for (unsigned int i = 0; i < txn->box_count; i++) {
		if (txn->boxes[i].id == id && txn->boxes[i].preset == preset)
			return &txn->boxes[i];
	}
	return NULL;
}

static int box_add(struct dbox_save_txn *txn, int64_t id, uint32_t preset,
		   uint32_t n)
{
	struct save_box *b = box_find(txn, id, preset);

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

static int sync_files(struct dbox_save_txn *txn, bool apps,
		      struct dbox_err *err);

/* The window is full: its files are made durable and closed, and the
 * messages go to the spool. */
static int spill(struct dbox_save_txn *txn, struct dbox_err *err)
{
	unsigned int n = txn->count - txn->spilled;
	int ret = sync_files(txn, false, err);

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
typedef int msg_fn(struct dbox_save_txn *txn, struct save_msg *m,
		   unsigned int i, void *ctx, struct dbox_err *err);

static int each_msg(struct dbox_save_txn *txn, unsigned int limit,
		    msg_fn *fn, void *ctx, struct dbox_err *err)
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
		ret = fn(txn, msg_at(txn, i), i, ctx, err);
	return ret;
}

static int msg_alloc(struct dbox_save_txn *txn, struct save_msg **m_r,
		     struct dbox_err *err)
{
	unsigned int n = txn->count - txn->spilled;

	if (n == WINDOW) {
		int ret = spill(txn, err);

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
	if (tmp_path(txn, m->tmp_seq, path, sizeof(path)) < 0)
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
	ret = msg_alloc(txn, &m, err);
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
			if (tmp_path(txn, m->tmp_seq, path, sizeof(path)) == 0)
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
	return txn->writing ? msg_at(txn, txn->count - 1) : NULL;
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
	wait_idle(txn);
	ret = txn_error(txn);
	if (ret < 0)
		return dbox_fail(err, ret, "write %s: %s",
				 dfs_file_path(m->file), strerror(-ret));
	ret = write_trailer(txn, m, err);
	if (ret == 0 && box_add(txn, m->mailbox_id, m->preset_uid, 1) < 0)
		ret = dbox_fail(err, -ENOMEM, "out of memory");
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

/* fdatasync every file of the window (and of the m.N appends if apps) at
 * once: the fs layer runs them in parallel, so N files cost about one
 * flush, not N in a row.  Files made durable before are not synced again. */
static int sync_files(struct dbox_save_txn *txn, bool apps,
		      struct dbox_err *err)
{
	struct sync_wait w = { PTHREAD_MUTEX_INITIALIZER,
			       PTHREAD_COND_INITIALIZER, 1, 0 };

	for (struct mdbox_append *a = txn->apps; apps && a != NULL;
	     a = a->next) {
		/* a closed file was synced when it was closed */
		if (a->synced_end != a->end && a->file != NULL)
			sync_submit(&w, a->file);
	}
	for (unsigned int i = txn->spilled; i < txn->count; i++) {
		struct save_msg *m = msg_at(txn, i);

		if (m->app == NULL && !m->synced && m->file != NULL)
			sync_submit(&w, m->file);
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
	for (struct mdbox_append *a = txn->apps; apps && a != NULL;
	     a = a->next)
		a->synced_end = a->end;
	for (unsigned int i = txn->spilled; i < txn->count; i++)
		msg_at(txn, i)->synced = true;
	return 0;
}

int dbox_save_sync(struct dbox_save_txn *txn, struct dbox_err *err)
{
	int ret = txn_settle(txn, err);

	return ret < 0 ? ret : sync_files(txn, true, err);
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
		*m_r = msg_at(txn, i);
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
	int ret = msg_alloc(dst, &d, err);

	(void)src;
	(void)i;
	if (ret < 0)
		return ret;
	*d = *m;
	/* the file (if open) is dst's now */
	m->file = NULL;
	return box_add(dst, m->mailbox_id, m->preset_uid, 1) < 0 ?
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
	ret = txn_settle(src, err);
	if (ret == 0)
		ret = merge_reserve(dst, src->count, err);
	for (unsigned int i = 0; ret == 0 && i < src->box_count; i++)
		ret = box_add(dst, src->boxes[i].id, src->boxes[i].preset,
			      0) < 0 ?
			dbox_fail(err, -ENOMEM, "out of memory") : 0;
	if (ret < 0)
		return ret;
	/* cannot fail if src fits in dst's window (reserved above) */
	ret = each_msg(src, src->count, merge_msg, dst, err);
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
	txn_free(src, false);
	return 0;
}

/* One uid range per mailbox, in the order messages were added. */
static int assign_uids(struct dbox_save_txn *txn, struct dbox_err *err)
{
	for (unsigned int i = 0; i < txn->box_count; i++) {
		struct save_box *b = &txn->boxes[i];
		int ret;

		if (b->count == 0)
			continue;
		if (b->preset != 0 && b->count > 1)
			return dbox_fail(err, -EINVAL, "uid %u given to %u "
					 "messages", b->preset, b->count);
		b->first = b->preset;
		ret = b->preset != 0 ? 0 :
			dbox_mailbox_alloc_uids(txn->store, b->id, b->count,
						&b->first, err);
		if (ret < 0)
			return ret;
		b->next = b->first;
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
		e->in_new = msg.in_new;
		if (msg.file_id == 0)
			dbox_msg_file_path(txn->store, &msg, e->path,
					   sizeof(e->path));
	}
	return 0;
}

struct journal_pos {
	struct dbox_save_txn *txn;
	unsigned int box, expunge;
	uint32_t uid;
};

static bool journal_next(void *ctx, int64_t *box_r, uint32_t *uid_r)
{
	struct journal_pos *p = ctx;
	struct dbox_save_txn *txn = p->txn;

	while (p->box < txn->box_count) {
		struct save_box *b = &txn->boxes[p->box];

		if (p->uid < b->count) {
			*box_r = b->id;
			*uid_r = b->first + p->uid++;
			return true;
		}
		p->box++;
		p->uid = 0;
	}
	for (; p->expunge < txn->expunge_count; p->expunge++) {
		struct save_expunge *e = &txn->expunges[p->expunge];

		if (e->file_id != 0)
			continue;
		*box_r = e->mailbox_id;
		*uid_r = e->uid;
		p->expunge++;
		return true;
	}
	return false;
}

/* The owner journal names every u.N this commit creates or removes, so
 * that recovery can finish or undo it: a u.N in the journal whose row is
 * not in the index must not exist.  New uids are ranges per mailbox. */
static int write_journal(struct dbox_save_txn *txn, struct dbox_err *err)
{
	struct journal_pos p = { txn, 0, 0, 0 };

	return dbox_journal_write_each(txn->store, journal_next, &p, err);
}

/* State of the commit's pass over the messages (sdbox: the directory of
 * the last link, fsynced when the pass leaves it). */
struct commit_pass {
	uint32_t *uids_r;
	int64_t now;
	int64_t box_id;
	char box_name[DBOX_NAME_MAX * 4 + 1];
	char dir_of[PATH_MAX];    /* a path in the directory to fsync */
	unsigned int done;        /* messages linked (sdbox) */
};

static int fsync_pending_dir(struct commit_pass *c, struct dbox_err *err)
{
	int ret;

	if (c->dir_of[0] == '\0')
		return 0;
	ret = dbox_fsync_parent(c->dir_of);
	if (ret < 0)
		return dbox_fail(err, ret, "fsync dir of %s: %s", c->dir_of,
				 strerror(-ret));
	c->dir_of[0] = '\0';
	return 0;
}

static int final_path(struct dbox_save_txn *txn, struct commit_pass *c,
		      const struct save_msg *m, char *path, size_t size,
		      struct dbox_err *err)
{
	int ret = 0;

	if (c->box_id != m->mailbox_id) {
		ret = dbox_mailbox_name_of(txn->store, m->mailbox_id,
					   c->box_name, sizeof(c->box_name),
					   err);
		if (ret < 0)
			return ret;
		c->box_id = m->mailbox_id;
	}
	return dbox_sdbox_path(txn->store, c->box_name, m->uid, path, size);
}

static int sdbox_link(struct dbox_save_txn *txn, struct commit_pass *c,
		      const struct save_msg *m, struct dbox_err *err)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int64_t box = c->box_id;
	int ret = final_path(txn, c, m, path, sizeof(path), err);

	if (ret == 0 && box != c->box_id)
		ret = fsync_pending_dir(c, err);
	if (ret == 0 && tmp_path(txn, m->tmp_seq, tmp, sizeof(tmp)) < 0)
		ret = dbox_fail(err, -ENAMETOOLONG, "path too long");
	if (ret < 0)
		return ret;
	/* link, not rename: an existing u.N (a foreign file) must make the
	 * commit fail instead of being replaced */
	if (link(tmp, path) < 0)
		return dbox_fail(err, -errno, "link %s: %m", path);
	c->done++;
	unlink(tmp);
	snprintf(c->dir_of, sizeof(c->dir_of), "%s", path);
	return 0;
}

static int insert_row(struct dbox_save_txn *txn, const struct save_msg *m,
		      int64_t now, struct dbox_err *err)
{
	struct dbox_msg msg = { 0 };
	int ret;

	msg.mailbox_id = m->mailbox_id;
	msg.uid = m->uid;
	snprintf(msg.guid, sizeof(msg.guid), "%s", m->guid);
	msg.file_id = m->file_id;
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
	if (ret == 0 && !m->keep_dir_mtime)
		ret = dbox_mailbox_touch(txn->store, m->mailbox_id, m->in_new,
					 !m->in_new, err);
	return ret;
}

static int commit_msg(struct dbox_save_txn *txn, struct save_msg *m,
		      unsigned int i, void *ctx, struct dbox_err *err)
{
	struct commit_pass *c = ctx;
	struct save_box *b = box_find(txn, m->mailbox_id, m->preset_uid);
	int ret = 0;

	if (b == NULL || b->next - b->first >= b->count)
		return dbox_fail(err, -EIO, "save: message count mismatch");
	m->uid = b->next++;
	if (c->uids_r != NULL)
		c->uids_r[i] = m->uid;
	if (is_sdbox(txn))
		ret = sdbox_link(txn, c, m, err);
	return ret < 0 ? ret : insert_row(txn, m, c->now, err);
}

static int delete_expunged(struct dbox_save_txn *txn, struct dbox_err *err)
{
	for (unsigned int i = 0; i < txn->expunge_count; i++) {
		struct save_expunge *e = &txn->expunges[i];
		int ret = dindex_msg_delete(txn->store->idx, e->mailbox_id,
					    e->uid, err);

		if (ret == 0 && e->file_id != 0)
			ret = dbox_purge_mark(txn->store, e->file_id, err);
		if (ret == 0)
			ret = dbox_mailbox_touch(txn->store, e->mailbox_id,
						 e->in_new, !e->in_new, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int commit_index(struct dbox_save_txn *txn, struct commit_pass *c,
			struct dbox_err *err)
{
	struct dbox_store *store = txn->store;
	bool sdbox = is_sdbox(txn);
	int ret = dindex_write_begin(store->idx, err);

	if (ret < 0)
		return ret;
	ret = assign_uids(txn, err);
	if (ret == 0)
		ret = prepare_expunges(txn, err);
	if (ret == 0 && sdbox)
		ret = write_journal(txn, err);
	for (struct mdbox_append *a = txn->apps; ret == 0 && a != NULL;
	     a = a->next)
		ret = mdbox_append_record(store, a, err);
	/* the replaced messages go first: a new one may take the name of
	 * one it replaces (rename(2) onto a message), which the index
	 * holds once per mailbox */
	if (ret == 0)
		ret = delete_expunged(txn, err);
	if (ret == 0)
		ret = each_msg(txn, txn->count, commit_msg, c, err);
	if (ret == 0)
		ret = fsync_pending_dir(c, err);
	if (ret == 0)
		return dindex_write_commit(store->idx, err);
	dindex_write_rollback(store->idx);
	return ret;
}

/* A failed sdbox commit: the u.N linked so far go again (same uids, the
 * pass replayed). */
static int unlink_msg(struct dbox_save_txn *txn, struct save_msg *m,
		      unsigned int i, void *ctx, struct dbox_err *err)
{
	struct commit_pass *c = ctx;
	struct save_box *b = box_find(txn, m->mailbox_id, m->preset_uid);
	char path[PATH_MAX];

	(void)i;
	m->uid = b->next++;
	if (final_path(txn, c, m, path, sizeof(path), err) == 0)
		unlink(path);
	return 0;
}

static void undo_links(struct dbox_save_txn *txn, struct commit_pass *c)
{
	struct dbox_err err;

	for (unsigned int i = 0; i < txn->box_count; i++)
		txn->boxes[i].next = txn->boxes[i].first;
	c->box_id = 0;
	each_msg(txn, c->done, unlink_msg, c, &err);
}

/* Only once the commit that dropped their rows is durable: a power cut
 * must not leave a row whose file is gone. */
static void remove_expunged_files(struct dbox_save_txn *txn)
{
	struct dbox_err err;

	if (txn->expunge_count > 0 && dindex_sync(txn->store->idx, &err) < 0) {
		dbox_log(DBOX_LOG_WARNING, "expunged files kept: %s", err.msg);
		return;
	}
	for (unsigned int i = 0; i < txn->expunge_count; i++) {
		if (txn->expunges[i].file_id != 0)
			continue;
		dbox_fcache_drop(txn->store, txn->expunges[i].path);
		unlink(txn->expunges[i].path);
	}
}

static int unlink_tmp(struct dbox_save_txn *txn, struct save_msg *m,
		      unsigned int i, void *ctx, struct dbox_err *err)
{
	char path[PATH_MAX];

	(void)i;
	(void)ctx;
	(void)err;
	if (tmp_path(txn, m->tmp_seq, path, sizeof(path)) == 0)
		unlink(path);
	return 0;
}

static void txn_free(struct dbox_save_txn *txn, bool rollback)
{
	struct dbox_err err;

	wait_idle(txn);
	if (rollback && is_sdbox(txn))
		each_msg(txn, txn->count, unlink_tmp, NULL, &err);
	for (unsigned int i = txn->spilled; i < txn->count; i++) {
		struct save_msg *m = msg_at(txn, i);

		free(m->stage);
		if (m->app == NULL && m->file != NULL)
			dfs_sync_close(m->file);
	}
	while (txn->apps != NULL) {
		struct mdbox_append *a = txn->apps;

		txn->apps = a->next;
		mdbox_append_release(txn->store, a, rollback);
	}
	if (txn->spool != NULL)
		fclose(txn->spool);
	pthread_mutex_destroy(&txn->lock);
	pthread_cond_destroy(&txn->idle);
	free(txn->msgs);
	free(txn->boxes);
	free(txn->expunges);
	free(txn);
}

int dbox_save_commit(struct dbox_save_txn *txn, uint32_t *uids_r,
		     struct dbox_err *err)
{
	struct commit_pass c = { .uids_r = uids_r, .now = dbox_now() };
	int ret = txn_settle(txn, err);

	if (ret == 0)
		ret = sync_files(txn, true, err);
	if (ret == 0)
		ret = commit_index(txn, &c, err);
	if (is_sdbox(txn)) {
		if (ret < 0)
			undo_links(txn, &c);
		dbox_journal_remove(txn->store);
	}
	if (ret == 0)
		remove_expunged_files(txn);
	txn_free(txn, ret < 0);
	return ret;
}

void dbox_save_rollback(struct dbox_save_txn *txn)
{
	txn_free(txn, true);
}
