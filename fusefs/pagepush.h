/* pagepush.h - a message's bytes put into the kernel's page cache of its
 * inode (FUSE_NOTIFY_STORE) before anyone asks for them, so that its
 * reads find them there and send no READ: a cold open pushes the message
 * it opens (fileio.c), and the first read of a storage window pushes the
 * messages after it that the window holds.
 *
 * Why it is safe (Linux fs/fuse/dev.c, fuse_notify_store): the kernel
 * takes its superblock's killsb for reading, finds the inode (ENOENT if
 * it has none: nothing is stored, which is cheap), and for each folio
 * grabs it locked, copies and marks it uptodate when it is whole or ends
 * the file.  An OPEN holds no folio lock, so a push before its reply
 * cannot wait on its own request; a push into another inode waits at
 * most for a READ of that inode in flight, which another request thread
 * or I/O worker answers.  Exactly [0, n) is pushed with n <= the size
 * the kernel has (st_size is the message's size), so i_size is not moved
 * and the attributes stay valid; pages stay across opens (keep_cache,
 * and read-only mounts' no_open).  A message's bytes never change and an
 * inode number is one message's (mailbox ids and uids are not reused),
 * so pushed pages are the bytes any READ of that inode would get.
 *
 * Memory: pushed pages are page cache (the kernel reclaims them), not
 * the daemon's; a push copies through one buffer of at most
 * PAGEPUSH_MAX, and a round after a window pushes at most
 * PAGEPUSH_AHEAD messages.  Thread-safety: any thread. */
#ifndef DBOXFS_PAGEPUSH_H
#define DBOXFS_PAGEPUSH_H

#include "dboxfs.h"

/* At most this much of a message is pushed (a multiple of the page
 * size, so that a cut push leaves whole pages: the rest is READ). */
#define PAGEPUSH_MAX (128u * 1024)

/* How much of message m a push stores. */
size_t pagepush_len(const struct dbox_msg *m);
/* buf: the first pagepush_len(m) bytes of the message of inode ino.
 * 0, or -errno (-ENOENT: the kernel has no such inode). */
int pagepush_bytes(struct dboxfs *fs, uint64_t ino, const void *buf,
		   size_t len);
/* Whether the kernel has inode ino (a push of nothing: one system
 * call, no copy). */
bool pagepush_known(struct dboxfs *fs, uint64_t ino);
/* The message's bytes pushed from the store's read-ahead cache
 * (dbox_msg_read_cached: plain messages whose record is at hand):
 * 0, -EAGAIN when they are not at hand, or what pagepush_bytes says. */
int pagepush_cached(struct dboxfs *fs, uint64_t ino,
		    const struct dbox_msg *m);
/* mdbox: the messages after m in its mailbox whose records lie in the
 * read-ahead window m came from are pushed and marked verified (their
 * opens are then warm and find their pages), until one is not at hand
 * or the kernel does not know its inode. */
void pagepush_after(struct dboxfs *fs, const struct dbox_msg *m);

#endif
