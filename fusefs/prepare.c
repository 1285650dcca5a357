/* prepare.c - deliveries prepared at fsync (see prepare.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dboxfs.h"
#include "prepare.h"

/* Held records keep an m.N file locked (purge skips it), so only a few
 * and not for long: a writer renames right after its fsync. */
#define PREPARED_MAX 64
#define PREPARED_TTL_NS (10LL * 1000000000)

struct prepared {
	uint64_t ino;
	int64_t box;
	char base[DBOX_NAME_MAX + 1];
	struct stat st;           /* the file as it was prepared */
	int64_t when;             /* CLOCK_MONOTONIC ns */
	struct dbox_save_txn *txn;
	struct prepared *next;
};

static pthread_mutex_t prep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct prepared *prep_head;
static unsigned int prep_count;

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Unlinks and returns the entries to roll back: those of ino (0: none),
 * the expired ones, and the oldest beyond the limit.  Under prep_lock. */
static struct prepared *unlink_stale(uint64_t ino, int64_t now)
{
	struct prepared **pp = &prep_head, *gone = NULL, *p;
	unsigned int kept = 0;

	while ((p = *pp) != NULL) {
		/* newest first: what is past the limit is the oldest */
		if (p->ino == ino || now - p->when > PREPARED_TTL_NS ||
		    kept == PREPARED_MAX - 1) {
			*pp = p->next;
			p->next = gone;
			gone = p;
			prep_count--;
			continue;
		}
		kept++;
		pp = &p->next;
	}
	return gone;
}

static void roll_back(struct prepared *p)
{
	while (p != NULL) {
		struct prepared *next = p->next;

		dbox_save_rollback(p->txn);
		free(p);
		p = next;
	}
}

static int prepare_txn(int fd, int64_t box, const char *base,
		       const struct stat *st, struct dbox_save_txn **txn_r)
{
	struct dbox_save_opts o = {
		.mailbox_id = box,
		.received = st->st_mtim.tv_sec,
		.received_ns = st->st_mtim.tv_nsec,
		.base = base,
		.in_new = true,
	};
	struct dbox_err err = { "" };
	struct dbox_save_txn *txn;
	int ret;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	ret = dbox_save_begin(dboxfs.store, &txn, &err);
	if (ret < 0)
		return ret;
	ret = dbox_save_add_fd(txn, fd, &o, &err);
	if (ret == 0)
		ret = dbox_save_sync(txn, &err);
	if (ret < 0) {
		fuse_log(FUSE_LOG_ERR, "dboxfs: preparing %s: %s\n", base,
			 err.msg);
		dbox_save_rollback(txn);
		return ret;
	}
	*txn_r = txn;
	return 0;
}

int prepare_fsync(uint64_t ino, int fd, int64_t box, const char *base)
{
	struct prepared *p = calloc(1, sizeof(*p)), *gone;
	int ret;

	if (p == NULL)
		return -ENOMEM;
	if (fstat(fd, &p->st) < 0 || !S_ISREG(p->st.st_mode)) {
		free(p);
		return -EINVAL;
	}
	ret = prepare_txn(fd, box, base, &p->st, &p->txn);
	if (ret < 0) {
		free(p);
		prepare_drop(ino);
		return ret;
	}
	p->ino = ino;
	p->box = box;
	snprintf(p->base, sizeof(p->base), "%s", base);
	p->when = mono_ns();
	pthread_mutex_lock(&prep_lock);
	gone = unlink_stale(ino, p->when);
	p->next = prep_head;
	prep_head = p;
	prep_count++;
	pthread_mutex_unlock(&prep_lock);
	roll_back(gone);
	return 0;
}

void prepare_drop(uint64_t ino)
{
	struct prepared *gone;

	pthread_mutex_lock(&prep_lock);
	gone = prep_count == 0 ? NULL : unlink_stale(ino, mono_ns());
	pthread_mutex_unlock(&prep_lock);
	roll_back(gone);
}

struct dbox_save_txn *prepare_take(uint64_t ino, int fd, int64_t box,
				   const char *base)
{
	struct prepared **pp, *p = NULL;
	struct dbox_save_txn *txn = NULL;
	struct stat st;

	pthread_mutex_lock(&prep_lock);
	for (pp = &prep_head; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->ino == ino) {
			p = *pp;
			*pp = p->next;
			prep_count--;
			break;
		}
	}
	pthread_mutex_unlock(&prep_lock);
	if (p == NULL)
		return NULL;
	/* the record names its mailbox and maildir name, and holds the
	 * bytes and date the file had then */
	if (p->box == box && strcmp(p->base, base) == 0 &&
	    fstat(fd, &st) == 0 && same_file(&st, &p->st) &&
	    dbox_save_count(p->txn) == 1) {
		txn = p->txn;
		p->txn = NULL;
	}
	p->next = NULL;
	if (p->txn != NULL)
		roll_back(p);
	else
		free(p);
	return txn;
}

void prepare_clear(void)
{
	struct prepared *gone;

	pthread_mutex_lock(&prep_lock);
	gone = prep_head;
	prep_head = NULL;
	prep_count = 0;
	pthread_mutex_unlock(&prep_lock);
	roll_back(gone);
}
