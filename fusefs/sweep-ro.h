/* sweep-ro.h - the spool as the next start-up sweep leaves it, for a
 * read-only mount (which runs none and writes nothing).
 *
 * After a killed daemon the read-write mount's sweep (sweep.h) moves
 * into tmp/ of a mailbox the files that were being written in its cur/
 * or new/ (not closed), and puts back the deliveries a power cut left
 * not durable (pending/ entries whose message is not there): a read-only
 * mount shows each in tmp/ under the name the sweep gives it (NAME, or
 * the first free NAME.N, in the sweep's order: pending/ first, then cur/,
 * then new/, each in directory order), and hides the cur/ and new/ ones
 * where they are.  The other cases (committed deliveries' leftovers, a
 * message renamed into tmp/) are sweep_ro_leftover and totmp_ro_*. */
#ifndef DBOXFS_SWEEP_RO_H
#define DBOXFS_SWEEP_RO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "backing.h"

struct dboxfs;

/* Where a file the sweep moves into tmp/ is now. */
enum sweepro_from {
	SWEEPRO_PENDING,   /* pending/, as "BOX.UID.NAME" */
	SWEEPRO_CUR,       /* the spool of cur/ */
	SWEEPRO_NEW,       /* the spool of new/ */
};

struct sweepro_entry {
	char *shown;             /* its name in tmp/ after the sweep */
	enum sweepro_from from;
	char *name;              /* its name where it is now */
};

struct sweepro_list {
	struct sweepro_entry *v;
	size_t count;
};

/* The files the sweep moves into tmp/ of mailbox box, in its order.
 * tmpfd: tmp/'s spool directory (O_PATH), -1 if it does not exist.  0 or
 * -errno; out is empty on failure, and freed with sweepro_free. */
int sweepro_moved(struct dboxfs *fs, int64_t box, int tmpfd,
		  struct sweepro_list *out);
void sweepro_free(struct sweepro_list *l);
/* The directory (O_PATH) the entry is in now; the caller closes it. */
int sweepro_dirfd(struct dboxfs *fs, int64_t box,
		  const struct sweepro_entry *e, int *fd_r);
/* Lookup of `name` in a spool area of mailbox box (dirfd: the area's
 * directory, -1 if it does not exist) as the sweep leaves it: the
 * binode of the file that will have that name (backing_lookup), or
 * -ENOENT. */
int sweepro_lookup(struct dboxfs *fs, int64_t box, enum backing_area area,
		   int dirfd, const char *name, struct stat *st);

#endif
