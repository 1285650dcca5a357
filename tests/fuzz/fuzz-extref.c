/* fuzz-extref.c - the 'X' metadata value: external attachment references
 * (libdbox/src/format/dbox-extref.c).  Invariants of an accepted value:
 * items in order and not overlapping, safe paths; written back in
 * canonical form it parses to the same items; and for a base64 part, the
 * bytes dbox_extref_b64_render gives for any slice equal that slice of
 * the whole encoding (glibc's b64_ntop, broken into lines), whose length
 * is dbox_extref_encoded_size. */
#include <errno.h>
#include <inttypes.h>
#include <resolv.h>

#include "dbox/extref.h"
#include "fuzz.h"

/* The canonical spelling of the items ("-", or "B<n>" then "C"). */
static char *format_refs(const struct dbox_extref *r, size_t n, size_t *len_r)
{
	size_t cap = 64, len = 0;
	char *s = NULL;

	for (size_t i = 0; i < n; i++)
		cap += strlen(r[i].path) + 64;
	s = malloc(cap);
	FUZZ_ASSERT(s != NULL);
	for (size_t i = 0; i < n; i++) {
		char opt[32] = "-";

		if (r[i].b64_line > 0)
			snprintf(opt, sizeof(opt), "B%u%s", r[i].b64_line,
				 r[i].crlf ? "C" : "");
		len += (size_t)snprintf(s + len, cap - len, "%s%" PRIu64
					" %" PRIu64 " %s %s", i ? " " : "",
					r[i].offset, r[i].size, opt,
					r[i].path);
	}
	*len_r = len;
	return s;
}

static void check_ref(const struct dbox_extref *r, uint64_t prev_end)
{
	FUZZ_ASSERT(r->size > 0 && r->offset >= prev_end);
	FUZZ_ASSERT(r->path[0] != '\0' && r->path[0] != '/');
	FUZZ_ASSERT(strcmp(r->path, "..") != 0 &&
		    strncmp(r->path, "../", 3) != 0 &&
		    strstr(r->path, "/../") == NULL &&
		    (strlen(r->path) < 3 ||
		     strcmp(r->path + strlen(r->path) - 3, "/..") != 0));
	for (const char *p = r->path; *p != '\0'; p++)
		FUZZ_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f);
	if (r->b64_line > 0)
		FUZZ_ASSERT(r->b64_line % 4 == 0 &&
			    r->b64_line <= DBOX_EXTREF_LINE_MAX);
}

/* The whole encoding of dec (file_size bytes) as Dovecot stores it. */
static char *encode_all(const struct dbox_extref *r, const unsigned char *dec,
			size_t file_size, size_t *len_r)
{
	size_t cap = (file_size + 2) / 3 * 4 + 1, o = 0;
	char *chars = malloc(cap), *out = malloc(cap * 3 + 1);
	int n;

	FUZZ_ASSERT(chars != NULL && out != NULL);
	n = b64_ntop(dec, file_size, chars, cap);
	FUZZ_ASSERT(n >= 0);
	for (int i = 0; i < n; i++) {
		if (i > 0 && (unsigned)i % r->b64_line == 0) {
			if (r->crlf)
				out[o++] = '\r';
			out[o++] = '\n';
		}
		out[o++] = chars[i];
	}
	free(chars);
	*len_r = o;
	return out;
}

static void check_render(const struct dbox_extref *r, const uint8_t *data,
			 size_t size)
{
	unsigned char dec[256];
	size_t file_size = size > 0 ? data[0] % sizeof(dec) : 7, full_len;
	uint64_t off, dec_off;
	size_t len, dec_len;
	char *full, *out;

	for (size_t i = 0; i < sizeof(dec); i++)
		dec[i] = (unsigned char)(i * 37 + size);
	full = encode_all(r, dec, file_size, &full_len);
	FUZZ_ASSERT(dbox_extref_encoded_size(r, file_size) == full_len);
	if (full_len == 0) {
		free(full);
		return;
	}
	off = size > 1 ? data[1] % full_len : 0;
	len = size > 2 ? 1 + data[2] % (full_len - off) : full_len - off;
	dbox_extref_b64_range(r, file_size, off, len, &dec_off, &dec_len);
	FUZZ_ASSERT(dec_off % 3 == 0 && dec_off + dec_len <= file_size);
	out = malloc(len);
	FUZZ_ASSERT(out != NULL);
	FUZZ_ASSERT(dbox_extref_b64_render(r, off, len, dec + dec_off, dec_len,
					   dec_off, out) == 0);
	FUZZ_ASSERT(memcmp(out, full + off, len) == 0);
	free(out);
	free(full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dbox_extref *refs, *again;
	size_t n, n2, len;
	uint64_t prev_end = 0;
	char err[200] = "", hex[65], *canon;
	int ret = dbox_extref_parse((const char *)data, size, &refs, &n, err,
				    sizeof(err));

	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG);
	if (ret < 0) {
		FUZZ_ASSERT(err[0] != '\0');
		return 0;
	}
	FUZZ_ASSERT(n >= 1);
	for (size_t i = 0; i < n; i++) {
		check_ref(&refs[i], prev_end);
		prev_end = refs[i].offset + refs[i].size;
		len = dbox_extref_digest(&refs[i], hex);
		FUZZ_ASSERT(len == 0 || len == strlen(hex));
		if (refs[i].b64_line > 0)
			check_render(&refs[i], data, size);
	}
	canon = format_refs(refs, n, &len);
	FUZZ_ASSERT(dbox_extref_parse(canon, len, &again, &n2, err,
				      sizeof(err)) == 0);
	FUZZ_ASSERT(n2 == n);
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(again[i].offset == refs[i].offset &&
			    again[i].size == refs[i].size &&
			    again[i].b64_line == refs[i].b64_line &&
			    (refs[i].b64_line == 0 ||
			     again[i].crlf == refs[i].crlf) &&
			    strcmp(again[i].path, refs[i].path) == 0);
	}
	dbox_extref_free(again, n2);
	dbox_extref_free(refs, n);
	free(canon);
	return 0;
}
