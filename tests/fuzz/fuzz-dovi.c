/* fuzz-dovi.c - Dovecot's own index files (libdbox/src/dovecot): the
 * main index, the transaction log and the rotated log, replayed as a
 * mailbox's (or the mdbox map's) index.  Unlike the fixed-seed unit test
 * tests/unit/dovecot/test-dovi-fuzz.c this is coverage guided.
 *
 * Input: a flag byte, then the files separated by "\n==DOVI==\n".  Bits
 * 0-2 of the flag byte say which of dovecot.index, .log and .log.2
 * exist (they take the parts in that order); with bit 3 the next part is
 * appended to .log afterwards and the index refreshed.  The files go to
 * a private temporary directory.
 *
 * Invariants: a refusal is -ENOENT, -EBADMSG or -EFBIG with a reason; a
 * loaded index answers every accessor inside its bounds (under ASan), has
 * uids strictly increasing, each found again by dovi_index_lookup, also
 * after a refresh. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "dbox/dovecot-index.h"
#include "fuzz.h"

#define SEP "\n==DOVI==\n"
#define SEP_LEN (sizeof(SEP) - 1)

static const char *const suffixes[] = { "", ".log", ".log.2" };
static char dir[64];

static void put(const char *suffix, const uint8_t *p, size_t n, bool append)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/dovecot.index%s", dir, suffix);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC |
		  (append ? O_APPEND : O_TRUNC), 0600);
	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(n == 0 || write(fd, p, n) == (ssize_t)n);
	close(fd);
}

/* The next part of the input (up to the separator or the end). */
static bool next_part(const uint8_t **p, const uint8_t *end,
		      const uint8_t **part, size_t *len)
{
	const uint8_t *sep;

	if (*p == NULL)
		return false;
	sep = memmem(*p, (size_t)(end - *p), SEP, SEP_LEN);
	*part = *p;
	*len = (size_t)((sep != NULL ? sep : end) - *p);
	*p = sep != NULL ? sep + SEP_LEN : NULL;
	return true;
}

static void walk(const struct dovi_index *idx)
{
	static const char *const exts[] = { "keywords", "mdbox", "guid", "map",
					    "ref", "dbox-hdr", "mdbox-hdr",
					    "hdr-vsize" };
	struct dovi_header h;
	uint8_t hb[64];
	uint32_t pos, a, b, c;
	uint16_t r;
	bool hr;

	dovi_index_header(idx, &h);
	for (unsigned i = 0; dovi_index_error(idx, i) != NULL; i++)
		FUZZ_ASSERT(strlen(dovi_index_error(idx, i)) < 4096);
	for (unsigned k = 0; k < dovi_index_keyword_count(idx); k++)
		FUZZ_ASSERT(dovi_index_keyword(idx, k) != NULL);
	for (unsigned e = 0; e < sizeof(exts) / sizeof(exts[0]); e++) {
		int ext = dovi_index_ext(idx, exts[e]);

		FUZZ_ASSERT(dovi_index_ext_header(idx, ext, 0, hb,
						  sizeof(hb)) <= sizeof(hb));
		(void)dovi_index_ext_header(idx, ext, 1u << 20, hb, 8);
	}
	(void)dovi_index_map_hdr(idx, &a, &b);
	for (uint32_t i = 0; i < dovi_index_count(idx); i++) {
		uint32_t uid = dovi_index_uid(idx, i);
		volatile uint8_t sum = dovi_index_flags(idx, i);

		FUZZ_ASSERT(uid > 0 && (i == 0 ||
					uid > dovi_index_uid(idx, i - 1)));
		FUZZ_ASSERT(dovi_index_lookup(idx, uid, &pos) && pos == i);
		for (unsigned k = 0; k < dovi_index_keyword_count(idx); k++)
			sum += dovi_index_has_keyword(idx, i, k);
		for (unsigned e = 0; e < sizeof(exts) / sizeof(exts[0]); e++) {
			size_t len;
			const uint8_t *d = dovi_index_ext_record(
				idx, dovi_index_ext(idx, exts[e]), i, &len);

			for (size_t j = 0; d != NULL && j < len; j++)
				sum += d[j];
		}
		(void)dovi_index_mdbox_rec(idx, i, &a, &b);
		(void)dovi_index_map_rec(idx, i, &a, &b, &c, &hr, &r);
		(void)sum;
	}
}

static void rm_files(void)
{
	char path[128];

	for (unsigned i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/dovecot.index%s", dir,
			 suffixes[i]);
		unlink(path);
	}
}

static void rm_dir(void)
{
	rm_files();
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + 1, *end = data + size, *part;
	struct dovi_index *idx = NULL;
	struct dbox_err err = { "" };
	char prefix[128];
	size_t len;
	bool changed;
	int ret;

	if (size < 1)
		return 0;
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-dovi.XXXXXX");
		FUZZ_ASSERT(mkdtemp(dir) != NULL);
		atexit(rm_dir);
	}
	rm_files();
	for (unsigned i = 0; i < 3; i++) {
		if ((data[0] & (1u << i)) && next_part(&p, end, &part, &len))
			put(suffixes[i], part, len, false);
	}
	snprintf(prefix, sizeof(prefix), "%s/dovecot.index", dir);
	ret = dovi_index_open(prefix, &idx, &err);
	if (ret < 0) {
		FUZZ_ASSERT(ret == -ENOENT || ret == -EBADMSG || ret == -EFBIG);
		FUZZ_ASSERT(err.msg[0] != '\0');
		return 0;
	}
	walk(idx);
	if ((data[0] & 8) && next_part(&p, end, &part, &len)) {
		put(".log", part, len, true);
		ret = dovi_index_refresh(idx, &changed, &err);
		FUZZ_ASSERT(ret == 0 || ret == -ENOENT || ret == -EBADMSG ||
			    ret == -EFBIG || ret == -ESTALE);
		if (ret != -EFBIG)      /* may leave a partial state */
			walk(idx);
	}
	dovi_index_free(idx);
	return 0;
}
