/* deliver.h - files becoming messages (deliver.c). */
#ifndef DBOXFS_DELIVER_H
#define DBOXFS_DELIVER_H

#include "handles.h"

/* Called on release of an FH_FD handle; commits a file closed under its
 * final name in cur/ or new/, and frees the handle. */
void deliver_release_fd(struct dboxfs *fs, struct fh *fh);

#endif
