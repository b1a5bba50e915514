/*
 * pools_admin.h: the admin /pools page: every upstream connection pool of
 * every worker (per worker, cluster, host and protocol) with its
 * connections by state (connecting, active, idle, draining), streams in
 * flight and pending queue length, plus totals; as JSON (?format=json)
 * or a readable table (default). It shows what Envoy's /clusters does
 * not: max_connections is a cluster-wide circuit breaker, while pools are
 * per worker per host and open connections only on demand.
 *
 * Owns: nothing beyond the response body it fills (the caller's). The
 * workers are borrowed; their counts are read with worker_visit_pools.
 * Threads: main thread (admin handlers).
 */
#ifndef XDSNODE_POOLS_ADMIN_H
#define XDSNODE_POOLS_ADMIN_H

#include <stddef.h>

#include "xdsnode/admin.h"
#include "xdsnode/worker.h"

/* Returns 0, or -1 (out of memory). */
int pools_admin_render(worker *const *workers, size_t n_workers, const char *query,
                       admin_response *resp);

#endif
