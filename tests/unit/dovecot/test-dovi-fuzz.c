/* test-dovi-fuzz.c - hostile input: truncated, bit-flipped and overwritten
 * copies of real Dovecot index and log files (tests/data/dovecot-index)
 * must give a result or a clean error, never a crash or an out-of-bounds
 * access.  Meant to run under AddressSanitizer/UBSan as well
 * (-Db_sanitize=address,undefined), where any stray access aborts.
 *
 * Deterministic: a fixed seed (DOVI_FUZZ_SEED overrides it) and a fixed
 * number of variants per case (DOVI_FUZZ_ROUNDS, default 1500).  Each
 * variant is loaded, walked through every accessor, then followed through
 * a refresh after more (also mutated) log data has been appended or the
 * log has been rotated (with a new .log that may not continue it); mdbox
 * variants are also read as a store (mailbox joined with the map).
 *
 * usage: test-dovi-fuzz DATA_DIR */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dbox/dovecot-index.h"

#define MAX_FILES 3

static const char *const cases[][2] = {
	{ "sdbox-inbox", "dovecot.index" },
	{ "sdbox-trash", "dovecot.index" },
	{ "mdbox-inbox", "dovecot.index" },
	{ "mdbox-lists-linux", "dovecot.index" },
	{ "mdbox-storage", "dovecot.map.index" },
};
static const char *const suffixes[MAX_FILES] = { "", ".log", ".log.2" };

struct file {
	uint8_t *p;
	size_t len;
	bool exists;
};

static uint64_t rng_state;
static char work[256];
static unsigned long n_loaded, n_refused, n_refreshed, n_store;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static size_t rnd_below(size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd() % n);
}

static void read_file(const char *path, struct file *f)
{
	FILE *fp = fopen(path, "rb");
	long n;

	memset(f, 0, sizeof(*f));
	if (fp == NULL)
		return;
	REQUIRE(fseek(fp, 0, SEEK_END) == 0);
	n = ftell(fp);
	REQUIRE(n >= 0 && fseek(fp, 0, SEEK_SET) == 0);
	f->p = malloc((size_t)n + 1);
	REQUIRE(f->p != NULL);
	f->len = fread(f->p, 1, (size_t)n, fp);
	f->exists = true;
	fclose(fp);
}

static void write_at(const char *dir, const char *name, const uint8_t *p,
		     size_t len)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	REQUIRE(fp != NULL);
	REQUIRE(fwrite(p, 1, len, fp) == len);
	REQUIRE(fclose(fp) == 0);
}

/* One mutation of buf (may change its length). */
static void mutate(uint8_t **buf, size_t *len)
{
	static const uint32_t extremes[] = { 0, 1, 0x7fffffff, 0x80000000,
					     0xffffffff, 0xffff, 0x10000, 40 };
	uint8_t *p = *buf;
	size_t n = *len, off = rnd_below(n);

	switch (rnd() % 6) {
	case 0:         /* truncate */
		*len = rnd_below(n);
		break;
	case 1:         /* flip 1..4 bits */
		for (unsigned i = 1 + rnd() % 4; i > 0 && n > 0; i--)
			p[rnd_below(n)] ^= (uint8_t)(1u << (rnd() % 8));
		break;
	case 2:         /* random byte */
		if (n > 0)
			p[off] = (uint8_t)rnd();
		break;
	case 3:         /* an extreme 32-bit value at an aligned field */
		off &= ~(size_t)3;
		if (off + 4 <= n) {
			uint32_t v = extremes[rnd() % 8];

			memcpy(p + off, &v, 4);
		}
		break;
	case 4:         /* a random 16-bit value (sizes, name lengths) */
		off &= ~(size_t)1;
		if (off + 2 <= n) {
			p[off] = (uint8_t)rnd();
			p[off + 1] = (uint8_t)(rnd() % 4 == 0 ? rnd() : 0);
		}
		break;
	default:        /* duplicate a chunk onto another place */
		if (n > 8) {
			size_t from = rnd_below(n - 8), len8 = 1 + rnd_below(8);

			memmove(p + off, p + from,
				off + len8 <= n ? len8 : n - off);
		}
		break;
	}
}

/* Reads everything the API offers; a stray pointer shows up here. */
static void walk(const struct dovi_index *idx)
{
	static const char *const exts[] = { "keywords", "mdbox", "guid", "map",
					    "ref", "cache", "dbox-hdr",
					    "mdbox-hdr", "hdr-vsize" };
	struct dovi_header h;
	uint8_t hb[64];
	unsigned long sum = 0;

	dovi_index_header(idx, &h);
	for (unsigned i = 0; dovi_index_error(idx, i) != NULL; i++)
		sum += strlen(dovi_index_error(idx, i));
	for (unsigned k = 0; k < dovi_index_keyword_count(idx); k++)
		sum += strlen(dovi_index_keyword(idx, k));
	for (unsigned e = 0; e < sizeof(exts) / sizeof(exts[0]); e++) {
		int ext = dovi_index_ext(idx, exts[e]);

		sum += dovi_index_ext_header(idx, ext, 0, hb, sizeof(hb));
		sum += dovi_index_ext_header(idx, ext, 1u << 20, hb, 8);
	}
	for (uint32_t i = 0; i < dovi_index_count(idx); i++) {
		uint32_t a, b, c;
		uint16_t r;
		bool hr;

		sum += dovi_index_uid(idx, i) + dovi_index_flags(idx, i);
		for (unsigned k = 0; k < dovi_index_keyword_count(idx); k++)
			sum += dovi_index_has_keyword(idx, i, k);
		for (unsigned e = 0; e < sizeof(exts) / sizeof(exts[0]); e++) {
			size_t len;
			const uint8_t *d = dovi_index_ext_record(
				idx, dovi_index_ext(idx, exts[e]), i, &len);

			for (size_t j = 0; d != NULL && j < len; j++)
				sum += d[j];
		}
		if (dovi_index_mdbox_rec(idx, i, &a, &b))
			sum += a + b;
		if (dovi_index_map_rec(idx, i, &a, &b, &c, &hr, &r))
			sum += a + b + c + r;
	}
	/* keep the compiler from dropping the reads */
	if (sum == 0xdeadbeef)
		fprintf(stderr, "(checksum coincidence)\n");
}

/* Writes a case's files into dir, one of them mutated if mutated_one. */
static void write_variant(const char *dir, struct file *files,
			  const char *pfx, bool mutated_one)
{
	unsigned victim;

	do {
		victim = (unsigned)rnd_below(MAX_FILES);
	} while (!files[victim].exists);
	for (unsigned i = 0; i < MAX_FILES; i++) {
		char name[64];
		uint8_t *copy;
		size_t len = files[i].len;

		if (!files[i].exists)
			continue;
		copy = malloc(len + 1);
		REQUIRE(copy != NULL);
		memcpy(copy, files[i].p, len);
		if (mutated_one && i == victim) {
			for (unsigned m = 1 + (unsigned)(rnd() % 3); m > 0; m--)
				mutate(&copy, &len);
		}
		snprintf(name, sizeof(name), "%s%s", pfx, suffixes[i]);
		write_at(dir, name, copy, len);
		free(copy);
	}
}

/* Rotates the .log as Dovecot does (old one becomes .log.2, a new one
 * continues it) with chunk as the new file's records; sometimes the new
 * header lies about what it continues. */
static void rotate(const char *path, const struct file *log,
		   const uint8_t *chunk, size_t len)
{
	char old[600];
	uint8_t hdr[40];
	struct stat st;
	uint32_t seq, size;
	FILE *fp;

	snprintf(old, sizeof(old), "%s.2", path);
	if (stat(path, &st) < 0 || rename(path, old) < 0)
		return;
	memcpy(hdr, log->p, sizeof(hdr));
	memcpy(&seq, hdr + 8, 4);
	size = (uint32_t)st.st_size;
	seq += rnd() % 4 == 0 ? 2 : 1;
	if (rnd() % 4 == 0)
		size -= (uint32_t)rnd_below(size);
	memcpy(hdr + 12, hdr + 8, 4);           /* prev_file_seq */
	memcpy(hdr + 8, &seq, 4);
	memcpy(hdr + 16, &size, 4);             /* prev_file_offset */
	fp = fopen(path, "wb");
	if (fp == NULL)
		return;
	fwrite(hdr, 1, sizeof(hdr), fp);
	fwrite(chunk, 1, len, fp);
	fclose(fp);
}

/* Appends bytes (a mutated slice of the original log) to the .log and
 * refreshes: the incremental path must be as robust as a full load. */
static void append_and_refresh(struct dovi_index *idx, const struct file *log,
			       const char *pfx)
{
	char path[512];
	size_t from, len;
	uint8_t *chunk;
	FILE *fp;
	bool changed;

	if (!log->exists || log->len <= 40)
		return;
	from = 40 + rnd_below(log->len - 40);
	len = 1 + rnd_below(log->len - from);
	chunk = malloc(len);
	REQUIRE(chunk != NULL);
	memcpy(chunk, log->p + from, len);
	if (rnd() % 2)
		mutate(&chunk, &len);
	snprintf(path, sizeof(path), "%s/%s.log", work, pfx);
	if (rnd() % 3 == 0)
		rotate(path, log, chunk, len);
	else if ((fp = fopen(path, "ab")) != NULL) {
		fwrite(chunk, 1, len, fp);
		fclose(fp);
	}
	free(chunk);
	if (dovi_index_refresh(idx, &changed, NULL) == 0)
		n_refreshed++;
	walk(idx);
}

static void rm_work(void)
{
	static const char *const names[] = {
		"dovecot.index", "dovecot.index.log", "dovecot.index.log.2",
		"dovecot.map.index", "dovecot.map.index.log",
		"dovecot.map.index.log.2" };
	char path[512];

	for (unsigned i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "%s/%s", work, names[i]);
		unlink(path);
	}
}

static void fuzz_case(const char *data, const char *dir, const char *pfx,
		      unsigned rounds)
{
	struct file files[MAX_FILES];
	char path[1024], prefix[512];

	for (unsigned i = 0; i < MAX_FILES; i++) {
		snprintf(path, sizeof(path), "%s/%s/%s%s", data, dir, pfx,
			 suffixes[i]);
		read_file(path, &files[i]);
	}
	REQUIRE(files[1].exists);
	snprintf(prefix, sizeof(prefix), "%s/%s", work, pfx);
	for (unsigned r = 0; r < rounds; r++) {
		struct dovi_index *idx = NULL;
		struct dbox_err err = { "" };
		int ret;

		rm_work();
		write_variant(work, files, pfx, true);
		ret = dovi_index_open(prefix, &idx, &err);
		if (ret < 0) {
			/* a clean refusal must say why */
			CHECK(err.msg[0] != '\0');
			CHECK(ret == -EBADMSG || ret == -EFBIG ||
			      ret == -ENOENT);
			n_refused++;
			continue;
		}
		n_loaded++;
		walk(idx);
		append_and_refresh(idx, &files[1], pfx);
		dovi_index_free(idx);
	}
	for (unsigned i = 0; i < MAX_FILES; i++)
		free(files[i].p);
}

/* ---- store level: mailbox joined with a (mutated) map ---------------- */

static int rm_entry(const char *p, const struct stat *st, int fl,
		    struct FTW *ftw)
{
	(void)st;
	(void)fl;
	(void)ftw;
	return remove(p);
}

static void mkdirs(const char *path)
{
	char p[512];

	snprintf(p, sizeof(p), "%s", path);
	for (char *c = p + 1; *c != '\0'; c++) {
		if (*c == '/') {
			*c = '\0';
			mkdir(p, 0755);
			*c = '/';
		}
	}
	REQUIRE(mkdir(p, 0755) == 0 || errno == EEXIST);
}

static void fuzz_store(const char *data, unsigned rounds)
{
	struct file box[MAX_FILES], map[MAX_FILES];
	char root[300], bdir[400], sdir[400], path[1024];

	for (unsigned i = 0; i < MAX_FILES; i++) {
		snprintf(path, sizeof(path), "%s/mdbox-inbox/dovecot.index%s",
			 data, suffixes[i]);
		read_file(path, &box[i]);
		snprintf(path, sizeof(path),
			 "%s/mdbox-storage/dovecot.map.index%s", data,
			 suffixes[i]);
		read_file(path, &map[i]);
	}
	snprintf(root, sizeof(root), "%s/store", work);
	snprintf(bdir, sizeof(bdir), "%s/mailboxes/INBOX/dbox-Mails", root);
	snprintf(sdir, sizeof(sdir), "%s/storage", root);
	for (unsigned r = 0; r < rounds; r++) {
		struct dovi_store *store;
		struct dovi_mailbox *mb;
		struct dovi_mailbox_name *names;
		size_t n;
		bool changed, in_box = rnd() % 2 == 0;

		nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		mkdirs(bdir);
		mkdirs(sdir);
		write_variant(bdir, box, "dovecot.index", in_box);
		write_variant(sdir, map, "dovecot.map.index", !in_box);
		REQUIRE(dovi_store_open(root, DOVI_MDBOX, &store, NULL) == 0);
		REQUIRE(dovi_store_list(store, &names, &n, NULL) == 0);
		CHECK_EQ_INT(n, 1);
		dovi_mailbox_names_free(names, n);
		if (dovi_mailbox_open(store, "INBOX", &mb, NULL) == 0) {
			const struct dovi_message *m;
			unsigned long sum = 0;

			m = dovi_mailbox_messages(mb);
			for (size_t i = 0; i < dovi_mailbox_count(mb); i++) {
				const struct dovi_message *x = &m[i];

				sum += x->uid + x->file_id + x->offset;
				for (unsigned k = 0; k < x->keyword_count; k++)
					sum += strlen(x->keywords[k]);
			}
			if (sum == 0xdeadbeef)
				fprintf(stderr, "(checksum coincidence)\n");
			(void)dovi_mailbox_refresh(mb, &changed, NULL);
			CHECK(!changed);
			dovi_mailbox_free(mb);
			n_store++;
		}
		dovi_store_free(store);
	}
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	for (unsigned i = 0; i < MAX_FILES; i++) {
		free(box[i].p);
		free(map[i].p);
	}
}

int main(int argc, char **argv)
{
	const char *data = argc > 1 ? argv[1] : "tests/data/dovecot-index";
	const char *s = getenv("DOVI_FUZZ_SEED");
	const char *rs = getenv("DOVI_FUZZ_ROUNDS");
	unsigned rounds = rs != NULL ? (unsigned)strtoul(rs, NULL, 10) : 1500;
	unsigned long total = 0;

	rng_state = s != NULL ? strtoull(s, NULL, 0) : 0x5eed0fd0ec07ULL;
	if (rng_state == 0)
		rng_state = 1;
	snprintf(work, sizeof(work), "/tmp/dovi-fuzz.XXXXXX");
	REQUIRE(mkdtemp(work) != NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fprintf(stderr, "-- %s\n", cases[i][0]);
		fuzz_case(data, cases[i][0], cases[i][1], rounds);
		total += rounds;
	}
	fprintf(stderr, "-- store\n");
	fuzz_store(data, rounds / 2);
	total += rounds / 2;
	rm_work();
	rmdir(work);
	fprintf(stderr, "%lu variants: %lu loaded, %lu refused, %lu "
		"refreshed, %lu store reads\n", total, n_loaded, n_refused,
		n_refreshed, n_store);
	/* the mutations must leave many variants readable, or the test would
	 * only exercise the first checks of the file headers */
	CHECK(n_loaded > total / 4);
	CHECK(n_refused > 0);
	return CHECK_DONE();
}
