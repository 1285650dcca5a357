/* test-fs-config.c - the configuration string: what is accepted, what is
 * refused and with which message, and that the layers stack outermost
 * first. */
#include "fs-test.h"

static void test_valid(void)
{
	static const char *const good[] = {
		NULL, "", "posix", "delay:5ms/posix", "delay:250us/posix",
		"delay:1s/posix", "delay:0.5ms/posix", "delay:0us/posix",
		"randomfail:eio:1%/posix", "randomfail:enospc:5%:write/posix",
		"randomfail:eacces:0%:read/posix", "randomfail:erofs:100%:meta/posix",
		"randomfail:enomem:2.5%:sync/posix", "randomfail:eagain:50%/posix",
		"randomfail:EIO:1%/posix",
		"randomfail:eio:1%/delay:1ms/posix",
		"randomfail:eio:0.5%:read/delay:1ms/randomfail:enospc:1%/posix",
		"delay:1ms/delay:2ms/posix", "uring", "delay:1ms/uring",
		"randomfail:eio:1%:read/delay:1ms/uring",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int ret;

		err[0] = '\0';
		ret = dfs_config_check(good[i], err, sizeof(err));
		if (ret != 0)
			fprintf(stderr, "   refused \"%s\": %s\n",
				good[i] ? good[i] : "(null)", err);
		CHECK_EQ_INT(ret, 0);
	}
}

static void test_invalid(void)
{
	/* each string, and a part the message must name */
	static const char *const bad[][2] = {
		{ "nfs/posix", "unknown fs driver \"nfs\"" },
		{ "Posix", "unknown fs driver \"Posix\"" },
		{ "delay:5ms", "missing backend" },
		{ "randomfail:eio:1%", "missing backend" },
		{ "delay/posix", "delay needs a duration" },
		{ "delay:5/posix", "bad duration \"5\"" },
		{ "delay:-1ms/posix", "\"-1ms\"" },
		{ "delay:xms/posix", "\"xms\"" },
		{ "delay:nanms/posix", "\"nanms\"" },
		{ "delay:infs/posix", "\"infs\"" },
		{ "delay:1e3ms/posix", "\"1e3ms\"" },
		{ "delay: 5ms/posix", "\" 5ms\"" },
		{ "delay:5.ms/posix", "\"5.ms\"" },
		{ "delay:61s/posix", "\"61s\"" },
		{ "delay:5ms:x/posix", "\"5ms:x\"" },
		{ "delay:5msx/posix", "\"5msx\"" },
		{ "randomfail/posix", "randomfail:ERROR:PERCENT%" },
		{ "randomfail:eio/posix", "randomfail:ERROR:PERCENT%" },
		{ "randomfail:eio:1/posix", "bad percentage \"1\"" },
		{ "randomfail:eio:101%/posix", "\"101%\"" },
		{ "randomfail:eio:-1%/posix", "\"-1%\"" },
		{ "randomfail:eio:nan%/posix", "\"nan%\"" },
		{ "randomfail:eio:1%x/posix", "\"1%x\"" },
		{ "randomfail:ebogus:1%/posix", "unknown error \"ebogus\"" },
		{ "randomfail::1%/posix", "unknown error \"\"" },
		{ "randomfail:eio:1%:disk/posix", "unknown class \"disk\"" },
		{ "randomfail:eio:1%:write:x/posix", "\"write:x\"" },
		{ "powercut/posix", "powercut:N" },
		{ "powercut:x/posix", "powercut:N" },
		{ "powercut:-1/posix", "powercut:N" },
		{ "powercut:5x/posix", "powercut:N" },
		{ "powercut:random:0/posix", "MAX >= 1" },
		{ "powercut:random:/posix", "MAX >= 1" },
		{ "posix/posix", "must be the last layer" },
		{ "posix/delay:1ms", "\"posix\" must be the last layer" },
		{ "posix:x", "\"posix:x\"" },
		{ "uring:sqpoll", "\"uring:sqpoll\"" },
		{ "uring/posix", "\"uring\" must be the last layer" },
		{ "posix/uring", "\"posix\" must be the last layer" },
		{ "delay:1ms//posix", "empty layer" },
		{ "/posix", "empty layer" },
		{ "posix/", "empty layer" },
		{ "/", "empty layer" },
		{ "posix trailing", "trailing garbage \" trailing\"" },
		{ "posix2", "trailing garbage \"2\"" },
		{ "delayed:5ms/posix", "trailing garbage \"ed\"" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret;

		memset(err, 0, sizeof(err));
		ret = dfs_config_check(bad[i][0], err, sizeof(err));
		if (ret != -EINVAL || strstr(err, bad[i][1]) == NULL)
			fprintf(stderr, "   \"%s\": ret %d, message \"%s\", "
				"wanted it to name [%s]\n", bad[i][0], ret, err,
				bad[i][1]);
		CHECK_EQ_INT(ret, -EINVAL);
		CHECK(strstr(err, bad[i][1]) != NULL);
	}
}

static void test_new_refuses(void)
{
	struct dfs *fs = (struct dfs *)&fs;  /* must stay untouched */
	char err[256] = "";

	CHECK_EQ_INT(dfs_new("delay:5ms", NULL, &fs, err, sizeof(err)), -EINVAL);
	CHECK(fs == (struct dfs *)&fs);
	CHECK(strstr(err, "missing backend") != NULL);
	/* no message buffer: still refused, nothing written anywhere */
	CHECK_EQ_INT(dfs_config_check("nfs", NULL, 0), -EINVAL);
	CHECK_EQ_INT(dfs_new("nfs", NULL, &fs, NULL, 0), -EINVAL);
	/* a short buffer gets a truncated, terminated message */
	memset(err, 'x', sizeof(err));
	CHECK_EQ_INT(dfs_config_check("nfs", err, 8), -EINVAL);
	CHECK_EQ_INT(strlen(err), 7);
}

/* How long one stat takes and what it returns, through a stack. */
static double timed_stat(const char *config, int *err_r)
{
	struct dfs *fs = fst_new(config, NULL);
	struct stat st;
	double t0 = fst_now(), t;

	*err_r = dfs_sync_stat(fs, fst_dir, &st);
	t = fst_now() - t0;
	dfs_free(fs);
	return t;
}

/* Outermost first: a failure above a delay comes at once; below it, only
 * after the delay. */
static void test_stack_order(void)
{
	int err;
	double t;

	t = timed_stat("delay:30ms/posix", &err);
	CHECK_EQ_INT(err, 0);
	CHECK(t >= 0.030);
	t = timed_stat("delay:10ms/delay:20ms/posix", &err);
	CHECK_EQ_INT(err, 0);
	CHECK(t >= 0.030);
	t = timed_stat("randomfail:eacces:100%/delay:500ms/posix", &err);
	CHECK_EQ_INT(err, -EACCES);
	CHECK(t < 0.400);
	t = timed_stat("delay:30ms/randomfail:erofs:100%/posix", &err);
	CHECK_EQ_INT(err, -EROFS);
	CHECK(t >= 0.030);
	/* two failing layers: the outer one decides */
	t = timed_stat("randomfail:eio:100%/randomfail:enospc:100%/posix", &err);
	CHECK_EQ_INT(err, -EIO);
	(void)t;
}

int main(void)
{
	fst_setup();
	RUN(test_valid);
	RUN(test_invalid);
	RUN(test_new_refuses);
	RUN(test_stack_order);
	return fst_teardown();
}
