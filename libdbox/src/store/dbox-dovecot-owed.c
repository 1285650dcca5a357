/* dbox-dovecot-owed.c - the changes a takeover mount owes Dovecot
 * (dindex-owed.h: its log was missing, damaged or locked too long when
 * the mount made them) handed back by the follower thread, never by a
 * request: under our index write lock, as every hand-back, with a short
 * wait for Dovecot's lock, each owed row deleted in the transaction that
 * hands it back.  A log still locked or unreadable is tried again at a
 * later pass, waiting longer each time (one warning); Dovecot repairs a
 * damaged log of its own (its next access, or doveadm force-resync), and
 * the pass after hands ours back onto the repaired one.
 *
 * What is handed back is our state now, not the change as it was made:
 * the flags and keywords the message has (against what Dovecot's index
 * has), the expunge of a message still listed, and the messages Dovecot
 * has not indexed yet (dbox_dovecot_catch_up).  A pass killed between
 * Dovecot's log and our commit thus repeats nothing Dovecot has. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dbox/dovecot-index.h"
#include "dovecot/dovecot-logwrite.h"
#include "index/dindex-owed.h"
#include "store/dbox-dovecot-private.h"
#include "store/store-private.h"

/* The pass holds our write lock while it waits: requests wait behind
 * it, so the wait is short; a log locked longer is tried again later. */
#define OWED_LOCK_MS 200
#define OWED_WAIT_FIRST_MS 250
#define OWED_WAIT_MAX_MS 4000
/* a row handed back by an earlier phase of the pass */
#define OWED_DONE ((enum dindex_owed_kind)0)

struct owed_pass {
	struct dbox_store *store;
	struct dindex_owed *rows;
	size_t count, cap;
	/* mdbox: a delivery or move is still owed, so an expunge's one
	 * reference less waits (a move's append counts its reference
	 * first, or the map could count none for a while) */
	bool appends_left;
	size_t left;                  /* rows still owed after the pass */
	size_t dropped;               /* rows handed back (or not needed) */
	struct dbox_err why;          /* the first reason one is left */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int collect(void *ctx, const struct dindex_owed *o)
{
	struct owed_pass *p = ctx;

	if (p->count == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct dindex_owed *grown = realloc(p->rows,
						    cap * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		p->rows = grown;
		p->cap = cap;
	}
	p->rows[p->count++] = *o;
	return 0;
}

/* n rows left owed in mailbox name; why: the first reason. */
static void keep(struct owed_pass *p, size_t n, const char *name,
		 const struct dbox_err *why)
{
	p->left += n;
	if (p->why.msg[0] == '\0' && why != NULL && why->msg[0] != '\0')
		dbox_fail(&p->why, -EAGAIN, "mailbox %s: %s", name, why->msg);
}

static int drop(struct owed_pass *p, const struct dindex_owed *o,
		struct dbox_err *err)
{
	p->dropped++;
	return dindex_owed_delete(p->store->idx, o->mailbox_id, o->uid,
				  o->kind, err);
}

/* The end of the group of rows of rows[i]'s mailbox. */
static size_t group_end(const struct owed_pass *p, size_t i)
{
	size_t end = i;

	while (end < p->count && p->rows[end].mailbox_id ==
	       p->rows[i].mailbox_id)
		end++;
	return end;
}

static size_t count_kind(const struct owed_pass *p, size_t i, size_t end,
			 enum dindex_owed_kind kind)
{
	size_t n = 0;

	for (size_t k = i; k < end; k++)
		n += p->rows[k].kind == kind;
	return n;
}

/* Rows [i, end) wait for a later pass (counted in the last phase). */
static void wait_group(struct owed_pass *p, size_t i, size_t end, int phase,
		       const char *name, const struct dbox_err *why)
{
	if (count_kind(p, i, end, DINDEX_OWED_APPEND) > 0)
		p->appends_left = true;
	if (phase == 1)
		keep(p, end - i - count_kind(p, i, end, OWED_DONE), name, why);
}

/* The followed box of rows [i, end), refreshed; NULL if they wait (its
 * index unreadable, or of another uidvalidity: the follower's sync of
 * it forgets them) or went with our mailbox (*ret: that delete's). */
static struct dovecot_box *group_box(struct owed_pass *p, size_t i,
				     size_t end, int phase,
				     struct dbox_err *err, int *ret)
{
	struct dbox_store *store = p->store;
	int64_t id = p->rows[i].mailbox_id;
	struct dovecot_box *b = dbox_dovecot_box(store, id);
	struct dbox_mailbox box;
	struct dbox_err why = { 0 };
	int r = dbox_mailbox_get(store, id, &box, &why);

	*ret = 0;
	if (r == -ENOENT) {
		*ret = dindex_owed_forget(store->idx, id, err);
		return NULL;
	}
	if (r == 0 && b != NULL && dbox_dovecot_refresh(b, &why) == 0 &&
	    dovi_mailbox_index(b->db) != NULL &&
	    dovi_mailbox_uid_validity(b->db) == box.uidvalidity)
		return b;
	if (why.msg[0] == '\0')
		dbox_fail(&why, -ENOENT, "Dovecot's index of it is missing or "
			  "of another uidvalidity");
	wait_group(p, i, end, phase, b != NULL ? b->name : "?", &why);
	if (b != NULL)
		b->owed = true;
	return NULL;
}

/* The deliveries and moves in of rows [i, end), appended together. */
static int hand_appends(struct owed_pass *p, struct dovecot_box *b,
			size_t i, size_t end, struct dbox_err *err)
{
	struct dbox_err why = { 0 };
	int ret = 0;

	if (count_kind(p, i, end, DINDEX_OWED_APPEND) == 0)
		return 0;
	b->dv->map_busy = false;   /* a pass of its own */
	ret = dbox_dovecot_catch_up(p->store, b, &why);
	if (ret < 0) {
		/* counted with the group's others in the last phase */
		keep(p, 0, b->name, &why);
		p->appends_left = true;
		return 0;
	}
	if (ret > 0)
		dbox_log(DBOX_LOG_INFO, "mailbox %s: deliveries Dovecot had "
			 "not indexed handed back", b->name);
	b->behind = false;   /* the adoption pass's (all of them went) */
	ret = 0;
	for (size_t k = i; ret == 0 && k < end; k++) {
		if (p->rows[k].kind != DINDEX_OWED_APPEND)
			continue;
		ret = drop(p, &p->rows[k], err);
		p->rows[k].kind = OWED_DONE;
	}
	return ret;
}

/* Whether Dovecot's message dm has keyword name. */
static bool has_keyword(const struct dovi_message *dm, const char *name)
{
	for (unsigned i = 0; i < dm->keyword_count; i++)
		if (strcmp(dm->keywords[i], name) == 0)
			return true;
	return false;
}

/* The records that give Dovecot's dm the flags and keywords that we
 * changed since o's base as msg has them (what Dovecot changed of the
 * others meanwhile stays); false when Dovecot has them already. */
static bool flag_recs(struct owed_pass *p, struct dovecot_box *b,
		      struct dovi_logwrite *w, const struct dovi_message *dm,
		      const struct dbox_msg *msg, const struct dindex_owed *o)
{
	char *names[DBOX_MAX_KEYWORDS] = { 0 }, buf[DBOX_MAX_KEYWORDS * 256];
	uint8_t ours = (msg->flags ^ o->base_flags) & DOVI_SYSTEM_FLAGS;
	uint8_t was = dm->flags & DOVI_SYSTEM_FLAGS;
	uint8_t now = (was & ~ours) | (msg->flags & ours);
	uint32_t kw_ours = msg->keywords ^ o->base_keywords;
	bool any = was != now;

	if (was != now)
		dovi_logwrite_flags_add(w, dm->uid, dm->uid, now & ~was,
					was & ~now);
	if (kw_ours == 0 || dbox_mailbox_keywords(p->store, b->id, names, buf,
						  sizeof(buf), NULL) < 0)
		return any;
	/* by name: a keyword beyond our 26 letters is Dovecot's alone */
	for (int i = 0; i < DBOX_MAX_KEYWORDS; i++) {
		bool set = (msg->keywords >> i) & 1;

		if (names[i] == NULL || names[i][0] == '\0' ||
		    ((kw_ours >> i) & 1) == 0 ||
		    set == has_keyword(dm, names[i]))
			continue;
		dovi_logwrite_keyword_add(w, set, names[i], dm->uid, dm->uid);
		any = true;
	}
	return any;
}

/* Row o of b into w: 1 if it adds records, 0 if Dovecot needs none
 * (the row goes), -1 if it waits. */
static int add_recs(struct owed_pass *p, struct dovecot_box *b,
		    struct dovi_logwrite *w, const struct dindex_owed *o)
{
	const struct dovi_message *dm = dbox_dovecot_known(b, o->uid);
	struct dbox_msg msg;

	/* Dovecot expunged it (its expunge wins), or has not indexed it
	 * yet (its append carries our flags) */
	if (dm == NULL)
		return 0;
	if (o->kind == DINDEX_OWED_FLAGS)
		return dbox_msg_get(p->store, b->id, o->uid, &msg, NULL) == 0 &&
			flag_recs(p, b, w, dm, &msg, o);
	if (o->kind != DINDEX_OWED_EXPUNGE)
		return 0;
	if (o->unref && dbox_dovecot_counted(p->store, dm) && p->appends_left)
		return -1;
	dbox_dovecot_expunge_rec(w, dm, o->guid);
	return 1;
}

/* After the commit of rows [i, end): the map counts one reference less
 * for each expunge that says so (a failure keeps bytes only). */
static void unrefs(struct owed_pass *p, struct dovecot_box *b,
		   const int *st, size_t i, size_t end)
{
	for (size_t k = i; k < end; k++) {
		const struct dovi_message *dm = dbox_dovecot_known(b,
			p->rows[k].uid);

		if (st[k - i] == 1 && p->rows[k].kind == DINDEX_OWED_EXPUNGE &&
		    p->rows[k].unref && dm != NULL &&
		    dbox_dovecot_counted(p->store, dm))
			dbox_dovecot_map_ref(b, dm->map_uid, -1, OWED_LOCK_MS);
	}
}

/* The flags and expunges of rows [i, end), in one commit onto b's log;
 * the deliveries still owed among them are counted. */
static int hand_changes(struct owed_pass *p, struct dovecot_box *b,
			size_t i, size_t end, struct dbox_err *err)
{
	struct dovi_logwrite *w = dovi_logwrite_new();
	int *st = calloc(end - i + 1, sizeof(*st));
	struct dbox_err why = { 0 };
	size_t n = 0;
	int ret = w == NULL || st == NULL ? -ENOMEM : 0;

	/* st: 1 records added, 0 none needed, -1 waits, -2 done */
	for (size_t k = i; ret == 0 && k < end; k++) {
		enum dindex_owed_kind kind = p->rows[k].kind;

		st[k - i] = kind == OWED_DONE ? -2 :
			kind == DINDEX_OWED_APPEND ? -1 :
			add_recs(p, b, w, &p->rows[k]);
		n += st[k - i] == 1;
	}
	if (ret == 0 && n > 0 &&
	    dbox_dovecot_commit(b, w, OWED_LOCK_MS, &why) < 0) {
		for (size_t k = i; k < end; k++)
			st[k - i] = st[k - i] == 1 ? -1 : st[k - i];
	} else if (ret == 0) {
		unrefs(p, b, st, i, end);
	}
	for (size_t k = i; ret == 0 && k < end; k++) {
		if (st[k - i] >= 0)
			ret = drop(p, &p->rows[k], err);
		else if (st[k - i] == -1)
			keep(p, 1, b->name, &why);
	}
	dovi_logwrite_free(w);
	free(st);
	return ret == -ENOMEM ? dbox_fail(err, ret, "out of memory") : ret;
}

/* Every group of rows: phase 0 the appends, phase 1 the rest. */
static int hand_all(struct owed_pass *p, int phase, struct dbox_err *err)
{
	int ret = 0;

	for (size_t i = 0, end; ret == 0 && i < p->count; i = end) {
		struct dovecot_box *b;
		size_t left = p->left, dropped = p->dropped;

		end = group_end(p, i);
		b = group_box(p, i, end, phase, err, &ret);
		if (b == NULL)
			continue;
		ret = phase == 0 ? hand_appends(p, b, i, end, err) :
			hand_changes(p, b, i, end, err);
		if (phase == 1)
			b->owed = p->left > left;
		/* the follower's next sync takes Dovecot's state of what is
		 * no longer owed (kept as ours until now) */
		b->resync |= p->dropped > dropped;
	}
	return ret;
}

/* When the next pass may try: soon after a pass that handed all back,
 * later and later while some stay owed (one warning). */
static void schedule(struct dbox_dovecot *dv, const struct owed_pass *p)
{
	if (p->left == 0) {
		if (dv->owed_warned)
			dbox_log(DBOX_LOG_INFO, "the changes owed to Dovecot "
				 "are handed back");
		dv->owed_warned = false;
		dv->owed_wait = 0;
		return;
	}
	dv->owed_wait = dv->owed_wait == 0 ? OWED_WAIT_FIRST_MS :
		dv->owed_wait * 2;
	if (dv->owed_wait > OWED_WAIT_MAX_MS)
		dv->owed_wait = OWED_WAIT_MAX_MS;
	dv->owed_at = now_ms() + dv->owed_wait;
	if (!dv->owed_warned)
		dbox_log(DBOX_LOG_WARNING, "%zu change(s) owed to Dovecot, "
			 "tried again every few seconds: %s", p->left,
			 p->why.msg[0] != '\0' ? p->why.msg : "waiting for "
			 "another");
	dv->owed_warned = true;
}

int dbox_dovecot_back_owed(struct dbox_store *store, struct dbox_err *err)
{
	struct dbox_dovecot *dv = store->dovecot;
	struct owed_pass p = { .store = store };
	int ret;

	if (dv == NULL || store->readonly || now_ms() < dv->owed_at)
		return 0;
	ret = dindex_owed_any(store->idx, err);
	if (ret <= 0)
		return ret;
	ret = dindex_write_begin(store->idx, err);
	if (ret < 0)
		return ret;
	ret = dindex_owed_each(store->idx, 0, collect, &p, err);
	if (ret == -ENOMEM)
		ret = dbox_fail(err, ret, "out of memory");
	if (ret == 0)
		ret = hand_all(&p, 0, err);
	if (ret == 0)
		ret = hand_all(&p, 1, err);
	if (ret == 0)
		ret = dindex_write_commit(store->idx, err);
	else
		dindex_write_rollback(store->idx);
	free(p.rows);
	if (ret == 0)
		schedule(dv, &p);
	return ret;
}
