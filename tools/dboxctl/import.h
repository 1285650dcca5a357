/* import.h - what the files of dboxctl import share: the import in
 * progress (import.c runs it, import-maildir.c takes maildir folders,
 * import-mbox.c mbox files, import-tree.c walks a --recursive tree). */
#ifndef DBOXCTL_IMPORT_H
#define DBOXCTL_IMPORT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "dbox/nameset.h"
#include "dbox/save.h"
#include "dbox/store.h"
#include "dboxctl.h"

/* the signal that ends the import (0: none) */
extern volatile sig_atomic_t import_interrupted;
/* --atomic: one transaction for a whole --recursive import */
extern bool import_opt_atomic;
struct item {
	char *path;
	char *base;
	uint32_t flags, kw_letters;
	bool in_new;
	bool new_info;        /* named BASE:2,FLAGS in new/ */
	struct timespec mtime;
	uint64_t size;
	int source;           /* index into the sources' keyword maps */
};

struct import {
	struct dbox_store *store;
	struct dbox_mailbox box;
	struct dbox_save_txn *txn;
	struct item *items;
	size_t count, cap;
	/* per source: maildir keyword letter -> our keyword index (-1) */
	int (*kwmap)[DBOX_MAX_KEYWORDS];
	int sources;
	/* the maildir base names used by this import (opened at the first
	 * one): a name seen before gets a derived one */
	struct dbox_nameset *bases;
	struct ctl_progress progress;
	unsigned long imported;
};

/* import.c */
bool import_is_subdir(const char *dir, const char *name, const char *sub);
/* Saves the maildir sources (the mbox files come after them). */
int import_collect(struct import *im, char **sources, int n,
		   uint64_t *mbox_bytes);
void import_free(struct import *im);
/* SIGINT and SIGTERM end the import at the next message, rolled back */
void import_catch_signals(void);
/* The bytes to import, for the progress display's ETA */
uint64_t import_source_bytes(char **sources, int n);

/* import-maildir.c */
int import_scan_maildir_sub(struct import *im, const char *dir,
			    const char *sub, int source);
/* dovecot-keywords: "<index> <name>" per line; index = letter - 'a' */
int import_load_keywords(struct import *im, const char *dir, int source);
void import_items_free(struct import *im);
/* Saves the files gathered so far, in received order, and forgets them. */
int import_flush_batch(struct import *im);

/* import-mbox.c */
int import_mbox(struct import *im, const char *path);

/* import-tree.c */
int cmd_import_recursive(int argc, char **argv);

#endif
