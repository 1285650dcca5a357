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
 * the expired ones, and the oldest beyond the limit.  Under the list lock. */
static struct prepared *unlink_stale(struct prepare_list *pl, uint64_t ino,
				      int64_t now)
{
	struct prepared **pp = &pl->head, *gone = NULL, *p;
	unsigned int kept = 0;

	DBOXFS_ASSERT_LOCKED(&pl->lock);
	while ((p = *pp) != NULL) {
		/* newest first: what is past the limit is the oldest */
		if (p->ino == ino || now - p->when > PREPARED_TTL_NS ||
		    kept == PREPARED_MAX - 1) {
			*pp = p->next;
			p->next = gone;
			gone = p;
			pl->count--;
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

static int prepare_txn(struct dboxfs *fs, int fd, int64_t box,
		       const char *base, const struct stat *st,
		       struct dbox_save_txn **txn_r)
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
	ret = dbox_save_begin(fs->store, &txn, &err);
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

int prepare_fsync(struct dboxfs *fs, uint64_t ino, int fd, int64_t box,
		  const char *base)
{
	struct prepare_list *pl = &fs->prepared;
	struct prepared *p = calloc(1, sizeof(*p)), *gone;
	int ret;

	if (p == NULL)
		return -ENOMEM;
	if (fstat(fd, &p->st) < 0 || !S_ISREG(p->st.st_mode)) {
		free(p);
		return -EINVAL;
	}
	ret = prepare_txn(fs, fd, box, base, &p->st, &p->txn);
	if (ret < 0) {
		free(p);
		prepare_drop(fs, ino);
		return ret;
	}
	p->ino = ino;
	p->box = box;
	snprintf(p->base, sizeof(p->base), "%s", base);
	p->when = mono_ns();
	pthread_mutex_lock(&pl->lock);
	gone = unlink_stale(pl, ino, p->when);
	p->next = pl->head;
	pl->head = p;
	pl->count++;
	pthread_mutex_unlock(&pl->lock);
	roll_back(gone);
	return 0;
}

void prepare_drop(struct dboxfs *fs, uint64_t ino)
{
	struct prepare_list *pl = &fs->prepared;
	struct prepared *gone;

	pthread_mutex_lock(&pl->lock);
	gone = pl->count == 0 ? NULL : unlink_stale(pl, ino, mono_ns());
	pthread_mutex_unlock(&pl->lock);
	roll_back(gone);
}

struct dbox_save_txn *prepare_take(struct dboxfs *fs, uint64_t ino, int fd,
				   int64_t box, const char *base)
{
	struct prepare_list *pl = &fs->prepared;
	struct prepared **pp, *p = NULL;
	struct dbox_save_txn *txn = NULL;
	struct stat st;

	pthread_mutex_lock(&pl->lock);
	for (pp = &pl->head; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->ino == ino) {
			p = *pp;
			*pp = p->next;
			pl->count--;
			break;
		}
	}
	pthread_mutex_unlock(&pl->lock);
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

void prepare_clear(struct dboxfs *fs)
{
	struct prepare_list *pl = &fs->prepared;
	struct prepared *gone;

	pthread_mutex_lock(&pl->lock);
	gone = pl->head;
	pl->head = NULL;
	pl->count = 0;
	pthread_mutex_unlock(&pl->lock);
	roll_back(gone);
}
