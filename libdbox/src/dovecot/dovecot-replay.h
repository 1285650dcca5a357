/* dovecot-replay.h - applying transaction log records to a state
 * (dovecot-index.md 3.4; Dovecot's mail_index_sync_record()).
 *
 * A replay carries the "current extension" from one record to the next,
 * as Dovecot's sync context does within one sync.  Semantic problems
 * (append below next_uid, update without intro, ...) are recorded with
 * dovi_state_error() and the rest of that record is skipped, like
 * Dovecot; only resource limits are fatal.  Records must have passed
 * dovi_log_record_valid() first.  Not thread-safe. */
#ifndef DOVI_REPLAY_H
#define DOVI_REPLAY_H

#include "dovecot/dovecot-state.h"

#define DOVI_CUR_NONE (-1)          /* no ext intro seen yet */
#define DOVI_CUR_BROKEN (-2)        /* the last intro was rejected */

struct dovi_replay {
	struct dovi_state *st;
	int cur;                    /* ext position or DOVI_CUR_* */
	bool ignore;                /* skip updates for cur */
	uint16_t rec_size;          /* record size of the last intro */
};

void dovi_replay_init(struct dovi_replay *rp, struct dovi_state *st);

/* Applies one record.  Returns 0 or a negative errno (-EFBIG/-ENOMEM). */
int dovi_replay_apply(struct dovi_replay *rp, uint32_t type,
		      const uint8_t *p, size_t n, struct dbox_err *err);

/* Finishes a batch of records: removes expunged messages. */
void dovi_replay_finish(struct dovi_replay *rp);

#endif
