/*
 * dataplane.h: the data plane as server.c sees it: listeners from the
 * bootstrap, `concurrency` worker threads each with its own SO_REUSEPORT
 * socket per listener, and the snapshot publisher that turns every
 * cluster manager change into a new immutable snapshot for the workers.
 * Also renders /clusters from the current snapshot.
 *
 * Owns: the workers, the translated listener configs, the current
 * snapshot; it registers itself as the cluster manager's change listener
 * (and clears it on stop). Threads: main thread only.
 */
#ifndef XDSNODE_DATAPLANE_H
#define XDSNODE_DATAPLANE_H

#include <stddef.h>

#include "xdsnode/admin.h"
#include "xdsnode/cluster_manager.h"
#include "xdsnode/envoy_types.h"

typedef struct dataplane dataplane;

/* Binds every static listener (one socket per worker) and starts the
 * workers. With no listeners it starts no thread. Returns 0, or -1 with
 * err (for example an address in use: unlike Envoy's reuse_port, a port
 * another process already listens on is an error, never shared). */
int dataplane_start(const pb_bootstrap *bootstrap, cluster_manager *cm, unsigned concurrency,
                    dataplane **out, char *err, size_t errlen);

/* Stops the workers (closing every connection) and frees everything.
 * NULL is a no-op. */
void dataplane_stop(dataplane *dp);

/* /drain_listeners: every worker stops accepting and drains its
 * connections (worker_drain). NULL is a no-op. */
void dataplane_drain_listeners(dataplane *dp);
/* /clusters as Envoy prints it (text, or ?format=json). */
int dataplane_render_clusters(const dataplane *dp, const char *query, admin_response *resp);

/* /pools: every worker's connection pools (pools_admin.h). */
int dataplane_render_pools(const dataplane *dp, const char *query, admin_response *resp);

#endif
