/* dbox-tree.c - a read-only mount of a tree taken over: the mailboxes of
 * the takeover mount's own index in the tree.
 *
 * Such a mount indexes the tree outside it, as any Dovecot tree (the
 * index inside is brought up to date with Dovecot's only by a takeover
 * mount, which writes); but the plain files of the takeover mount's
 * folders are in the tree under that index's mailbox ids (files/ID).
 * The two indexes share Dovecot's mailbox GUIDs: the takeover index has
 * Dovecot's GUID of every folder Dovecot had, and hands its own to
 * Dovecot for every folder it made or adopted; a rename on either side
 * keeps it. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "index/dindex-mailbox.h"
#include "store/store-private.h"

struct dbox_tree_box {
	int64_t id;
	char guid[33];
	char *name;
};

static int add_row(void *ctx, const struct dbox_mailbox *box)
{
	struct dbox_store *store = ctx;
	struct dbox_tree_box *rows = store->tree_boxes, *r;

	/* room for 1, 3, 7, ... rows: grown when n is one less than a
	 * power of two */
	if ((store->n_tree_boxes & (store->n_tree_boxes + 1)) == 0) {
		rows = realloc(rows, (store->n_tree_boxes * 2 + 1) *
			       sizeof(*rows));
		if (rows == NULL)
			return -ENOMEM;
		store->tree_boxes = rows;
	}
	r = &rows[store->n_tree_boxes];
	r->id = box->id;
	memcpy(r->guid, box->guid, sizeof(r->guid));
	r->name = strdup(box->name);
	if (r->name == NULL)
		return -ENOMEM;
	store->n_tree_boxes++;
	return 0;
}

void dbox_tree_load(struct dbox_store *store, const char *index_path)
{
	int ret = dindex_mailboxes_peek(index_path, add_row, store);

	/* without them the mount shows no plain files of those folders,
	 * and is otherwise whole */
	if (ret < 0) {
		dbox_tree_free(store);
		dbox_log(DBOX_LOG_WARNING, "%s: %s: the plain files of the "
			 "folders the takeover mount kept are not shown",
			 index_path, strerror(-ret));
	}
}

void dbox_tree_free(struct dbox_store *store)
{
	for (size_t i = 0; i < store->n_tree_boxes; i++)
		free(store->tree_boxes[i].name);
	free(store->tree_boxes);
	store->tree_boxes = NULL;
	store->n_tree_boxes = 0;
}

static const struct dbox_tree_box *by_guid(struct dbox_store *store,
					   const char *guid)
{
	for (size_t i = 0; i < store->n_tree_boxes; i++)
		if (guid[0] != '\0' &&
		    strcmp(store->tree_boxes[i].guid, guid) == 0)
			return &store->tree_boxes[i];
	return NULL;
}

static const struct dbox_tree_box *by_name(struct dbox_store *store,
					   const char *name)
{
	for (size_t i = 0; i < store->n_tree_boxes; i++)
		if (strcmp(store->tree_boxes[i].name, name) == 0)
			return &store->tree_boxes[i];
	return NULL;
}

struct guid_seen {
	const char *guid;
	bool seen;
};

static int has_guid(void *ctx, const struct dbox_mailbox *box)
{
	struct guid_seen *g = ctx;

	g->seen = strcmp(box->guid, g->guid) == 0;
	return g->seen;
}

/* Whether a mailbox of ours has that GUID (true if that is unknown). */
static bool guid_is_ours(struct dbox_store *store, const char *guid)
{
	struct guid_seen g = { guid, false };
	struct dbox_err err;

	return dbox_mailbox_list(store, has_guid, &g, &err) < 0 || g.seen;
}

int dbox_store_tree_mailbox_id(struct dbox_store *store, int64_t box,
			       int64_t *id_r)
{
	const struct dbox_tree_box *r;
	struct dbox_mailbox mb;
	struct dbox_err err;

	if (store->n_tree_boxes == 0 ||
	    dbox_mailbox_get(store, box, &mb, &err) < 0)
		return -ENOENT;
	r = by_guid(store, mb.guid);
	/* a folder whose Dovecot index the takeover mount could not write
	 * (its GUID here is another): by its name, unless that row is
	 * another of our folders (Dovecot renamed it, and made a new one
	 * of the old name) */
	if (r == NULL) {
		r = by_name(store, mb.name);
		if (r != NULL && guid_is_ours(store, r->guid))
			return -ENOENT;
	}
	if (r == NULL)
		return -ENOENT;
	*id_r = r->id;
	return 0;
}
