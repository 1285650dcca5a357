/* dbox-decompress.c - gz, bz2, xz, Dovecot-LZ4 and zstd bodies.
 * Formats as in dbox-format.md section 6; the codecs are Debian's zlib,
 * libbz2, liblzma, liblz4 and libzstd. */
#include <bzlib.h>
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "store/dbox-decompress.h"
#include "store/store-private.h"

/* Nothing a mail store holds is bigger; a Z beyond this is corruption. */
#define MAX_PLAIN (1ull << 32)
#define LZ4_MAGIC "Dovecot-LZ4\r*\x9b\xc5"
#define LZ4_MAGIC_LEN 15

/* Output grows to `limit` at most: the size the record announces plus one
 * byte, to see a lie; a body that inflates further (a "zip bomb") stops
 * there instead of costing memory and time. */
struct outbuf {
	unsigned char *p;
	size_t len, cap, limit;
};

/* Makes room for up to `most` more bytes of output, never beyond the
 * limit; *room_r is what there is room for.  -EBADMSG once the limit is
 * reached: the body is bigger than its record says. */
static int out_room(struct outbuf *o, size_t most, size_t *room_r)
{
	size_t want = o->limit - o->len < most ? o->limit - o->len : most;
	size_t cap = o->cap ? o->cap : 65536;
	unsigned char *p;

	if (want == 0)
		return -EBADMSG;
	*room_r = want;
	if (o->len + want <= o->cap)
		return 0;
	while (cap < o->len + want)
		cap *= 2;
	if (cap > o->limit)
		cap = o->limit;
	p = realloc(o->p, cap);
	if (p == NULL)
		return -ENOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

static int gz_decompress(const unsigned char *src, size_t n, struct outbuf *o)
{
	z_stream zs = { 0 };
	int zr = Z_OK;

	/* 15 + 32: zlib detects the gzip header itself */
	if (inflateInit2(&zs, 15 + 32) != Z_OK)
		return -ENOMEM;
	zs.next_in = (unsigned char *)src;
	zs.avail_in = (uInt)n;
	while (zr != Z_STREAM_END) {
		size_t room;
		int ret = out_room(o, 65536, &room);

		if (ret < 0) {
			inflateEnd(&zs);
			return ret;
		}
		zs.next_out = o->p + o->len;
		zs.avail_out = (uInt)room;
		zr = inflate(&zs, Z_NO_FLUSH);
		o->len += room - zs.avail_out;
		if (zr != Z_OK && zr != Z_STREAM_END)
			break;
		if (zr == Z_OK && zs.avail_in == 0 && zs.avail_out != 0)
			break;
	}
	inflateEnd(&zs);
	return zr == Z_STREAM_END ? 0 : -EBADMSG;
}

static int bz2_decompress(const unsigned char *src, size_t n, struct outbuf *o)
{
	bz_stream bz = { 0 };
	int br = BZ_OK;

	if (BZ2_bzDecompressInit(&bz, 0, 0) != BZ_OK)
		return -ENOMEM;
	bz.next_in = (char *)src;
	bz.avail_in = (unsigned int)n;
	while (br == BZ_OK) {
		size_t room;
		int ret = out_room(o, 65536, &room);

		if (ret < 0) {
			BZ2_bzDecompressEnd(&bz);
			return ret;
		}
		bz.next_out = (char *)o->p + o->len;
		bz.avail_out = (unsigned int)room;
		br = BZ2_bzDecompress(&bz);
		o->len += room - bz.avail_out;
		if (br == BZ_OK && bz.avail_in == 0 && bz.avail_out != 0)
			break;
	}
	BZ2_bzDecompressEnd(&bz);
	return br == BZ_STREAM_END ? 0 : -EBADMSG;
}

static int xz_decompress(const unsigned char *src, size_t n, struct outbuf *o)
{
	lzma_stream xs = LZMA_STREAM_INIT;
	lzma_ret xr = LZMA_OK;

	if (lzma_stream_decoder(&xs, UINT64_MAX, 0) != LZMA_OK)
		return -ENOMEM;
	xs.next_in = src;
	xs.avail_in = n;
	while (xr == LZMA_OK) {
		size_t room;
		int ret = out_room(o, 65536, &room);

		if (ret < 0) {
			lzma_end(&xs);
			return ret;
		}
		xs.next_out = o->p + o->len;
		xs.avail_out = room;
		xr = lzma_code(&xs, LZMA_FINISH);
		o->len += room - xs.avail_out;
	}
	lzma_end(&xs);
	return xr == LZMA_STREAM_END ? 0 : -EBADMSG;
}

static int zstd_decompress(const unsigned char *src, size_t n,
			   struct outbuf *o)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	ZSTD_inBuffer in = { src, n, 0 };
	size_t zr = 1;

	if (ds == NULL)
		return -ENOMEM;
	while (zr != 0) {
		ZSTD_outBuffer out;
		size_t room;
		int ret = out_room(o, 65536, &room);

		if (ret < 0) {
			ZSTD_freeDStream(ds);
			return ret;
		}
		out = (ZSTD_outBuffer){ o->p + o->len, room, 0 };
		zr = ZSTD_decompressStream(ds, &out, &in);
		o->len += out.pos;
		if (ZSTD_isError(zr) || (in.pos == in.size && out.pos == 0))
			break;
	}
	ZSTD_freeDStream(ds);
	return zr == 0 ? 0 : -EBADMSG;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		(uint32_t)p[2] << 8 | p[3];
}

/* Dovecot's LZ4 container: magic, 4-byte max chunk size, then chunks of
 * 4-byte length + one LZ4 block each. */
static int lz4_decompress(const unsigned char *src, size_t n, struct outbuf *o)
{
	size_t pos = LZ4_MAGIC_LEN + 4;
	uint32_t max_chunk;

	if (n < pos || memcmp(src, LZ4_MAGIC, LZ4_MAGIC_LEN) != 0)
		return -EBADMSG;
	max_chunk = be32(src + LZ4_MAGIC_LEN);
	if (max_chunk == 0 || max_chunk > 64 * 1024 * 1024)
		return -EBADMSG;
	while (pos < n) {
		uint32_t clen;
		size_t room;
		int dn, ret;

		if (n - pos < 4)
			return -EBADMSG;
		clen = be32(src + pos);
		pos += 4;
		if (clen > n - pos || clen > INT32_MAX)
			return -EBADMSG;
		/* a block is decoded whole: room for one chunk, bounded */
		ret = out_room(o, max_chunk, &room);
		if (ret < 0)
			return ret;
		dn = LZ4_decompress_safe((const char *)src + pos,
					 (char *)o->p + o->len, (int)clen,
					 (int)room);
		if (dn < 0)
			return -EBADMSG;
		o->len += (size_t)dn;
		pos += clen;
	}
	return 0;
}

int dbox_decompress(enum dbox_compression c, const unsigned char *src,
		    size_t src_len, uint64_t expected, unsigned char **out_r,
		    size_t *out_len_r, struct dbox_err *err)
{
	struct outbuf o = { .limit = (size_t)expected + 1 };
	int ret;

	if (expected > MAX_PLAIN)
		return dbox_fail(err, -EBADMSG, "plaintext size %llu is "
				 "implausible", (unsigned long long)expected);
	switch (c) {
	case DBOX_COMP_GZ: ret = gz_decompress(src, src_len, &o); break;
	case DBOX_COMP_BZ2: ret = bz2_decompress(src, src_len, &o); break;
	case DBOX_COMP_XZ: ret = xz_decompress(src, src_len, &o); break;
	case DBOX_COMP_LZ4: ret = lz4_decompress(src, src_len, &o); break;
	case DBOX_COMP_ZSTD: ret = zstd_decompress(src, src_len, &o); break;
	default: ret = -EINVAL; break;
	}
	if (ret == 0 && o.len > expected)
		ret = -EBADMSG;
	if (ret < 0) {
		free(o.p);
		return dbox_fail(err, ret, "%s body does not decompress within "
				 "its %llu bytes", dbox_compression_name(c),
				 (unsigned long long)expected);
	}
	*out_r = o.p;
	*out_len_r = o.len;
	return 0;
}

struct plain_cache {
	char path[PATH_MAX];
	uint64_t offset;
	unsigned char *data;
	size_t len;
};

static _Thread_local struct plain_cache tls_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* A thread that ends (libfuse lets idle workers go) frees what it kept. */
static void cache_free(void *p)
{
	struct plain_cache *c = p;

	free(c->data);
	c->data = NULL;
}

static void cache_key_init(void)
{
	(void)pthread_key_create(&cache_key, cache_free);
}

static int load_plain(struct dbox_store *store, const struct dbox_msg *msg,
		      const char *path, struct dbox_err *err)
{
	struct dbox_msg raw = *msg;
	unsigned char *src, *plain;
	size_t plain_len;
	ssize_t n;
	int ret;

	if (dbox_msg_where(msg)->body_size > MAX_PLAIN)
		return dbox_fail(err, -EBADMSG, "stored size implausible");
	src = malloc(dbox_msg_where(msg)->body_size ?
		     dbox_msg_where(msg)->body_size : 1);
	if (src == NULL)
		return dbox_fail(err, -ENOMEM, "out of memory");
	/* the stored bytes as they are: a plain message of body_size */
	dbox_msg_where(&raw)->compression = DBOX_COMP_NONE;
	raw.size = dbox_msg_where(&raw)->body_size;
	n = dbox_msg_pread(store, &raw, src, dbox_msg_where(msg)->body_size, 0,
			   err);
	if (n >= 0 && (uint64_t)n != dbox_msg_where(msg)->body_size)
		n = dbox_fail(err, -EBADMSG, "short read of %s", path);
	if (n < 0) {
		free(src);
		return (int)n;
	}
	ret = dbox_decompress(dbox_msg_where(msg)->compression, src,
			      dbox_msg_where(msg)->body_size, msg->size,
			      &plain, &plain_len, err);
	free(src);
	if (ret < 0)
		return dbox_fail_prefix(err, -EBADMSG, "Corrupted dbox file %s "
					"(around offset=%llu)", path,
					(unsigned long long)
					dbox_msg_where(msg)->offset);
	free(tls_cache.data);
	snprintf(tls_cache.path, sizeof(tls_cache.path), "%s", path);
	tls_cache.offset = dbox_msg_where(msg)->offset;
	tls_cache.data = plain;
	tls_cache.len = plain_len;
	pthread_once(&cache_once, cache_key_init);
	pthread_setspecific(cache_key, &tls_cache);
	return 0;
}

ssize_t dbox_decompress_pread(struct dbox_store *store,
			      const struct dbox_msg *msg, void *buf,
			      size_t len, uint64_t off, struct dbox_err *err)
{
	char path[PATH_MAX];
	int ret = dbox_msg_file_path(store, msg, path, sizeof(path));

	if (ret < 0)
		return dbox_fail(err, ret, "message path");
	if (tls_cache.data == NULL ||
	    tls_cache.offset != dbox_msg_where(msg)->offset ||
	    strcmp(tls_cache.path, path) != 0) {
		ret = load_plain(store, msg, path, err);
		if (ret < 0)
			return ret;
	}
	if (tls_cache.len != msg->size)
		return dbox_fail(err, -ERANGE, "Corrupted dbox file %s (around "
				 "offset=%llu): %s body decompresses to %zu "
				 "bytes, not its %llu", path,
				 (unsigned long long)
				 dbox_msg_where(msg)->offset,
				 dbox_compression_name(
					 dbox_msg_where(msg)->compression),
				 tls_cache.len, (unsigned long long)msg->size);
	if (off >= tls_cache.len)
		return 0;
	if (len > tls_cache.len - off)
		len = (size_t)(tls_cache.len - off);
	memcpy(buf, tls_cache.data + off, len);
	return (ssize_t)len;
}
