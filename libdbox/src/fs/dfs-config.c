/* dfs-config.c - the configuration string and the wrapper drivers:
 *
 *   config  = layer *( "/" layer )      outermost first, "posix" last
 *   layer   = "posix"
 *           / "delay:" duration           duration = number ("us"/"ms"/"s")
 *           / "randomfail:" errname ":" percent "%" [ ":" class ]
 *   class   = "read" / "write" / "sync" / "meta"
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/dfs-private.h"

static int bad(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

enum dfs_op_class dfs_op_class_of(const struct dfs_req *req)
{
	switch (req->op) {
	case DFS_OP_OPEN:
		return (req->flags & O_ACCMODE) == O_RDONLY &&
			!(req->flags & (O_CREAT | DFS_O_TEMP)) ?
			DFS_CLASS_READ : DFS_CLASS_WRITE;
	case DFS_OP_PREAD:
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
		return 0;   /* close, rollback, unlock: cleanup never fails */
	}
}

/* ----------------------------------------------------------------- delay */

struct delay_layer {
	struct dfs_layer l;
	struct timespec ts;
};

static void delay_exec(struct dfs_layer *layer, struct dfs_req *req)
{
	struct delay_layer *d = (struct delay_layer *)layer;
	struct timespec left = d->ts;

	/* on the worker: concurrent requests wait side by side, which is
	 * what slow storage with many requests in flight looks like */
	while (nanosleep(&left, &left) < 0 && errno == EINTR)
		;
	layer->next->exec(layer->next, req);
}

static int parse_duration(const char *s, struct timespec *ts)
{
	char *end;
	double v = strtod(s, &end);
	double ns;

	if (end == s || v < 0)
		return -1;
	if (strcmp(end, "us") == 0)
		ns = v * 1e3;
	else if (strcmp(end, "ms") == 0)
		ns = v * 1e6;
	else if (strcmp(end, "s") == 0)
		ns = v * 1e9;
	else
		return -1;
	if (ns > 3600e9)
		return -1;
	ts->tv_sec = (time_t)(ns / 1e9);
	ts->tv_nsec = (long)(ns - (double)ts->tv_sec * 1e9);
	return 0;
}

static int delay_new(const char *args, struct dfs_layer **l_r, char *errbuf,
		     size_t errlen)
{
	struct delay_layer *d;
	struct timespec ts;

	if (args == NULL || parse_duration(args, &ts) < 0)
		return bad(errbuf, errlen, "delay: bad duration \"%s\" (use e.g."
			   " delay:5ms, units us, ms, s)", args ? args : "");
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->l.name = "delay";
	d->l.exec = delay_exec;
	d->ts = ts;
	*l_r = &d->l;
	return 0;
}

/* ------------------------------------------------------------ randomfail */

struct randomfail_layer {
	struct dfs_layer l;
	int err;                 /* -errno */
	double fraction;
	unsigned int classes;
	pthread_mutex_t lock;
	uint64_t state;          /* xorshift64* */
};

static double next_random(struct randomfail_layer *r)
{
	uint64_t x;

	pthread_mutex_lock(&r->lock);
	x = r->state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->state = x;
	pthread_mutex_unlock(&r->lock);
	return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static void randomfail_exec(struct dfs_layer *layer, struct dfs_req *req)
{
	struct randomfail_layer *r = (struct randomfail_layer *)layer;
	unsigned int cls = dfs_op_class_of(req);

	if ((cls & r->classes) != 0 && next_random(r) < r->fraction) {
		req->res.err = r->err;
		return;
	}
	layer->next->exec(layer->next, req);
}

static void randomfail_free(struct dfs_layer *layer)
{
	struct randomfail_layer *r = (struct randomfail_layer *)layer;

	pthread_mutex_destroy(&r->lock);
}

static const struct {
	const char *name;
	int err;
} errnames[] = {
	{ "eio", EIO }, { "enospc", ENOSPC }, { "eacces", EACCES },
	{ "erofs", EROFS }, { "enomem", ENOMEM }, { "eagain", EAGAIN },
	{ "edquot", EDQUOT }, { "etimedout", ETIMEDOUT },
};

static const struct {
	const char *name;
	unsigned int cls;
} classnames[] = {
	{ "read", DFS_CLASS_READ }, { "write", DFS_CLASS_WRITE },
	{ "sync", DFS_CLASS_SYNC }, { "meta", DFS_CLASS_META },
};

static int parse_percent(const char *s, double *frac)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || strcmp(end, "%") != 0 || v < 0 || v > 100)
		return -1;
	*frac = v / 100.0;
	return 0;
}

static int randomfail_new(char *args, uint64_t seed, struct dfs_layer **l_r,
			  char *errbuf, size_t errlen)
{
	char *err_s = args, *pct_s, *cls_s = NULL;
	struct randomfail_layer *r;
	unsigned int classes = DFS_CLASS_READ | DFS_CLASS_WRITE |
		DFS_CLASS_SYNC | DFS_CLASS_META;
	double frac;
	int err = 0;

	if (args == NULL || (pct_s = strchr(args, ':')) == NULL)
		return bad(errbuf, errlen, "randomfail: use randomfail:ERROR:"
			   "PERCENT%%[:CLASS], e.g. randomfail:eio:1%%");
	*pct_s++ = '\0';
	cls_s = strchr(pct_s, ':');
	if (cls_s != NULL)
		*cls_s++ = '\0';
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++) {
		if (strcmp(err_s, errnames[i].name) == 0)
			err = errnames[i].err;
	}
	if (err == 0)
		return bad(errbuf, errlen, "randomfail: unknown error \"%s\" "
			   "(eio, enospc, eacces, erofs, enomem, eagain, edquot,"
			   " etimedout)", err_s);
	if (parse_percent(pct_s, &frac) < 0)
		return bad(errbuf, errlen, "randomfail: bad percentage \"%s\" "
			   "(0%% to 100%%)", pct_s);
	if (cls_s != NULL) {
		classes = 0;
		for (size_t i = 0; i < 4; i++) {
			if (strcmp(cls_s, classnames[i].name) == 0)
				classes = classnames[i].cls;
		}
		if (classes == 0)
			return bad(errbuf, errlen, "randomfail: unknown class "
				   "\"%s\" (read, write, sync, meta)", cls_s);
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->l.name = "randomfail";
	r->l.exec = randomfail_exec;
	r->l.free = randomfail_free;
	r->err = -err;
	r->fraction = frac;
	r->classes = classes;
	pthread_mutex_init(&r->lock, NULL);
	r->state = seed != 0 ? seed : (uint64_t)time(NULL) * 2654435761u + 1;
	*l_r = &r->l;
	return 0;
}

/* ------------------------------------------------------------- the stack */

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

static int layer_new(char *item, uint64_t seed, bool last,
		     struct dfs_layer **l_r, char *errbuf, size_t errlen)
{
	char *args = strchr(item, ':');

	if (args != NULL)
		*args++ = '\0';
	if (strcmp(item, "posix") == 0) {
		if (args != NULL)
			return bad(errbuf, errlen, "posix takes no arguments");
		if (!last)
			return bad(errbuf, errlen, "posix must be the last "
				   "layer");
		*l_r = dfs_posix_new();
		return *l_r == NULL ? -ENOMEM : 0;
	}
	if (last)
		return bad(errbuf, errlen, "the last layer must be posix, not "
			   "\"%s\"", item);
	if (strcmp(item, "delay") == 0)
		return delay_new(args, l_r, errbuf, errlen);
	if (strcmp(item, "randomfail") == 0)
		return randomfail_new(args, seed, l_r, errbuf, errlen);
	return bad(errbuf, errlen, "unknown fs driver \"%s\" (posix, delay, "
		   "randomfail)", item);
}

int dfs_stack_build(const char *config, uint64_t seed, struct dfs_layer **top_r,
		    char *errbuf, size_t errlen)
{
	struct dfs_layer *top = NULL, **tail = &top;
	char *copy, *item, *save = NULL;
	int ret = 0, n = 0;

	if (config == NULL || config[0] == '\0')
		config = "posix";
	copy = strdup(config);
	if (copy == NULL)
		return -ENOMEM;
	for (item = strtok_r(copy, "/", &save); item != NULL && ret == 0;
	     item = strtok_r(NULL, "/", &save), n++) {
		struct dfs_layer *l = NULL;
		bool last = save == NULL || *save == '\0';

		ret = layer_new(item, seed + (uint64_t)n, last, &l, errbuf,
				errlen);
		if (ret == 0) {
			*tail = l;
			tail = &l->next;
		}
	}
	if (ret == 0 && (top == NULL || strstr(config, "//") != NULL ||
			 config[strlen(config) - 1] == '/' || config[0] == '/'))
		ret = bad(errbuf, errlen, "empty layer in \"%s\"", config);
	free(copy);
	if (ret < 0) {
		dfs_stack_free(top);
		return ret;
	}
	*top_r = top;
	return 0;
}
