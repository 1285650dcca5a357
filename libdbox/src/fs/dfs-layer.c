/* dfs-layer.c - what every driver shares: passing a request on, the class
 * of an operation, freeing a stack, reporting a bad argument. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fs/dfs-layer.h"

enum dfs_exec dfs_layer_next(struct dfs_layer *layer, struct dfs_req *req)
{
	return layer->next->exec(layer->next, req);
}

enum dfs_op_class dfs_op_class_of(const struct dfs_req *req)
{
	switch (req->op) {
	case DFS_OP_OPEN:
		return (req->flags & O_ACCMODE) == O_RDONLY &&
			(req->flags & (O_CREAT | O_TRUNC | DFS_O_TEMP)) == 0 ?
			DFS_CLASS_READ : DFS_CLASS_WRITE;
	case DFS_OP_PREAD:
	case DFS_OP_READ_FD:
	case DFS_OP_STAT:
	case DFS_OP_FSTAT:
		return DFS_CLASS_READ;
	case DFS_OP_PWRITE:
	case DFS_OP_APPEND:
	case DFS_OP_TRUNCATE:
	case DFS_OP_MKDIR:
		return DFS_CLASS_WRITE;
	case DFS_OP_COMMIT:
	case DFS_OP_FSYNC:
	case DFS_OP_FSYNC_DIR:
		return DFS_CLASS_SYNC;
	case DFS_OP_UNLINK:
	case DFS_OP_RENAME:
	case DFS_OP_TRY_LOCK:
		return DFS_CLASS_META;
	default:
		return 0;
	}
}

void dfs_stack_free(struct dfs_layer *top)
{
	while (top != NULL) {
		struct dfs_layer *next = top->next;

		if (top->free != NULL)
			top->free(top);
		free(top);
		top = next;
	}
}

int dfs_layer_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}
