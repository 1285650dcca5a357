/* test-fs-stress.c - thousands of mixed requests from several threads,
 * with cancellations and callbacks that submit more: every callback runs
 * exactly once and the statistics add up.  Meant for ThreadSanitizer
 * (scripts/test.sh runs the 'fs' suite under it). */
#include <stdatomic.h>

#include "fs-test.h"

#define THREADS 8
#define ROUNDS 60
#define OPS 24            /* per round, plus the open and the close */
#define SLOTS (ROUNDS * (OPS + 2))

struct req_slot {
	struct fst_slot s;
	struct fst_slot follow;   /* submitted from s's callback */
	dfs_req_id id;
	bool cancel_ok;           /* dfs_cancel returned true */
	bool has_follow;
};

struct worker {
	struct dfs *fs;
	int id;
	struct fst_tally t;        /* requests submitted by the thread */
	struct fst_tally ft;       /* follow-ups */
	struct req_slot r[SLOTS];
	char bufs[SLOTS][64];
	int used;
	atomic_int follows;       /* follow-ups submitted */
};

static struct dfs *fs_global;

/* A callback that submits another request from the worker thread. */
static void follow_cb(void *ctx, const struct dfs_result *res)
{
	struct req_slot *r = ctx;
	struct worker *w = (struct worker *)((char *)r->s.t -
					     offsetof(struct worker, t));

	/* counted before the callback is: whoever saw this callback done
	 * also sees the follow-up it announces */
	atomic_fetch_add(&w->follows, 1);
	fst_cb(&r->s, res);
	dfs_stat(fs_global, fst_dir, fst_cb, &r->follow);
}

static unsigned int next_rand(unsigned int *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

static dfs_req_id submit_one(struct worker *w, struct dfs_file *f,
			     struct req_slot *r, char *buf, unsigned int op,
			     const char *path)
{
	switch (op) {
	case 0: return dfs_pread(f, buf, 64, 0, fst_cb, &r->s);
	case 1: return dfs_pwrite(f, "pwrite", 6, 100, fst_cb, &r->s);
	case 2: return dfs_append(f, "append", 6, fst_cb, &r->s);
	case 3: return dfs_fstat(f, fst_cb, &r->s);
	case 4: return dfs_stat(w->fs, path, fst_cb, &r->s);
	case 5: return dfs_fsync(f, fst_cb, &r->s);
	case 6: return dfs_truncate(f, 50, fst_cb, &r->s);
	case 7: return dfs_try_lock(f, fst_cb, &r->s);
	case 8: return dfs_unlock(f, fst_cb, &r->s);
	case 9: return dfs_rollback(f, fst_cb, &r->s);
	case 10: return dfs_commit(f, NULL, fst_cb, &r->s);
	case 11: return dfs_unlink(w->fs, "/nonexistent/x", fst_cb, &r->s);
	default:
		r->has_follow = true;
		return dfs_pread(f, buf, 16, 0, follow_cb, r);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned int rnd = (unsigned int)w->id * 7919u + 17u;
	char path[512];

	for (int round = 0; round < ROUNDS; round++) {
		bool temp = round % 3 == 0;
		struct dfs_file *f;
		struct req_slot *first = &w->r[w->used];

		fst_path(path, sizeof(path), "t%d-%d", w->id, round % 4);
		f = dfs_open(w->fs, path, O_RDWR | O_CREAT |
			     (temp ? DFS_O_TEMP : 0), 0600, fst_cb,
			     &w->r[w->used++].s);
		REQUIRE(f != NULL);
		for (int i = 0; i < OPS; i++) {
			struct req_slot *r = &w->r[w->used];

			r->id = submit_one(w, f, r, w->bufs[w->used],
					   next_rand(&rnd) % 13, path);
			REQUIRE(r->id != 0);
			w->used++;
			/* cancel some at once, some of the earlier ones */
			if (next_rand(&rnd) % 4 == 0)
				r->cancel_ok = dfs_cancel(w->fs, r->id);
			if (next_rand(&rnd) % 8 == 0) {
				struct req_slot *old = first + 1 +
					next_rand(&rnd) % (unsigned int)(i + 1);

				if (!old->cancel_ok)
					old->cancel_ok = dfs_cancel(w->fs, old->id);
			}
		}
		w->r[w->used].id = dfs_close(f, fst_cb, &w->r[w->used].s);
		/* a close is never cancelled */
		CHECK(!dfs_cancel(w->fs, w->r[w->used].id));
		w->used++;
	}
	return NULL;
}

static void run_stress(const char *config, unsigned int max_queued)
{
	struct dfs_settings set = { .max_workers = 16, .max_queued = max_queued,
				    .idle_ms = 50 };
	struct worker *w = calloc(THREADS, sizeof(*w));
	pthread_t th[THREADS];
	struct dfs_stats st;
	uint64_t total = 0, cancelled = 0, failed = 0, cancel_ok = 0;

	REQUIRE(w != NULL);
	fs_global = fst_new(config, &set);
	for (int i = 0; i < THREADS; i++) {
		w[i].fs = fs_global;
		w[i].id = i;
		fst_tally_init(&w[i].t);
		fst_tally_init(&w[i].ft);
		for (int j = 0; j < SLOTS; j++) {
			w[i].r[j].s.t = &w[i].t;
			w[i].r[j].follow.t = &w[i].ft;
		}
		REQUIRE(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		struct worker *x = &w[i];
		int want;

		/* the follow-ups are submitted by callbacks: wait for the
		 * callbacks first, then for the follow-ups */
		REQUIRE(fst_wait(&x->t, x->used, 120));
		REQUIRE(fst_wait(&x->ft, atomic_load(&x->follows), 120));
		want = x->used + atomic_load(&x->follows);
		CHECK_EQ_INT(x->t.done, x->used);
		for (int j = 0; j < x->used; j++) {
			struct req_slot *r = &x->r[j];
			int calls = r->s.calls + r->follow.calls;
			int expect = 1 + r->has_follow;

			if (calls != expect && check_failures < 5)
				fprintf(stderr, "   thread %d slot %d: %d calls\n",
					i, j, calls);
			CHECK_EQ_INT(calls, expect);
			/* a successful cancel means -ECANCELED, nothing else */
			if (r->cancel_ok)
				CHECK_EQ_INT(r->s.err, -ECANCELED);
			cancel_ok += r->cancel_ok;
			cancelled += r->s.err == -ECANCELED;
			failed += r->s.err < 0 && r->s.err != -ECANCELED;
			failed += r->follow.err < 0;  /* 0 if none */
			CHECK(r->follow.err != -ECANCELED);
		}
		total += (uint64_t)want;
	}
	dfs_get_stats(fs_global, &st);
	fprintf(stderr, "   %s, max_queued %u: %llu requests, %llu cancelled, "
		"%llu failed, %u workers at most, %u queued at most\n", config,
		max_queued, (unsigned long long)total,
		(unsigned long long)cancelled, (unsigned long long)failed,
		st.workers_peak, st.queued_peak);
	CHECK_EQ_INT(st.submitted, total);
	CHECK_EQ_INT(st.completed, total);
	CHECK_EQ_INT(st.cancelled, cancelled);
	CHECK_EQ_INT(st.cancelled, cancel_ok);  /* nobody else cancelled */
	CHECK_EQ_INT(st.failed, failed);
	CHECK_EQ_INT(st.queued, 0);
	CHECK(st.workers_peak <= 16 + 4);
	CHECK(cancelled > 0);
	CHECK(total >= THREADS * SLOTS);
	dfs_free(fs_global);
	for (int i = 0; i < THREADS; i++) {
		fst_tally_destroy(&w[i].t);
		fst_tally_destroy(&w[i].ft);
	}
	free(w);
}

/* With a small max_queued, submitters block: the number of requests
 * waiting never exceeds it (nothing is submitted from callbacks here). */
static void test_back_pressure(void)
{
	enum { N = 300, MAXQ = 16 };
	struct dfs_settings set = { .max_workers = 2, .max_queued = MAXQ };
	struct dfs *fs = fst_new("delay:1ms/posix", &set);
	struct fst_tally t;
	struct fst_slot *s = calloc(N, sizeof(*s));
	struct dfs_file *f;
	struct dfs_stats st;
	char path[512], buf[8];
	double t0, submit_time;

	REQUIRE(s != NULL);
	fst_tally_init(&t);
	fst_slots_init(s, N, &t);
	fst_make_files(1, 100);
	REQUIRE(dfs_sync_open(fs, fst_path(path, sizeof(path), "f0"), O_RDONLY,
			      0, &f) == 0);
	t0 = fst_now();
	/* on one handle, appends would queue on the handle, reads in the
	 * pool: both count */
	for (int i = 0; i < N; i++) {
		if (i % 2)
			dfs_pread(f, buf, sizeof(buf), 0, fst_cb, &s[i]);
		else
			dfs_fsync(f, fst_cb, &s[i]);
	}
	submit_time = fst_now() - t0;
	REQUIRE(fst_wait(&t, N, 60));
	dfs_get_stats(fs, &st);
	fprintf(stderr, "   %d submitted in %.0f ms, %u queued at most\n", N,
		submit_time * 1e3, st.queued_peak);
	CHECK(st.queued_peak <= MAXQ);
	CHECK(st.queued_peak >= MAXQ / 2);
	/* the submitter had to wait for most of the work */
	CHECK(submit_time >= (N - MAXQ) * 0.001 / 2 / 2);
	CHECK_EQ_INT(fst_slots_bad(s, N), 0);
	CHECK_EQ_INT(t.errors, 0);
	CHECK_EQ_INT(dfs_sync_close(f), 0);
	dfs_free(fs);
	fst_tally_destroy(&t);
	free(s);
}

static void test_stress(void)
{
	run_stress("posix", 0);
	run_stress("delay:100us/posix", 64);
	run_stress("randomfail:eio:5%/posix", 32);
	run_stress("delay:50us/uring", 128);
}

int main(void)
{
	fst_setup();
	RUN(test_back_pressure);
	RUN(test_stress);
	return fst_teardown();
}
