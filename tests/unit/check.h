/* check.h - minimal assertion helpers for the C unit tests.
 * A failed CHECK prints file:line and the expression and makes the test
 * binary exit non-zero at the end (CHECK) or at once (REQUIRE). */
#ifndef DBOX_TEST_CHECK_H
#define DBOX_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(expr) do { if (!(expr)) { \
	fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
	check_failures++; } } while (0)
#define REQUIRE(expr) do { if (!(expr)) { \
	fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #expr); \
	exit(1); } } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
	__FILE__, __LINE__, #a, _a, #b, _b); check_failures++; } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
	if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0) { \
	fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, \
	__LINE__, #a, _a ? _a : "(null)", _b ? _b : "(null)"); check_failures++; } } while (0)
#define RUN(fn) do { fprintf(stderr, "-- %s\n", #fn); fn(); } while (0)
#define CHECK_DONE() (check_failures == 0 ? 0 : (fprintf(stderr, "%d check(s) failed\n", check_failures), 1))

#endif
