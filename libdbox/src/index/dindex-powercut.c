/* dindex-powercut.c - SQLite's files under the power-cut simulator.
 *
 * A VFS shim over the default VFS: the database and its WAL get the
 * simulator's treatment (fs/dfs-powercut.h): a write, truncate or sync
 * of one is an event, and what was written since its last sync is undone
 * at the cut.  Every other call, and every other file (the -shm, temp
 * files), goes to the real VFS unchanged.  The simulator needs a
 * descriptor of each file: the shim opens its own (same inode). */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbox/fs.h"
#include "index/dindex-private.h"

struct pc_file {
	sqlite3_file base;          /* our methods */
	int fd;                     /* -1: not watched */
	sqlite3_file real[];        /* the real VFS's file, szOsFile bytes */
};

static sqlite3_vfs pc_vfs;
static sqlite3_vfs *real_vfs;
static struct sqlite3_io_methods pc_methods;

static sqlite3_file *real_of(sqlite3_file *f)
{
	return ((struct pc_file *)f)->real;
}

static int pc_close(sqlite3_file *f)
{
	struct pc_file *p = (struct pc_file *)f;
	int rc = p->real->pMethods->xClose(p->real);

	if (p->fd >= 0)
		close(p->fd);
	return rc;
}

static int pc_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}

static int pc_write(sqlite3_file *f, const void *buf, int n,
		    sqlite3_int64 off)
{
	struct pc_file *p = (struct pc_file *)f;
	int rc;

	if (p->fd < 0)
		return p->real->pMethods->xWrite(p->real, buf, n, off);
	dfs_powercut_write(p->fd, (off_t)off, (size_t)n);
	rc = p->real->pMethods->xWrite(p->real, buf, n, off);
	dfs_powercut_done(p->fd, false);
	return rc;
}

static int pc_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct pc_file *p = (struct pc_file *)f;
	int rc;

	if (p->fd < 0)
		return p->real->pMethods->xTruncate(p->real, size);
	dfs_powercut_truncate(p->fd, (off_t)size);
	rc = p->real->pMethods->xTruncate(p->real, size);
	dfs_powercut_done(p->fd, false);
	return rc;
}

static int pc_sync(sqlite3_file *f, int flags)
{
	struct pc_file *p = (struct pc_file *)f;
	int rc;

	if (p->fd < 0)
		return p->real->pMethods->xSync(p->real, flags);
	dfs_powercut_sync(p->fd);
	rc = p->real->pMethods->xSync(p->real, flags);
	dfs_powercut_done(p->fd, rc == SQLITE_OK);
	return rc;
}

static int pc_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int pc_lock(sqlite3_file *f, int lock)
{
	return real_of(f)->pMethods->xLock(real_of(f), lock);
}

static int pc_unlock(sqlite3_file *f, int lock)
{
	return real_of(f)->pMethods->xUnlock(real_of(f), lock);
}

static int pc_check_lock(sqlite3_file *f, int *out)
{
	return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int pc_fcntl(sqlite3_file *f, int op, void *arg)
{
	return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int pc_sector(sqlite3_file *f)
{
	return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int pc_devchar(sqlite3_file *f)
{
	return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int pc_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
		      void volatile **pp)
{
	return real_of(f)->pMethods->xShmMap(real_of(f), pg, pgsz, extend,
					     pp);
}

static int pc_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return real_of(f)->pMethods->xShmLock(real_of(f), off, n, flags);
}

static void pc_shm_barrier(sqlite3_file *f)
{
	real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int pc_shm_unmap(sqlite3_file *f, int del)
{
	return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}

static int pc_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
		   int flags, int *out_flags)
{
	struct pc_file *p = (struct pc_file *)f;
	int rc;

	(void)vfs;
	p->fd = -1;
	p->base.pMethods = NULL;
	rc = real_vfs->xOpen(real_vfs, name, p->real, flags, out_flags);
	if (rc != SQLITE_OK)
		return rc;
	if (name != NULL && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)))
		p->fd = open(name, O_RDONLY | O_CLOEXEC);
	p->base.pMethods = &pc_methods;
	return SQLITE_OK;
}

static int pc_delete(sqlite3_vfs *v, const char *name, int sync)
{
	(void)v;
	return real_vfs->xDelete(real_vfs, name, sync);
}

static int pc_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int pc_fullpath(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int pc_random(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int pc_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return real_vfs->xSleep(real_vfs, us);
}

static int pc_time(sqlite3_vfs *v, double *t)
{
	(void)v;
	return real_vfs->xCurrentTime(real_vfs, t);
}

static int pc_last_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs->xGetLastError(real_vfs, n, out);
}

static int pc_time64(sqlite3_vfs *v, sqlite3_int64 *t)
{
	(void)v;
	return real_vfs->xCurrentTimeInt64(real_vfs, t);
}

static void pc_register_once(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	if (real_vfs == NULL || real_vfs->iVersion < 2)
		return;
	pc_methods = (struct sqlite3_io_methods){
		.iVersion = 2, .xClose = pc_close, .xRead = pc_read,
		.xWrite = pc_write, .xTruncate = pc_truncate,
		.xSync = pc_sync, .xFileSize = pc_file_size,
		.xLock = pc_lock, .xUnlock = pc_unlock,
		.xCheckReservedLock = pc_check_lock,
		.xFileControl = pc_fcntl, .xSectorSize = pc_sector,
		.xDeviceCharacteristics = pc_devchar, .xShmMap = pc_shm_map,
		.xShmLock = pc_shm_lock, .xShmBarrier = pc_shm_barrier,
		.xShmUnmap = pc_shm_unmap,
	};
	pc_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct pc_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = "dboxfs-powercut",
		.xOpen = pc_open, .xDelete = pc_delete, .xAccess = pc_access,
		.xFullPathname = pc_fullpath, .xRandomness = pc_random,
		.xSleep = pc_sleep, .xCurrentTime = pc_time,
		.xGetLastError = pc_last_error,
		.xCurrentTimeInt64 = pc_time64,
	};
	sqlite3_vfs_register(&pc_vfs, 1);
}

void dindex_powercut_register(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	if (dfs_powercut_active())
		pthread_once(&once, pc_register_once);
}
