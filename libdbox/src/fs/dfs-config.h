/* dfs-config.h - the configuration string of the fs layer:
 *
 *   config = layer *( "/" layer )     outermost first, posix last
 *   layer  = name [ ":" args ]
 *
 * Thread-safe (no shared state).
 */
#ifndef DFS_CONFIG_H
#define DFS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct dfs_layer;

/* Builds the stack a configuration string describes (NULL or "" means
 * "posix").  0, or -EINVAL with the reason, naming the bad part, in
 * errbuf; -ENOMEM.  `seed` seeds randomfail (0 = from the clock); each
 * layer gets its own. */
int dfs_stack_build(const char *config, uint64_t seed,
		    struct dfs_layer **top_r, char *errbuf, size_t errlen);

/* Reads a plain decimal number at the start of `s`: digits with an
 * optional fraction ("5", "0.5"); no sign, space, exponent, hex, inf or
 * nan.  Returns what follows it, or NULL when there is no such number. */
const char *dfs_parse_decimal(const char *s, double *v_r);

#endif
