/* dfs-config.c - parses the configuration string into a stack of drivers.
 * Each driver parses its own arguments; this file splits the string,
 * finds the drivers and checks the shape of the stack (wrappers on top,
 * exactly one backend, at the bottom). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/dfs-config.h"
#include "fs/dfs-delay.h"
#include "fs/dfs-layer.h"
#include "fs/dfs-posix.h"
#include "fs/dfs-powercut.h"
#include "fs/dfs-randomfail.h"
#include "fs/dfs-uring.h"

static const struct driver {
	const char *name;
	dfs_layer_new_fn *create;
	bool backend;               /* bottom of the stack, nothing below */
} drivers[] = {
	{ "posix", dfs_posix_new, true },
	{ "uring", dfs_uring_new, true },
	{ "delay", dfs_delay_new, false },
	{ "randomfail", dfs_randomfail_new, false },
	{ "powercut", dfs_powercut_new, false },
};
#define DRIVER_NAMES "posix, uring, delay, randomfail, powercut"

const char *dfs_parse_decimal(const char *s, double *v_r)
{
	const char *p = s;
	double v = 0, scale = 1;

	while (*p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	if (p == s)
		return NULL;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return NULL;
		for (p++; *p >= '0' && *p <= '9'; p++) {
			scale /= 10;
			v += (*p - '0') * scale;
		}
	}
	*v_r = v;
	return p;
}

static const struct driver *driver_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		if (strlen(drivers[i].name) == len &&
		    strncmp(drivers[i].name, name, len) == 0)
			return &drivers[i];
	}
	return NULL;
}

/* For the message about an unknown driver: "posix2" or "delay 5ms" are
 * a known name with garbage after it. */
static const struct driver *driver_prefix(const char *name)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		if (strncmp(drivers[i].name, name, strlen(drivers[i].name)) == 0)
			return &drivers[i];
	}
	return NULL;
}

static int unknown_driver(const char *item, size_t namelen, char *errbuf,
			  size_t errlen)
{
	const struct driver *d = driver_prefix(item);

	if (d != NULL)
		return dfs_layer_error(errbuf, errlen, "trailing garbage \"%.*s\""
				       " after fs driver \"%s\"",
				       (int)(namelen - strlen(d->name)),
				       item + strlen(d->name), d->name);
	return dfs_layer_error(errbuf, errlen, "unknown fs driver \"%.*s\" "
			       "(known: " DRIVER_NAMES ")", (int)namelen,
			       item);
}

/* One "name[:args]" item; `last` says whether it is at the bottom. */
static int layer_new(const char *item, uint64_t seed, bool last,
		     struct dfs_layer **l_r, char *errbuf, size_t errlen)
{
	const char *colon = strchr(item, ':');
	size_t namelen = colon != NULL ? (size_t)(colon - item) : strlen(item);
	const struct driver *d = driver_find(item, namelen);

	if (d == NULL)
		return unknown_driver(item, namelen, errbuf, errlen);
	if (d->backend && !last)
		return dfs_layer_error(errbuf, errlen, "\"%s\" must be the last "
				       "layer: nothing can be under a backend",
				       item);
	if (!d->backend && last)
		return dfs_layer_error(errbuf, errlen, "missing backend at the "
				       "end: \"%s\" is a wrapper, add \"/posix\""
				       " or \"/uring\"",
				       item);
	return d->create(colon != NULL ? colon + 1 : NULL, seed, l_r, errbuf,
			 errlen);
}

static int check_shape(const char *config, char *errbuf, size_t errlen)
{
	size_t n = strlen(config);

	if (config[0] == '/' || config[n - 1] == '/' ||
	    strstr(config, "//") != NULL)
		return dfs_layer_error(errbuf, errlen, "empty layer in \"%s\" "
				       "(layers are separated by one '/')",
				       config);
	return 0;
}

int dfs_stack_build(const char *config, uint64_t seed,
		    struct dfs_layer **top_r, char *errbuf, size_t errlen)
{
	struct dfs_layer *top = NULL, **tail = &top;
	char *copy, *item, *save = NULL;
	int ret, n = 0;

	if (config == NULL || config[0] == '\0')
		config = "posix";
	ret = check_shape(config, errbuf, errlen);
	if (ret < 0)
		return ret;
	copy = strdup(config);
	if (copy == NULL)
		return -ENOMEM;
	for (item = strtok_r(copy, "/", &save); item != NULL && ret == 0;
	     item = strtok_r(NULL, "/", &save), n++) {
		bool last = *save == '\0';

		ret = layer_new(item, seed == 0 ? 0 : seed + (uint64_t)n, last,
				tail, errbuf, errlen);
		if (ret == 0)
			tail = &(*tail)->next;
	}
	free(copy);
	if (ret < 0) {
		dfs_stack_free(top);
		return ret;
	}
	*top_r = top;
	return 0;
}
