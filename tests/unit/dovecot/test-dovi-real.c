/* test-dovi-real.c - real index files written by Dovecot 2.3
 * (tests/data/dovecot-index, see make-data.sh there) give exactly what
 * the reference reader says about them (expected.txt in each directory,
 * `dovecot-index-reader.py --format doveadm`).
 *
 * usage: test-dovi-real DATA_DIR */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dbox/dovecot-index.h"

static const char *const cases[][2] = {
	{ "sdbox-inbox", "dovecot.index" },
	{ "sdbox-trash", "dovecot.index" },
	{ "mdbox-inbox", "dovecot.index" },
	{ "mdbox-lists-linux", "dovecot.index" },
	{ "mdbox-storage", "dovecot.map.index" },
};

/* The reference's doveadm format: "uid\tflags" lines. */
static void render(const struct dovi_index *idx, char *out, size_t len)
{
	static const char *const names[] = { "\\Answered", "\\Flagged",
					     "\\Deleted", "\\Seen",
					     "\\Draft" };
	size_t o = (size_t)snprintf(out, len, "uid\tflags\n");

	for (uint32_t i = 0; i < dovi_index_count(idx) && o < len; i++) {
		const char *sep = "";

		o += (size_t)snprintf(out + o, len - o, "%u\t",
				      dovi_index_uid(idx, i));
		for (unsigned b = 0; b < 5 && o < len; b++) {
			if (dovi_index_flags(idx, i) & (1u << b)) {
				o += (size_t)snprintf(out + o, len - o, "%s%s",
						      sep, names[b]);
				sep = " ";
			}
		}
		for (unsigned k = 0; k < dovi_index_keyword_count(idx) &&
		     o < len; k++) {
			if (!dovi_index_has_keyword(idx, i, k))
				continue;
			o += (size_t)snprintf(out + o, len - o, "%s%s", sep,
					      dovi_index_keyword(idx, k));
			sep = " ";
		}
		if (o < len)
			o += (size_t)snprintf(out + o, len - o, "\n");
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 65536);
	size_t n;

	REQUIRE(f != NULL && buf != NULL);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void check_case(const char *data, const char *dir, const char *pfx)
{
	char path[1024], got[65536];
	struct dovi_index *idx;
	struct dbox_err err = { "" };
	char *want;
	int ret;

	snprintf(path, sizeof(path), "%s/%s/%s", data, dir, pfx);
	ret = dovi_index_open(path, &idx, &err);
	if (ret != 0)
		fprintf(stderr, "%s: %s\n", dir, err.msg);
	REQUIRE(ret == 0);
	render(idx, got, sizeof(got));
	snprintf(path, sizeof(path), "%s/%s/expected.txt", data, dir);
	want = slurp(path);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "%s: got\n%s\nexpected\n%s\n", dir, got, want);
	CHECK_STR(got, want);
	CHECK_EQ_INT(dovi_index_error_count(idx), 0);
	free(want);
	dovi_index_free(idx);
}

/* The map of the mdbox store joins with its mailbox: every map_uid of the
 * mailbox is in the map (the data was taken from one consistent store). */
static void check_join(const char *data)
{
	char path[1024];
	struct dovi_index *box, *map;
	unsigned joined = 0;

	snprintf(path, sizeof(path), "%s/mdbox-inbox/dovecot.index", data);
	REQUIRE(dovi_index_open(path, &box, NULL) == 0);
	snprintf(path, sizeof(path), "%s/mdbox-storage/dovecot.map.index",
		 data);
	REQUIRE(dovi_index_open(path, &map, NULL) == 0);
	for (uint32_t i = 0; i < dovi_index_count(box); i++) {
		uint32_t mu, sd, pos, fid, off, size;
		uint16_t ref;
		bool have_ref;

		REQUIRE(dovi_index_mdbox_rec(box, i, &mu, &sd));
		REQUIRE(dovi_index_lookup(map, mu, &pos));
		REQUIRE(dovi_index_map_rec(map, pos, &fid, &off, &size,
					   &have_ref, &ref));
		CHECK(fid != 0 && size > 30 && have_ref && ref >= 1);
		joined++;
	}
	CHECK(joined > 0);
	dovi_index_free(box);
	dovi_index_free(map);
}

int main(int argc, char **argv)
{
	const char *data = argc > 1 ? argv[1] : "tests/data/dovecot-index";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fprintf(stderr, "-- %s\n", cases[i][0]);
		check_case(data, cases[i][0], cases[i][1]);
	}
	fprintf(stderr, "-- join\n");
	check_join(data);
	return CHECK_DONE();
}
