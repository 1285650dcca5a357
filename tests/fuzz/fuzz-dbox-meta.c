/* fuzz-dbox-meta.c - the metadata block of a dbox record
 * (libdbox/src/format/dbox-meta.c), the bytes after the post magic.
 * Invariants: the consumed length ends at the closing empty line inside
 * the input; formatting what was parsed and parsing that again gives the
 * same fields and the same verbatim extra lines. */
#include <errno.h>

#include "dbox/format.h"
#include "fuzz.h"

static void same_str(const char *a, const char *b)
{
	FUZZ_ASSERT((a == NULL) == (b == NULL));
	FUZZ_ASSERT(a == NULL || strcmp(a, b) == 0);
}

static void same_meta(const struct dbox_meta *a, const struct dbox_meta *b)
{
	same_str(a->guid, b->guid);
	same_str(a->orig_mailbox, b->orig_mailbox);
	same_str(a->pop3_uidl, b->pop3_uidl);
	same_str(a->pop3_order, b->pop3_order);
	same_str(a->ext_refs, b->ext_refs);
	same_str(a->maildir_base, b->maildir_base);
	FUZZ_ASSERT(a->has_received == b->has_received &&
		    a->has_vsize == b->has_vsize &&
		    a->has_psize == b->has_psize);
	FUZZ_ASSERT(!a->has_received || a->received == b->received);
	FUZZ_ASSERT(!a->has_vsize || a->vsize == b->vsize);
	FUZZ_ASSERT(!a->has_psize || a->psize == b->psize);
	FUZZ_ASSERT(a->extra_len == b->extra_len);
	FUZZ_ASSERT(a->extra_len == 0 ||
		    memcmp(a->extra, b->extra, a->extra_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dbox_meta meta, again, copy;
	size_t consumed, len, consumed2;
	char *out;
	int ret = dbox_meta_parse((const char *)data, size, &meta, &consumed);

	FUZZ_ASSERT(ret == 0 || ret == -EAGAIN);
	if (ret < 0)
		return 0;
	FUZZ_ASSERT(consumed >= 1 && consumed <= size &&
		    data[consumed - 1] == '\n' &&
		    (consumed == 1 || data[consumed - 2] == '\n'));
	out = dbox_meta_format(&meta, &len);
	FUZZ_ASSERT(out != NULL && len >= DBOX_MAGIC_POST_LEN + 1);
	FUZZ_ASSERT(memcmp(out, DBOX_MAGIC_POST, DBOX_MAGIC_POST_LEN) == 0);
	FUZZ_ASSERT(dbox_meta_parse(out + DBOX_MAGIC_POST_LEN,
				    len - DBOX_MAGIC_POST_LEN, &again,
				    &consumed2) == 0);
	FUZZ_ASSERT(consumed2 == len - DBOX_MAGIC_POST_LEN);
	same_meta(&meta, &again);
	FUZZ_ASSERT(dbox_meta_copy(&copy, &meta) == 0);
	same_meta(&meta, &copy);
	dbox_meta_clear(&copy);
	dbox_meta_clear(&again);
	dbox_meta_clear(&meta);
	free(out);
	return 0;
}
