/* mdbox-maplock.h - a new m.N of a tree that Dovecot shares, named under
 * Dovecot's map lock.
 *
 * Dovecot names a new m.N after the highest file id of its map
 * (storage/dovecot.map.index, the `map` header) under the map's lock, the
 * lock of its log (mdbox_map_assign_file_ids: highest + 1), and when an
 * m.N of that name is there its save fails and it rebuilds its indexes
 * (mdbox_file_assign_file_id).  So an m.N of ours is made under that same
 * lock, above that id, which is raised to it before the lock is dropped:
 * a header update appended to the map's log as Dovecot's syncs write it.
 * Dovecot's next file is then the one after ours, whether or not our
 * messages in it were handed back yet.
 *
 * Thread-safe: one section at a time per store (store->maplock_mutex,
 * held from take to release; the map read there is the store's). */
#ifndef MDBOX_MAPLOCK_H
#define MDBOX_MAPLOCK_H

#include <stdint.h>

#include "dbox/store.h"

struct mdbox_maplock;

/* Takes the lock of the tree's map (waiting at most the store's
 * dovecot_lock_ms) and reads the map: *highest_r, its highest file id.
 * 0 with *ml_r NULL: the tree has no map of Dovecot's (Dovecot, making
 * one, looks at the m.N there first).  -ETIMEDOUT: the map stayed
 * locked; another -errno: its lock cannot be had (err says why);
 * nothing is held then.  A map locked but unreadable gives *highest_r 0
 * (its raise then fails with -EBADMSG). */
int mdbox_maplock_take(struct dbox_store *store, struct mdbox_maplock **ml_r,
		       uint32_t *highest_r, struct dbox_err *err);
/* Raises the map's highest file id to file_id (above *highest_r), the
 * lock kept.  0; -EBADMSG: the map is damaged (unreadable, marked
 * corrupted, or with changes a sync of Dovecot's did not finish: its
 * next sync rebuilds it from the m.N there, and its save in the
 * meantime may fail), -ENOENT: it has no `map` records yet, nothing was
 * written; another -errno. */
int mdbox_maplock_raise(struct mdbox_maplock *ml, uint32_t file_id,
			struct dbox_err *err);
/* Drops the lock (ml may be NULL). */
void mdbox_maplock_release(struct mdbox_maplock *ml);
/* The map read under the lock freed (the store's end). */
void mdbox_maplock_free(struct dbox_store *store);

#endif
