/* moved.c - where messages moved to another folder went (see moved.h).
 *
 * A message moved to another folder gets a new uid and so a new inode
 * number, but the kernel keeps the old inode for the new name until it
 * looks the name up again: remember where recent moves went. */
#include <pthread.h>

#include "backing.h"
#include "moved.h"

#define MOVED_RING 4096
static struct { uint64_t from, to; } moved[MOVED_RING];
static unsigned int moved_next;
static pthread_mutex_t moved_lock = PTHREAD_MUTEX_INITIALIZER;

void moved_add(uint64_t from, uint64_t to)
{
	pthread_mutex_lock(&moved_lock);
	moved[moved_next % MOVED_RING].from = from;
	moved[moved_next % MOVED_RING].to = to;
	moved_next++;
	pthread_mutex_unlock(&moved_lock);
}

uint64_t moved_to(uint64_t from)
{
	uint64_t to = 0;

	pthread_mutex_lock(&moved_lock);
	for (unsigned int i = 0; i < MOVED_RING; i++) {
		if (moved[i].from == from)
			to = moved[i].to;
	}
	pthread_mutex_unlock(&moved_lock);
	return to;
}

uint64_t moved_file_node(uint64_t ino)
{
	/* the message paths' hot case: no message became a tmp/ file */
	if (!backing_any_msg_node())
		return 0;
	/* a few moves in a row at most, and a ring entry may be stale: a
	 * bound instead of a cycle check */
	for (int i = 0; i < 8 && ino != 0; i++) {
		if (backing_has_node(ino))
			return ino;
		ino = moved_to(ino);
	}
	return 0;
}
