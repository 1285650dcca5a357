/* dbox-msg-storage.h - where and how a message is stored: the fields
 * that only libdbox reads (its file, the record's layout, compression),
 * kept in the opaque words of struct dbox_msg (dbox/store.h), which every
 * caller copies with the message.  dbox_msg_where(m) names them.  Not
 * public. */
#ifndef DBOX_MSG_STORAGE_H
#define DBOX_MSG_STORAGE_H

#include <stdalign.h>
#include <stdint.h>

#include "dbox/format.h"
#include "dbox/store.h"

/* may_alias: read and written through the words' storage (as through
 * char), which the compiler must not assume apart */
struct __attribute__((__may_alias__)) dbox_msg_where {
	uint64_t offset;      /* record (message header) start in the file */
	uint64_t body_size;   /* stored bytes */
	uint64_t rec_size;    /* whole record */
	uint32_t file_id;     /* mdbox: N of m.N; sdbox: 0 (file u.<uid>) */
	uint32_t hdr_size;
	enum dbox_compression compression;
};
_Static_assert(sizeof(struct dbox_msg_where) <=
	       sizeof(struct dbox_msg_storage),
	       "dbox/store.h: DBOX_MSG_STORAGE_WORDS too small");
_Static_assert(alignof(struct dbox_msg_where) <=
	       alignof(struct dbox_msg_storage),
	       "struct dbox_msg_storage aligned less than its fields");

/* The storage fields of message m (a struct dbox_msg *, const or not). */
#define dbox_msg_where(m) _Generic((m), \
	const struct dbox_msg *: \
		(const struct dbox_msg_where *)(const void *)(m)->storage.w, \
	struct dbox_msg *: \
		(struct dbox_msg_where *)(void *)(m)->storage.w)

/* Where the body (after the record's header), and where the metadata
 * (after the body) starts in the file. */
static inline uint64_t dbox_msg_body_at(const struct dbox_msg *m)
{
	return dbox_msg_where(m)->offset + dbox_msg_where(m)->hdr_size;
}

static inline uint64_t dbox_msg_meta_at(const struct dbox_msg *m)
{
	return dbox_msg_body_at(m) + dbox_msg_where(m)->body_size;
}

#endif
