/*
 * server.h: the running node: the main libev loop, the cluster manager,
 * the admin server and its Envoy endpoints, signals and shutdown.
 *
 * Owns: everything it creates for the run; the bootstrap stays the
 * caller's and must outlive server_run().
 * Threads: main thread. server_run() blocks until /quitquitquit, SIGTERM
 * or SIGINT, then frees what it made.
 */
#ifndef XDSNODE_SERVER_H
#define XDSNODE_SERVER_H

#include <stddef.h>

#include "xdsnode/envoy_types.h"
#include "xdsnode/options.h"

/* Runs the node. Returns 0 after a clean shutdown, or -1 with err when
 * start-up failed (for example the admin address is in use). */
int server_run(const options *opts, const pb_bootstrap *bootstrap, char *err, size_t errlen);

#endif
