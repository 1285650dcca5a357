/* moved.c - where messages moved to another folder went (see moved.h).
 *
 * A message moved to another folder gets a new uid and so a new inode
 * number, but the kernel keeps the old inode for the new name until it
 * looks the name up again: remember where recent moves went. */
#include <pthread.h>

#include "backing.h"
#include "dboxfs.h"
#include "moved.h"


void moved_add(struct dboxfs *fs, uint64_t from, uint64_t to)
{
	pthread_mutex_lock(&fs->moved.lock);
	fs->moved.e[fs->moved.next % MOVED_RING].from = from;
	fs->moved.e[fs->moved.next % MOVED_RING].to = to;
	fs->moved.next++;
	pthread_mutex_unlock(&fs->moved.lock);
}

uint64_t moved_to(struct dboxfs *fs, uint64_t from)
{
	uint64_t to = 0;

	pthread_mutex_lock(&fs->moved.lock);
	for (unsigned int i = 0; i < MOVED_RING; i++) {
		if (fs->moved.e[i].from == from)
			to = fs->moved.e[i].to;
	}
	pthread_mutex_unlock(&fs->moved.lock);
	return to;
}

uint64_t moved_file_node(struct dboxfs *fs, uint64_t ino)
{
	/* the message paths' hot case: no message became a tmp/ file */
	if (!backing_any_msg_node(fs))
		return 0;
	/* a few moves in a row at most, and a ring entry may be stale: a
	 * bound instead of a cycle check */
	for (int i = 0; i < 8 && ino != 0; i++) {
		if (backing_has_node(fs, ino))
			return ino;
		ino = moved_to(fs, ino);
	}
	return 0;
}
