/* dovecot-mainfile.h - parsing dovecot.index (dovecot-index.md 2).
 *
 * Checks what Dovecot (and the reference reader) check: a file that fails
 * them is "unusable" and the caller falls back to the log alone; smaller
 * inconsistencies are repaired in memory like Dovecot's fsck and recorded
 * with dovi_state_error().  Thread-safe (no shared state). */
#ifndef DOVI_MAINFILE_H
#define DOVI_MAINFILE_H

#include "dovecot/dovecot-state.h"

/* Parses a complete dovecot.index image.  Returns 0 and a new state,
 * -EBADMSG when the file is unusable (err says why), or -EFBIG/-ENOMEM. */
int dovi_mainfile_parse(const uint8_t *data, size_t len,
			struct dovi_state **st_r, struct dbox_err *err);

/* Reads and parses path.  Returns 1 and a new state, 0 when the file does
 * not exist, or a negative errno as dovi_mainfile_parse() (plus I/O
 * errors). */
int dovi_mainfile_read(const char *path, struct dovi_state **st_r,
		       struct dbox_err *err);

/* Parses the "keywords" extension header (dovecot-index.md 2.5) into the
 * state's keyword list.  -EBADMSG when it is inconsistent. */
int dovi_mainfile_keywords(struct dovi_state *st, unsigned ext,
			   struct dbox_err *err);

/* True if name is a valid extension name: 1..63 of [A-Za-z0-9_ -]. */
bool dovi_ext_name_valid(const uint8_t *name, size_t len);

#endif
