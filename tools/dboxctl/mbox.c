/* mbox.c - splitting an mbox file into messages (dboxctl import). */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dbox/store.h"
#include "mbox.h"

/* The next message starting at *pos ("From " at a line start); the body
 * ends before the blank line that precedes the next From_ line. */
bool mbox_next(const char *data, size_t size, size_t *pos,
	       struct mbox_msg *m)
{
	size_t p = *pos, start, end;
	const char *lf;

	if (p >= size || size - p < 5 || memcmp(data + p, "From ", 5) != 0)
		return false;
	lf = memchr(data + p, '\n', size - p);
	if (lf == NULL)
		return false;
	m->from_line = data + p;
	m->from_len = (size_t)(lf - (data + p));
	start = (size_t)(lf - data) + 1;
	for (end = start; end < size;) {
		const char *nl = memchr(data + end, '\n', size - end);

		if (nl == NULL) {
			end = size;
			break;
		}
		end = (size_t)(nl - data) + 1;
		if (end + 5 <= size && memcmp(data + end, "From ", 5) == 0 &&
		    end >= start + 1 && data[end - 1] == '\n' &&
		    (end - 1 == start || data[end - 2] == '\n'))
			break;
	}
	*pos = end;
	/* the blank line after every message belongs to the mbox, not
	 * to the message (at the end of the file too) */
	if (end < size && end > start && data[end - 1] == '\n')
		end--;
	else if (end == size && end >= start + 2 && data[end - 1] == '\n' &&
		 data[end - 2] == '\n')
		end--;
	m->body = data + start;
	m->len = end - start;
	return true;
}

time_t mbox_date(const struct mbox_msg *m, time_t fallback)
{
	char line[256], *sp;
	struct tm tm;

	if (m->from_len >= sizeof(line))
		return fallback;
	memcpy(line, m->from_line, m->from_len);
	line[m->from_len] = '\0';
	/* "From sender Thu Nov 24 18:22:48 2022": the date follows the
	 * sender, which has no spaces */
	sp = strchr(line + 5, ' ');
	if (sp == NULL)
		return fallback;
	memset(&tm, 0, sizeof(tm));
	if (strptime(sp + 1, "%a %b %d %H:%M:%S %Y", &tm) == NULL)
		return fallback;
	return timegm(&tm);
}

/* Status: R = seen; X-Status: A answered, F flagged, T draft, D deleted
 * (the headers Dovecot's and mutt's mbox code write). */
uint32_t mbox_flags(const struct mbox_msg *m)
{
	uint32_t flags = 0;
	size_t p = 0;

	while (p < m->len) {
		const char *line = m->body + p;
		const char *nl = memchr(line, '\n', m->len - p);
		size_t n = nl ? (size_t)(nl - line) : m->len - p;

		if (n == 0 || (n == 1 && line[0] == '\r'))
			break;  /* end of header */
		if (n > 7 && strncasecmp(line, "Status:", 7) == 0 &&
		    memchr(line + 7, 'R', n - 7) != NULL)
			flags |= DBOX_FLAG_SEEN;
		if (n > 9 && strncasecmp(line, "X-Status:", 9) == 0) {
			const char *v = line + 9;
			size_t vn = n - 9;

			if (memchr(v, 'A', vn)) flags |= DBOX_FLAG_ANSWERED;
			if (memchr(v, 'F', vn)) flags |= DBOX_FLAG_FLAGGED;
			if (memchr(v, 'T', vn)) flags |= DBOX_FLAG_DRAFT;
			if (memchr(v, 'D', vn)) flags |= DBOX_FLAG_DELETED;
		}
		p += n + 1;
	}
	return flags;
}

/* Passes the body on with one '>' removed from every ">...>From " line. */
int mbox_unescape(const struct mbox_msg *m, mbox_write_fn *write, void *ctx)
{
	size_t p = 0, chunk_start = 0;
	int ret;

	while (p < m->len) {
		const char *line = m->body + p;
		const char *nl = memchr(line, '\n', m->len - p);
		size_t n = nl ? (size_t)(nl - line) + 1 : m->len - p;
		size_t q = 0;

		while (q < n && line[q] == '>')
			q++;
		if (q > 0 && n - q >= 5 && memcmp(line + q, "From ", 5) == 0) {
			ret = write(ctx, m->body + chunk_start, p - chunk_start);
			if (ret < 0)
				return ret;
			chunk_start = p + 1;  /* drop one '>' */
		}
		p += n;
	}
	return write(ctx, m->body + chunk_start, m->len - chunk_start);
}
