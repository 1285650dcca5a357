/* dfs-layer.h - the interface every fs driver implements, and the stack.
 *
 * A driver's exec() performs the request (posix), or fails it (randomfail),
 * or delays it (delay), and usually passes it on to the next layer.  exec()
 * runs on a worker thread with no lock held and fills req->res.  It
 * returns DFS_EXEC_DONE when the request is finished, or DFS_EXEC_PENDING
 * when an asynchronous backend (uring) took it: that one calls
 * dfs_req_done() once it is finished, and nobody may touch the request
 * after exec() handed it over that way.  Wrappers act before they pass a
 * request on, so they only forward what the layer below returns.  Requests
 * of one handle that may run at the same time are only reads, positional
 * writes and fstat (the front end orders the rest), so a driver may change
 * the handle's private fields in an ordered request without locking.
 * A layer is immutable after construction except for state it protects
 * itself; the stack owns its layers and frees them top down.
 */
#ifndef DFS_LAYER_H
#define DFS_LAYER_H

#include "fs/dfs-private.h"

enum dfs_exec { DFS_EXEC_DONE, DFS_EXEC_PENDING };

struct dfs_layer {
	const char *name;
	enum dfs_exec (*exec)(struct dfs_layer *layer, struct dfs_req *req);
	void (*free)(struct dfs_layer *layer);  /* may be NULL */
	struct dfs_layer *next;                 /* NULL below posix */
};

/* Constructor of a driver from the text after "name:" (NULL without a
 * colon); writes the reason into errbuf and returns -EINVAL when the
 * arguments are bad. */
typedef int dfs_layer_new_fn(const char *args, uint64_t seed,
			     struct dfs_layer **layer_r, char *errbuf,
			     size_t errlen);

/* Passes the request on to the layer below. */
enum dfs_exec dfs_layer_next(struct dfs_layer *layer, struct dfs_req *req);
/* An asynchronous backend finished a request it returned DFS_EXEC_PENDING
 * for (any thread, no lock held); a worker completes it. */
void dfs_req_done(struct dfs_req *req);
/* The randomfail class of a request (0: close, rollback and unlock, which
 * are in no class: cleanup is never failed on purpose, see fs.h). */
enum dfs_op_class dfs_op_class_of(const struct dfs_req *req);
/* Frees a stack from its top. */
void dfs_stack_free(struct dfs_layer *top);
/* Writes a reason into errbuf (if any) and returns -EINVAL. */
int dfs_layer_error(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
