/* dbox-maildir.c - maildir info letters <-> flags and keyword bits, for
 * every program that shows messages as maildir files. */
#include <stdbool.h>
#include <string.h>

#include "dbox/store.h"

static const struct {
	uint32_t flag;
	char letter;
} letters[] = {
	{ DBOX_FLAG_DRAFT, 'D' }, { DBOX_FLAG_FLAGGED, 'F' },
	{ DBOX_FLAG_PASSED, 'P' }, { DBOX_FLAG_ANSWERED, 'R' },
	{ DBOX_FLAG_SEEN, 'S' }, { DBOX_FLAG_DELETED, 'T' },
};
#define N_LETTERS (sizeof(letters) / sizeof(letters[0]))

void dbox_maildir_info_format(uint32_t flags, uint32_t keywords, char *buf,
			      size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < N_LETTERS && o + 1 < len; i++) {
		if (flags & letters[i].flag)
			buf[o++] = letters[i].letter;
	}
	for (int i = 0; i < DBOX_MAX_KEYWORDS && o + 1 < len; i++) {
		if (keywords & (1u << i))
			buf[o++] = (char)('a' + i);
	}
	if (len > 0)
		buf[o] = '\0';
}

static bool letter(char c, uint32_t *flags, uint32_t *kw)
{
	for (size_t i = 0; i < N_LETTERS; i++) {
		if (letters[i].letter == c) {
			*flags |= letters[i].flag;
			return true;
		}
	}
	if (c >= 'a' && c <= 'z') {
		*kw |= 1u << (c - 'a');
		return true;
	}
	return false;
}

bool dbox_maildir_info_parse(const char *info, bool strict,
			     uint32_t *flags_r, uint32_t *keywords_r)
{
	uint32_t flags = 0, kw = 0;
	char last = 0;

	for (const char *p = info; p != NULL && *p != '\0'; p++) {
		bool known = letter(*p, &flags, &kw);

		/* what a maildir writer produces: known letters, sorted */
		if (strict && (!known || *p <= last))
			return false;
		last = *p;
	}
	*flags_r = flags;
	*keywords_r = kw;
	return true;
}
