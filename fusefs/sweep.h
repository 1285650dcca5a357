/* sweep.h - the start-up sweep of the spool. */
#ifndef DBOXFS_SWEEP_H
#define DBOXFS_SWEEP_H

/* What a killed daemon left in the spool (see sweep.c): removes the files
 * of deliveries that committed before it unlinked them, commits the files
 * closed in cur/ or new/ whose commit had not happened, and moves the
 * others there (not closed: maybe incomplete) into tmp/.  Before
 * commit_start. */
void sweep_spool(void);
/* At a clean stop: the tmp/ files link() delivered stay the client's
 * (their live mark becomes kept, backing.h).  After commit_stop. */
void sweep_keep_linked(void);

#endif
