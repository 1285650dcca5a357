/* dbox-names.c - mailbox names on disk.
 *
 * Dovecot's LAYOUT=fs stores every hierarchy part in IMAP's modified UTF-7
 * (RFC 3501 5.1.3) and joins the parts with '/' (dbox-format.md 1.5);
 * nothing else is escaped.  '/' is printable ASCII, so whole names are
 * converted in one pass. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store/store-private.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(char c)
{
	const char *p = c != '\0' ? strchr(b64, c) : NULL;

	return p != NULL ? (int)(p - b64) : -1;
}

/* Decodes one UTF-8 sequence; returns its length, 0 if invalid. */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp_r)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80) {
		*cp_r = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

static size_t utf8_encode(uint32_t cp, char *out)
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

struct outp {
	char *buf;
	size_t len, o;
	bool overflow;
};

static void put(struct outp *w, char c)
{
	if (w->o + 1 >= w->len) {
		w->overflow = true;
		return;
	}
	w->buf[w->o++] = c;
}

static bool is_direct(uint32_t cp)
{
	return cp >= 0x20 && cp <= 0x7e;
}

/* Encodes a run of non-ASCII characters starting at *pp. */
static int encode_run(const unsigned char **pp, struct outp *w)
{
	uint32_t bits = 0;
	int nbits = 0;

	put(w, '&');
	while (**pp != '\0') {
		uint32_t cp, units[2];
		size_t n = utf8_decode(*pp, &cp), nu = 1;

		if (n == 0)
			return -EINVAL;
		if (is_direct(cp))
			break;
		if (cp >= 0x10000) {
			units[0] = 0xd800 | ((cp - 0x10000) >> 10);
			units[1] = 0xdc00 | ((cp - 0x10000) & 0x3ff);
			nu = 2;
		} else {
			units[0] = cp;
		}
		for (size_t i = 0; i < nu; i++) {
			bits = bits << 16 | units[i];
			nbits += 16;
			while (nbits >= 6) {
				nbits -= 6;
				put(w, b64[(bits >> nbits) & 0x3f]);
			}
		}
		*pp += n;
	}
	if (nbits > 0)
		put(w, b64[(bits << (6 - nbits)) & 0x3f]);
	put(w, '-');
	return 0;
}

int dbox_name_to_storage(const char *name, char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)name;
	struct outp w = { buf, len, 0, false };

	while (*p != '\0') {
		if (*p == '&') {
			put(&w, '&');
			put(&w, '-');
			p++;
		} else if (is_direct(*p)) {
			put(&w, (char)*p++);
		} else if (encode_run(&p, &w) < 0) {
			return -EINVAL;
		}
	}
	if (w.overflow)
		return -ENAMETOOLONG;
	buf[w.o] = '\0';
	return 0;
}

/* Decodes "&...-" starting after the '&'; *pp ends after the '-'. */
static int decode_run(const char **pp, struct outp *w)
{
	uint32_t bits = 0, high = 0;
	int nbits = 0, chars = 0;
	const char *p = *pp;

	for (; *p != '-'; p++) {
		int v = b64_value(*p);

		if (v < 0)
			return -EINVAL;
		bits = bits << 6 | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;
		char tmp[4];
		size_t n;

		if (u >= 0xd800 && u <= 0xdbff) {
			if (high != 0)
				return -EINVAL;
			high = u;
			continue;
		}
		if (u >= 0xdc00 && u <= 0xdfff) {
			if (high == 0)
				return -EINVAL;
			u = 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00);
			high = 0;
		} else if (high != 0 || is_direct(u)) {
			/* printable ASCII must not be base64-encoded */
			return -EINVAL;
		}
		n = utf8_encode(u, tmp);
		for (size_t i = 0; i < n; i++)
			put(w, tmp[i]);
		chars++;
	}
	/* leftover bits must be zero padding of less than one unit */
	if (chars == 0 || high != 0 || nbits >= 6 ||
	    (bits & ((1u << nbits) - 1)) != 0)
		return -EINVAL;
	*pp = p + 1;
	return 0;
}

int dbox_storage_to_name(const char *storage, char *buf, size_t len)
{
	struct outp w = { buf, len, 0, false };
	const char *p = storage;

	while (*p != '\0') {
		if ((unsigned char)*p >= 0x80 || *p < 0x20)
			return -EINVAL;
		if (*p != '&') {
			put(&w, *p++);
			continue;
		}
		p++;
		if (*p == '-') {
			put(&w, '&');
			p++;
		} else if (decode_run(&p, &w) < 0) {
			return -EINVAL;
		}
	}
	if (w.overflow)
		return -ENAMETOOLONG;
	buf[w.o] = '\0';
	return 0;
}
