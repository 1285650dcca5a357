/* dfs-randomfail.c - the fault-injection wrapper (see dfs-randomfail.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fs/dfs-config.h"
#include "fs/dfs-randomfail.h"

#define ALL_CLASSES (DFS_CLASS_READ | DFS_CLASS_WRITE | DFS_CLASS_SYNC | \
		     DFS_CLASS_META)

struct randomfail_layer {
	struct dfs_layer l;
	int err;                    /* -errno; immutable like the next two */
	double fraction;
	unsigned int classes;
	pthread_mutex_t lock;       /* state */
	uint64_t state;             /* xorshift64* */
};

static const struct { const char *name; int err; } errnames[] = {
	{ "eio", EIO }, { "enospc", ENOSPC }, { "eacces", EACCES },
	{ "erofs", EROFS }, { "enomem", ENOMEM }, { "eagain", EAGAIN },
	{ "edquot", EDQUOT }, { "etimedout", ETIMEDOUT },
};
#define ERROR_NAMES "eio, enospc, eacces, erofs, enomem, eagain, edquot, " \
	"etimedout"

static const struct { const char *name; unsigned int cls; } classnames[] = {
	{ "read", DFS_CLASS_READ }, { "write", DFS_CLASS_WRITE },
	{ "sync", DFS_CLASS_SYNC }, { "meta", DFS_CLASS_META },
};

/* A uniform number in [0, 1). */
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

static enum dfs_exec randomfail_exec(struct dfs_layer *layer,
				     struct dfs_req *req)
{
	struct randomfail_layer *r = (struct randomfail_layer *)layer;

	if ((dfs_op_class_of(req) & r->classes) != 0 &&
	    next_random(r) < r->fraction) {
		req->res.err = r->err;
		req->injected = true;
		return DFS_EXEC_DONE;
	}
	return dfs_layer_next(layer, req);
}

static void randomfail_free(struct dfs_layer *layer)
{
	struct randomfail_layer *r = (struct randomfail_layer *)layer;

	pthread_mutex_destroy(&r->lock);
}

static int parse_error(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++) {
		if (strlen(errnames[i].name) == len &&
		    strncasecmp(errnames[i].name, s, len) == 0)
			return errnames[i].err;
	}
	return 0;
}

/* "PERCENT%" followed by the end or ":"; returns what follows. */
static const char *parse_percent(const char *s, double *frac_r)
{
	double v;
	const char *p = dfs_parse_decimal(s, &v);

	if (p == NULL || *p != '%' || (p[1] != '\0' && p[1] != ':') ||
	    v > 100)
		return NULL;
	*frac_r = v / 100;
	return p + 1;
}

static unsigned int parse_class(const char *s)
{
	for (size_t i = 0; i < sizeof(classnames) / sizeof(classnames[0]); i++) {
		if (strcmp(classnames[i].name, s) == 0)
			return classnames[i].cls;
	}
	return 0;
}

struct randomfail_args {
	int err;
	double fraction;
	unsigned int classes;
};

static int parse_args(const char *args, struct randomfail_args *a,
		      char *errbuf, size_t errlen)
{
	const char *colon = args != NULL ? strchr(args, ':') : NULL;
	const char *rest;

	if (colon == NULL)
		return dfs_layer_error(errbuf, errlen, "randomfail: use randomfail"
				       ":ERROR:PERCENT%%[:CLASS], e.g. "
				       "randomfail:eio:1%%");
	a->err = parse_error(args, (size_t)(colon - args));
	if (a->err == 0)
		return dfs_layer_error(errbuf, errlen, "randomfail: unknown "
				       "error \"%.*s\" (" ERROR_NAMES ")",
				       (int)(colon - args), args);
	rest = parse_percent(colon + 1, &a->fraction);
	if (rest == NULL)
		return dfs_layer_error(errbuf, errlen, "randomfail: bad "
				       "percentage \"%s\" (0%% to 100%%, e.g. "
				       "1%% or 0.5%%)", colon + 1);
	a->classes = ALL_CLASSES;
	if (*rest == ':' && (a->classes = parse_class(rest + 1)) == 0)
		return dfs_layer_error(errbuf, errlen, "randomfail: unknown "
				       "class \"%s\" (read, write, sync, meta)",
				       rest + 1);
	return 0;
}

int dfs_randomfail_new(const char *args, uint64_t seed,
		       struct dfs_layer **l_r, char *errbuf, size_t errlen)
{
	struct randomfail_args a = { 0 };
	struct randomfail_layer *r;
	int ret = parse_args(args, &a, errbuf, errlen);

	if (ret < 0)
		return ret;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->l.name = "randomfail";
	r->l.exec = randomfail_exec;
	r->l.free = randomfail_free;
	r->err = -a.err;
	r->fraction = a.fraction;
	r->classes = a.classes;
	pthread_mutex_init(&r->lock, NULL);
	if (seed == 0)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)r << 16);
	r->state = seed * 0x9E3779B97F4A7C15ull | 1;  /* never 0 */
	*l_r = &r->l;
	return 0;
}
