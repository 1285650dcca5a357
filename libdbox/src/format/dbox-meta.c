/* dbox-meta.c - the metadata block that follows every dbox message body. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbox/format.h"

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static int extra_append(struct dbox_meta *meta, const char *line, size_t n)
{
	char *p = realloc(meta->extra, meta->extra_len + n + 2);

	if (p == NULL)
		return -ENOMEM;
	memcpy(p + meta->extra_len, line, n);
	p[meta->extra_len + n] = '\n';
	meta->extra_len += n + 1;
	p[meta->extra_len] = '\0';
	meta->extra = p;
	return 0;
}

static int set_string(char **slot, const char *v, size_t n)
{
	*slot = dup_n(v, n);
	return *slot == NULL ? -ENOMEM : 0;
}

static void set_number(struct dbox_meta *meta, const char *v, size_t n,
		       uint64_t *value, bool *has)
{
	if (dbox_hex_parse(v, n, value))
		*has = true;
	else
		meta->bad_number = true;
}

/* Returns the slot for a string key, NULL for numeric/unknown keys. */
static char **string_slot(struct dbox_meta *meta, char key)
{
	switch (key) {
	case DBOX_META_GUID: return &meta->guid;
	case DBOX_META_ORIG_MAILBOX: return &meta->orig_mailbox;
	case DBOX_META_POP3_UIDL: return &meta->pop3_uidl;
	case DBOX_META_POP3_ORDER: return &meta->pop3_order;
	case DBOX_META_EXT_REF: return &meta->ext_refs;
	case DBOX_META_MAILDIR_BASE: return &meta->maildir_base;
	default: return NULL;
	}
}

static int parse_line(struct dbox_meta *meta, const char *line, size_t n)
{
	char key = line[0];
	const char *v = line + 1;
	char **slot = string_slot(meta, key);
	uint64_t num;

	if (slot != NULL) {
		if (*slot != NULL)
			return extra_append(meta, line, n);
		return set_string(slot, v, n - 1);
	}
	switch (key) {
	case DBOX_META_RECEIVED:
		if (meta->has_received)
			return extra_append(meta, line, n);
		set_number(meta, v, n - 1, &num, &meta->has_received);
		meta->received = (int64_t)num;
		return 0;
	case DBOX_META_VSIZE:
		if (meta->has_vsize)
			return extra_append(meta, line, n);
		set_number(meta, v, n - 1, &meta->vsize, &meta->has_vsize);
		return 0;
	case DBOX_META_PSIZE:
		if (meta->has_psize)
			return extra_append(meta, line, n);
		set_number(meta, v, n - 1, &meta->psize, &meta->has_psize);
		return 0;
	default:
		return extra_append(meta, line, n);
	}
}

int dbox_meta_parse(const char *buf, size_t len, struct dbox_meta *meta,
		    size_t *consumed_r)
{
	size_t pos = 0;
	bool values_ended = false;

	memset(meta, 0, sizeof(*meta));
	for (;;) {
		const char *lf = memchr(buf + pos, '\n', len - pos);
		size_t n;
		int ret;

		if (lf == NULL) {
			dbox_meta_clear(meta);
			return -EAGAIN;
		}
		n = (size_t)(lf - (buf + pos));
		if (n == 0) {
			*consumed_r = pos + 1;
			return 0;
		}
		/* v1 padding: a space-led line ends the values, but the
		 * record still ends at the empty line. */
		if (buf[pos] == ' ')
			values_ended = true;
		if (!values_ended) {
			ret = parse_line(meta, buf + pos, n);
			if (ret < 0) {
				dbox_meta_clear(meta);
				return ret;
			}
		}
		pos += n + 1;
	}
}

void dbox_meta_clear(struct dbox_meta *meta)
{
	free(meta->guid);
	free(meta->orig_mailbox);
	free(meta->pop3_uidl);
	free(meta->pop3_order);
	free(meta->ext_refs);
	free(meta->maildir_base);
	free(meta->extra);
	memset(meta, 0, sizeof(*meta));
}

static int copy_str(char **dst, const char *src)
{
	if (src == NULL) {
		*dst = NULL;
		return 0;
	}
	*dst = strdup(src);
	return *dst == NULL ? -ENOMEM : 0;
}

int dbox_meta_copy(struct dbox_meta *dst, const struct dbox_meta *src)
{
	int ret = 0;

	*dst = *src;
	dst->guid = dst->orig_mailbox = dst->pop3_uidl = NULL;
	dst->pop3_order = dst->ext_refs = dst->maildir_base = NULL;
	dst->extra = NULL;
	ret |= copy_str(&dst->guid, src->guid);
	ret |= copy_str(&dst->orig_mailbox, src->orig_mailbox);
	ret |= copy_str(&dst->pop3_uidl, src->pop3_uidl);
	ret |= copy_str(&dst->pop3_order, src->pop3_order);
	ret |= copy_str(&dst->ext_refs, src->ext_refs);
	ret |= copy_str(&dst->maildir_base, src->maildir_base);
	if (src->extra != NULL) {
		dst->extra = dup_n(src->extra, src->extra_len);
		if (dst->extra == NULL)
			ret = -ENOMEM;
	}
	if (ret != 0) {
		dbox_meta_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

bool dbox_meta_value_valid(const char *value)
{
	return value != NULL && strchr(value, '\n') == NULL;
}

struct meta_buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void mb_add(struct meta_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->cap + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void mb_str(struct meta_buf *b, char key, const char *v)
{
	if (v == NULL)
		return;
	mb_add(b, &key, 1);
	mb_add(b, v, strlen(v));
	mb_add(b, "\n", 1);
}

static void mb_hex(struct meta_buf *b, char key, uint64_t v, bool has)
{
	char tmp[24];

	if (!has)
		return;
	snprintf(tmp, sizeof(tmp), "%llx", (unsigned long long)v);
	mb_str(b, key, tmp);
}

/* A '_' line of n bytes with its LF. */
static void mb_pad(struct meta_buf *b, size_t n)
{
	char key = DBOX_META_PAD;

	for (size_t i = 0; i + 1 < n; i++)
		mb_add(b, &key, 1);
	mb_add(b, "\n", 1);
}

char *dbox_meta_format(const struct dbox_meta *meta, size_t *len_r)
{
	struct meta_buf b = { 0 };

	mb_add(&b, DBOX_MAGIC_POST, DBOX_MAGIC_POST_LEN);
	mb_hex(&b, DBOX_META_PSIZE, meta->psize, meta->has_psize);
	mb_hex(&b, DBOX_META_RECEIVED, (uint64_t)meta->received,
	       meta->has_received);
	mb_hex(&b, DBOX_META_VSIZE, meta->vsize, meta->has_vsize);
	mb_str(&b, DBOX_META_POP3_UIDL, meta->pop3_uidl);
	mb_str(&b, DBOX_META_POP3_ORDER, meta->pop3_order);
	mb_str(&b, DBOX_META_GUID, meta->guid);
	mb_str(&b, DBOX_META_ORIG_MAILBOX, meta->orig_mailbox);
	mb_str(&b, DBOX_META_EXT_REF, meta->ext_refs);
	mb_str(&b, DBOX_META_MAILDIR_BASE, meta->maildir_base);
	if (meta->extra != NULL)
		mb_add(&b, meta->extra, meta->extra_len);
	if (meta->pad >= 2)
		mb_pad(&b, meta->pad);
	mb_add(&b, "\n", 1);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len_r = b.len;
	return b.p;
}

/* Bytes of the lines other than the first B and the pad lines; *b_at_r:
 * where the first B line starts in lines (len if none).  -EINVAL if no
 * empty line ends them exactly at len. */
static int kept_lines(const char *lines, size_t len, size_t *kept_r,
		      size_t *b_at_r)
{
	size_t pos = 0, kept = 0;

	*b_at_r = len;
	while (pos < len) {
		const char *lf = memchr(lines + pos, '\n', len - pos);
		size_t n;

		if (lf == NULL)
			return -EINVAL;
		n = (size_t)(lf - (lines + pos)) + 1;
		if (n == 1)
			break;
		if (lines[pos] == ' ')
			return -EINVAL;  /* v1 padding: Dovecot's record ends */
		if (lines[pos] == DBOX_META_ORIG_MAILBOX && *b_at_r == len)
			*b_at_r = pos;
		else if (lines[pos] != DBOX_META_PAD)
			kept += n;
		pos += n;
	}
	if (pos + 1 != len)
		return -EINVAL;
	*kept_r = kept;
	return 0;
}

int dbox_meta_set_orig_mailbox(const char *lines, size_t len,
			       const char *orig_mailbox, char *out)
{
	size_t kept, b_at, blen = strlen(orig_mailbox) + 2, pos = 0, o = 0;
	size_t slack;
	int ret = kept_lines(lines, len, &kept, &b_at);

	if (ret < 0)
		return ret;
	if (!dbox_meta_value_valid(orig_mailbox) || kept + blen + 1 > len)
		return -ENOSPC;
	slack = len - (kept + blen + 1);
	if (slack == 1)
		return -ENOSPC;
	while (pos + 1 < len) {
		size_t n = (size_t)((const char *)memchr(lines + pos, '\n',
						       len - pos) -
				    (lines + pos)) + 1;

		if (pos == b_at) {
			out[o] = DBOX_META_ORIG_MAILBOX;
			memcpy(out + o + 1, orig_mailbox, blen - 2);
			out[o + blen - 1] = '\n';
			o += blen;
		} else if (lines[pos] != DBOX_META_PAD) {
			memcpy(out + o, lines + pos, n);
			o += n;
		}
		pos += n;
	}
	if (b_at == len) {
		out[o] = DBOX_META_ORIG_MAILBOX;
		memcpy(out + o + 1, orig_mailbox, blen - 2);
		out[o + blen - 1] = '\n';
		o += blen;
	}
	if (slack >= 2) {
		memset(out + o, DBOX_META_PAD, slack - 1);
		out[o + slack - 1] = '\n';
		o += slack;
	}
	out[o] = '\n';
	return 0;
}
