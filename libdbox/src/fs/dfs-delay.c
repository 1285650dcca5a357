/* dfs-delay.c - the delay wrapper (see dfs-delay.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/dfs-config.h"
#include "fs/dfs-delay.h"

/* Longer would only ever be a typo, and it would hold dfs_free. */
#define DELAY_MAX_NS 60e9

struct delay_layer {
	struct dfs_layer l;
	struct timespec ts;         /* immutable */
};

static enum dfs_exec delay_exec(struct dfs_layer *layer, struct dfs_req *req)
{
	struct delay_layer *d = (struct delay_layer *)layer;
	struct timespec left = d->ts;

	/* on the worker, not in a timer: a slow disk keeps a thread busy
	 * for as long, and that is what the pool has to cope with */
	while (nanosleep(&left, &left) < 0 && errno == EINTR)
		;
	return dfs_layer_next(layer, req);
}

static int parse_duration(const char *s, struct timespec *ts)
{
	static const struct { const char *unit; double ns; } units[] = {
		{ "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
	};
	double v, ns = -1;
	const char *unit = dfs_parse_decimal(s, &v);

	for (size_t i = 0; unit != NULL && i < 3; i++) {
		if (strcmp(unit, units[i].unit) == 0)
			ns = v * units[i].ns;
	}
	if (ns < 0 || ns > DELAY_MAX_NS)
		return -1;
	ts->tv_sec = (time_t)(ns / 1e9);
	ts->tv_nsec = (long)(ns - (double)ts->tv_sec * 1e9);
	return 0;
}

int dfs_delay_new(const char *args, uint64_t seed, struct dfs_layer **l_r,
		  char *errbuf, size_t errlen)
{
	struct delay_layer *d;
	struct timespec ts;

	(void)seed;
	if (args == NULL)
		return dfs_layer_error(errbuf, errlen, "delay needs a duration, "
				       "e.g. delay:5ms");
	if (parse_duration(args, &ts) < 0)
		return dfs_layer_error(errbuf, errlen, "delay: bad duration "
				       "\"%s\" (a number and us, ms or s, at "
				       "most 60s, e.g. delay:5ms)", args);
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->l.name = "delay";
	d->l.exec = delay_exec;
	d->ts = ts;
	*l_r = &d->l;
	return 0;
}
