/* mbox.h - splitting an mbox file into messages (dboxctl import): From_
 * lines, mboxrd ">From " unescaping, the received date of the From_ line
 * and the flags of Status:/X-Status:.  Pure functions over a buffer (no
 * I/O), shared with the fuzz target tests/fuzz/fuzz-mbox.c. */
#ifndef DBOXCTL_MBOX_H
#define DBOXCTL_MBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mbox_msg {
	const char *from_line;   /* "From ..." without LF */
	size_t from_len;
	const char *body;
	size_t len;
};

/* The next message starting at *pos ("From " at a line start); the body
 * ends before the blank line that precedes the next From_ line.  false:
 * no (further) message at *pos. */
bool mbox_next(const char *data, size_t size, size_t *pos,
	       struct mbox_msg *m);
/* The date of the From_ line, or fallback if it has none. */
time_t mbox_date(const struct mbox_msg *m, time_t fallback);
/* DBOX_FLAG_* bits of the Status:/X-Status: headers. */
uint32_t mbox_flags(const struct mbox_msg *m);

/* Passes the body to write() in pieces, with one '>' removed from every
 * ">...>From " line.  Returns 0 or the first negative write() result. */
typedef int mbox_write_fn(void *ctx, const char *p, size_t n);
int mbox_unescape(const struct mbox_msg *m, mbox_write_fn *write, void *ctx);

#endif
