/* dovecot-index-dump.c - dboxfs-dovecot-index: print what Dovecot's own
 * index files say, through libdbox's read-only reader.
 *
 *   dboxfs-dovecot-index [--format json|text] [--map MAPPATH] [--follow] PATH
 *       PATH: a directory with dovecot.index* (or dovecot.map.index*), or
 *       the index file's path.  JSON output has the fields of
 *       `dovecot-index-reader.py --format json` (uid_validity, next_uid,
 *       indexid, keywords, info, errors, messages, map) plus error_count.
 *   dboxfs-dovecot-index --store ROOT --type sdbox|mdbox [--follow]
 *       every mailbox of the store with its messages, joined with the
 *       mdbox map.
 *   --follow: print the state, then refresh and print it again for every
 *       line read from stdin (one JSON document per line, with "changed").
 *
 * Exit status: 0 ok, 1 index unusable or missing, 3 other reader error
 * (limits, I/O), 64 usage. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dbox/dovecot-index.h"
#include "dovi-json.h"

#define EXIT_UNUSABLE 1
#define EXIT_READER 3
#define EXIT_USAGE 64

struct opts {
	const char *path;
	const char *map_path;
	const char *store;
	const char *type;
	bool text;
	bool follow;
};

static int usage(void)
{
	fprintf(stderr,
		"usage: dboxfs-dovecot-index [--format json|text]"
		" [--map MAPPATH] [--follow] PATH\n"
		"       dboxfs-dovecot-index --store ROOT --type sdbox|mdbox"
		" [--follow]\n");
	return EXIT_USAGE;
}

static int fail_status(int ret)
{
	return ret == -EBADMSG || ret == -ENOENT || ret == -ESTALE ?
		EXIT_UNUSABLE : EXIT_READER;
}

/* ---- index mode --------------------------------------------------------- */

/* Same rule as the reference reader: a directory means the first of
 * default/dovecot.index/dovecot.map.index that exists (or has a .log). */
static char *resolve_prefix(const char *path, const char *def)
{
	static const char *const names[] = { NULL, "dovecot.index",
					     "dovecot.map.index" };
	struct stat st;
	char buf[4096];

	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return strdup(path);
	for (unsigned i = 0; i < 3; i++) {
		const char *n = i == 0 ? def : names[i];
		char log[4200];

		snprintf(buf, sizeof(buf), "%s/%s", path, n);
		snprintf(log, sizeof(log), "%s.log", buf);
		if (stat(buf, &st) == 0 || stat(log, &st) == 0)
			return strdup(buf);
	}
	snprintf(buf, sizeof(buf), "%s/%s", path, def);
	return strdup(buf);
}

static void print_info(const struct dovi_index *idx)
{
	const struct dovi_load_info *in = dovi_index_info(idx);

	printf("\"info\":{\"index_file\":%s,\"reset\":%s",
	       in->index_file ? "true" : "false", in->reset ? "true" : "false");
	if (in->replayed)
		printf(",\"replayed_from\":[%u,%u],\"replayed_to\":[%u,%u]",
		       in->from_seq, in->from_offset, in->to_seq,
		       in->to_offset);
	else
		printf(",\"replayed_from\":null");
	if (in->index_ignored[0] != '\0') {
		dovi_json_key(stdout, "index_ignored", 0);
		dovi_json_str(stdout, in->index_ignored);
	}
	if (in->warning[0] != '\0') {
		dovi_json_key(stdout, "warning", 0);
		dovi_json_str(stdout, in->warning);
	}
	putchar('}');
}

static void print_keyword_list(const struct dovi_index *idx)
{
	printf("[");
	for (unsigned k = 0; k < dovi_index_keyword_count(idx); k++) {
		if (k > 0)
			putchar(',');
		dovi_json_str(stdout, dovi_index_keyword(idx, k));
	}
	printf("]");
}

static void print_msg_keywords(const struct dovi_index *idx, uint32_t pos)
{
	bool first = true;

	printf("[");
	for (unsigned k = 0; k < dovi_index_keyword_count(idx); k++) {
		if (!dovi_index_has_keyword(idx, pos, k))
			continue;
		if (!first)
			putchar(',');
		dovi_json_str(stdout, dovi_index_keyword(idx, k));
		first = false;
	}
	printf("]");
}

static void print_map_fields(const struct dovi_index *map, uint32_t mpos,
			     bool with_uid)
{
	uint32_t file_id, offset, size;
	uint16_t ref;
	bool have_ref;

	if (!dovi_index_map_rec(map, mpos, &file_id, &offset, &size,
				&have_ref, &ref))
		return;
	if (with_uid)
		printf("\"map_uid\":%u,", dovi_index_uid(map, mpos));
	else
		putchar(',');
	printf("\"file_id\":%u,\"offset\":%u,\"size\":%u,\"refcount\":",
	       file_id, offset, size);
	if (have_ref)
		printf("%u", ref);
	else
		printf("null");
}

static void print_index_messages(const struct dovi_index *idx,
				 const struct dovi_index *map)
{
	printf("\"messages\":[");
	for (uint32_t i = 0; i < dovi_index_count(idx); i++) {
		uint32_t map_uid, save_date, mpos;

		printf("%s{\"uid\":%u,\"flags\":%u,\"keywords\":", i ? "," : "",
		       dovi_index_uid(idx, i), dovi_index_flags(idx, i));
		print_msg_keywords(idx, i);
		if (dovi_index_mdbox_rec(idx, i, &map_uid, &save_date)) {
			printf(",\"map_uid\":%u,\"save_date\":%u", map_uid,
			       save_date);
			if (map != NULL &&
			    dovi_index_lookup(map, map_uid, &mpos))
				print_map_fields(map, mpos, false);
		}
		putchar('}');
	}
	printf("]");
}

static void print_map(const struct dovi_index *map)
{
	struct dovi_header h;
	bool first = true;

	dovi_index_header(map, &h);
	printf(",\"map\":{\"uid_validity\":%u,\"next_uid\":%u,\"records\":[",
	       h.uid_validity, h.next_uid);
	for (uint32_t i = 0; i < dovi_index_count(map); i++) {
		uint32_t a, b, c;
		uint16_t r;
		bool hr;

		if (!dovi_index_map_rec(map, i, &a, &b, &c, &hr, &r))
			continue;
		printf("%s{", first ? "" : ",");
		print_map_fields(map, i, true);
		putchar('}');
		first = false;
	}
	printf("]}");
}

static void print_index_json(const struct dovi_index *idx,
			     const struct dovi_index *map, int changed)
{
	struct dovi_header h;
	unsigned nerr = dovi_index_error_count(idx);

	dovi_index_header(idx, &h);
	printf("{\"uid_validity\":%u,\"next_uid\":%u,\"indexid\":%u,",
	       h.uid_validity, h.next_uid, h.indexid);
	if (changed >= 0)
		printf("\"changed\":%s,", changed ? "true" : "false");
	printf("\"keywords\":");
	print_keyword_list(idx);
	putchar(',');
	print_info(idx);
	printf(",\"error_count\":%u,\"errors\":[", nerr);
	for (unsigned i = 0; dovi_index_error(idx, i) != NULL; i++) {
		if (i > 0)
			putchar(',');
		dovi_json_str(stdout, dovi_index_error(idx, i));
	}
	printf("],");
	print_index_messages(idx, map);
	if (map != NULL)
		print_map(map);
	printf("}\n");
	fflush(stdout);
}

/* one message of the text format: "uid=N flags=0xNN [\\Seen kw] ..." */
static void print_text_message(const struct dovi_index *idx,
			       const struct dovi_index *map, uint32_t i)
{
	static const char *const names[] = { "\\Answered", "\\Flagged",
					     "\\Deleted", "\\Seen",
					     "\\Draft" };
	uint32_t map_uid, save_date, mpos, fid, off, size;
	uint8_t fl = dovi_index_flags(idx, i);
	uint16_t ref;
	bool hr;

	const char *sep = "";

	printf("uid=%u flags=0x%02x [", dovi_index_uid(idx, i), fl);
	for (unsigned b = 0; b < 5; b++) {
		if (fl & (1u << b)) {
			printf("%s%s", sep, names[b]);
			sep = " ";
		}
	}
	for (unsigned k = 0; k < dovi_index_keyword_count(idx); k++) {
		if (dovi_index_has_keyword(idx, i, k)) {
			printf("%s%s", sep, dovi_index_keyword(idx, k));
			sep = " ";
		}
	}
	printf("]");
	if (dovi_index_mdbox_rec(idx, i, &map_uid, &save_date)) {
		printf(" map_uid=%u", map_uid);
		if (map != NULL && dovi_index_lookup(map, map_uid, &mpos) &&
		    dovi_index_map_rec(map, mpos, &fid, &off, &size, &hr, &ref))
			printf(" file=m.%u offset=%u size=%u refcount=%d", fid,
			       off, size, hr ? (int)ref : -1);
	}
	putchar('\n');
}

static void print_index_text(const struct dovi_index *idx,
			     const struct dovi_index *map)
{
	struct dovi_header h;

	dovi_index_header(idx, &h);
	printf("uid_validity=%u next_uid=%u messages=%u\n", h.uid_validity,
	       h.next_uid, dovi_index_count(idx));
	for (uint32_t i = 0; i < dovi_index_count(idx); i++)
		print_text_message(idx, map, i);
	for (unsigned i = 0; dovi_index_error(idx, i) != NULL; i++)
		fprintf(stderr, "sync error: %s\n", dovi_index_error(idx, i));
}

static int open_index(const char *path, const char *def,
		      struct dovi_index **idx_r)
{
	struct dbox_err err = { "" };
	char *prefix = resolve_prefix(path, def);
	int ret;

	if (prefix == NULL)
		return EXIT_READER;
	ret = dovi_index_open(prefix, idx_r, &err);
	free(prefix);
	if (ret < 0) {
		fprintf(stderr, "unusable: %s\n", err.msg);
		return fail_status(ret);
	}
	return 0;
}

/* One refresh of the index (and map) per line on stdin. */
static int follow_index(struct dovi_index *idx, struct dovi_index *map)
{
	char line[256];

	while (fgets(line, sizeof(line), stdin) != NULL) {
		struct dbox_err err = { "" };
		bool c1 = false, c2 = false;
		int ret = dovi_index_refresh(idx, &c1, &err);

		if (ret == 0 && map != NULL)
			ret = dovi_index_refresh(map, &c2, &err);
		if (ret < 0) {
			printf("{\"error\":");
			dovi_json_str(stdout, err.msg);
			printf(",\"errno\":%d}\n", -ret);
			fflush(stdout);
			continue;
		}
		print_index_json(idx, map, c1 || c2);
	}
	return 0;
}

static int run_index(const struct opts *o)
{
	struct dovi_index *idx = NULL, *map = NULL;
	int ret = open_index(o->path, "dovecot.index", &idx);

	if (ret == 0 && o->map_path != NULL)
		ret = open_index(o->map_path, "dovecot.map.index", &map);
	if (ret == 0 && o->text)
		print_index_text(idx, map);
	else if (ret == 0)
		print_index_json(idx, map, o->follow ? 0 : -1);
	if (ret == 0 && o->follow)
		ret = follow_index(idx, map);
	dovi_index_free(map);
	dovi_index_free(idx);
	return ret;
}

/* ---- store mode --------------------------------------------------------- */

struct open_box {
	char *storage_name;
	struct dovi_mailbox *box;
	char error[512];
	bool changed;
};

struct store_view {
	struct dovi_store *store;
	struct open_box *boxes;
	size_t count;
};

static void print_message(const struct dovi_mailbox *box,
			  const struct dovi_message *m, enum dovi_format fmt)
{
	char path[4300];

	printf("{\"uid\":%u,\"flags\":%u,\"keywords\":[", m->uid, m->flags);
	for (unsigned k = 0; k < m->keyword_count; k++) {
		if (k > 0)
			putchar(',');
		dovi_json_str(stdout, m->keywords[k]);
	}
	printf("]");
	if (fmt == DOVI_SDBOX &&
	    dovi_mailbox_sdbox_path(box, m->uid, path, sizeof(path)) == 0) {
		dovi_json_key(stdout, "file", 0);
		dovi_json_str(stdout, path);
	}
	if (fmt == DOVI_MDBOX) {
		printf(",\"map_uid\":%u,\"save_date\":%u,\"file_id\":%u,"
		       "\"offset\":%u,\"size\":%u,\"refcount\":", m->map_uid,
		       m->save_date, m->file_id, m->offset, m->size);
		if (m->have_refcount)
			printf("%u", m->refcount);
		else
			printf("null");
		dovi_json_key(stdout, "guid", 0);
		if (m->have_guid)
			dovi_json_hex(stdout, m->guid, sizeof(m->guid));
		else
			printf("null");
	}
	putchar('}');
}

static void print_mailbox(const struct open_box *ob, enum dovi_format fmt)
{
	const struct dovi_mailbox *box = ob->box;
	const struct dovi_message *msgs = dovi_mailbox_messages(box);
	uint8_t guid[16];

	printf("{\"name\":");
	dovi_json_str(stdout, dovi_mailbox_name(box));
	printf(",\"storage_name\":");
	dovi_json_str(stdout, ob->storage_name);
	printf(",\"uid_validity\":%u,\"next_uid\":%u,\"hidden\":%zu,"
	       "\"guid\":", dovi_mailbox_uid_validity(box),
	       dovi_mailbox_next_uid(box), dovi_mailbox_hidden(box));
	if (dovi_mailbox_guid(box, guid))
		dovi_json_hex(stdout, guid, sizeof(guid));
	else
		printf("null");
	printf(",\"keywords\":[");
	for (unsigned k = 0; k < dovi_mailbox_keyword_count(box); k++) {
		if (k > 0)
			putchar(',');
		dovi_json_str(stdout, dovi_mailbox_keyword(box, k));
	}
	printf("],\"messages\":[");
	for (size_t i = 0; i < dovi_mailbox_count(box); i++) {
		if (i > 0)
			putchar(',');
		print_message(box, &msgs[i], fmt);
	}
	printf("]}");
}

/* mdbox: the map's header ("map": null before anything was saved) */
static void print_store_map(struct dovi_store *store)
{
	const struct dovi_index *map = dovi_store_map(store, NULL);
	struct dovi_header h;
	uint32_t highest, rebuilds;

	printf(",\"map\":");
	if (map == NULL) {
		printf("null");
		return;
	}
	dovi_index_header(map, &h);
	printf("{\"uid_validity\":%u,\"next_uid\":%u,\"messages\":%u",
	       h.uid_validity, h.next_uid, dovi_index_count(map));
	if (dovi_index_map_hdr(map, &highest, &rebuilds))
		printf(",\"highest_file_id\":%u,\"rebuild_count\":%u", highest,
		       rebuilds);
	putchar('}');
}

static void print_store(const struct store_view *v, bool follow)
{
	enum dovi_format fmt = dovi_store_format(v->store);
	bool first = true;

	printf("{\"format\":\"%s\",\"root\":",
	       fmt == DOVI_MDBOX ? "mdbox" : "sdbox");
	dovi_json_str(stdout, dovi_store_root(v->store));
	if (fmt == DOVI_MDBOX)
		print_store_map(v->store);
	if (follow) {
		printf(",\"changed\":[");
		for (size_t i = 0; i < v->count; i++) {
			if (!v->boxes[i].changed)
				continue;
			printf("%s", first ? "" : ",");
			dovi_json_str(stdout, v->boxes[i].storage_name);
			first = false;
		}
		printf("]");
	}
	printf(",\"mailboxes\":[");
	first = true;
	for (size_t i = 0; i < v->count; i++) {
		if (v->boxes[i].box == NULL)
			continue;
		printf("%s", first ? "" : ",");
		print_mailbox(&v->boxes[i], fmt);
		first = false;
	}
	printf("],\"errors\":[");
	first = true;
	for (size_t i = 0; i < v->count; i++) {
		if (v->boxes[i].error[0] == '\0')
			continue;
		printf("%s{\"mailbox\":", first ? "" : ",");
		dovi_json_str(stdout, v->boxes[i].storage_name);
		printf(",\"error\":");
		dovi_json_str(stdout, v->boxes[i].error);
		putchar('}');
		first = false;
	}
	printf("]}\n");
	fflush(stdout);
}

static struct open_box *find_box(struct store_view *v, const char *storage)
{
	for (size_t i = 0; i < v->count; i++) {
		if (strcmp(v->boxes[i].storage_name, storage) == 0)
			return &v->boxes[i];
	}
	return NULL;
}

/* Opens or refreshes one listed mailbox into nb (taking over old's
 * mailbox when there is one). */
static void update_box(struct store_view *v, struct open_box *old,
		       const struct dovi_mailbox_name *n, struct open_box *nb)
{
	struct dbox_err err = { "" };
	int ret;

	memset(nb, 0, sizeof(*nb));
	nb->storage_name = strdup(n->storage_name);
	if (old != NULL && old->box != NULL) {
		nb->box = old->box;
		old->box = NULL;
		ret = dovi_mailbox_refresh(nb->box, &nb->changed, &err);
	} else {
		ret = dovi_mailbox_open_storage_name(v->store, n->storage_name,
						     &nb->box, &err);
		nb->changed = true;
	}
	if (ret < 0)
		snprintf(nb->error, sizeof(nb->error), "%s", err.msg);
	if (ret < 0 && old == NULL) {
		dovi_mailbox_free(nb->box);
		nb->box = NULL;
	}
}

static void free_boxes(struct open_box *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dovi_mailbox_free(b[i].box);
		free(b[i].storage_name);
	}
	free(b);
}

/* (Re)lists the store and opens/refreshes every mailbox. */
static int store_update(struct store_view *v)
{
	struct dbox_err err = { "" };
	struct dovi_mailbox_name *names;
	struct open_box *nb;
	size_t n;
	int ret = dovi_store_list(v->store, &names, &n, &err);

	if (ret < 0) {
		fprintf(stderr, "listing failed: %s\n", err.msg);
		return fail_status(ret);
	}
	nb = calloc(n > 0 ? n : 1, sizeof(*nb));
	if (nb == NULL) {
		dovi_mailbox_names_free(names, n);
		return EXIT_READER;
	}
	for (size_t i = 0; i < n; i++)
		update_box(v, find_box(v, names[i].storage_name), &names[i],
			   &nb[i]);
	dovi_mailbox_names_free(names, n);
	free_boxes(v->boxes, v->count);
	v->boxes = nb;
	v->count = n;
	return 0;
}

static int run_store(const struct opts *o)
{
	struct store_view v = { NULL, NULL, 0 };
	struct dbox_err err = { "" };
	enum dovi_format fmt = strcmp(o->type, "mdbox") == 0 ? DOVI_MDBOX :
		DOVI_SDBOX;
	char line[256];
	int ret = dovi_store_open(o->store, fmt, &v.store, &err);

	if (ret < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return fail_status(ret);
	}
	ret = store_update(&v);
	if (ret == 0)
		print_store(&v, o->follow);
	while (ret == 0 && o->follow && fgets(line, sizeof(line), stdin)) {
		ret = store_update(&v);
		if (ret == 0)
			print_store(&v, true);
	}
	free_boxes(v.boxes, v.count);
	dovi_store_free(v.store);
	return ret;
}

/* ---- main --------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;

		if (strcmp(a, "--follow") == 0)
			o->follow = true;
		else if (strcmp(a, "--format") == 0 && has_val)
			o->text = strcmp(argv[++i], "text") == 0;
		else if (strcmp(a, "--map") == 0 && has_val)
			o->map_path = argv[++i];
		else if (strcmp(a, "--store") == 0 && has_val)
			o->store = argv[++i];
		else if (strcmp(a, "--type") == 0 && has_val)
			o->type = argv[++i];
		else if (a[0] == '-' || o->path != NULL)
			return -1;
		else
			o->path = a;
	}
	if (o->store != NULL)
		return o->path == NULL && o->type != NULL &&
			(strcmp(o->type, "sdbox") == 0 ||
			 strcmp(o->type, "mdbox") == 0) ? 0 : -1;
	return o->path != NULL ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct opts o;

	memset(&o, 0, sizeof(o));
	if (parse_args(argc, argv, &o) < 0)
		return usage();
	return o.store != NULL ? run_store(&o) : run_index(&o);
}
