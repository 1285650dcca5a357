/* moved.h - the ring of recent moves of messages to other folders. */
#ifndef DBOXFS_MOVED_H
#define DBOXFS_MOVED_H

#include <pthread.h>
#include <stdint.h>

#define MOVED_RING 4096

/* In struct dboxfs. */
struct moved_ring {
	pthread_mutex_t lock;
	struct { uint64_t from, to; } e[MOVED_RING];
	unsigned int next;
};

struct dboxfs;

/* The message that was inode `from` is inode `to` now. */
void moved_add(struct dboxfs *fs, uint64_t from, uint64_t to);
/* Where a message that was recently moved to another folder went (its
 * new inode number), 0 if it was not. */
uint64_t moved_to(struct dboxfs *fs, uint64_t from);
/* The binode that answers for the message node ino when that message
 * was renamed into tmp/ (a file there): ino itself, or, since the kernel
 * keeps the node of a message moved to another folder, the number the
 * message had when it was renamed; 0 while ino stands for a message. */
uint64_t moved_file_node(struct dboxfs *fs, uint64_t ino);

#endif
