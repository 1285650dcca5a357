/* fuzz-mbox.c - dboxctl's mbox splitter (tools/dboxctl/mbox.c, compiled
 * in).  Invariants: messages follow each other, each a From_ line and a
 * body inside the input, separated by at most the blank line; nothing is
 * skipped (the split ends at the end of the input, unless at a last
 * From_ line without LF, which holds no message); unescaping passes the
 * body on in order, dropping exactly one '>' at the start of a line
 * between pieces; flags are only the five Status/X-Status ones. */
#include "dbox/store.h"
#include "fuzz.h"
#include "mbox.h"

struct pieces {
	const struct mbox_msg *m;
	size_t next;           /* body offset the next piece must start at */
	bool first;
};

static int piece(void *ctx, const char *p, size_t n)
{
	struct pieces *c = ctx;
	size_t at = (size_t)(p - c->m->body);

	FUZZ_ASSERT(p >= c->m->body && at + n <= c->m->len);
	if (c->first) {
		FUZZ_ASSERT(at == 0);
	} else {
		/* the dropped byte: a '>' at a line start */
		FUZZ_ASSERT(at == c->next + 1 && c->m->body[c->next] == '>');
		FUZZ_ASSERT(c->next == 0 || c->m->body[c->next - 1] == '\n');
	}
	c->first = false;
	c->next = at + n;
	return 0;
}

static void check_msg(const char *data, size_t start, size_t pos,
		      const struct mbox_msg *m)
{
	const uint32_t known = DBOX_FLAG_SEEN | DBOX_FLAG_ANSWERED |
		DBOX_FLAG_FLAGGED | DBOX_FLAG_DRAFT | DBOX_FLAG_DELETED;
	struct pieces c = { m, 0, true };
	size_t body_end = (size_t)(m->body - data) + m->len;

	FUZZ_ASSERT(m->from_line == data + start &&
		    memcmp(m->from_line, "From ", 5) == 0);
	FUZZ_ASSERT(m->from_line[m->from_len] == '\n' &&
		    m->body == m->from_line + m->from_len + 1);
	FUZZ_ASSERT(pos > start && body_end <= pos && pos - body_end <= 1);
	FUZZ_ASSERT(body_end == pos || data[body_end] == '\n');
	FUZZ_ASSERT((mbox_flags(m) & ~known) == 0);
	(void)mbox_date(m, 0);
	FUZZ_ASSERT(mbox_unescape(m, piece, &c) == 0);
	FUZZ_ASSERT(c.next == m->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
	const char *data = (const char *)bytes;
	struct mbox_msg m;
	size_t pos = 0, start = 0;

	while (mbox_next(data, size, &pos, &m)) {
		check_msg(data, start, pos, &m);
		FUZZ_ASSERT(pos <= size);
		start = pos;
	}
	FUZZ_ASSERT(pos == start);
	/* a non-empty file either split to its end or was not an mbox */
	if (size >= 5 && memcmp(data, "From ", 5) == 0 &&
	    memchr(data, '\n', size) != NULL)
		FUZZ_ASSERT(pos == size ||
			    (memcmp(data + pos, "From ", 5) == 0 &&
			     memchr(data + pos, '\n', size - pos) == NULL));
	return 0;
}
