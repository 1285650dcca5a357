/* guid.c - message and mailbox GUIDs. */
#include <errno.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "dbox/format.h"

/* Dovecot's GUIDs mix time, pid and host; readers treat them as opaque
 * (dbox-format.md 3.1), so 128 random bits serve the same purpose without
 * the collision worries of clocks that go backwards. */
void dbox_guid_generate(char out[33])
{
	unsigned char raw[16];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* no entropy source at all: fall back to the clock
			 * and the address of this frame */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			for (; got < sizeof(raw); got++)
				raw[got] = (unsigned char)((ts.tv_nsec >> (got % 4 * 8)) ^
					(ts.tv_sec >> (got % 8)) ^ (uintptr_t)&ts >> got);
			break;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + i * 2, 3, "%02x", raw[i]);
}
