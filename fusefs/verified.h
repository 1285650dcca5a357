/* verified.h - messages whose record was verified at the place the index
 * gives now: a message's bytes never change, so a warm open needs no read
 * (the check is against damage, which a move of the record would show).
 * A fixed table of the last ones, by inode number: buckets of two, the
 * older of the two replaced, so that a folder of a few thousand messages
 * stays in it whole (one slot per number lost a fifth of 2,000 to
 * collisions). */
#ifndef DBOXFS_VERIFIED_H
#define DBOXFS_VERIFIED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dbox/store.h"

#define VERIFIED_BUCKET_BITS 12
#define VERIFIED_SLOTS (2u << VERIFIED_BUCKET_BITS)
/* checks ahead in flight at most: two windows' worth (an open that
 * overtakes one waits for it rather than reading and checking the
 * message a second time) */
#define VERIFIED_PENDING 32

/* In struct dboxfs. */
struct verified_cache {
	pthread_mutex_t lock;
	struct verified {
		uint64_t ino;
		uint32_t file_id;
		uint64_t offset;
	} slots[VERIFIED_SLOTS];   /* bucket b: slots 2b (newer), 2b+1 */
	/* the checks ahead of a cold read in uid order (verified_ahead_of) */
	int64_t seq_box;
	uint32_t seq_last, seq_ahead;
	/* those in flight, and an open waiting for one (verified_pending_*) */
	struct verified_pending {
		uint64_t ino;           /* 0: free */
		void *waiter;
	} pending[VERIFIED_PENDING];
};

/* Whether the message's record was verified where m says it is now. */
bool verified_has(struct verified_cache *vc, uint64_t ino,
		  const struct dbox_msg *m);
/* Whether the message of inode ino was verified at some place: enough to
 * answer a warm open from memory (fileio.c), since the read that needs
 * its bytes checks the place again (verified_has). */
bool verified_has_ino(struct verified_cache *vc, uint64_t ino);
void verified_add(struct verified_cache *vc, uint64_t ino,
		  const struct dbox_msg *m);
/* How many messages are checked ahead of a reader (their records stay
 * in the store's read-ahead cache, DBOX_RCACHE_SLOTS, until pushed or
 * opened), and how few left ahead of an open move the window on: in
 * batches of at least VERIFIED_AHEAD - VERIFIED_REFILL + 1, each listed
 * with one index query. */
#define VERIFIED_AHEAD 12
#define VERIFIED_REFILL 6
_Static_assert(VERIFIED_AHEAD <= 32, "a window is a bit mask");

/* An open (or first read) of message uid of box, one storage file per
 * message (sdbox), that is not answered from memory: which uids after it
 * to check ahead, bit i for uid *first + i (at most VERIFIED_AHEAD);
 * 0 unless the opens go in uid order (this one follows the last such
 * one, or is within what was checked ahead of it) and fewer than
 * VERIFIED_REFILL uids after it are checked already (waiting: the
 * open waits for its own check, the reader caught up: fewer than
 * VERIFIED_AHEAD), so that a single message opened alone costs no more
 * than itself.  Each uid returned is claimed as in flight
 * (verified_pending_wait finds it) until verified_pending_done; one in
 * flight already, or with no room left, is not returned. */
uint32_t verified_ahead_of(struct verified_cache *vc, int64_t box,
			   uint32_t uid, bool waiting, uint32_t *first);
/* Whether an open of uid of box, answered from memory, should move the
 * checks ahead on (verified_ahead_of would return more than 0). */
bool verified_refill_due(struct verified_cache *vc, int64_t box,
			 uint32_t uid);

/* The open `waiter` waits for the check of ino in flight: true, and
 * verified_pending_done returns it; false (none in flight, or another
 * open waits already): the open goes its own way. */
bool verified_pending_wait(struct verified_cache *vc, uint64_t ino,
			   void *waiter);
/* The check of ino is done (after its message was marked verified, or
 * not): its waiter, or NULL. */
void *verified_pending_done(struct verified_cache *vc, uint64_t ino);

#endif
