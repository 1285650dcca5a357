/* dovi-json.c - JSON output helpers (see dovi-json.h). */
#include "dovi-json.h"

void dovi_json_str(FILE *f, const char *s)
{
	putc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			putc(*p, f);
	}
	putc('"', f);
}

void dovi_json_key(FILE *f, const char *key, int first)
{
	if (!first)
		putc(',', f);
	dovi_json_str(f, key);
	putc(':', f);
}

void dovi_json_hex(FILE *f, const uint8_t *p, size_t n)
{
	putc('"', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
	putc('"', f);
}
