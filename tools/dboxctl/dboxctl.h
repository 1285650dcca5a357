/* dboxctl.h - shared by the dboxctl command modules. */
#ifndef DBOXCTL_H
#define DBOXCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "dbox/save.h"
#include "dbox/store.h"

struct ctl_opts {
	const char *fs_config;
	const char *index_path;
	const char *attachment_dir;
	const char *dovecot_index;
	const char *dovecot_separator;
	const char *dovecot_prefix;
	const char *dovecot_brokenchar;
	bool takeover;
	bool repair_index;      /* reindex: a damaged index is rebuilt */
};

extern struct ctl_opts ctl_opts;

/* Prints "dboxctl: <msg>" to stderr and returns exit status 1. */
int ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* If argv[*i] is option `name` ("--name=V" or "--name V"), returns V
 * (advancing *i past a separate value); else NULL.  A missing value is a
 * usage error: exits 2. */
const char *ctl_opt_value(int argc, char **argv, int *i, const char *name);
int ctl_open(const char *root, bool readonly, struct dbox_store **store_r);
/* Opens or creates a mailbox for writing into. */
int ctl_mailbox(struct dbox_store *store, const char *name, bool create,
		struct dbox_mailbox *box_r);

/* Progress on stderr: on a terminal one line updated in place (messages,
 * bytes, rate, ETA from total_bytes, else total_msgs); otherwise one
 * summary line at the end. */
struct ctl_progress {
	const char *what;
	uint64_t msgs, bytes, total, total_msgs;
	bool tty;
	int64_t start_ns, last_ns;
};
void ctl_progress_init(struct ctl_progress *p, const char *what,
		       uint64_t total_msgs, uint64_t total_bytes);
void ctl_progress_step(struct ctl_progress *p, uint64_t msgs, uint64_t bytes);
void ctl_progress_end(struct ctl_progress *p);


/* import.c */
int cmd_import(int argc, char **argv);
/* Takes import's own options out of argv; 0, or the exit status. */
int import_take_options(int *argc, char **argv);
/* export.c */
int cmd_export(int argc, char **argv);

#endif
