/* dbox-extref.c - Dovecot's external attachment references (X metadata):
 * parsing, and the base64 re-encoding that gives a part back its bytes.
 * Base64 is glibc's b64_ntop (libresolv); the line breaking is Dovecot's
 * (a line end between full lines, none after the last). */
#include <errno.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbox/extref.h"

#define PLAUSIBLE_MAX (1ull << 60)

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* Plain decimal, as Dovecot's str_to_uoff: digits only, no overflow. */
static bool parse_u64(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* "-" alone, or any sequence of "C" and "B<n>" with n a positive multiple
 * of 4 (Dovecot keeps the last B). */
static bool parse_options(const char *s, size_t len, struct dbox_extref *ref)
{
	size_t i = 0;

	if (len == 1 && s[0] == '-')
		return true;
	if (len == 0)
		return false;
	while (i < len) {
		uint64_t n = 0;
		size_t start;

		if (s[i] == 'C') {
			ref->crlf = true;
			i++;
			continue;
		}
		if (s[i] != 'B')
			return false;
		start = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 8)
			n = n * 10 + (uint64_t)(s[i++] - '0');
		if (n == 0 || n % 4 != 0 || n > DBOX_EXTREF_LINE_MAX)
			return false;
		ref->b64_line = (unsigned int)n;
	}
	return true;
}

/* The path must name a file inside the attachment directory. */
static bool path_safe(const char *s, size_t len)
{
	size_t comp = 0;

	if (len == 0 || s[0] == '/')
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '/') {
			if (i - comp == 2 && s[comp] == '.' && s[comp + 1] == '.')
				return false;
			comp = i + 1;
		} else if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			return false;
		}
	}
	return true;
}

void dbox_extref_free(struct dbox_extref *refs, size_t n)
{
	if (refs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(refs[i].path);
	free(refs);
}

/* Splits s into space-separated words (a doubled space is an empty word,
 * which no field accepts).  Returns the count, words in w[] up to max. */
static size_t split_words(const char *s, size_t len, const char **w,
			  size_t *wl, size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ' ')
			continue;
		if (n < max) {
			w[n] = s + start;
			wl[n] = i - start;
		}
		n++;
		start = i + 1;
	}
	return n;
}

static int parse_item(const char **w, const size_t *wl, uint64_t prev_end,
		      struct dbox_extref *ref, char *err, size_t errlen)
{
	if (!parse_u64(w[0], wl[0], &ref->offset) ||
	    !parse_u64(w[1], wl[1], &ref->size))
		return bad(err, errlen, "offset or size is not a number");
	if (ref->size == 0 || ref->offset >= PLAUSIBLE_MAX ||
	    ref->size >= PLAUSIBLE_MAX)
		return bad(err, errlen, "implausible size %llu at %llu",
			   (unsigned long long)ref->size,
			   (unsigned long long)ref->offset);
	if (ref->offset < prev_end)
		return bad(err, errlen, "part at %llu overlaps the one before "
			   "(ending at %llu)", (unsigned long long)ref->offset,
			   (unsigned long long)prev_end);
	if (!parse_options(w[2], wl[2], ref))
		return bad(err, errlen, "bad options \"%.*s\"",
			   (int)(wl[2] < 32 ? wl[2] : 32), w[2]);
	if (!path_safe(w[3], wl[3]))
		return bad(err, errlen, "path is empty, absolute, leaves the "
			   "attachment directory or has control characters");
	ref->path = strndup(w[3], wl[3]);
	return ref->path == NULL ? -ENOMEM : 0;
}

static int parse_items(const char *s, size_t len, struct dbox_extref *refs,
		       size_t n, char *err, size_t errlen)
{
	const char **w = calloc(n * 4, sizeof(*w));
	size_t *wl = calloc(n * 4, sizeof(*wl));
	uint64_t prev_end = 0;
	int ret = w == NULL || wl == NULL ? -ENOMEM : 0;

	if (ret == 0)
		split_words(s, len, w, wl, n * 4);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		ret = parse_item(w + i * 4, wl + i * 4, prev_end, &refs[i],
				 err, errlen);
		prev_end = refs[i].offset + refs[i].size;
	}
	free(w);
	free(wl);
	return ret;
}

int dbox_extref_parse(const char *s, size_t len, struct dbox_extref **refs_r,
		      size_t *n_r, char *err, size_t errlen)
{
	struct dbox_extref *refs;
	size_t words = len == 0 ? 0 : split_words(s, len, NULL, NULL, 0);
	size_t n = words / 4;
	int ret;

	if (words == 0 || words % 4 != 0)
		return bad(err, errlen, "%zu words, not groups of 4 (offset "
			   "size options path)", words);
	if (memchr(s, '\0', len) != NULL)
		return bad(err, errlen, "NUL byte in value");
	refs = calloc(n, sizeof(*refs));
	if (refs == NULL)
		return -ENOMEM;
	ret = parse_items(s, len, refs, n, err, errlen);
	if (ret < 0) {
		dbox_extref_free(refs, n);
		return ret;
	}
	*refs_r = refs;
	*n_r = n;
	return 0;
}

uint64_t dbox_extref_encoded_size(const struct dbox_extref *ref,
				  uint64_t file_size)
{
	uint64_t chars, lines;

	if (file_size >= PLAUSIBLE_MAX)
		return UINT64_MAX;
	if (ref->b64_line == 0)
		return file_size;
	chars = (file_size + 2) / 3 * 4;
	lines = (chars + ref->b64_line - 1) / ref->b64_line;
	return chars + (lines > 0 ? (lines - 1) * (ref->crlf ? 2 : 1) : 0);
}

size_t dbox_extref_digest(const struct dbox_extref *ref, char hex[65])
{
	const char *base = strrchr(ref->path, '/');
	size_t n = 0;

	base = base != NULL ? base + 1 : ref->path;
	while (n < 64 && base[n] != '\0' && base[n] != '-') {
		char c = base[n];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return 0;
		hex[n++] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
	}
	hex[n] = '\0';
	if (base[n] != '\0' && base[n] != '-')
		return 0;
	return n == 40 || n == 64 ? n : 0;
}

/* Base64 chars before encoded position p (line ends are not chars). */
static uint64_t chars_before(const struct dbox_extref *ref, uint64_t p)
{
	uint64_t period = ref->b64_line + (ref->crlf ? 2 : 1);
	uint64_t col = p % period;

	return p / period * ref->b64_line +
		(col < ref->b64_line ? col : ref->b64_line);
}

void dbox_extref_b64_range(const struct dbox_extref *ref, uint64_t file_size,
			   uint64_t off, size_t len, uint64_t *dec_off_r,
			   size_t *dec_len_r)
{
	uint64_t g0 = chars_before(ref, off) / 4;
	uint64_t g1 = (chars_before(ref, off + len) + 3) / 4;
	uint64_t end = g1 * 3 < file_size ? g1 * 3 : file_size;

	*dec_off_r = g0 * 3;
	*dec_len_r = end > g0 * 3 ? (size_t)(end - g0 * 3) : 0;
}

/* Writes len encoded bytes from position p, given the chars from char
 * index c0: a line's chars at once, then its line end. */
static void copy_lines(const struct dbox_extref *ref, uint64_t p, size_t len,
		       const char *chars, uint64_t c0, char *out)
{
	uint64_t period = ref->b64_line + (ref->crlf ? 2 : 1);
	size_t i = 0;

	while (i < len) {
		uint64_t col = p % period;
		size_t n;

		if (col >= ref->b64_line) {
			out[i++] = ref->crlf && col == ref->b64_line ?
				'\r' : '\n';
			p++;
			continue;
		}
		n = (size_t)(ref->b64_line - col);
		if (n > len - i)
			n = len - i;
		memcpy(out + i, chars + (p / period * ref->b64_line + col - c0),
		       n);
		i += n;
		p += n;
	}
}

int dbox_extref_b64_render(const struct dbox_extref *ref, uint64_t off,
			   size_t len, const unsigned char *dec,
			   size_t dec_len, uint64_t dec_off, char *out)
{
	uint64_t c0 = dec_off / 3 * 4;
	size_t cap = (dec_len + 2) / 3 * 4 + 1;
	char *chars;
	int n;

	if (len == 0)
		return 0;
	if (dec_off % 3 != 0 || chars_before(ref, off) < c0 || cap > INT32_MAX)
		return -EINVAL;
	chars = malloc(cap);
	if (chars == NULL)
		return -ENOMEM;
	n = b64_ntop(dec, dec_len, chars, cap);
	if (n < 0 || chars_before(ref, off + len) > c0 + (uint64_t)n) {
		free(chars);
		return -EINVAL;
	}
	copy_lines(ref, off, len, chars, c0, out);
	free(chars);
	return 0;
}
