/* pending.h - a mount's pending/ files (fusefs/flush.h) as the copies
 * of messages kept beside the store (dbox_store_set_kept): a row this
 * process removes (the resync of a taken-over tree at every open, a
 * reindex, an expunge) of a message whose delivery's spool file a
 * mount still keeps there leaves its mark, so that the mount's
 * start-up sweep removes that file rather than bring it back into
 * tmp/.  The files are listed once, when the store opens. */
#ifndef DBOXCTL_PENDING_H
#define DBOXCTL_PENDING_H

#include "dbox/store.h"

/* Sets o's kept, kept_open and kept_ctx. */
void pending_open_opts(struct dbox_open_opts *o);

#endif
