/* dovecot-load.h - loading one index from its files (dovecot-index.md
 * 5.1): dovecot.index if usable, then the log chain from the position it
 * reflects, with the fallbacks of section 6 (damaged or truncated
 * dovecot.index, missing history, reset logs, stale .log.2).  The result
 * is what the reference reader computes.  Thread-safe (no shared state);
 * the result belongs to the caller. */
#ifndef DOVI_LOAD_H
#define DOVI_LOAD_H

#include "dbox/dovecot-index.h"
#include "dovecot/dovecot-log.h"
#include "dovecot/dovecot-replay.h"
#include "dovecot/dovecot-state.h"

struct dovi_load {
	struct dovi_state *st;
	struct dovi_load_info info;
	struct dovi_log *head;      /* the .log read (fd kept), or NULL */
};

/* Loads the index PREFIX (+ .log, .log.2), retrying a few times while a
 * writer changes the files meanwhile.  Returns 0 and fills ld, or a
 * negative errno (see dbox/dovecot-index.h) with ld cleared. */
int dovi_load(const char *prefix, struct dovi_load *ld, struct dbox_err *err);
void dovi_load_clear(struct dovi_load *ld);

/* Pieces shared with the incremental refresh: */
/* Checks the records of log in [from, to) without applying them. */
int dovi_load_validate(const struct dovi_log *log, uint64_t from, uint64_t to,
		       struct dbox_err *err);
/* Applies the records of log in [from, to). */
int dovi_load_apply(struct dovi_replay *rp, const struct dovi_log *log,
		    uint64_t from, uint64_t to, struct dbox_err *err);
/* Records that the state now reflects head up to its sync_offset. */
void dovi_load_set_position(struct dovi_state *st,
			    struct dovi_load_info *info,
			    const struct dovi_log *head);

#endif
