/* vdirs.h - the fs layout's parents that are no mailbox (A of A/B when
 * only A/B is one), kept in dboxfs's own area of the store.
 *
 * Each is a directory files/vdirs/NAME, NAME its mailbox-name
 * prefix with '%' and '/' written %25 and %2F (one flat directory).  It
 * is what the parent is, as a directory on disk would be:
 *
 *   - its inode number is the parent's identity (view_ino_vdir): the
 *     same across remounts, whatever folders come and go below it, and
 *     across a rename of the parent (the entry is renamed with it);
 *   - its mtime is the parent's time (dirtime.c);
 *   - while it is there the parent is there, with or without folders
 *     below it (an empty A stays after rmdir A/B, as on ext4); rmdir of
 *     the empty parent removes it;
 *   - the plain files clients keep in the parent are its files (the
 *     parent's backing area, as files/<mailbox id> is a folder's): they
 *     move with it, keep rmdir from removing it, and become the
 *     folder's files when it becomes a mailbox (vdirs_hand_over).
 *
 * A read-write mount makes the entry of every parent it shows (with the
 * time of its first folder's creation).  A read-only mount makes none:
 * a parent without an entry, or whose name is too long for one, has the
 * identity vdirs_hash_id of its name (stable while its name is).  A
 * read-only mount of a tree taken over reads the tree's entries
 * (dbox_store_vdirs_dir), its index being outside the tree.
 * Dovecot never looks there: files/ is below dboxfs's control directory,
 * not below mailboxes/. */
#ifndef DBOXFS_VDIRS_H
#define DBOXFS_VDIRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* An identity has bit 59 set when it is a hash (vdirs_hash_id), so it
 * never equals an entry's inode number (those below 2^59). */
#define VDIRS_HASH_BIT (1ull << 59)

struct vdir_entry {
	char *name;       /* the mailbox-name prefix */
	uint64_t id;      /* identity: the entry's inode number */
};

/* The entries in files_dir/vdirs, sorted by name: 0, or -errno (none
 * when the directory does not exist: 0 and *n 0). */
int vdirs_list(const char *files_dir, struct vdir_entry **e, size_t *n);
void vdirs_list_free(struct vdir_entry *e, size_t n);
/* The identity of the entry `name` in the sorted list, or 0. */
uint64_t vdirs_find(const struct vdir_entry *e, size_t n, const char *name,
		    size_t len);
/* The identity of a parent without an entry: a hash of name[0..len). */
uint64_t vdirs_hash_id(const char *name, size_t len);

/* Makes the entry of `prefix` with mtime ns (a parent the view shows
 * now): 0 and its identity, -EEXIST if it is there (identity filled),
 * -ENAMETOOLONG if the name is too long for one, or -errno. */
int vdirs_make(const char *files_dir, const char *prefix, int64_t ns,
	       uint64_t *id_r);
/* Removes the entry of `prefix` (an empty parent's rmdir, or a parent
 * that is a mailbox now): 0, or -errno (-ENOENT if none). */
int vdirs_remove(const char *files_dir, const char *prefix);
/* The parent `from` (and everything below it) is `to` now: the entries
 * move, so the parents keep their identities and times. */
void vdirs_rename(const char *files_dir, const char *from, const char *to);
/* An O_PATH descriptor of the entry of `prefix` (the parent's backing
 * area); with make, the entry is made if missing (with the time of
 * now).  -ENOENT without one, -ENAMETOOLONG if the name is too long. */
int vdirs_open(const char *files_dir, const char *prefix, bool make,
	       int *fd_r);
/* Whether the entry of `prefix` holds plain files. */
bool vdirs_has_files(const char *files_dir, const char *prefix);
/* The parent `prefix` became mailbox `box`: its plain files move to
 * that folder's area files_dir/BOX (made if missing), and the entry
 * goes.  0, or -errno (a name
 * the area has already stays in the entry, which then stays too). */
int vdirs_hand_over(const char *files_dir, const char *prefix, int64_t box);
/* mtime (ns) of the entry of `prefix`, 0 if it has none. */
int64_t vdirs_mtime(const char *files_dir, const char *prefix);
/* utimensat(2) of the entry of `prefix`, made if missing. */
void vdirs_set_times(const char *files_dir, const char *prefix,
		     const struct timespec tv[2]);

#endif
