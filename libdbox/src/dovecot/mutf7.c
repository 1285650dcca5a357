/* mutf7.c - IMAP modified UTF-7 codec (see mutf7.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dovecot/mutf7.h"
#include "dovecot/utf8.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(char c)
{
	const char *p = c != '\0' ? strchr(b64, c) : NULL;

	return p != NULL ? (int)(p - b64) : -1;
}

static bool is_direct(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* ---- encoder ---------------------------------------------------------- */

/* Appends the UTF-16BE bytes of one code point; returns the count. */
static size_t utf16_put(uint32_t cp, unsigned char *out)
{
	if (cp < 0x10000) {
		out[0] = (unsigned char)(cp >> 8);
		out[1] = (unsigned char)cp;
		return 2;
	}
	cp -= 0x10000;
	uint32_t hi = 0xd800 | (cp >> 10), lo = 0xdc00 | (cp & 0x3ff);

	out[0] = (unsigned char)(hi >> 8);
	out[1] = (unsigned char)hi;
	out[2] = (unsigned char)(lo >> 8);
	out[3] = (unsigned char)lo;
	return 4;
}

/* Writes "&<base64 of in>-" at out; returns the length written. */
static size_t b64_shift(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	out[o++] = '&';
	for (size_t i = 0; i < len; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		out[o++] = b64[(acc << (6 - bits)) & 0x3f];
	out[o++] = '-';
	return o;
}

/* Encodes the run of non-direct characters at *pp; advances *pp. */
static int encode_run(const unsigned char **pp, unsigned char *u16,
		      char *out, size_t *o)
{
	const unsigned char *p = *pp;
	size_t n = 0;

	while (*p != '\0' && !is_direct(*p)) {
		uint32_t cp;
		size_t len = dovi_utf8_decode(p, strlen((const char *)p), &cp);

		if (len == 0)
			return -EINVAL;
		n += utf16_put(cp, u16 + n);
		p += len;
	}
	*o += b64_shift(u16, n, out + *o);
	*pp = p;
	return 0;
}

int dovi_mutf7_encode(const char *utf8, char **out_r)
{
	const unsigned char *p = (const unsigned char *)utf8;
	size_t len = strlen(utf8), o = 0;
	/* worst case: every byte a 1-byte control char -> 2 UTF-16 bytes ->
	 * 8/3 base64 chars, plus '&' '-' per run: 5 per byte is enough */
	char *out = malloc(len * 5 + 3);
	unsigned char *u16 = malloc(len * 2 + 4);
	int ret = 0;

	if (out == NULL || u16 == NULL) {
		free(out);
		free(u16);
		return -ENOMEM;
	}
	while (*p != '\0' && ret == 0) {
		if (*p == '&') {
			out[o++] = '&';
			out[o++] = '-';
			p++;
		} else if (is_direct(*p)) {
			out[o++] = (char)*p++;
		} else {
			ret = encode_run(&p, u16, out, &o);
		}
	}
	free(u16);
	if (ret < 0) {
		free(out);
		return ret;
	}
	out[o] = '\0';
	*out_r = out;
	return 0;
}

/* ---- decoder ---------------------------------------------------------- */

/* Base64 of one shift sequence (between '&' and '-') -> bytes.  Returns the
 * byte count, or -1 if a character is not base64, the length leaves a
 * dangling 6-bit group, or the bits left over after the last byte are not
 * zero (a non-canonical spelling: two names would decode alike). */
static int b64_unshift(const char *s, size_t n, unsigned char *out)
{
	uint32_t acc = 0;
	int bits = 0, o = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(s[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0)
		return -1;
	return o;
}

/* UTF-16BE bytes -> UTF-8 appended at out+*o.  Refuses what Dovecot's
 * decoder refuses, plus lone low surrogates (they have no UTF-8 form). */
static int utf16_to_utf8(const unsigned char *u, int n, char *out, size_t *o)
{
	if (n % 2 != 0)
		return -EINVAL;
	for (int i = 0; i < n; i += 2) {
		uint32_t cp = (uint32_t)u[i] << 8 | u[i + 1];

		if (cp >= 0xdc00 && cp <= 0xdfff)
			return -EINVAL;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			uint32_t lo;

			if (i + 3 >= n)
				return -EINVAL;
			lo = (uint32_t)u[i + 2] << 8 | u[i + 3];
			if (lo < 0xdc00 || lo > 0xdfff)
				return -EINVAL;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		}
		/* NUL breaks C strings; printable ASCII must be direct */
		if (cp == 0 || (cp >= 0x20 && cp <= 0x7e))
			return -EINVAL;
		*o += dovi_utf8_encode(cp, out + *o);
	}
	return 0;
}

/* Decodes the shift sequence starting after '&' at *pp; advances *pp past
 * its '-'. */
static int decode_shift(const char **pp, unsigned char *tmp, char *out,
			size_t *o)
{
	const char *s = *pp, *end = strchr(s, '-');
	int n;

	if (end == NULL || end == s)
		return -EINVAL;
	n = b64_unshift(s, (size_t)(end - s), tmp);
	if (n < 0 || utf16_to_utf8(tmp, n, out, o) < 0)
		return -EINVAL;
	/* Dovecot refuses "&...-&..." (two shifts in a row) */
	if (end[1] == '&' && end[2] != '-')
		return -EINVAL;
	*pp = end + 1;
	return 0;
}

int dovi_mutf7_decode(const char *mutf7, char **out_r)
{
	size_t len = strlen(mutf7), o = 0;
	/* 4 base64 chars -> 3 bytes -> at most 1.5 UTF-16 units -> at most
	 * 6 UTF-8 bytes (a surrogate pair: 4 bytes from 8 chars), so the
	 * output never exceeds 2 x the input */
	char *out = malloc(len * 2 + 1);
	unsigned char *tmp = malloc(len + 1);
	const char *p = mutf7;
	int ret = 0;

	if (out == NULL || tmp == NULL) {
		free(out);
		free(tmp);
		return -ENOMEM;
	}
	while (*p != '\0' && ret == 0) {
		if (!is_direct((unsigned char)*p)) {
			ret = -EINVAL;
		} else if (*p != '&') {
			out[o++] = *p++;
		} else if (p[1] == '-') {
			out[o++] = '&';
			p += 2;
		} else {
			p++;
			ret = decode_shift(&p, tmp, out, &o);
		}
	}
	free(tmp);
	if (ret < 0) {
		free(out);
		return ret;
	}
	out[o] = '\0';
	*out_r = out;
	return 0;
}
