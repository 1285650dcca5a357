/* verified.h - messages whose record was verified at the place the index
 * gives now: a message's bytes never change, so a warm open needs no read
 * (the check is against damage, which a move of the record would show).
 * A fixed table of the last ones, by inode number. */
#ifndef DBOXFS_VERIFIED_H
#define DBOXFS_VERIFIED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dbox/store.h"

#define VERIFIED_SLOTS 4096

/* In struct dboxfs. */
struct verified_cache {
	pthread_mutex_t lock;
	struct verified {
		uint64_t ino;
		uint32_t file_id;
		uint64_t offset;
	} slots[VERIFIED_SLOTS];
};

bool verified_has(struct verified_cache *vc, uint64_t ino,
		  const struct dbox_msg *m);
void verified_add(struct verified_cache *vc, uint64_t ino,
		  const struct dbox_msg *m);

#endif
