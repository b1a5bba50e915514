/*
 * clusters_admin.h: the admin /clusters page from a data-plane snapshot,
 * in Envoy's text form (one "cluster::key::value" line per value) and as
 * envoy.admin.v3.Clusters JSON (?format=json), see xds-facts §5.2.
 *
 * Owns: nothing (reads the snapshot; the response body is the caller's).
 * Threads: main thread (the snapshot is immutable; counters are atomics).
 */
#ifndef XDSNODE_CLUSTERS_ADMIN_H
#define XDSNODE_CLUSTERS_ADMIN_H

#include "xdsnode/admin.h"
#include "xdsnode/snapshot.h"

/* snap may be NULL (no clusters). Returns 0 or -1 (out of memory). */
int clusters_admin_render(const dp_snapshot *snap, const char *query, admin_response *resp);

#endif
