/* dbox-file.c - file header line, message header and record framing. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbox/format.h"

/* Metadata blocks are normally < 200 bytes; read this much at a time. */
#define META_CHUNK 1024
/* A metadata block beyond this is garbage (Dovecot has no limit, but an
 * unterminated block in a huge file would otherwise be read whole). */
#define META_MAX (16u * 1024 * 1024)

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

static int fd_pread(void *ctx, void *buf, size_t len, uint64_t off,
		    size_t *n_r)
{
	int fd = (int)(intptr_t)ctx;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*n_r = done;
	return 0;
}

void dbox_reader_init_fd(struct dbox_reader *rd, int fd)
{
	rd->pread = fd_pread;
	rd->ctx = (void *)(intptr_t)fd;
}

bool dbox_hex_parse(const char *s, size_t len, uint64_t *value_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 16)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		unsigned int d;

		if (c >= '0' && c <= '9')
			d = (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned int)(c - 'A' + 10);
		else
			return false;
		v = (v << 4) | d;
	}
	*value_r = v;
	return true;
}

static int hdr_item(struct dbox_file_hdr *hdr, const char *item, size_t n,
		    char *err, size_t errlen)
{
	uint64_t v;

	if (item[0] == 'M') {
		if (!dbox_hex_parse(item + 1, n - 1, &v) || v > 4096)
			return fail(err, errlen, "bad message header size");
		hdr->msg_hdr_size = (unsigned int)v;
	} else if (item[0] == 'C') {
		if (!dbox_hex_parse(item + 1, n - 1, &v) || v > INT64_MAX)
			return fail(err, errlen, "bad creation stamp");
		hdr->create_time = (int64_t)v;
	}
	/* unknown keys (and v1's A) are ignored, as Dovecot does */
	return 0;
}

int dbox_file_hdr_parse(const char *buf, size_t len, struct dbox_file_hdr *hdr,
			char *err, size_t errlen)
{
	const char *lf = memchr(buf, '\n', len < DBOX_FILE_HEADER_MAX ?
				len : DBOX_FILE_HEADER_MAX);
	size_t end, pos;

	memset(hdr, 0, sizeof(*hdr));
	if (lf == NULL) {
		if (len < DBOX_FILE_HEADER_MAX && len > 0 &&
		    buf[0] >= '1' && buf[0] <= '2')
			return -EAGAIN;
		if (len == 0)
			return fail(err, errlen, "offset=0: empty file");
		return fail(err, errlen, "offset=0: file header line missing");
	}
	end = (size_t)(lf - buf);
	if (end < 1 || (buf[0] != '1' && buf[0] != '2') ||
	    (end > 1 && buf[1] != ' '))
		return fail(err, errlen, "offset=0: Invalid dbox version");
	hdr->version = (unsigned int)(buf[0] - '0');
	for (pos = 2; pos < end;) {
		const char *sp = memchr(buf + pos, ' ', end - pos);
		size_t n = sp == NULL ? end - pos : (size_t)(sp - (buf + pos));

		if (n > 0 && hdr_item(hdr, buf + pos, n, err, errlen) < 0)
			return -EBADMSG;
		pos += n + 1;
	}
	if (hdr->msg_hdr_size == 0)
		return fail(err, errlen, "offset=0: Missing message header size");
	if (hdr->msg_hdr_size < DBOX_MSG_HEADER_SIZE)
		return fail(err, errlen,
			    "offset=0: message header size %u is below %u",
			    hdr->msg_hdr_size, DBOX_MSG_HEADER_SIZE);
	hdr->length = (unsigned int)end + 1;
	return 0;
}

size_t dbox_file_hdr_format(char *buf, size_t size, int64_t create_time)
{
	int n = snprintf(buf, size, "%d M%x C%llx\n", DBOX_VERSION,
			 DBOX_MSG_HEADER_SIZE, (unsigned long long)create_time);

	return n < 0 ? 0 : (size_t)n;
}

int dbox_file_hdr_read(const struct dbox_reader *rd, struct dbox_file_hdr *hdr,
		       char *err, size_t errlen)
{
	char buf[DBOX_FILE_HEADER_MAX];
	size_t n;
	int ret = rd->pread(rd->ctx, buf, sizeof(buf), 0, &n);

	if (ret < 0)
		return ret;
	ret = dbox_file_hdr_parse(buf, n, hdr, err, errlen);
	if (ret == -EAGAIN)
		return fail(err, errlen, "offset=0: EOF reading file header");
	return ret;
}

int dbox_msg_hdr_parse(const unsigned char *buf, unsigned int hdr_size,
		       uint64_t *body_size_r, char *err, size_t errlen)
{
	if (hdr_size < DBOX_MSG_HEADER_SIZE)
		return fail(err, errlen, "message header too small");
	if (buf[0] != 0x01 || buf[1] != 0x02)
		return fail(err, errlen, "msg header has bad magic value");
	if (buf[hdr_size - 1] != '\n')
		return fail(err, errlen, "msg header doesn't end with LF");
	if (!dbox_hex_parse((const char *)buf + 13, 16, body_size_r))
		return fail(err, errlen, "msg header has a non-hex size field");
	return 0;
}

void dbox_msg_hdr_format(unsigned char out[DBOX_MSG_HEADER_SIZE],
			 uint64_t body_size)
{
	char size[17];

	memset(out, ' ', DBOX_MSG_HEADER_SIZE);
	out[0] = 0x01;
	out[1] = 0x02;
	out[2] = 'N';
	snprintf(size, sizeof(size), "%016llX", (unsigned long long)body_size);
	memcpy(out + 13, size, 16);
	out[DBOX_MSG_HEADER_SIZE - 1] = '\n';
}

static int read_exact(const struct dbox_reader *rd, void *buf, size_t len,
		      uint64_t off, bool *short_r)
{
	size_t n;
	int ret = rd->pread(rd->ctx, buf, len, off, &n);

	if (ret < 0)
		return ret;
	*short_r = n < len;
	return 0;
}

/* Reads metadata lines starting at off; grows the buffer until the closing
 * empty line is found or the file ends. */
static int read_meta(const struct dbox_reader *rd, uint64_t off,
		     uint64_t file_size, struct dbox_meta *meta,
		     size_t *consumed_r)
{
	size_t cap = META_CHUNK, have = 0;
	char *buf = NULL;
	int ret = -EAGAIN;

	while (ret == -EAGAIN) {
		size_t want, n;
		char *p;

		if (off + have >= file_size || have >= META_MAX)
			break;
		p = realloc(buf, cap);
		if (p == NULL) {
			ret = -ENOMEM;
			break;
		}
		buf = p;
		want = cap - have;
		if (want > file_size - off - have)
			want = (size_t)(file_size - off - have);
		ret = rd->pread(rd->ctx, buf + have, want, off + have, &n);
		if (ret < 0)
			break;
		have += n;
		ret = dbox_meta_parse(buf, have, meta, consumed_r);
		if (n < want && ret == -EAGAIN)
			break;
		cap *= 2;
	}
	free(buf);
	return ret;
}

static int record_meta(const struct dbox_reader *rd, uint64_t file_size,
		       struct dbox_record *rec, char *err, size_t errlen)
{
	uint64_t moff = rec->body_offset + rec->body_size;
	unsigned char magic[DBOX_MAGIC_POST_LEN];
	size_t consumed;
	bool short_read;
	int ret;

	if (moff + DBOX_MAGIC_POST_LEN > file_size)
		return fail(err, errlen, "offset=%" PRIu64 ": message size "
			    "%" PRIu64 " points past the end of the file",
			    rec->offset, rec->body_size);
	ret = read_exact(rd, magic, sizeof(magic), moff, &short_read);
	if (ret < 0)
		return ret;
	if (short_read || memcmp(magic, DBOX_MAGIC_POST, sizeof(magic)) != 0)
		return fail(err, errlen, "offset=%" PRIu64 ": metadata header "
			    "has bad magic value", moff);
	moff += DBOX_MAGIC_POST_LEN;
	ret = read_meta(rd, moff, file_size, &rec->meta, &consumed);
	if (ret == -EAGAIN)
		return fail(err, errlen, "offset=%" PRIu64 ": missing "
			    "end-of-metadata line", moff);
	if (ret < 0)
		return ret;
	rec->end = moff + consumed;
	return 0;
}

int dbox_record_read(const struct dbox_reader *rd,
		     const struct dbox_file_hdr *hdr, uint64_t offset,
		     uint64_t file_size, struct dbox_record *rec,
		     char *err, size_t errlen)
{
	unsigned char mh[4096], sniff[16];
	char reason[128];
	bool short_read;
	size_t sniff_len;
	int ret;

	memset(rec, 0, sizeof(*rec));
	rec->offset = offset;
	rec->hdr_size = hdr->msg_hdr_size;
	ret = read_exact(rd, mh, hdr->msg_hdr_size, offset, &short_read);
	if (ret < 0)
		return ret;
	if (short_read)
		return fail(err, errlen, "offset=%" PRIu64 ": EOF reading msg "
			    "header", offset);
	if (dbox_msg_hdr_parse(mh, hdr->msg_hdr_size, &rec->body_size,
			       reason, sizeof(reason)) < 0)
		return fail(err, errlen, "offset=%" PRIu64 ": %s", offset,
			    reason);
	rec->body_offset = offset + hdr->msg_hdr_size;
	if (rec->body_size > file_size ||
	    rec->body_offset > file_size - rec->body_size)
		return fail(err, errlen, "offset=%" PRIu64 ": message size "
			    "%" PRIu64 " points past the end of the file",
			    offset, rec->body_size);
	sniff_len = rec->body_size < sizeof(sniff) ? (size_t)rec->body_size :
		sizeof(sniff);
	ret = read_exact(rd, sniff, sniff_len, rec->body_offset, &short_read);
	if (ret < 0)
		return ret;
	ret = record_meta(rd, file_size, rec, err, errlen);
	if (ret < 0) {
		dbox_record_clear(rec);
		return ret;
	}
	/* Dovecot's zlib plugin writes Z (the plain size) with every body it
	 * compresses; a body without Z is the message itself, whatever its
	 * first bytes look like (a delivered gzip file stays gzip) */
	if (rec->meta.has_psize)
		rec->compression = dbox_compression_detect(sniff, sniff_len);
	return 0;
}

void dbox_record_clear(struct dbox_record *rec)
{
	dbox_meta_clear(&rec->meta);
}

enum dbox_compression dbox_compression_detect(const unsigned char *buf,
					      size_t len)
{
	static const unsigned char lz4[] = "Dovecot-LZ4\r*\x9b\xc5";

	if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b)
		return DBOX_COMP_GZ;
	if (len >= 4 && memcmp(buf, "BZh", 3) == 0 &&
	    buf[3] >= '1' && buf[3] <= '9')
		return DBOX_COMP_BZ2;
	if (len >= 6 && memcmp(buf, "\xfd" "7zXZ\0", 6) == 0)
		return DBOX_COMP_XZ;
	if (len >= sizeof(lz4) - 1 && memcmp(buf, lz4, sizeof(lz4) - 1) == 0)
		return DBOX_COMP_LZ4;
	if (len >= 4 && memcmp(buf, "\x28\xb5\x2f\xfd", 4) == 0)
		return DBOX_COMP_ZSTD;
	return DBOX_COMP_NONE;
}

const char *dbox_compression_name(enum dbox_compression c)
{
	static const char *const names[] = {
		"none", "gz", "bz2", "xz", "lz4", "zstd"
	};

	return (unsigned int)c < sizeof(names) / sizeof(names[0]) ?
		names[c] : "unknown";
}

void dbox_vsize_update(struct dbox_vsize *v, const void *buf, size_t len)
{
	const unsigned char *p = buf, *end = p + len;
	bool last_cr = v->last_cr;

	v->size += len;
	v->vsize += len;
	while (p < end) {
		const unsigned char *lf = memchr(p, '\n', (size_t)(end - p));

		if (lf == NULL) {
			last_cr = end[-1] == '\r';
			break;
		}
		if (!(lf == p ? last_cr : lf[-1] == '\r'))
			v->vsize++;
		last_cr = false;
		p = lf + 1;
	}
	if (len > 0 && end[-1] == '\n')
		last_cr = false;
	v->last_cr = last_cr;
}
