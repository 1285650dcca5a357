/* dindex-removed.c - the message rows this process removed (see
 * dindex-removed.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "index/dindex-removed.h"

struct dindex_removed {
	pthread_mutex_t lock;          /* everything below */
	struct dbox_removed *rows;
	size_t count, cap;
};

/* TEMP: on this connection only, and never in the file; AFTER DELETE
 * sees every way a row goes (a move deletes it from its folder). */
static const char sql_trigger[] =
	"CREATE TEMP TRIGGER IF NOT EXISTS dbox_removed_rows "
	"AFTER DELETE ON main.messages BEGIN "
	"SELECT dbox_removed_row(old.mailbox_id, old.uid, old.base, "
	"old.flags, old.in_new); END";

struct dindex_removed *dindex_removed_new(void)
{
	struct dindex_removed *r = calloc(1, sizeof(*r));

	if (r != NULL)
		pthread_mutex_init(&r->lock, NULL);
	return r;
}

void dindex_removed_free(struct dindex_removed *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->rows);
	free(r);
}

/* Under the lock: room for one more row (false: at the bound). */
static bool removed_room(struct dindex_removed *r)
{
	struct dbox_removed *grown;
	size_t cap;

	if (r->count < r->cap)
		return true;
	if (r->cap >= DINDEX_REMOVED_MAX)
		return false;
	cap = r->cap == 0 ? 16 : r->cap * 2;
	grown = realloc(r->rows, cap * sizeof(*grown));
	if (grown == NULL)
		return false;
	r->rows = grown;
	r->cap = cap;
	return true;
}

/* The trigger's function: dbox_removed_row(mailbox_id, uid, base, flags,
 * in_new). */
static void removed_row(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
	struct dindex_removed *r = sqlite3_user_data(ctx);
	const unsigned char *base = sqlite3_value_text(v[2]);
	struct dbox_removed *row;

	(void)argc;
	if (base == NULL || strlen((const char *)base) > DBOX_NAME_MAX)
		return;   /* not a name the view shows */
	pthread_mutex_lock(&r->lock);
	if (removed_room(r)) {
		row = &r->rows[r->count++];
		memset(row, 0, sizeof(*row));
		row->mailbox_id = sqlite3_value_int64(v[0]);
		row->uid = (uint32_t)sqlite3_value_int64(v[1]);
		strcpy(row->base, (const char *)base);
		row->flags = (uint32_t)sqlite3_value_int64(v[3]);
		row->in_new = sqlite3_value_int(v[4]) != 0;
	}
	pthread_mutex_unlock(&r->lock);
}

void dindex_removed_attach(struct dindex_removed *r, sqlite3 *db)
{
	if (sqlite3_create_function(db, "dbox_removed_row", 5,
				    SQLITE_UTF8, r,
				    removed_row, NULL, NULL) != SQLITE_OK)
		return;
	(void)sqlite3_exec(db, sql_trigger, NULL, NULL, NULL);
}

int dindex_removed_take(struct dindex_removed *r,
			struct dbox_removed **rows_r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	*rows_r = r->rows;
	n = r->count;
	r->rows = NULL;
	r->count = r->cap = 0;
	pthread_mutex_unlock(&r->lock);
	return (int)n;
}
