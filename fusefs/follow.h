/* follow.h - changes that reach the store by another path (a running
 * Dovecot, dboxctl) show on the mount within a second: a thread notices
 * them (inotify on Dovecot's index logs plus a periodic check) and drops
 * the kernel's cached attributes of the folders that changed, from a
 * thread that serves no request (maildir-view.md section 6). */
#ifndef DBOXFS_FOLLOW_H
#define DBOXFS_FOLLOW_H

int follow_start(void);
void follow_stop(void);

#endif
