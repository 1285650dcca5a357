/* loop.c - the session loop (loop.h): one reader of the device (two
 * after handed-off requests),
 * idle workers in a stack (the most recently active one is promoted
 * next: its stack and caches are warm).
 *
 * Thread-safety: everything in struct loop is under its lock; a worker's
 * fbuf is its own.  Cancellation (at the end, as libfuse's loop does) is
 * enabled only around the read of the device, where no lock is held. */
#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

struct loop;

struct worker {
	struct loop *l;
	pthread_t thread;
	pthread_cond_t wake;
	bool promoted;                  /* given the reader role */
	struct worker *next_idle;
	struct worker *prev, *next;     /* every worker, for the join */
	struct fuse_buf fbuf;
};

struct loop {
	struct fuse_session *se;
	loop_quick_fn quick;
	void *ctx;
	pthread_mutex_t lock;
	struct worker *idle;            /* a stack: the last idle first */
	struct worker all;              /* list head */
	unsigned nworkers, nidle, max_threads;
	int max_idle;
	unsigned readers;               /* workers holding the reader role */
	/* > 0 after requests that were handed off (decays over quick
	 * ones): then a second reader waits in the device, so that the
	 * next such request needs no wake-up of an idle worker */
	atomic_uint slow_recent;
	/* workers past their request, on their way to the lock: one of them
	 * takes the reader role as soon as it runs, so none is started */
	atomic_uint finishing;
	bool exit;
	int error;
	sem_t finish;
};

static void *worker_main(void *arg);

static void worker_free(struct worker *w)
{
	pthread_cond_destroy(&w->wake);
	free(w->fbuf.mem);
	free(w);
}

/* With the lock.  The new worker starts with the reader role.  Signals
 * stay with the main thread (libfuse's handlers end the session there). */
static int worker_start(struct loop *l)
{
	struct worker *w = calloc(1, sizeof(*w));
	sigset_t block, old;
	int ret;

	if (w == NULL)
		return -ENOMEM;
	w->l = l;
	w->promoted = true;
	pthread_cond_init(&w->wake, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	ret = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0) {
		worker_free(w);
		return -ret;
	}
	w->next = &l->all;
	w->prev = l->all.prev;
	l->all.prev->next = w;
	l->all.prev = w;
	l->nworkers++;
	return 0;
}

static void worker_unlink(struct loop *l, struct worker *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	l->nworkers--;
}

#define SLOW_RECENT_MAX 16

static unsigned readers_wanted(struct loop *l)
{
	return atomic_load_explicit(&l->slow_recent,
				    memory_order_relaxed) > 0 ? 2 : 1;
}

/* With the lock: the reader gives its role to the last idle worker, or
 * to a new one; with max_threads busy, to whichever finishes first. */
static void reader_hand_off(struct loop *l)
{
	struct worker *w = l->idle;

	if (w != NULL) {
		l->idle = w->next_idle;
		l->nidle--;
		w->promoted = true;
		pthread_cond_signal(&w->wake);
	} else if (atomic_load(&l->finishing) > 0 ||
		   l->nworkers >= l->max_threads || worker_start(l) < 0) {
		return;
	}
	l->readers++;
}

/* With the lock: waits until w holds the reader role.  False when the
 * loop ends, or when w is one idle worker too many and leaves. */
static bool reader_wait(struct loop *l, struct worker *w)
{
	if (l->exit)
		return false;
	if (l->readers < readers_wanted(l)) {
		l->readers++;
		return true;
	}
	if (l->max_idle >= 0 && l->nidle >= (unsigned)l->max_idle)
		return false;
	w->next_idle = l->idle;
	l->idle = w;
	l->nidle++;
	while (!w->promoted && !l->exit)
		pthread_cond_wait(&w->wake, &l->lock);
	if (!w->promoted)
		return false;
	w->promoted = false;
	return true;
}

/* The session is over: every worker is told, the main thread too. */
static void loop_end(struct loop *l, int res)
{
	pthread_mutex_lock(&l->lock);
	if (res < 0 && l->error == 0)
		l->error = res;
	fuse_session_exit(l->se);
	l->exit = true;
	for (struct worker *w = l->all.next; w != &l->all; w = w->next)
		pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&l->lock);
	sem_post(&l->finish);
}

/* Whether the request is answered from memory (loop_quick_fn); a request
 * left in the device's pipe (splice) is not looked at. */
static bool is_quick(struct loop *l, const struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;
	struct loop_req r = { .kind = LOOP_REQ_OTHER };

	if ((b->flags & FUSE_BUF_IS_FD) || b->size < sizeof(*in))
		return false;
	r.ino = in->nodeid;
	switch (in->opcode) {
	case FUSE_INTERRUPT:
		/* libfuse's own: finds the request, marks it */
		return true;
	case FUSE_OPEN:
		if (b->size < sizeof(*in) + sizeof(struct fuse_open_in))
			return false;
		r.kind = LOOP_REQ_OPEN;
		r.flags = (int)((const struct fuse_open_in *)(in + 1))->flags;
		break;
	case FUSE_RELEASE:
		if (b->size < sizeof(*in) + sizeof(struct fuse_release_in))
			return false;
		r.kind = LOOP_REQ_RELEASE;
		r.fh = ((const struct fuse_release_in *)(in + 1))->fh;
		break;
	default:
		return false;
	}
	return l->quick != NULL && l->quick(l->ctx, &r);
}

/* A request received: false when the session ended.  Not inlined into
 * reader_run: a frame with a local whose address is taken (is_quick's)
 * must not be on the stack when a cancel unwinds the read (AddressSanitizer
 * leaves its redzones poisoned, and the exiting thread trips on them). */
static __attribute__((noinline)) bool reader_serve(struct loop *l,
						   struct worker *w)
{
	bool more;

	if (is_quick(l, &w->fbuf)) {
		fuse_session_process_buf(l->se, &w->fbuf);
		unsigned n = atomic_load_explicit(&l->slow_recent,
						  memory_order_relaxed);
		if (n == 0)
			return true;
		atomic_store_explicit(&l->slow_recent, n - 1,
				      memory_order_relaxed);
		if (n > 1)
			return true;
		/* back to one reader: the second one goes idle */
		pthread_mutex_lock(&l->lock);
		l->readers--;
		more = reader_wait(l, w);
		pthread_mutex_unlock(&l->lock);
		return more;
	}
	atomic_store_explicit(&l->slow_recent, SLOW_RECENT_MAX,
			      memory_order_relaxed);
	pthread_mutex_lock(&l->lock);
	if (--l->readers == 0)
		reader_hand_off(l);
	pthread_mutex_unlock(&l->lock);
	fuse_session_process_buf(l->se, &w->fbuf);
	atomic_fetch_add(&l->finishing, 1);
	pthread_mutex_lock(&l->lock);
	atomic_fetch_sub(&l->finishing, 1);
	more = reader_wait(l, w);
	pthread_mutex_unlock(&l->lock);
	return more;
}

/* The reader's turn: false when the session ended. */
static bool reader_run(struct loop *l, struct worker *w)
{
	int res;

	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	res = fuse_session_receive_buf(l->se, &w->fbuf);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	if (res == -EINTR || res == -EAGAIN)
		return true;
	if (res <= 0) {
		loop_end(l, res);
		return false;
	}
	return reader_serve(l, w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct loop *l = w->l;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_mutex_lock(&l->lock);
	w->promoted = false;
	pthread_mutex_unlock(&l->lock);
	while (!fuse_session_exited(l->se) && reader_run(l, w))
		;
	pthread_mutex_lock(&l->lock);
	if (!l->exit) {
		/* an idle worker too many: nobody joins it */
		worker_unlink(l, w);
		pthread_detach(w->thread);
		pthread_mutex_unlock(&l->lock);
		worker_free(w);
		return NULL;
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int loop_run(struct fuse_session *se, unsigned max_threads, int max_idle,
	     loop_quick_fn quick, void *ctx)
{
	struct loop l = {
		.se = se, .quick = quick, .ctx = ctx,
		.max_threads = max_threads > 0 ? max_threads : 1,
		.max_idle = max_idle, .readers = 1,
	};
	int ret;

	l.all.next = l.all.prev = &l.all;
	pthread_mutex_init(&l.lock, NULL);
	sem_init(&l.finish, 0, 0);
	pthread_mutex_lock(&l.lock);
	ret = worker_start(&l);
	pthread_mutex_unlock(&l.lock);
	if (ret == 0) {
		/* sem_wait returns to a signal: its handler ended the
		 * session */
		while (!fuse_session_exited(se))
			sem_wait(&l.finish);
		pthread_mutex_lock(&l.lock);
		l.exit = true;
		for (struct worker *w = l.all.next; w != &l.all; w = w->next) {
			/* the reader, in read(2) */
			pthread_cancel(w->thread);
			pthread_cond_signal(&w->wake);
		}
		while (l.all.next != &l.all) {
			struct worker *w = l.all.next;

			worker_unlink(&l, w);
			pthread_mutex_unlock(&l.lock);
			pthread_join(w->thread, NULL);
			worker_free(w);
			pthread_mutex_lock(&l.lock);
		}
		pthread_mutex_unlock(&l.lock);
		ret = l.error;
	}
	sem_destroy(&l.finish);
	pthread_mutex_destroy(&l.lock);
	fuse_session_reset(se);
	return ret;
}
