/* loop.h - the daemon's own multi-threaded session loop (libfuse 3.14's
 * public fuse_session_receive_buf / fuse_session_process_buf).
 *
 * libfuse's loop keeps every idle worker blocked in read(/dev/fuse); the
 * kernel wakes the longest-waiting one for each request, so a client that
 * opens files one after the other has its OPEN and RELEASE handled by a
 * different thread each time, and a thread woken for a request that a
 * just-finished thread took already wakes for nothing.  Here at most one
 * thread reads the device (the reader).  A request the daemon answers
 * from memory (loop_quick_fn) is handled by the reader itself, which then
 * reads the next one: a sequential client is served by one thread, with
 * no wake-up but the kernel's.  Before any other request the reader hands
 * its role to the most recently idle worker (or starts one, up to
 * max_threads), so that no request ever waits behind another's disk I/O,
 * SQLite access or pool hand-off.  Idle workers wait on their own
 * condition variable, not on the device: they cost nothing.  While
 * handed-off requests come (a cold pass: lookups, reads), a second
 * reader waits in the device, so that they need no wake-up of an idle
 * worker each; after a run of quick requests it goes idle again. */
#ifndef DBOXFS_LOOP_H
#define DBOXFS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "dboxfs.h"

/* What the loop tells the daemon about a request before running it. */
enum loop_req_kind { LOOP_REQ_OTHER, LOOP_REQ_OPEN, LOOP_REQ_RELEASE };

struct loop_req {
	enum loop_req_kind kind;
	uint64_t ino;
	int flags;      /* OPEN: the open(2) flags */
	uint64_t fh;    /* RELEASE: the handle the open gave */
};

/* Whether the request will be answered from memory, without waiting for
 * any lock held across I/O: then the reader runs it itself.  Called on
 * the reader thread; may be called for any request kind. */
typedef bool (*loop_quick_fn)(void *ctx, const struct loop_req *r);

/* Runs the session until it ends (unmount, fuse_session_exit, a
 * signal); max_threads >= 1, max_idle < 0 for no limit on idle workers.
 * Returns 0 or a negative errno of the device. */
int loop_run(struct fuse_session *se, unsigned max_threads, int max_idle,
	     loop_quick_fn quick, void *ctx);

#endif
