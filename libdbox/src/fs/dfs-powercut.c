/* dfs-powercut.c - the power-cut simulator (see dfs-powercut.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/dfs-config.h"
#include "fs/dfs-powercut.h"
#include "util/util.h"

/* What one unsynced write overwrote (len bytes at off; shorter than the
 * write where it extended the file). */
struct pc_range {
	struct pc_range *next;      /* older */
	off_t off;
	size_t len;
	unsigned char old[];
};

/* A file with unsynced writes, by inode: every descriptor of it (SQLite
 * opens one per connection) shares its fate. */
struct pc_inode {
	struct pc_inode *next;
	dev_t dev;
	ino_t ino;
	int fd;                     /* our own duplicate, for the undo */
	off_t size0;                /* size before the first unsynced write */
	struct pc_range *undo;      /* newest first */
};

/* One process-wide simulator: a power cut takes every file at once.  The
 * lock is held over each write and sync it watches, so that none runs
 * while the cut undoes the others. */
static pthread_mutex_t pc_lock = PTHREAD_MUTEX_INITIALIZER;
static bool pc_on;
static uint64_t pc_events, pc_cut_at;  /* 0: never */
static struct pc_inode *pc_inodes;

struct powercut_layer {
	struct dfs_layer l;
};

bool dfs_powercut_active(void)
{
	return __atomic_load_n(&pc_on, __ATOMIC_ACQUIRE);
}

static void cut(void)
{
	for (struct pc_inode *in = pc_inodes; in != NULL; in = in->next) {
		for (struct pc_range *r = in->undo; r != NULL; r = r->next) {
			if (r->len > 0 &&
			    pwrite(in->fd, r->old, r->len, r->off) < 0)
				break;
		}
		if (in->undo != NULL && ftruncate(in->fd, in->size0) < 0)
			continue;
	}
	fprintf(stderr, "dboxfs: powercut: power cut at event %" PRIu64 "\n",
		pc_events);
	_exit(DFS_POWERCUT_EXIT);
}

/* Under pc_lock: counts an event, and cuts if it is the chosen one. */
static void event(void)
{
	pc_events++;
	if (pc_cut_at != 0 && pc_events >= pc_cut_at)
		cut();
}

static struct pc_inode *inode_of(int fd)
{
	char path[64];
	struct pc_inode *in;
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	for (in = pc_inodes; in != NULL; in = in->next) {
		if (in->dev == st.st_dev && in->ino == st.st_ino)
			return in;
	}
	in = calloc(1, sizeof(*in));
	if (in == NULL)
		return NULL;
	/* the caller's may be write-only or read-only */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	in->fd = open(path, O_RDWR | O_CLOEXEC);
	if (in->fd < 0) {
		free(in);
		return NULL;
	}
	in->dev = st.st_dev;
	in->ino = st.st_ino;
	in->next = pc_inodes;
	pc_inodes = in;
	return in;
}

/* Notes what [off, off + len) holds now, before a write over it. */
static void remember(struct pc_inode *in, off_t off, size_t len)
{
	struct pc_range *r;
	struct stat st;
	ssize_t n;

	if (in->undo == NULL) {
		if (fstat(in->fd, &st) < 0)
			return;
		in->size0 = st.st_size;
	}
	r = malloc(sizeof(*r) + len);
	if (r == NULL)
		abort();   /* a simulator that cannot undo would lie */
	n = len > 0 ? pread(in->fd, r->old, len, off) : 0;
	r->off = off;
	r->len = n > 0 ? (size_t)n : 0;
	r->next = in->undo;
	in->undo = r;
}

static void forget(struct pc_inode *in)
{
	while (in->undo != NULL) {
		struct pc_range *r = in->undo;

		in->undo = r->next;
		free(r);
	}
}

void dfs_powercut_write(int fd, off_t off, size_t len)
{
	struct pc_inode *in;

	pthread_mutex_lock(&pc_lock);
	event();
	in = inode_of(fd);
	if (in != NULL)
		remember(in, off, len);
}

void dfs_powercut_truncate(int fd, off_t size)
{
	struct pc_inode *in;
	struct stat st;

	pthread_mutex_lock(&pc_lock);
	event();
	in = inode_of(fd);
	/* what a shrink cuts off comes back at the cut */
	if (in != NULL && fstat(fd, &st) == 0)
		remember(in, size, st.st_size > size ?
			 (size_t)(st.st_size - size) : 0);
}

void dfs_powercut_sync(int fd)
{
	(void)fd;
	pthread_mutex_lock(&pc_lock);
	event();
}

void dfs_powercut_done(int fd, bool synced)
{
	struct stat st;

	if (synced && fstat(fd, &st) == 0) {
		for (struct pc_inode *in = pc_inodes; in != NULL;
		     in = in->next) {
			if (in->dev == st.st_dev && in->ino == st.st_ino)
				forget(in);
		}
	}
	pthread_mutex_unlock(&pc_lock);
}

uint64_t dfs_powercut_events(void)
{
	uint64_t n;

	pthread_mutex_lock(&pc_lock);
	n = pc_events;
	pthread_mutex_unlock(&pc_lock);
	return n;
}

/* ------------------------------------------------------------ the layer */

static enum dfs_exec pass_write(struct dfs_layer *layer, struct dfs_req *req,
				off_t off, size_t len)
{
	enum dfs_exec e;

	dfs_powercut_write(req->file->fd, off, len);
	e = dfs_layer_next(layer, req);
	dfs_powercut_done(req->file->fd, false);
	return e;
}

static enum dfs_exec powercut_exec(struct dfs_layer *layer,
				   struct dfs_req *req)
{
	struct dfs_file *f = req->file;
	enum dfs_exec e;
	struct stat st;

	if (f == NULL || f->fd < 0)
		return dfs_layer_next(layer, req);
	switch (req->op) {
	case DFS_OP_PWRITE:
		return pass_write(layer, req, req->off, req->len);
	case DFS_OP_APPEND:
		/* appends of a handle are ordered: its end stays put */
		if (fstat(f->fd, &st) < 0)
			break;
		return pass_write(layer, req, st.st_size, req->len);
	case DFS_OP_TRUNCATE:
	case DFS_OP_ROLLBACK:
		dfs_powercut_truncate(f->fd, req->op == DFS_OP_TRUNCATE ?
				      req->off : f->rollback_size);
		e = dfs_layer_next(layer, req);
		dfs_powercut_done(f->fd, false);
		return e;
	case DFS_OP_FSYNC:
	case DFS_OP_COMMIT:
		dfs_powercut_sync(f->fd);
		e = dfs_layer_next(layer, req);
		/* the backend is synchronous under this wrapper (posix) */
		dfs_powercut_done(f->fd, req->res.err >= 0);
		return e;
	default:
		break;
	}
	return dfs_layer_next(layer, req);
}

static void powercut_free(struct dfs_layer *layer)
{
	dbox_log(DBOX_LOG_INFO, "powercut: %" PRIu64 " events",
		 dfs_powercut_events());
	(void)layer;   /* the stack frees it */
}

int dfs_powercut_new(const char *args, uint64_t seed,
		     struct dfs_layer **layer_r, char *errbuf, size_t errlen)
{
	struct powercut_layer *p;
	unsigned long long n = 0, max;
	char *end;

	/* strtoull would take "-1" or " 1": digits only */
	if (args != NULL && strncmp(args, "random:", 7) == 0) {
		max = strtoull(args + 7, &end, 10);
		if (!isdigit((unsigned char)args[7]) || *end != '\0' ||
		    max == 0)
			return dfs_layer_error(errbuf, errlen, "powercut: "
					       "random:MAX needs MAX >= 1");
		if (seed == 0)
			seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
		n = 1 + (seed * 0x2545F4914F6CDD1Dull >> 11) % max;
	} else if (args != NULL) {
		n = strtoull(args, &end, 10);
		if (!isdigit((unsigned char)args[0]) || *end != '\0')
			return dfs_layer_error(errbuf, errlen, "powercut: use "
					       "powercut:N (cut at the Nth "
					       "write or sync, 0: never) or "
					       "powercut:random:MAX");
	} else {
		return dfs_layer_error(errbuf, errlen, "powercut: use "
				       "powercut:N or powercut:random:MAX");
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->l.name = "powercut";
	p->l.exec = powercut_exec;
	p->l.free = powercut_free;
	pthread_mutex_lock(&pc_lock);
	pc_cut_at = n;
	__atomic_store_n(&pc_on, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&pc_lock);
	*layer_r = &p->l;
	return 0;
}
