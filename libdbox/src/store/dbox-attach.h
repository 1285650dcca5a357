/* dbox-attach.h - messages whose large MIME parts Dovecot keeps outside
 * the record (mail_attachment_dir, single-instance storage). */
#ifndef DBOX_ATTACH_H
#define DBOX_ATTACH_H

#include <stdbool.h>
#include <sys/types.h>

#include "dbox/format.h"
#include "dbox/store.h"

/* Reads [off, off+len) of the whole message: record bytes and attachment
 * files (base64 parts re-encoded) put back together as Dovecot does.  The
 * layout is checked before any byte is given out: every attachment file
 * must be there, of the size its reference needs and (when its name holds
 * a SHA-1 or SHA-256, as Dovecot's default mail_attachment_hash gives)
 * with that digest, and the record must hold exactly the rest; otherwise -EIO (or -EBADMSG for a corrupted
 * record) with what is missing in err.  Returns bytes read (0 at EOF). */
ssize_t dbox_attach_pread(struct dbox_store *store, const struct dbox_msg *msg,
			  void *buf, size_t len, uint64_t off,
			  struct dbox_err *err);

/* The same checks for dbox_store_check, on the record already read. */
int dbox_attach_check(struct dbox_store *store, const struct dbox_msg *msg,
		      const struct dbox_record *rec, const char *path,
		      struct dbox_err *err);

/* An sdbox message moving to message dest_uid of mailbox dest_id: its
 * attachment files get that message's names too (hard links, as
 * Dovecot's copy gives them: sdbox-copy.c), durable, before the move's
 * commit; with drop_old, once the move is durable, its old names go.
 * 0 when there is nothing to do (mdbox names carry no mailbox; no
 * attachments); -EIO when the message has attachments and no
 * attachment directory is given (the move would lose them), -EXDEV when
 * Dovecot has no index of mailbox dest_id (a folder made through a
 * takeover mount: Dovecot would look for the files under another name;
 * dbox_msg_move then writes the message whole). */
int dbox_attach_move(struct dbox_store *store, const struct dbox_msg *msg,
		     int64_t dest_id, uint32_t dest_uid, bool drop_old,
		     struct dbox_err *err);

#endif
