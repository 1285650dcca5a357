/* test-decompress.c - compressed bodies decode exactly to the size their
 * record announces, and a body that would inflate further (a "zip bomb")
 * stops at that size + 1 byte instead of costing memory and time. */
#include <bzlib.h>
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>
#include <zstd.h>

#include "check.h"
#include "store/dbox-decompress.h"

#define PIECE (1u << 20)          /* fed PIECES times: never held whole */
#define LZ4_MAGIC "Dovecot-LZ4\r*\x9b\xc5"

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		REQUIRE(b->p != NULL);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static const unsigned char *piece(size_t i)
{
	static unsigned char *z;

	if (z == NULL) {
		z = calloc(1, PIECE);
		REQUIRE(z != NULL);
		/* one non-zero byte per piece: not a pure run */
	}
	z[i % PIECE] = (unsigned char)i;
	return z;
}

static struct buf gz(size_t pieces)
{
	struct buf b = { 0 };
	unsigned char out[65536];
	z_stream zs = { 0 };

	REQUIRE(deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8,
			     Z_DEFAULT_STRATEGY) == Z_OK);
	for (size_t i = 0; i <= pieces; i++) {
		int flush = i == pieces ? Z_FINISH : Z_NO_FLUSH;

		zs.next_in = (unsigned char *)piece(i);
		zs.avail_in = i == pieces ? 0 : PIECE;
		do {
			zs.next_out = out;
			zs.avail_out = sizeof(out);
			deflate(&zs, flush);
			put(&b, out, sizeof(out) - zs.avail_out);
		} while (zs.avail_out == 0);
	}
	deflateEnd(&zs);
	return b;
}

static struct buf bz2(size_t pieces)
{
	struct buf b = { 0 };
	char out[65536];
	bz_stream bz = { 0 };
	int r = BZ_RUN_OK;

	REQUIRE(BZ2_bzCompressInit(&bz, 1, 0, 0) == BZ_OK);
	for (size_t i = 0; i <= pieces; i++) {
		int action = i == pieces ? BZ_FINISH : BZ_RUN;

		bz.next_in = (char *)piece(i);
		bz.avail_in = i == pieces ? 0 : PIECE;
		do {
			bz.next_out = out;
			bz.avail_out = sizeof(out);
			r = BZ2_bzCompress(&bz, action);
			put(&b, out, sizeof(out) - bz.avail_out);
		} while (action == BZ_FINISH ? r != BZ_STREAM_END :
			 bz.avail_in > 0);
	}
	BZ2_bzCompressEnd(&bz);
	return b;
}

static struct buf xz(size_t pieces)
{
	struct buf b = { 0 };
	unsigned char out[65536];
	lzma_stream xs = LZMA_STREAM_INIT;
	lzma_ret r = LZMA_OK;

	REQUIRE(lzma_easy_encoder(&xs, 0, LZMA_CHECK_CRC64) == LZMA_OK);
	for (size_t i = 0; i <= pieces; i++) {
		lzma_action a = i == pieces ? LZMA_FINISH : LZMA_RUN;

		xs.next_in = piece(i);
		xs.avail_in = i == pieces ? 0 : PIECE;
		do {
			xs.next_out = out;
			xs.avail_out = sizeof(out);
			r = lzma_code(&xs, a);
			put(&b, out, sizeof(out) - xs.avail_out);
		} while (a == LZMA_FINISH ? r == LZMA_OK : xs.avail_in > 0);
	}
	lzma_end(&xs);
	return b;
}

static struct buf zstd(size_t pieces)
{
	struct buf b = { 0 };
	unsigned char out[65536];
	ZSTD_CStream *cs = ZSTD_createCStream();
	size_t left = 1;

	REQUIRE(cs != NULL && !ZSTD_isError(ZSTD_initCStream(cs, 1)));
	for (size_t i = 0; i < pieces; i++) {
		ZSTD_inBuffer in = { piece(i), PIECE, 0 };

		while (in.pos < in.size) {
			ZSTD_outBuffer o = { out, sizeof(out), 0 };

			REQUIRE(!ZSTD_isError(ZSTD_compressStream(cs, &o, &in)));
			put(&b, out, o.pos);
		}
	}
	while (left != 0) {
		ZSTD_outBuffer o = { out, sizeof(out), 0 };

		left = ZSTD_endStream(cs, &o);
		REQUIRE(!ZSTD_isError(left));
		put(&b, out, o.pos);
	}
	ZSTD_freeCStream(cs);
	return b;
}

/* Dovecot's container: magic, max chunk size, (length, LZ4 block)* */
static struct buf lz4(size_t pieces)
{
	const uint32_t chunk = 65536;
	struct buf b = { 0 };
	char out[LZ4_COMPRESSBOUND(65536)];
	unsigned char be[4] = { 0, 1, 0, 0 };

	put(&b, LZ4_MAGIC, 15);
	put(&b, be, 4);
	for (size_t i = 0; i < pieces * (PIECE / chunk); i++) {
		int n = LZ4_compress_default((const char *)piece(i / 16) +
					     (i % 16) * chunk, out, (int)chunk,
					     (int)sizeof(out));
		unsigned char len[4] = { (unsigned char)(n >> 24),
			(unsigned char)(n >> 16), (unsigned char)(n >> 8),
			(unsigned char)n };

		REQUIRE(n > 0);
		put(&b, len, 4);
		put(&b, out, (size_t)n);
	}
	return b;
}

static long maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void check_codec(const char *name, enum dbox_compression c,
			struct buf (*make)(size_t))
{
	struct dbox_err err = { "" };
	unsigned char *out = NULL;
	size_t out_len = 0;
	struct buf small = make(2), bomb = make(64);
	long rss;

	fprintf(stderr, "   %s: %zu and %zu bytes compressed\n", name,
		small.len, bomb.len);
	/* exact: decodes to the announced size */
	CHECK_EQ_INT(dbox_decompress(c, small.p, small.len, 2ull * PIECE, &out,
				     &out_len, &err), 0);
	CHECK_EQ_INT(out_len, 2ull * PIECE);
	CHECK(out != NULL && out[PIECE + 1] == 1);
	free(out);
	out = NULL;
	/* the record says less than the body holds: refused; more: the
	 * caller sees the short length (attachments may make up the rest) */
	CHECK_EQ_INT(dbox_decompress(c, small.p, small.len, 2ull * PIECE - 1,
				     &out, &out_len, &err), -EBADMSG);
	CHECK(strstr(err.msg, "does not decompress") != NULL);
	CHECK_EQ_INT(dbox_decompress(c, small.p, small.len, 2ull * PIECE + 1,
				     &out, &out_len, &err), 0);
	CHECK_EQ_INT(out_len, 2ull * PIECE);
	free(out);
	out = NULL;
	/* 64 MiB of plain text behind a record that says 1000 bytes: stops
	 * at 1001 bytes, without the 64 MiB */
	rss = maxrss_kib();
	CHECK_EQ_INT(dbox_decompress(c, bomb.p, bomb.len, 1000, &out, &out_len,
				     &err), -EBADMSG);
	if (maxrss_kib() - rss > 16 * 1024)
		fprintf(stderr, "%s: max RSS grew by %ld KiB\n", name,
			maxrss_kib() - rss);
	CHECK(maxrss_kib() - rss <= 16 * 1024);
	CHECK(out == NULL);
	free(small.p);
	free(bomb.p);
}

int main(void)
{
	check_codec("gz", DBOX_COMP_GZ, gz);
	check_codec("zstd", DBOX_COMP_ZSTD, zstd);
	check_codec("lz4", DBOX_COMP_LZ4, lz4);
	check_codec("bz2", DBOX_COMP_BZ2, bz2);
	check_codec("xz", DBOX_COMP_XZ, xz);
	return CHECK_DONE();
}
