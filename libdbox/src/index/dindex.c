/* dindex.c - SQLite connections, open (integrity check, schema through
 * dindex-schema.c) and transactions. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/dindex-private.h"
#include "index/dindex-removed.h"
#include "index/dindex-unconfirmed.h"
#include "index/dindex-schema.h"
#include "index/dindex-stamp.h"
#include "util/util.h"

static const char sql_seq_bump[] = "UPDATE meta SET value = "
	"CAST(value AS INTEGER) + 1 WHERE key = 'seq'";

struct dconn {
	sqlite3 *db;
	sqlite3_stmt *stmts[DSTMT__COUNT];
	struct dindex *idx;
	struct dconn *next;
	struct dconn *idle_next;  /* in idx->idle */
	bool in_write;
	/* the write transaction: the log's header when it began (valid:
	 * read), the changes made before it, and the mailbox row it read
	 * last (pend_set) with the changes made before that read */
	struct dindex_walhdr txn_hdr;
	bool txn_hdr_valid;
	sqlite3_int64 txn_changes;
	bool pend_set;
	sqlite3_int64 pend_changes;
	struct dbox_mailbox pend;
};

struct dindex {
	char *path;
	bool readonly;
	bool deferred;            /* synchronous=NORMAL: see dindex_sync */
	int cache_kib;            /* page cache per connection, 0: default */
	/* checked (or known checked) at open, and SQLite found nothing
	 * wrong since: the file may be stamped at close (dindex-stamp.h) */
	atomic_bool sound;
	bool checked;             /* the open ran the check (not the stamp) */
	pthread_key_t key;
	pthread_mutex_t lock;     /* protects conns, idle */
	struct dconn *conns;
	/* connections released by their threads (dindex_release), most
	 * recently released first; linked by idle_next */
	struct dconn *idle;
	/* group flush (dindex_sync): commits counts every commit that
	 * returned, synced how many of them are durable */
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_done;
	bool syncing;
	uint64_t commits, synced;
	int wal_frames;           /* in the WAL at the last commit (deferred) */
	struct dindex_removed *removed;   /* dindex_track_removed, or NULL */
	/* the mailbox rows remembered (dindex_box_*): the WAL index's header
	 * mapped read-only (NULL: none), live once a commit of ours was
	 * seen in it; box_lock protects boxes[] */
	const volatile unsigned char *shm;
	int shm_fd;               /* the -shm file, -1: none (shm_map) */
	atomic_bool shm_live;
	pthread_mutex_t box_lock;
	struct dindex_box_seen boxes[DINDEX_BOXES];
	struct dindex_kept kept;          /* dindex_set_kept, or fn NULL */
};

static void dconn_free(struct dconn *c)
{
	for (int i = 0; i < DSTMT__COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	sqlite3_close(c->db);
	free(c);
}

static bool conn_idle(struct dconn *c);
static void pool_put(struct dindex *idx, struct dconn *c);

/* Thread exit: the connection goes with its thread, or to the pool if
 * it holds nothing of it. */
static void dconn_destructor(void *p)
{
	struct dconn *c = p, **pp;
	struct dindex *idx = c->idx;

	if (conn_idle(c)) {
		pool_put(idx, c);
		return;
	}
	pthread_mutex_lock(&idx->lock);
	for (pp = &idx->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&idx->lock);
	dconn_free(c);
}

int dindex_error(struct dindex *idx, int rc, const char *what,
		 struct dbox_err *err)
{
	struct dconn *c = pthread_getspecific(idx->key);
	const char *msg = c != NULL ? sqlite3_errmsg(c->db) :
		sqlite3_errstr(rc);
	int ret;

	switch (rc & 0xff) {
	case SQLITE_BUSY: case SQLITE_LOCKED: ret = -EBUSY; break;
	case SQLITE_NOMEM: ret = -ENOMEM; break;
	case SQLITE_READONLY: ret = -EROFS; break;
	case SQLITE_FULL: ret = -ENOSPC; break;
	case SQLITE_CONSTRAINT: ret = -EEXIST; break;
	case SQLITE_CANTOPEN: ret = -ENOENT; break;
	case SQLITE_CORRUPT: case SQLITE_NOTADB: ret = -EBADMSG; break;
	default: ret = -EIO; break;
	}
	if (ret == -EBADMSG || ret == -EIO)
		atomic_store(&idx->sound, false);
	return dbox_fail(err, ret, "index %s: %s: %s", idx->path, what, msg);
}

/* Deferred commits do not checkpoint (SQLite's automatic checkpoint
 * copies the WAL into the file, and syncs both, inside whichever commit
 * crosses 1,000 pages, i.e. inside a request): dindex_checkpoint does,
 * off the requests' path.  This hook replaces the automatic one and only
 * counts, up to WAL_FRAMES_MAX: a PASSIVE checkpoint beside busy writers
 * never finds the whole log copied when the next one begins, which is
 * when SQLite starts the log over, so the log would grow without end;
 * the commit that reaches WAL_FRAMES_MAX copies the rest (little, the
 * background checkpoints copied most of it) and the log restarts. */
#define WAL_FRAMES_CHECKPOINT 1000
#define WAL_FRAMES_MAX 4096

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct dindex *idx = arg;

	pthread_mutex_lock(&idx->sync_lock);
	idx->wal_frames = frames;
	pthread_mutex_unlock(&idx->sync_lock);
	if (frames >= WAL_FRAMES_MAX)
		sqlite3_wal_checkpoint(db, name);
	return SQLITE_OK;
}

/* A smaller cache only costs preads the OS page cache answers; it fails
 * only without memory, when the default stays. */
static void set_cache(sqlite3 *db, int kib)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%d", kib);
	(void)sqlite3_exec(db, sql, NULL, NULL, NULL);
}

void dindex_set_cache(struct dindex *idx, int kib)
{
	struct dconn *c = pthread_getspecific(idx->key);

	idx->cache_kib = kib;
	if (c != NULL && kib > 0)
		set_cache(c->db, kib);
}

void dindex_track_removed(struct dindex *idx)
{
	struct dconn *c = pthread_getspecific(idx->key);

	if (idx->removed != NULL ||
	    (idx->removed = dindex_removed_new()) == NULL)
		return;
	if (c != NULL)
		dindex_removed_attach(idx->removed, c->db);
}

void dindex_set_kept(struct dindex *idx, dbox_store_kept_fn fn, void *ctx)
{
	struct dconn *c = pthread_getspecific(idx->key);

	idx->kept = (struct dindex_kept){ fn, ctx };
	if (c != NULL && !idx->readonly)
		dindex_unconfirmed_attach(&idx->kept, c->db);
}

int dindex_take_removed(struct dindex *idx, struct dbox_removed **rows_r)
{
	*rows_r = NULL;
	return idx->removed == NULL ? 0 :
		dindex_removed_take(idx->removed, rows_r);
}

static int conn_open(struct dindex *idx, bool create, struct dconn **c_r,
		     struct dbox_err *err)
{
	int flags = SQLITE_OPEN_NOMUTEX | (idx->readonly ?
		SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
	struct dconn *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	c->idx = idx;
	rc = sqlite3_open_v2(idx->path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		int ret = dbox_fail(err, rc == SQLITE_CANTOPEN ? -ENOENT :
				    -EIO, "index %s: %s", idx->path,
				    c->db ? sqlite3_errmsg(c->db) :
				    sqlite3_errstr(rc));
		dconn_free(c);
		return ret;
	}
	sqlite3_busy_timeout(c->db, 60000);
	sqlite3_extended_result_codes(c->db, 1);
	/* FULL: a commit is durable when it returns (WAL fsynced).
	 * NORMAL (deferred): a commit is atomic but durable only at the
	 * next dindex_sync or checkpoint (which syncs the WAL first). */
	rc = sqlite3_exec(c->db, idx->deferred ? "PRAGMA synchronous=NORMAL;"
			  "PRAGMA foreign_keys=ON;" : "PRAGMA synchronous=FULL;"
			  "PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		/* the schema is read here first: damage can show already */
		bool bad = (rc & 0xff) == SQLITE_CORRUPT ||
			(rc & 0xff) == SQLITE_NOTADB;
		int ret = dbox_fail(err, bad ? -EBADMSG : -EIO,
				    "index %s%s: %s", idx->path,
				    bad ? " is damaged" : "",
				    sqlite3_errmsg(c->db));
		dconn_free(c);
		return ret;
	}
	if (idx->deferred && !idx->readonly)
		sqlite3_wal_hook(c->db, wal_hook, idx);
	if (idx->cache_kib > 0)
		set_cache(c->db, idx->cache_kib);
	if (idx->removed != NULL)
		dindex_removed_attach(idx->removed, c->db);
	if (idx->kept.fn != NULL && !idx->readonly)
		dindex_unconfirmed_attach(&idx->kept, c->db);
	*c_r = c;
	return 0;
}

/* ------------------------------------------------- the idle pool
 *
 * In WAL mode a connection that begins a read and finds the log changed
 * since its last one drops its whole page cache; the connection that
 * made the last commit finds it unchanged.  A daemon's requests of one
 * client come on different threads in turn (libfuse's workers), so with
 * a connection per thread nearly every request refilled its cache (~13
 * preads per flag rename).  Threads that serve requests release their
 * connection at each reply (dindex_release) and take the most recently
 * released one at their next use: consecutive requests then share one
 * connection and its cache, while concurrent ones each have their own,
 * so that no reader waits for another connection's writer. */
static void pool_put(struct dindex *idx, struct dconn *c)
{
	pthread_mutex_lock(&idx->lock);
	c->idle_next = idx->idle;
	idx->idle = c;
	pthread_mutex_unlock(&idx->lock);
}

static struct dconn *pool_take(struct dindex *idx)
{
	struct dconn *c;

	pthread_mutex_lock(&idx->lock);
	c = idx->idle;
	if (c != NULL)
		idx->idle = c->idle_next;
	pthread_mutex_unlock(&idx->lock);
	return c;
}

/* Nothing of its thread is in it: no transaction, no statement begun
 * (a statement stepped and not reset holds a read transaction, and its
 * thread will step it again). */
static bool conn_idle(struct dconn *c)
{
	sqlite3_stmt *st = NULL;

	if (c->in_write || !sqlite3_get_autocommit(c->db))
		return false;
	while ((st = sqlite3_next_stmt(c->db, st)) != NULL) {
		if (sqlite3_stmt_busy(st))
			return false;
	}
	return true;
}

void dindex_release(struct dindex *idx)
{
	struct dconn *c = pthread_getspecific(idx->key);

	if (c == NULL || !conn_idle(c))
		return;
	pthread_setspecific(idx->key, NULL);
	pool_put(idx, c);
}

/* ------------------------------------------- remembered mailbox rows
 *
 * cur/'s attributes need the mailbox's change time, asked for once per
 * flag rename (GETATTR: default_permissions); other processes (dboxctl,
 * the follower's imports of Dovecot's changes) change it too.  A row is
 * remembered with the WAL-index header of the state it was read in and
 * served while the header in the -shm file is still that one: any
 * commit of any connection of any process changes it.  A flag rename's
 * own commit leaves its mailbox's row remembered: read inside the write
 * transaction after its last change, and the header after the commit
 * is ours when its change counter is one more than before the COMMIT
 * (the write lock held until then) and the transaction changed rows
 * (so the COMMIT wrote frames and counted). */
static void shm_map(struct dindex *idx)
{
	char path[4096];
	struct stat st;
	void *p;
	int fd;

	if (idx->readonly ||
	    snprintf(path, sizeof(path), "%s-shm", idx->path) >=
	    (int)sizeof(path))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	/* the header (136 bytes) is there once a connection has read */
	p = fstat(fd, &st) == 0 && st.st_size >= 4096 ?
		mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
	if (p == MAP_FAILED) {
		/* nothing locked through it yet: SQLite's locks stay */
		close(fd);
		return;
	}
	idx->shm = p;
	/* open until SQLite's own descriptors of the file are closed:
	 * closing any descriptor of a file drops every POSIX lock the
	 * process holds on it, SQLite's shared lock that tells other
	 * processes the -shm is in use among them */
	idx->shm_fd = fd;
}

/* The current header: false while a writer is writing it (its two
 * copies differ) or when it is not there. */
static bool shm_hdr(struct dindex *idx, struct dindex_walhdr *h)
{
	struct dindex_walhdr h2;

	if (idx->shm == NULL)
		return false;
	/* SQLite writes the second copy, then the first: the first read
	 * first, then the second */
	atomic_thread_fence(memory_order_acquire);
	memcpy(h->b, (const unsigned char *)idx->shm, sizeof(h->b));
	atomic_thread_fence(memory_order_acquire);
	memcpy(h2.b, (const unsigned char *)idx->shm + 48, sizeof(h2.b));
	return h->b[12] != 0 && memcmp(h->b, h2.b, sizeof(h->b)) == 0;
}

static uint32_t hdr_change(const struct dindex_walhdr *h)
{
	uint32_t c;

	memcpy(&c, h->b + 8, sizeof(c));
	return c;
}

static struct dindex_box_seen *box_slot(struct dindex *idx, int64_t id)
{
	return &idx->boxes[(uint64_t)id % DINDEX_BOXES];
}

static void box_keep(struct dindex *idx, const struct dbox_mailbox *row,
		     const struct dindex_walhdr *h)
{
	struct dindex_box_seen *s = box_slot(idx, row->id);

	pthread_mutex_lock(&idx->box_lock);
	s->id = row->id;
	s->hdr = *h;
	s->row = *row;
	pthread_mutex_unlock(&idx->box_lock);
}

bool dindex_box_get(struct dindex *idx, int64_t id, struct dbox_mailbox *row_r,
		    struct dindex_walhdr *hdr_r, bool *hdr_ok_r)
{
	struct dconn *c = pthread_getspecific(idx->key);
	struct dindex_box_seen *s = box_slot(idx, id);
	bool hit = false;

	*hdr_ok_r = false;
	/* inside a transaction the row may differ from the committed one;
	 * a statement left begun reads an older state */
	if (c != NULL && (!sqlite3_get_autocommit(c->db) ||
			  sqlite3_txn_state(c->db, NULL) != SQLITE_TXN_NONE))
		return false;
	if (!atomic_load(&idx->shm_live) || !shm_hdr(idx, hdr_r))
		return false;
	*hdr_ok_r = true;
	pthread_mutex_lock(&idx->box_lock);
	if (s->id == id && memcmp(&s->hdr, hdr_r, sizeof(*hdr_r)) == 0) {
		*row_r = s->row;
		hit = true;
	}
	pthread_mutex_unlock(&idx->box_lock);
	return hit;
}

void dindex_box_read(struct dindex *idx, const struct dbox_mailbox *row,
		     const struct dindex_walhdr *hdr, bool hdr_ok)
{
	struct dconn *c = pthread_getspecific(idx->key);
	struct dindex_walhdr now;

	if (c != NULL && c->in_write) {
		c->pend = *row;
		c->pend_set = true;
		c->pend_changes = sqlite3_total_changes64(c->db);
		return;
	}
	/* no commit between the header before and after the read: the
	 * read saw the state of that header */
	if (hdr_ok && shm_hdr(idx, &now) &&
	    memcmp(&now, hdr, sizeof(now)) == 0)
		box_keep(idx, row, hdr);
}

/* The write transaction of c began (BEGIN IMMEDIATE: the write lock is
 * held, the header stays as it is until the COMMIT). */
static void txn_began(struct dindex *idx, struct dconn *c)
{
	c->pend_set = false;
	c->txn_changes = sqlite3_total_changes64(c->db);
	c->txn_hdr_valid = shm_hdr(idx, &c->txn_hdr);
}

/* After its COMMIT: the row read after the transaction's last change
 * is the committed one, in the state of our commit's header. */
static void txn_committed(struct dindex *idx, struct dconn *c,
			  sqlite3_int64 changes)
{
	struct dindex_walhdr now;

	if (!c->txn_hdr_valid || changes == c->txn_changes ||
	    !shm_hdr(idx, &now) ||
	    hdr_change(&now) != hdr_change(&c->txn_hdr) + 1)
		return;
	/* the mapping shows our commits: the -shm SQLite uses */
	atomic_store(&idx->shm_live, true);
	if (c->pend_set && c->pend_changes == changes)
		box_keep(idx, &c->pend, &now);
}

static struct dconn *conn_get(struct dindex *idx, struct dbox_err *err)
{
	struct dconn *c = pthread_getspecific(idx->key);

	if (c != NULL)
		return c;
	c = pool_take(idx);
	if (c != NULL) {
		pthread_setspecific(idx->key, c);
		return c;
	}
	if (conn_open(idx, false, &c, err) < 0)
		return NULL;
	pthread_setspecific(idx->key, c);
	pthread_mutex_lock(&idx->lock);
	c->next = idx->conns;
	idx->conns = c;
	pthread_mutex_unlock(&idx->lock);
	return c;
}

sqlite3 *dindex_db(struct dindex *idx, struct dbox_err *err)
{
	struct dconn *c = conn_get(idx, err);

	return c == NULL ? NULL : c->db;
}

sqlite3_stmt *dindex_prepare(struct dindex *idx, enum dindex_stmt id,
			     const char *sql, struct dbox_err *err)
{
	struct dconn *c = conn_get(idx, err);
	int rc;

	if (c == NULL)
		return NULL;
	if (c->stmts[id] != NULL) {
		sqlite3_reset(c->stmts[id]);
		sqlite3_clear_bindings(c->stmts[id]);
		return c->stmts[id];
	}
	rc = sqlite3_prepare_v3(c->db, sql, -1,
				SQLITE_PREPARE_PERSISTENT, &c->stmts[id],
				NULL);
	if (rc != SQLITE_OK) {
		dindex_error(idx, rc, "prepare", err);
		return NULL;
	}
	return c->stmts[id];
}

int dindex_exec(struct dindex *idx, const char *sql, struct dbox_err *err)
{
	sqlite3 *db = dindex_db(idx, err);
	int rc;

	if (db == NULL)
		return -EIO;
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return dindex_error(idx, rc, "exec", err);
	return 0;
}

int dindex_step_done(struct dindex *idx, sqlite3_stmt *st,
		     struct dbox_err *err)
{
	return dindex_step_what(idx, st, "write", err);
}

int dindex_step_what(struct dindex *idx, sqlite3_stmt *st, const char *what,
		     struct dbox_err *err)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return dindex_error(idx, rc, what, err);
	return 0;
}

static int write_begin(struct dindex *idx, bool bump, struct dbox_err *err)
{
	struct dconn *c = conn_get(idx, err);
	sqlite3_stmt *st;
	int ret;

	if (c == NULL)
		return -EIO;
	if (idx->readonly)
		return dbox_fail(err, -EROFS, "index %s is read-only",
				 idx->path);
	/* prepared once, as every statement of a flag change (~10 us less
	 * per change than parsing both each time) */
	st = dindex_prepare(idx, DSTMT_BEGIN, "BEGIN IMMEDIATE", err);
	ret = st == NULL ? -EIO : dindex_step_what(idx, st, "begin", err);
	if (ret < 0)
		return ret;
	c->in_write = true;
	txn_began(idx, c);
	if (!bump)
		return 0;
	st = dindex_prepare(idx, DSTMT_SEQ_BUMP, sql_seq_bump, err);
	ret = st == NULL ? -EIO : dindex_step_done(idx, st, err);
	if (ret < 0)
		dindex_write_rollback(idx);
	return ret;
}

int dindex_write_begin(struct dindex *idx, struct dbox_err *err)
{
	return write_begin(idx, true, err);
}

int dindex_write_begin_unseen(struct dindex *idx, struct dbox_err *err)
{
	return write_begin(idx, false, err);
}

int dindex_write_commit(struct dindex *idx, struct dbox_err *err)
{
	struct dconn *c = conn_get(idx, err);
	sqlite3_int64 changes;
	sqlite3_stmt *st;
	int ret;

	if (c == NULL)
		return -EIO;
	changes = sqlite3_total_changes64(c->db);
	st = dindex_prepare(idx, DSTMT_COMMIT, "COMMIT", err);
	ret = st == NULL ? -EIO : dindex_step_what(idx, st, "commit", err);
	if (ret < 0) {
		dindex_write_rollback(idx);
		return ret;
	}
	c->in_write = false;
	txn_committed(idx, c, changes);
	c->pend_set = false;
	pthread_mutex_lock(&idx->sync_lock);
	idx->commits++;
	if (!idx->deferred)
		idx->synced = idx->commits;   /* FULL synced it already */
	pthread_mutex_unlock(&idx->sync_lock);
	return 0;
}

/* fdatasync of the WAL through this connection's own handle of it (and
 * so through whatever VFS the connection uses).  A connection opens the
 * WAL at its first read and keeps it. */
static int wal_sync(struct dindex *idx, struct dconn *c, struct dbox_err *err)
{
	sqlite3_file *wal = NULL;
	int rc = sqlite3_file_control(c->db, "main",
				      SQLITE_FCNTL_JOURNAL_POINTER, &wal);

	if (rc == SQLITE_OK && (wal == NULL || wal->pMethods == NULL)) {
		rc = sqlite3_exec(c->db, "SELECT count(*) FROM meta", NULL,
				  NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_file_control(c->db, "main",
						  SQLITE_FCNTL_JOURNAL_POINTER,
						  &wal);
	}
	if (rc == SQLITE_OK && (wal == NULL || wal->pMethods == NULL))
		return 0;   /* no WAL: nothing was written through one */
	if (rc == SQLITE_OK)
		rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
	if (rc != SQLITE_OK)
		return dindex_error(idx, rc, "sync WAL", err);
	return 0;
}

/* Group flush: the caller that finds no flush running syncs the WAL for
 * every commit counted so far; callers that come meanwhile wait for it
 * and, if their commits came after it started, do the next one. */
int dindex_sync(struct dindex *idx, struct dbox_err *err)
{
	struct dconn *c = conn_get(idx, err);
	uint64_t target;
	int ret;

	if (c == NULL)
		return -EIO;
	pthread_mutex_lock(&idx->sync_lock);
	target = idx->commits;
	while (idx->syncing && idx->synced < target)
		pthread_cond_wait(&idx->sync_done, &idx->sync_lock);
	if (idx->synced >= target) {
		pthread_mutex_unlock(&idx->sync_lock);
		return 0;
	}
	idx->syncing = true;
	target = idx->commits;
	pthread_mutex_unlock(&idx->sync_lock);
	ret = wal_sync(idx, c, err);
	pthread_mutex_lock(&idx->sync_lock);
	idx->syncing = false;
	if (ret == 0 && idx->synced < target)
		idx->synced = target;
	pthread_cond_broadcast(&idx->sync_done);
	pthread_mutex_unlock(&idx->sync_lock);
	return ret;
}

int dindex_checkpoint(struct dindex *idx, struct dbox_err *err)
{
	struct dconn *c;
	int frames, log = -1, done = -1, rc;

	pthread_mutex_lock(&idx->sync_lock);
	frames = idx->wal_frames;
	pthread_mutex_unlock(&idx->sync_lock);
	if (frames < WAL_FRAMES_CHECKPOINT)
		return 0;
	c = conn_get(idx, err);
	if (c == NULL)
		return -EIO;
	/* PASSIVE: writers go on meanwhile; what readers still need stays
	 * in the WAL for the next time */
	rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE,
				       &log, &done);
	if (rc == SQLITE_OK && done == log) {
		/* all copied: nothing to do before the next commit */
		pthread_mutex_lock(&idx->sync_lock);
		if (idx->wal_frames == frames)
			idx->wal_frames = 0;
		pthread_mutex_unlock(&idx->sync_lock);
	}
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
		return dindex_error(idx, rc, "checkpoint", err);
	return 0;
}

bool dindex_dirty(struct dindex *idx)
{
	bool dirty;

	pthread_mutex_lock(&idx->sync_lock);
	dirty = idx->synced < idx->commits;
	pthread_mutex_unlock(&idx->sync_lock);
	return dirty;
}

void dindex_write_rollback(struct dindex *idx)
{
	struct dconn *c = pthread_getspecific(idx->key);

	if (c == NULL || !c->in_write)
		return;
	for (int i = 0; i < DSTMT__COUNT; i++) {
		if (c->stmts[i] != NULL)
			sqlite3_reset(c->stmts[i]);
	}
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	c->in_write = false;
	c->pend_set = false;
}

bool dindex_in_write(struct dindex *idx)
{
	struct dconn *c = pthread_getspecific(idx->key);

	return c != NULL && c->in_write;
}

/* A damaged file must be refused before anything reads or writes it:
 * otherwise reads fail one by one (EIO on a mount) and writes may spread
 * the damage.  quick_check walks every page once, checking the b-tree
 * structure but not that indexes match their tables: O(N) in the file's
 * size: the 27 MB index of 100,000 messages takes 130 ms (best of five,
 * pages cached, on a loaded 2-core machine) and 1.6 s from a cold cache;
 * a full integrity_check takes three times as long. */
static int integrity_check(struct dindex *idx, sqlite3 *db,
			   struct dbox_err *err)
{
	sqlite3_stmt *st;
	const unsigned char *what;
	int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st,
				    NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int ret = (rc & 0xff) == SQLITE_CORRUPT ||
			(rc & 0xff) == SQLITE_NOTADB ? -EBADMSG : -EIO;

		ret = dbox_fail(err, ret, "index %s %s: %s", idx->path, ret ==
				-EBADMSG ? "is damaged" : "cannot be checked",
				sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return ret;
	}
	what = sqlite3_column_text(st, 0);
	if (what != NULL && strcmp((const char *)what, "ok") == 0) {
		sqlite3_finalize(st);
		return 0;
	}
	dbox_fail(err, -EBADMSG, "index %s is damaged: %s", idx->path,
		  what != NULL ? (const char *)what : "?");
	sqlite3_finalize(st);
	return -EBADMSG;
}

int dindex_check(struct dindex *idx, struct dbox_err *err)
{
	struct dconn *c;
	int ret;

	if (idx->checked)
		return 0;  /* this open ran it a moment ago */
	c = conn_get(idx, err);
	if (c == NULL)
		return -EIO;
	ret = integrity_check(idx, c->db, err);
	if (ret == -EBADMSG)
		atomic_store(&idx->sound, false);
	return ret;
}

int dindex_open(const char *path, bool readonly, bool create,
		struct dindex **idx_r, struct dbox_err *err)
{
	return dindex_open_ex(path, readonly, create, false, idx_r, err);
}

static int open_db(const char *path, bool readonly, bool create,
		   bool deferred, bool check, struct dindex **idx_r,
		   struct dbox_err *err);

int dindex_open_ex(const char *path, bool readonly, bool create,
		   bool deferred, struct dindex **idx_r, struct dbox_err *err)
{
	return open_db(path, readonly, create, deferred, true, idx_r, err);
}

int dindex_open_checked(const char *path, bool readonly, bool create,
			bool deferred, struct dindex **idx_r,
			struct dbox_err *err)
{
	return open_db(path, readonly, create, deferred, false, idx_r, err);
}

/* SQLite counts every allocation under a global mutex by default (for
 * sqlite3_memory_used, which nothing here asks): a third of the time of
 * the integrity check and of row-heavy queries on a million messages.
 * Only possible before SQLite initialises; later it fails harmlessly. */
static void sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int open_db(const char *path, bool readonly, bool create,
		   bool deferred, bool check, struct dindex **idx_r,
		   struct dbox_err *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct dindex *idx;
	struct dconn *c;
	int ret;

	pthread_once(&once, sqlite_setup);
	idx = calloc(1, sizeof(*idx));
	if (idx == NULL || (idx->path = strdup(path)) == NULL) {
		free(idx);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	dindex_powercut_register();
	idx->readonly = readonly;
	idx->deferred = deferred;
	pthread_mutex_init(&idx->lock, NULL);
	pthread_mutex_init(&idx->sync_lock, NULL);
	pthread_cond_init(&idx->sync_done, NULL);
	pthread_mutex_init(&idx->box_lock, NULL);
	idx->shm_fd = -1;
	if (pthread_key_create(&idx->key, dconn_destructor) != 0) {
		free(idx->path);
		free(idx);
		return dbox_fail(err, -EAGAIN, "no thread keys left");
	}
	/* before the open: opening creates the WAL the stamp must not see */
	if (check && dindex_stamp_valid(path))
		check = false;
	ret = conn_open(idx, create && !readonly, &c, err);
	if (ret == 0) {
		pthread_setspecific(idx->key, c);
		idx->conns = c;
		ret = check ? integrity_check(idx, c->db, err) : 0;
		idx->checked = check;
	}
	if (ret == 0) {
		ret = readonly ?
			dindex_schema_check_readonly(idx, c->db, err) :
			dindex_schema_migrate(idx, c->db, err);
	}
	if (ret < 0) {
		dindex_close(idx);
		return ret;
	}
	atomic_store(&idx->sound, true);
	shm_map(idx);
	*idx_r = idx;
	return 0;
}

void dindex_close(struct dindex *idx)
{
	struct dconn *c, *next;

	if (idx == NULL)
		return;
	/* before the connections: the last one's close may truncate it;
	 * its descriptor after them (shm_map) */
	if (idx->shm != NULL)
		munmap((void *)idx->shm, 4096);
	/* connections of other threads that are still alive go too; the
	 * caller promised that nobody uses the index any more */
	pthread_setspecific(idx->key, NULL);
	pthread_key_delete(idx->key);
	for (c = idx->conns; c != NULL; c = next) {
		next = c->next;
		dconn_free(c);
	}
	if (idx->shm_fd >= 0)
		close(idx->shm_fd);
	/* the last connection has gone: SQLite copied the WAL into the file
	 * and removed it, unless another process still has the index open */
	if (atomic_load(&idx->sound) && !idx->readonly)
		dindex_stamp_write(idx->path);
	dindex_removed_free(idx->removed);
	pthread_mutex_destroy(&idx->lock);
	pthread_mutex_destroy(&idx->sync_lock);
	pthread_cond_destroy(&idx->sync_done);
	pthread_mutex_destroy(&idx->box_lock);
	free(idx->path);
	free(idx);
}

const char *dindex_path(const struct dindex *idx)
{
	return idx->path;
}

int dindex_fetch_one(struct dindex *idx, sqlite3_stmt *st,
		     void (*row)(sqlite3_stmt *st, void *out), void *out,
		     const char *what, struct dbox_err *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		if (out != NULL)
			row(st, out);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	return dindex_error(idx, rc, what, err);
}

void dindex_col_text(sqlite3_stmt *st, int col, char *buf, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	size_t n;

	/* as snprintf("%s") would, without its format parser: every row
	 * read (guid, base) comes through here */
	if (len == 0)
		return;
	n = s != NULL ? strnlen((const char *)s, len - 1) : 0;
	if (n > 0)
		memcpy(buf, s, n);
	buf[n] = '\0';
}

int dindex_clear(struct dindex *idx, struct dbox_err *err)
{
	return dindex_exec(idx, "DELETE FROM messages; DELETE FROM keywords;"
			   " DELETE FROM files; DELETE FROM mailboxes;", err);
}
