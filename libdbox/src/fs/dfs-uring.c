/* dfs-uring.c - the io_uring backend (see dfs-uring.h). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "fs/dfs-build.h"
#include "fs/dfs-posix.h"
#include "fs/dfs-uring.h"

#if DFS_HAVE_URING
#include <liburing.h>

/* In flight at most; beyond, requests run synchronously on their worker.
 * Equal to the ring's size, so a submission always finds an entry. */
#define RING_ENTRIES 256

struct uring_layer {
	struct dfs_layer l;
	struct dfs_layer *posix;    /* what io_uring does not do */
	bool active;                /* the ring works; immutable */
	struct io_uring ring;
	pthread_mutex_t lock;       /* submissions, inflight */
	unsigned int inflight;
	pthread_t reaper;
};

static bool ring_op(enum dfs_op op)
{
	return op == DFS_OP_PREAD || op == DFS_OP_PWRITE || op == DFS_OP_FSYNC;
}

/* Queues the rest of a request (lock held); false when the ring is full. */
static bool queue_req(struct uring_layer *u, struct dfs_req *req)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	int fd = req->file->fd;
	size_t done = req->progress;
	int ret;

	if (sqe == NULL)
		return false;
	if (req->op == DFS_OP_PREAD)
		io_uring_prep_read(sqe, fd, (char *)req->buf + done,
				   (unsigned int)(req->len - done),
				   (uint64_t)req->off + done);
	else if (req->op == DFS_OP_PWRITE)
		io_uring_prep_write(sqe, fd, (const char *)req->cbuf + done,
				    (unsigned int)(req->len - done),
				    (uint64_t)req->off + done);
	else
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, req);
	/* an entry that is queued is submitted by a later call at the
	 * latest; only an interrupted or busy kernel makes us try again */
	while ((ret = io_uring_submit(&u->ring)) == -EINTR || ret == -EAGAIN ||
	       ret == -EBUSY)
		sched_yield();
	return true;
}

/* What of a read is in the page cache is read at once, on the worker:
 * going through the ring, the reaper and back to a worker costs more than
 * the copy.  True when that was all of it (or up to the end); an error
 * (EAGAIN: not cached; ESPIPE: a pipe) leaves the rest to the ring, which
 * reports real errors itself. */
static bool read_cached(struct dfs_req *req)
{
	while (req->progress < req->len) {
		struct iovec iov = { (char *)req->buf + req->progress,
				     req->len - req->progress };
		ssize_t n = preadv2(req->file->fd, &iov, 1,
				    req->off + (off_t)req->progress, RWF_NOWAIT);

		if (n < 0)
			return false;
		if (n == 0)
			break;
		req->progress += (size_t)n;
	}
	req->res.n = (ssize_t)req->progress;
	return true;
}

static enum dfs_exec uring_exec(struct dfs_layer *layer, struct dfs_req *req)
{
	struct uring_layer *u = (struct uring_layer *)layer;
	bool queued = false;

	if (u->active && req->op == DFS_OP_PREAD && read_cached(req))
		return DFS_EXEC_DONE;
	if (u->active && ring_op(req->op) && req->len <= UINT32_MAX) {
		pthread_mutex_lock(&u->lock);
		if (u->inflight < RING_ENTRIES && queue_req(u, req)) {
			u->inflight++;
			queued = true;
		}
		pthread_mutex_unlock(&u->lock);
	}
	return queued ? DFS_EXEC_PENDING : u->posix->exec(u->posix, req);
}

/* One completion of `req` (lock held): true if the request is finished,
 * false if the rest of it was queued again (short read or write). */
static bool settle(struct uring_layer *u, struct dfs_req *req, int res)
{
	bool again = res == -EINTR || res == -EAGAIN;

	if (res == 0 && req->op == DFS_OP_PWRITE && req->progress < req->len)
		res = -EIO;  /* no progress: do not loop on it */
	if (res < 0 && !again) {
		req->res.err = res;
		return true;
	}
	if (res > 0)
		req->progress += (size_t)res;
	/* as full_pread/full_pwrite: all of it, or a read up to the end */
	if (again || (res > 0 && req->progress < req->len)) {
		if (queue_req(u, req))
			return false;
		req->res.err = -EIO;   /* cannot happen: the ring has room */
		return true;
	}
	req->res.n = (ssize_t)req->progress;
	return true;
}

static void *reaper_main(void *arg)
{
	struct uring_layer *u = arg;

	for (;;) {
		struct io_uring_cqe *cqe;
		struct dfs_req *req;
		bool finished;
		int res, ret = io_uring_wait_cqe(&u->ring, &cqe);

		if (ret == -EINTR)
			continue;
		if (ret < 0)
			abort();  /* the ring is broken: requests would hang */
		req = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);
		if (req == NULL)
			return NULL;  /* the stop entry of uring_free() */
		/* the lock also orders the submitter's writes to req before
		 * ours, in a way ThreadSanitizer can see */
		pthread_mutex_lock(&u->lock);
		finished = settle(u, req, res);
		if (finished)
			u->inflight--;
		pthread_mutex_unlock(&u->lock);
		if (finished)
			dfs_req_done(req);
	}
}

/* The kernel must know the three operations, or nothing goes to it. */
static bool ring_usable(struct io_uring *ring)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	bool ok = probe != NULL &&
		io_uring_opcode_supported(probe, IORING_OP_READ) &&
		io_uring_opcode_supported(probe, IORING_OP_WRITE) &&
		io_uring_opcode_supported(probe, IORING_OP_FSYNC);

	if (probe != NULL)
		io_uring_free_probe(probe);
	return ok;
}

static void ring_start(struct uring_layer *u)
{
	if (io_uring_queue_init(RING_ENTRIES, &u->ring, 0) < 0)
		return;
	if (!ring_usable(&u->ring) ||
	    pthread_create(&u->reaper, NULL, reaper_main, u) != 0) {
		io_uring_queue_exit(&u->ring);
		return;
	}
	u->active = true;
}

static void ring_stop(struct uring_layer *u)
{
	struct io_uring_sqe *sqe;

	if (!u->active)
		return;
	pthread_mutex_lock(&u->lock);
	/* nothing is in flight any more: the ring has room */
	sqe = io_uring_get_sqe(&u->ring);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, NULL);
	while (io_uring_submit(&u->ring) == -EINTR)
		;
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->reaper, NULL);
	io_uring_queue_exit(&u->ring);
}

static void uring_free(struct dfs_layer *layer)
{
	struct uring_layer *u = (struct uring_layer *)layer;

	ring_stop(u);
	dfs_stack_free(u->posix);
	pthread_mutex_destroy(&u->lock);
}

int dfs_uring_new(const char *args, uint64_t seed, struct dfs_layer **l_r,
		  char *errbuf, size_t errlen)
{
	struct uring_layer *u;
	int ret;

	if (args != NULL)
		return dfs_layer_error(errbuf, errlen, "uring takes no "
				       "arguments (got \"uring:%s\")", args);
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return -ENOMEM;
	ret = dfs_posix_new(NULL, seed, &u->posix, errbuf, errlen);
	if (ret < 0) {
		free(u);
		return ret;
	}
	u->l.name = "uring";
	u->l.exec = uring_exec;
	u->l.free = uring_free;
	pthread_mutex_init(&u->lock, NULL);
	ring_start(u);
	*l_r = &u->l;
	return 0;
}

#else  /* !DFS_HAVE_URING: built without liburing, posix under the name */

int dfs_uring_new(const char *args, uint64_t seed, struct dfs_layer **l_r,
		  char *errbuf, size_t errlen)
{
	if (args != NULL)
		return dfs_layer_error(errbuf, errlen, "uring takes no "
				       "arguments (got \"uring:%s\")", args);
	return dfs_posix_new(NULL, seed, l_r, errbuf, errlen);
}

#endif
