/* verified.c - the table of verified messages (see verified.h). */
#include "verified.h"
#include "view.h"

static struct verified *verified_bucket(struct verified_cache *vc,
					uint64_t ino)
{
	return &vc->slots[2 * ((ino * 0x9e3779b97f4a7c15ull) >>
			       (64 - VERIFIED_BUCKET_BITS))];
}

/* The slot of ino in its bucket, or NULL; vc->lock held. */
static struct verified *verified_find(struct verified_cache *vc,
				      uint64_t ino)
{
	struct verified *b = verified_bucket(vc, ino);

	if (b[0].ino == ino)
		return &b[0];
	return b[1].ino == ino ? &b[1] : NULL;
}

bool verified_has(struct verified_cache *vc, uint64_t ino,
		  const struct dbox_msg *m)
{
	const struct verified *v;
	bool hit;

	pthread_mutex_lock(&vc->lock);
	v = verified_find(vc, ino);
	hit = v != NULL && v->file_id == dbox_msg_file_id(m) &&
		v->offset == dbox_msg_file_offset(m);
	pthread_mutex_unlock(&vc->lock);
	return hit;
}

bool verified_has_ino(struct verified_cache *vc, uint64_t ino)
{
	bool hit;

	pthread_mutex_lock(&vc->lock);
	hit = ino != 0 && verified_find(vc, ino) != NULL;
	pthread_mutex_unlock(&vc->lock);
	return hit;
}

void verified_add(struct verified_cache *vc, uint64_t ino,
		  const struct dbox_msg *m)
{
	struct verified *b = verified_bucket(vc, ino);
	struct verified *v;

	pthread_mutex_lock(&vc->lock);
	v = verified_find(vc, ino);
	if (v == NULL) {
		/* the newer of the two stays, the older goes */
		b[1] = b[0];
		v = &b[0];
	}
	*v = (struct verified){ ino, dbox_msg_file_id(m),
				dbox_msg_file_offset(m) };
	pthread_mutex_unlock(&vc->lock);
}

/* vc->lock held */
static struct verified_pending *pending_find(struct verified_cache *vc,
					     uint64_t ino)
{
	for (unsigned int i = 0; i < VERIFIED_PENDING; i++) {
		if (vc->pending[i].ino == ino)
			return &vc->pending[i];
	}
	return NULL;
}

/* vc->lock held: the check of ino claimed as in flight, unless it is
 * already or the table is full */
static bool pending_claim(struct verified_cache *vc, uint64_t ino)
{
	struct verified_pending *p = pending_find(vc, ino) == NULL ?
		pending_find(vc, 0) : NULL;

	if (p != NULL)
		*p = (struct verified_pending){ ino, NULL };
	return p != NULL;
}

/* Under vc->lock: the open of uid follows the last one not answered
 * from memory, in uid order, within what was checked ahead of it. */
static bool in_order(const struct verified_cache *vc, int64_t box,
		     uint32_t uid)
{
	return box == vc->seq_box && uid > vc->seq_last &&
		uid <= vc->seq_ahead + 1 && uid < UINT32_MAX - VERIFIED_AHEAD;
}

/* Under vc->lock, the open of uid in order: too few checked ahead of it
 * (fewer than VERIFIED_REFILL, or than VERIFIED_AHEAD when it waits for
 * its own check). */
static bool window_short(const struct verified_cache *vc, uint32_t uid,
			 bool waiting)
{
	return uid + (waiting ? VERIFIED_AHEAD : VERIFIED_REFILL) >
		vc->seq_ahead;
}

uint32_t verified_ahead_of(struct verified_cache *vc, int64_t box,
			   uint32_t uid, bool waiting, uint32_t *first)
{
	uint32_t n = 0, claimed = 0;

	pthread_mutex_lock(&vc->lock);
	if (!in_order(vc, box, uid)) {
		vc->seq_box = box;
		vc->seq_ahead = uid;
	} else if (window_short(vc, uid, waiting)) {
		*first = (uid > vc->seq_ahead ? uid : vc->seq_ahead) + 1;
		n = uid + VERIFIED_AHEAD + 1 - *first;
		vc->seq_ahead = uid + VERIFIED_AHEAD;
	}
	vc->seq_last = uid;
	/* claimed with the window's move, under the same lock: an open of
	 * one of them from now on waits for its check, even one that comes
	 * before the check is started */
	for (uint32_t i = 0; i < n; i++) {
		if (pending_claim(vc, view_ino_msg(box, *first + i)))
			claimed |= 1u << i;
	}
	pthread_mutex_unlock(&vc->lock);
	return claimed;
}

bool verified_refill_due(struct verified_cache *vc, int64_t box,
			 uint32_t uid)
{
	bool due;

	pthread_mutex_lock(&vc->lock);
	due = in_order(vc, box, uid) && window_short(vc, uid, false);
	pthread_mutex_unlock(&vc->lock);
	return due;
}

bool verified_pending_wait(struct verified_cache *vc, uint64_t ino,
			   void *waiter)
{
	struct verified_pending *p;
	bool ok;

	pthread_mutex_lock(&vc->lock);
	p = ino != 0 ? pending_find(vc, ino) : NULL;
	ok = p != NULL && p->waiter == NULL;
	if (ok)
		p->waiter = waiter;
	pthread_mutex_unlock(&vc->lock);
	return ok;
}

void *verified_pending_done(struct verified_cache *vc, uint64_t ino)
{
	struct verified_pending *p;
	void *waiter = NULL;

	pthread_mutex_lock(&vc->lock);
	p = ino != 0 ? pending_find(vc, ino) : NULL;
	if (p != NULL) {
		waiter = p->waiter;
		*p = (struct verified_pending){ 0, NULL };
	}
	pthread_mutex_unlock(&vc->lock);
	return waiter;
}
