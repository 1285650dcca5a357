/* utf8.c - UTF-8 decoding, encoding and sanitising (see utf8.h). */
#include <stdlib.h>
#include <string.h>

#include "dovecot/utf8.h"

/* Length of the sequence that lead byte b starts and the allowed range of
 * the second byte (Unicode table 3-7); 0 when b can't start one. */
static size_t seq_shape(unsigned char b, unsigned char *lo_r,
			unsigned char *hi_r)
{
	*lo_r = 0x80;
	*hi_r = 0xbf;
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		return 2;
	if (b >= 0xe0 && b <= 0xef) {
		if (b == 0xe0)
			*lo_r = 0xa0;
		else if (b == 0xed)
			*hi_r = 0x9f;
		return 3;
	}
	if (b >= 0xf0 && b <= 0xf4) {
		if (b == 0xf0)
			*lo_r = 0x90;
		else if (b == 0xf4)
			*hi_r = 0x8f;
		return 4;
	}
	return 0;
}

/* Number of bytes at p that belong to a (possibly incomplete) well-formed
 * prefix; equals the full length when the sequence is complete. */
static size_t valid_prefix(const unsigned char *p, size_t n, size_t len,
			   unsigned char lo, unsigned char hi)
{
	size_t i;

	for (i = 1; i < len && i < n; i++) {
		unsigned char b = p[i];

		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
			break;
	}
	return i;
}

size_t dovi_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp_r)
{
	unsigned char lo, hi;
	size_t len;
	uint32_t cp;

	if (n == 0)
		return 0;
	len = seq_shape(p[0], &lo, &hi);
	if (len == 0 || valid_prefix(p, n, len, lo, hi) != len)
		return 0;
	if (len == 1) {
		*cp_r = p[0];
		return 1;
	}
	cp = p[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++)
		cp = cp << 6 | (p[i] & 0x3f);
	*cp_r = cp;
	return len;
}

size_t dovi_utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

char *dovi_utf8_sanitize(const void *data, size_t n)
{
	const unsigned char *p = data;
	const unsigned char *nul = memchr(p, '\0', n);
	size_t i = 0, o = 0;
	char *out;

	if (nul != NULL)
		n = (size_t)(nul - p);
	/* each input byte becomes at most the 3 bytes of U+FFFD */
	out = malloc(n * 3 + 1);
	if (out == NULL)
		return NULL;
	while (i < n) {
		unsigned char lo, hi;
		size_t len = seq_shape(p[i], &lo, &hi);
		size_t ok = len == 0 ? 0 :
			valid_prefix(p + i, n - i, len, lo, hi);

		if (len != 0 && ok == len) {
			memcpy(out + o, p + i, len);
			o += len;
			i += len;
			continue;
		}
		memcpy(out + o, "\xef\xbf\xbd", 3);
		o += 3;
		i += ok == 0 ? 1 : ok;
	}
	out[o] = '\0';
	return out;
}
