/* dbox-msg-storage.h - where and how a message is stored: the fields of
 * struct dbox_msg that only libdbox reads (its file, the record's layout,
 * compression).  dbox/store.h includes this in libdbox's own objects
 * (built with DBOX_INTERNAL); every other caller sees opaque words of the
 * same size in their place, and dbox_msg_file_id/_offset for what the
 * mount needs of them.  Not public. */
#ifndef DBOX_MSG_STORAGE_H
#define DBOX_MSG_STORAGE_H

#include <stdint.h>

#include "dbox/format.h"

#define DBOX_MSG_STORAGE_FIELDS \
	uint64_t offset;      /* record (message header) start in the file */ \
	uint64_t body_size;   /* stored bytes */ \
	uint64_t rec_size;    /* whole record */ \
	uint32_t file_id;     /* mdbox: N of m.N; sdbox: 0 (file u.<uid>) */ \
	uint32_t hdr_size; \
	enum dbox_compression compression;

struct dbox_msg_storage {
	DBOX_MSG_STORAGE_FIELDS
};
_Static_assert(sizeof(struct dbox_msg_storage) <=
	       DBOX_MSG_STORAGE_WORDS * sizeof(uint64_t),
	       "dbox/store.h: DBOX_MSG_STORAGE_WORDS too small");

/* the fields by name, in the words the callers see */
#define DBOX_MSG_STORAGE \
	union { \
		struct { \
			DBOX_MSG_STORAGE_FIELDS \
		}; \
		uint64_t storage_[DBOX_MSG_STORAGE_WORDS]; \
	}

#endif
