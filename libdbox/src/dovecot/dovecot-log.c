/* dovecot-log.c - transaction log files (see dovecot-log.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dovecot/dovecot-file.h"
#include "dovecot/dovecot-log.h"
#include "dovecot/dovecot-state.h"
#include "util/util.h"

uint32_t dovi_log_decode_size(const uint8_t *p)
{
	uint32_t w = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		(uint32_t)p[2] << 8 | p[3];

	/* an unwritten (zero) or torn size word lacks the marker bits */
	if ((w & 0x80808080) != 0x80808080)
		return 0;
	return ((w & 0x7f) | ((w >> 8) & 0x7f) << 7 |
		((w >> 16) & 0x7f) << 14 | ((w >> 24) & 0x7f) << 21) * 4;
}

void dovi_log_encode_size(uint32_t size, uint8_t out[4])
{
	uint32_t v = size / 4;

	out[0] = (uint8_t)(0x80 | ((v >> 21) & 0x7f));
	out[1] = (uint8_t)(0x80 | ((v >> 14) & 0x7f));
	out[2] = (uint8_t)(0x80 | ((v >> 7) & 0x7f));
	out[3] = (uint8_t)(0x80 | (v & 0x7f));
}

/* Byte at file offset off; the caller checked the range. */
static const uint8_t *at(const struct dovi_log *log, uint64_t off)
{
	return log->data + (off - log->base);
}

static uint64_t file_end(const struct dovi_log *log)
{
	return log->base + log->len;
}

int dovi_log_parse_header(struct dovi_log *log, const uint8_t *d, size_t len,
			  struct dbox_err *err)
{
	uint8_t hdr[DOVI_LOG_HDR_FULL] = { 0 };

	if (len < 1 || d[0] != 1)
		return dbox_fail(err, -EBADMSG, "unsupported log major "
				 "version");
	if (len < DOVI_LOG_HDR_MIN)
		return dbox_fail(err, -EBADMSG, "truncated log header");
	log->major = d[0];
	log->minor = d[1];
	log->hdr_size = dovi_le16(d + 2);
	if (log->hdr_size < DOVI_LOG_HDR_MIN)
		return dbox_fail(err, -EBADMSG, "log header too small (%u)",
				 log->hdr_size);
	/* fields beyond hdr_size (older writers) read as zero */
	size_t n = log->hdr_size < sizeof(hdr) ? log->hdr_size : sizeof(hdr);

	memcpy(hdr, d, n < len ? n : len);
	log->indexid = dovi_le32(hdr + 4);
	log->file_seq = dovi_le32(hdr + 8);
	log->prev_file_seq = dovi_le32(hdr + 12);
	log->prev_file_offset = dovi_le32(hdr + 16);
	log->create_stamp = dovi_le32(hdr + 20);
	log->initial_modseq = dovi_le64(hdr + 24);
	log->compat_flags = hdr[32];
	if ((log->major << 8 | log->minor) >= 0x0102 &&
	    log->compat_flags != 0x01)
		return dbox_fail(err, -EBADMSG, "not a little-endian log");
	return 0;
}

/* Walks complete records from start; stops where the log stops being
 * complete (3.5).  A size word of 4 is corruption, not an unfinished
 * write, and makes the file unusable. */
static int scan(struct dovi_log *log, uint64_t start, struct dbox_err *err)
{
	uint64_t pos = start, end = file_end(log);

	while (pos + 8 <= end) {
		uint32_t size = dovi_log_decode_size(at(log, pos)), type;

		if (size == 0)
			break;
		if (size < 8)
			return dbox_fail(err, -EBADMSG, "%s: record size too "
					 "small at %llu", log->path,
					 (unsigned long long)pos);
		if (pos + size > end)
			break;
		type = dovi_le32(at(log, pos + 4));
		if ((type & DOVI_T_TYPE_MASK) == DOVI_T_BOUNDARY &&
		    (type & DOVI_T_EXTERNAL) && size >= 12 &&
		    pos + dovi_le32(at(log, pos + 8)) > end)
			break;  /* transaction still being written */
		pos += size;
	}
	log->sync_offset = pos;
	return 0;
}

void dovi_log_free(struct dovi_log *log)
{
	if (log == NULL)
		return;
	if (log->fd >= 0)
		close(log->fd);
	free(log->data);
	free(log->path);
	free(log);
}

static int open_fd(struct dovi_log *log, struct dbox_err *err)
{
	struct stat st;
	int fd = dovi_file_open(log->path, err);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return dbox_fail(err, -e, "fstat(%s): %s", log->path,
				 strerror(e));
	}
	log->fd = fd;
	log->dev = st.st_dev;
	log->ino = st.st_ino;
	return 0;
}

int dovi_log_open(const char *path, bool keep_fd, struct dovi_log **log_r,
		  struct dbox_err *err)
{
	struct dovi_log *log = calloc(1, sizeof(*log));
	int ret;

	if (log == NULL || (log->path = strdup(path)) == NULL) {
		free(log);
		return dbox_fail(err, -ENOMEM, "out of memory");
	}
	log->fd = -1;
	ret = open_fd(log, err);
	if (ret == 0)
		ret = dovi_file_read(log->fd, 0, path, &log->data, &log->len,
				     err);
	if (ret == 0)
		ret = dovi_log_parse_header(log, log->data, log->len, err);
	if (ret == -EBADMSG)
		dbox_fail_prefix(err, ret, "%s", path);
	if (ret == 0)
		ret = scan(log, log->hdr_size, err);
	if (ret < 0) {
		dovi_log_free(log);
		return ret;
	}
	if (!keep_fd) {
		close(log->fd);
		log->fd = -1;
	}
	*log_r = log;
	return 0;
}

int dovi_log_read_from(struct dovi_log *log, uint64_t off,
		       struct dbox_err *err)
{
	uint8_t *data;
	size_t len;
	int ret;

	if (log->fd < 0)
		return dbox_fail(err, -EBADF, "%s: not kept open", log->path);
	ret = dovi_file_read(log->fd, off, log->path, &data, &len, err);
	if (ret < 0)
		return ret;
	free(log->data);
	log->data = data;
	log->base = off;
	log->len = len;
	return scan(log, off, err);
}

int dovi_log_next(const struct dovi_log *log, uint64_t *pos, uint64_t end,
		  struct dovi_log_rec *rec_r, struct dbox_err *err)
{
	uint64_t p = *pos, fend = file_end(log), stop;
	uint32_t size;

	if (p >= end)
		return 0;
	/* only a start offset that is not a record boundary (a hostile
	 * dovecot.index) can get here without a whole record header */
	if (p < log->base || p + 8 > fend)
		return dbox_fail(err, -EBADMSG, "%s: no record header fits at "
				 "offset %llu", log->path,
				 (unsigned long long)p);
	size = dovi_log_decode_size(at(log, p));
	rec_r->offset = p;
	rec_r->type = dovi_le32(at(log, p + 4));
	stop = p + size < fend ? p + size : fend;
	rec_r->payload = at(log, p + 8);
	rec_r->size = stop > p + 8 ? (size_t)(stop - (p + 8)) : 0;
	*pos = p + size;
	return 1;
}

uint32_t dovi_log_real_type(uint32_t type)
{
	uint32_t t = type & DOVI_T_TYPE_MASK;

	/* the protection bits overlap other types: decode like Dovecot */
	if (t & DOVI_T_EXPUNGE)
		return t == (DOVI_T_EXPUNGE | DOVI_T_EXPUNGE_PROT) ?
			DOVI_T_EXPUNGE : DOVI_T_INVALID;
	if (t & DOVI_T_EXPUNGE_GUID)
		return t == (DOVI_T_EXPUNGE_GUID | DOVI_T_EXPUNGE_PROT) ?
			DOVI_T_EXPUNGE_GUID : DOVI_T_INVALID;
	return t;
}

/* {uid1, uid2, ...} elements: whole, at least one, sorted, disjoint. */
static bool ranges_valid(const uint8_t *p, size_t n, size_t elem)
{
	uint32_t prev2 = 0;

	if (n == 0 || n % elem != 0)
		return false;
	for (size_t o = 0; o < n; o += elem) {
		uint32_t a = dovi_le32(p + o), b = dovi_le32(p + o + 4);

		if (a == 0 || a > b || (o > 0 && a <= prev2))
			return false;
		prev2 = b;
	}
	return true;
}

static bool keyword_update_valid(const uint8_t *p, size_t n)
{
	uint16_t nsize;
	uint64_t seqset;

	if (n < 4)
		return false;
	nsize = dovi_le16(p + 2);
	seqset = dovi_align(4 + (uint64_t)nsize, 4);
	if (nsize == 0 || seqset > n)
		return false;
	return ranges_valid(p + seqset, n - (size_t)seqset, 8);
}

static bool ext_intro_valid(const uint8_t *p, size_t n)
{
	uint64_t i = 0;

	while (i + 20 <= n) {
		uint16_t nsize = dovi_le16(p + i + 18);

		if (i + 20 + nsize > n)
			return false;
		i = dovi_align(i + 20 + nsize, 4);
	}
	return true;
}

bool dovi_log_record_valid(uint32_t t, const uint8_t *p, size_t n)
{
	if (t == DOVI_T_INVALID || n == 0)
		return false;
	switch (t) {
	case DOVI_T_APPEND:
		return n % 8 == 0;
	case DOVI_T_EXPUNGE:
	case DOVI_T_KEYWORD_RESET:
		return ranges_valid(p, n, 8);
	case DOVI_T_FLAG_UPDATE:
		return ranges_valid(p, n, 12);
	case DOVI_T_EXPUNGE_GUID:
		if (n % 20 != 0)
			return false;
		for (size_t o = 0; o < n; o += 20) {
			if (dovi_le32(p + o) == 0)
				return false;
		}
		return true;
	case DOVI_T_KEYWORD_UPDATE:
		return keyword_update_valid(p, n);
	case DOVI_T_EXT_INTRO:
		return ext_intro_valid(p, n);
	default:
		return true;
	}
}
