/* dovecot-mailboxlog.h - appends records to Dovecot's mailbox log
 * (dovecot.mailbox.log in the root of the tree), as Dovecot's own
 * mailbox delete and rename write them: the GUID of a deleted mailbox,
 * or a hash of a name deleted or renamed to, with the time.  dsync
 * (doveadm sync, replication) reads it to tell a mailbox deleted or
 * renamed on one side from one that is new on the other; without it, a
 * sync brings a deleted mailbox back and an old name. */
#ifndef DOVI_MAILBOXLOG_H
#define DOVI_MAILBOXLOG_H

#include <stdint.h>

#include "dbox/store.h"

/* Dovecot's enum mailbox_log_record_type */
enum dovi_mboxlog_type {
	DOVI_MBOXLOG_DELETE_MAILBOX = 1,   /* by the mailbox's GUID */
	DOVI_MBOXLOG_DELETE_DIR = 2,       /* by its name's hash */
	DOVI_MBOXLOG_RENAME = 3,           /* by the new name's hash */
};

/* The 16 bytes Dovecot logs for a mailbox name (its name as IMAP shows
 * it, hierarchy separator '/'): the start of its SHA-1. */
void dovi_mboxlog_name_hash(const char *name, uint8_t hash[16]);

/* Appends one record to root/dovecot.mailbox.log (made if missing). */
int dovi_mboxlog_append(const char *root, enum dovi_mboxlog_type type,
			const uint8_t id[16], struct dbox_err *err);

#endif
