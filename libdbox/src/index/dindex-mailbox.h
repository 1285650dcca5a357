/* dindex-mailbox.h - mailbox rows (and their keywords) of the index.
 * Writes are made inside the caller's write transaction. */
#ifndef DINDEX_MAILBOX_H
#define DINDEX_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbox/store.h"

struct dindex;

/* -ENOENT (with a message) when there is no such mailbox. */
int dindex_mailbox_by_name(struct dindex *idx, const char *name,
			   struct dbox_mailbox *box_r, struct dbox_err *err);
int dindex_mailbox_by_id(struct dindex *idx, int64_t id,
			 struct dbox_mailbox *box_r, struct dbox_err *err);
/* Every mailbox in name order; fn's non-zero return stops the walk. */
int dindex_mailboxes_each(struct dindex *idx,
			  int (*fn)(void *ctx, const struct dbox_mailbox *box),
			  void *ctx, struct dbox_err *err);
/* id, name and guid (the rest zero) of every mailbox of the index file
 * at path, read as an immutable file (dindex_meta_peek): another
 * mount's index, looked into writing nothing.  fn's non-zero return
 * stops the walk and is returned; else 0, or -errno. */
int dindex_mailboxes_peek(const char *path,
			  int (*fn)(void *ctx, const struct dbox_mailbox *box),
			  void *ctx);
/* A new row, created now; -EEXIST if the name is taken. */
int dindex_mailbox_insert(struct dindex *idx, const char *name,
			  const char *guid, uint32_t uidvalidity,
			  uint32_t next_uid, struct dbox_err *err);
/* 1 if a mailbox is below name (name/...), else 0. */
int dindex_mailbox_has_children(struct dindex *idx, const char *name,
				struct dbox_err *err);
int dindex_mailbox_delete(struct dindex *idx, int64_t id,
			  struct dbox_err *err);
/* Renames the row of `from`, and with subtree those below it. */
int dindex_mailbox_rename(struct dindex *idx, const char *from,
			  const char *to, bool subtree, struct dbox_err *err);
/* Marks new/ and/or cur/ of a mailbox changed at ns (since the epoch). */
int dindex_mailbox_touch(struct dindex *idx, int64_t mailbox_id,
			 bool new_dir, bool cur_dir, int64_t ns,
			 struct dbox_err *err);
/* The change time of new/ (new_dir) or cur/ is ns; -ENOENT (with a
 * message) when there is no such mailbox. */
int dindex_mailbox_set_dir_mtime(struct dindex *idx, int64_t mailbox_id,
				 bool new_dir, int64_t ns, struct dbox_err *err);
/* Allocates count uids; *first_r is the first. */
int dindex_mailbox_alloc_uids(struct dindex *idx, int64_t mailbox_id,
			      uint32_t count, uint32_t *first_r,
			      struct dbox_err *err);
/* next_uid of the mailbox becomes uid + 1 unless it is above uid. */
int dindex_mailbox_raise_next_uid(struct dindex *idx, int64_t mailbox_id,
				  uint32_t uid, struct dbox_err *err);
/* -ENOENT (with a message) when there is no such mailbox. */
int dindex_mailbox_set_subdirs(struct dindex *idx, int64_t mailbox_id,
			       unsigned int subdirs, struct dbox_err *err);
/* Dovecot's view of a mailbox: its uidvalidity, a next_uid of at least
 * next_uid (0: the row's own) and above every uid the mailbox holds, and
 * its GUID (NULL: the row's own). */
int dindex_mailbox_resync(struct dindex *idx, int64_t mailbox_id,
			  uint32_t uidvalidity, uint32_t next_uid,
			  const char *guid, struct dbox_err *err);
/* Drops every message and keyword row of the mailbox (it was made anew
 * elsewhere); the mailbox row stays. */
int dindex_mailbox_forget(struct dindex *idx, int64_t mailbox_id,
			  struct dbox_err *err);
/* Drops every mailbox, with its messages, but those in ids[]. */
int dindex_mailbox_keep_only(struct dindex *idx, const int64_t *ids,
			     size_t count, struct dbox_err *err);

/* Keyword names by index, as dbox_mailbox_keywords returns them. */
int dindex_keywords(struct dindex *idx, int64_t mailbox_id,
		    char *names[DBOX_MAX_KEYWORDS], char *buf, size_t buflen,
		    struct dbox_err *err);
/* Drops the mailbox's keyword rows (in the caller's transaction). */
int dindex_keywords_clear(struct dindex *idx, int64_t mailbox_id,
			  struct dbox_err *err);
int dindex_keyword_insert(struct dindex *idx, int64_t mailbox_id,
			  int kw_idx, const char *name, struct dbox_err *err);

#endif
