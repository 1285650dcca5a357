/* dindex-schema.c - the index's schema, version by version, and the
 * migrations that bring a file to the current version (see
 * dindex-schema.h). */
#include <errno.h>
#include <stdio.h>

#include "index/dindex-private.h"
#include "index/dindex-schema.h"
#include "util/util.h"

/* Version 1 of the schema.  Names are UTF-8 with '/' as hierarchy
 * separator; flags use Dovecot's bit values; keywords are a bitmask over
 * the mailbox's keyword indexes; file_id 0 = sdbox (u.<uid>). */
static const char schema_v1[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE TABLE mailboxes("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT NOT NULL UNIQUE,"
	" guid TEXT NOT NULL,"
	" uidvalidity INTEGER NOT NULL,"
	" next_uid INTEGER NOT NULL,"
	" created INTEGER NOT NULL,"
	" change_new_ns INTEGER NOT NULL,"
	" change_cur_ns INTEGER NOT NULL,"
	" subdirs INTEGER NOT NULL DEFAULT 7);"
	"CREATE TABLE keywords("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id)"
	"  ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" name TEXT NOT NULL,"
	" PRIMARY KEY(mailbox_id, idx),"
	" UNIQUE(mailbox_id, name)) WITHOUT ROWID;"
	"CREATE TABLE files("
	" file_id INTEGER PRIMARY KEY,"
	" size INTEGER NOT NULL,"
	" created INTEGER NOT NULL,"
	" sealed INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE messages("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
	" uid INTEGER NOT NULL,"
	" guid TEXT NOT NULL,"
	" base TEXT NOT NULL,"
	" file_id INTEGER NOT NULL,"
	" offset INTEGER NOT NULL,"
	" hdr_size INTEGER NOT NULL,"
	" body_size INTEGER NOT NULL,"
	" rec_size INTEGER NOT NULL,"
	" size INTEGER NOT NULL,"
	" vsize INTEGER NOT NULL,"
	" compression INTEGER NOT NULL,"
	" received INTEGER NOT NULL,"
	" received_ns INTEGER NOT NULL,"
	" saved INTEGER NOT NULL,"
	" flags INTEGER NOT NULL,"
	" keywords INTEGER NOT NULL,"
	" in_new INTEGER NOT NULL,"
	" PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE UNIQUE INDEX messages_by_base ON messages(mailbox_id, base);"
	"CREATE INDEX messages_by_file ON messages(file_id, offset)"
	" WHERE file_id <> 0;"
	"INSERT INTO meta(key, value) VALUES ('seq', '0');";

/* Version 2: what the maildir view keeps of a message besides flags.
 * new_info: 1 if its name in new/ is BASE:2,FLAGS (as delivered or last
 * renamed there: mdeliver, mbsync, Dovecot's maildir driver), 0 for plain
 * BASE; meaningful only while in_new.  mode: st_mode (S_IFREG | the
 * permission bits) as chmod or the delivered file last set it, 0 for the
 * default that follows the store's umask. */
static const char schema_v2[] =
	"ALTER TABLE messages ADD COLUMN new_info INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE messages ADD COLUMN mode INTEGER NOT NULL DEFAULT 0;";

/* Version 3: a message's file name in its directory (what the maildir
 * view shows: BASE in new/ unless new_info, else BASE:2,FLAGS with the
 * letters of dbox_maildir_info_format) is unique per mailbox and
 * directory; its BASE need not be: on a maildir new/X, cur/X:2,S and
 * cur/X:2,F are three files.  The name is a generated column, so that no
 * writer can leave it stale. */
#define NAME_FLAG(bit, letter) \
	"CASE WHEN flags & " #bit " THEN '" letter "' ELSE '' END || "
#define NAME_KW(i) \
	"CASE WHEN (keywords >> " #i ") & 1 THEN char(97 + " #i ") " \
	"ELSE '' END || "
static const char schema_v3[] =
	"ALTER TABLE messages ADD COLUMN name TEXT GENERATED ALWAYS AS ("
	" base || CASE WHEN in_new AND NOT new_info THEN '' ELSE ':2,' || "
	NAME_FLAG(16, "D") NAME_FLAG(2, "F") NAME_FLAG(256, "P")
	NAME_FLAG(1, "R") NAME_FLAG(8, "S") NAME_FLAG(4, "T")
	NAME_KW(0) NAME_KW(1) NAME_KW(2) NAME_KW(3) NAME_KW(4) NAME_KW(5)
	NAME_KW(6) NAME_KW(7) NAME_KW(8) NAME_KW(9) NAME_KW(10) NAME_KW(11)
	NAME_KW(12) NAME_KW(13) NAME_KW(14) NAME_KW(15) NAME_KW(16)
	NAME_KW(17) NAME_KW(18) NAME_KW(19) NAME_KW(20) NAME_KW(21)
	NAME_KW(22) NAME_KW(23) NAME_KW(24) NAME_KW(25)
	"'' END) VIRTUAL;"
	"DROP INDEX messages_by_base;"
	"CREATE INDEX messages_by_base ON messages(mailbox_id, base);"
	"CREATE UNIQUE INDEX messages_by_name ON messages(mailbox_id, in_new,"
	" name);";

/* Version 4: messages committed before their record was durable
 * (deferred commits, dindex-unconfirmed.h): the group flush syncs their
 * files and deletes the rows here; the next read-write open after a
 * power cut verifies the records of those still here.  A row here whose
 * message was expunged or moved away stays until the mount has removed
 * the spool file it kept for it (dindex_unconfirmed_gone; uids are not
 * reused).  seq orders them
 * (AUTOINCREMENT: never reused, so a flush confirms exactly what it
 * synced). */
static const char schema_v4[] =
	"CREATE TABLE unconfirmed("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" mailbox_id INTEGER NOT NULL,"
	" uid INTEGER NOT NULL);";

/* Version 5: changes a takeover mount made to messages of Dovecot's that
 * Dovecot's log does not have yet (it was missing, damaged or locked too
 * long at the change; dindex-owed.h).  kind: 1 flags and keywords (the
 * row's current ones are owed where they differ from base_flags and
 * base_keywords, what the message had before the first owed change), 2
 * expunge (guid: the message's; unref: mdbox, the map counts one
 * reference less once it is handed back), 3 a delivery or a message
 * moved in.  A row goes in the transaction that hands the change back. */
static const char schema_v5[] =
	"CREATE TABLE IF NOT EXISTS dovecot_owed("
	" mailbox_id INTEGER NOT NULL,"
	" uid INTEGER NOT NULL,"
	" kind INTEGER NOT NULL,"
	" guid TEXT NOT NULL DEFAULT '',"
	" unref INTEGER NOT NULL DEFAULT 0,"
	" base_flags INTEGER NOT NULL DEFAULT 0,"
	" base_keywords INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY(mailbox_id, uid, kind)) WITHOUT ROWID;";

/* migrations[v] takes the schema from version v to v + 1 */
static const char *const migrations[DINDEX_SCHEMA_VERSION] = {
	schema_v1,
	schema_v2,
	schema_v3,
	schema_v4,
	schema_v5,
};

static int schema_version(sqlite3 *db, int *version_r)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	*version_r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Runs every migration from the file's version to ours, each in its own
 * transaction together with its user_version bump. */
int dindex_schema_migrate(struct dindex *idx, sqlite3 *db,
			  struct dbox_err *err)
{
	int version, rc;

	rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return dindex_error(idx, rc, "enable WAL", err);
	for (;;) {
		char bump[64];

		rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = schema_version(db, &version);
		if (rc != SQLITE_OK)
			break;
		if (version > DINDEX_SCHEMA_VERSION) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return dbox_fail(err, -EPROTONOSUPPORT, "index %s has "
					 "schema version %d; this dboxfs knows"
					 " up to %d", dindex_path(idx),
					 version, DINDEX_SCHEMA_VERSION);
		}
		if (version == DINDEX_SCHEMA_VERSION) {
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
			return 0;
		}
		snprintf(bump, sizeof(bump), "PRAGMA user_version=%d",
			 version + 1);
		rc = sqlite3_exec(db, migrations[version], NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, bump, NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			break;
	}
	{
		int ret = dbox_fail(err, -EIO, "index %s: migration: %s",
				    dindex_path(idx), sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return ret;
	}
}

int dindex_schema_check_readonly(struct dindex *idx, sqlite3 *db,
				 struct dbox_err *err)
{
	int version;
	int rc = schema_version(db, &version);

	if (rc != SQLITE_OK)
		return dindex_error(idx, rc, "read schema version", err);
	if (version != DINDEX_SCHEMA_VERSION)
		return dbox_fail(err, -EPROTONOSUPPORT, "index %s has schema "
				 "version %d, need %d (open it read-write once"
				 " to migrate)", dindex_path(idx), version,
				 DINDEX_SCHEMA_VERSION);
	return 0;
}
