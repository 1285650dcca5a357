/* nameset.h - the maildir names an import has used, in memory that does
 * not grow with their number (dboxctl import). */
#ifndef DBOXCTL_NAMESET_H
#define DBOXCTL_NAMESET_H

struct nameset;

/* An empty set; -errno (a message printed) on failure. */
int nameset_open(struct nameset **set_r);
/* 1 if name was added, 0 if it was (probably: names are kept as 64-bit
 * hashes) in the set already, -errno (a message printed) on failure. */
int nameset_add(struct nameset *set, const char *name);
void nameset_close(struct nameset *set);

#endif
