/*
 * snapshot.h: the immutable, ref-counted view of the routable clusters
 * that workers read on the request path (ARCHITECTURE.md).
 *
 * A dp_cluster is built once per cluster generation (cluster_config, the
 * cluster-wide circuit breakers, per-host counters) and shared by every
 * snapshot that contains that generation, so limits and host stats carry
 * over while a cluster is unchanged. A snapshot is a sorted array of
 * dp_cluster references.
 *
 * Owns: a snapshot holds one reference on each of its clusters; a
 * dp_cluster owns its cluster_config and holds a reference on its stats
 * scope (and on its TLS context and ssl stats when it has them).
 * Threads: built on the main thread (snapshot_build), then read-only;
 * refs/unrefs from any thread (atomics). Per-host counters are atomics
 * written by workers.
 */
#ifndef XDSNODE_SNAPSHOT_H
#define XDSNODE_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "xdsnode/circuit_breaker.h"
#include "xdsnode/cluster_config.h"
#include "xdsnode/cluster_manager.h"
#include "xdsnode/stats.h"

/* Per-host counters, named as Envoy's /clusters prints them. */
#define HOST_STATS(X)                                  \
    X(CX_ACTIVE, "cx_active", STAT_GAUGE)              \
    X(CX_CONNECT_FAIL, "cx_connect_fail", STAT_COUNTER) \
    X(CX_TOTAL, "cx_total", STAT_COUNTER)              \
    X(RQ_ACTIVE, "rq_active", STAT_GAUGE)              \
    X(RQ_ERROR, "rq_error", STAT_COUNTER)              \
    X(RQ_SUCCESS, "rq_success", STAT_COUNTER)          \
    X(RQ_TIMEOUT, "rq_timeout", STAT_COUNTER)          \
    X(RQ_TOTAL, "rq_total", STAT_COUNTER)

#define HOST_STAT_ENUM(id, name, type) HOST_STAT_##id,
enum { HOST_STATS(HOST_STAT_ENUM) HOST_STAT_COUNT };
#undef HOST_STAT_ENUM

extern const stat_def host_stat_defs[HOST_STAT_COUNT];

typedef struct {
    _Atomic uint64_t v[HOST_STAT_COUNT];
} host_stats;

static inline void host_stat_add(host_stats *h, int i, int64_t d)
{
    atomic_fetch_add_explicit(&h->v[i], (uint64_t)d, memory_order_relaxed);
}

typedef struct dp_cluster {
    _Atomic int refs;
    uint64_t generation;
    int added_via_api;
    cluster_config *cfg;
    stats_scope *stats; /* "cluster.<name>." */
    /* TLS to the hosts (one reference each; NULL for plaintext): the
     * cluster config's context and its "cluster.<name>.ssl." stats. */
    struct upstream_tls_ctx *tls;
    stats_scope *ssl_stats;
    circuit_breakers cb;
    host_stats *hosts;  /* cfg->n_hosts entries */
    _Atomic uint64_t **rq_active; /* &hosts[i].v[HOST_STAT_RQ_ACTIVE], for lb_pick */
} dp_cluster;

typedef struct {
    _Atomic int refs;
    dp_cluster **clusters; /* sorted by name */
    size_t n;
} dp_snapshot;

/* Builds a snapshot of cm's active clusters, reusing prev's dp_cluster
 * for every cluster whose generation is unchanged (prev may be NULL).
 * A cluster whose config cannot be translated is left out and logged.
 * Returns NULL on allocation failure. The result has one reference. */
dp_snapshot *snapshot_build(const cluster_manager *cm, const dp_snapshot *prev);

void snapshot_ref(dp_snapshot *s);
void snapshot_unref(dp_snapshot *s);
void dp_cluster_ref(dp_cluster *c);
void dp_cluster_unref(dp_cluster *c);

/* Counts a failed upstream connect (refused, timed out, or its TLS
 * handshake failed): upstream_cx_connect_fail for the cluster and
 * cx_connect_fail for host `host` (/clusters). Any thread. */
void dp_cluster_connect_failed(dp_cluster *c, size_t host);

/* Binary search by cluster name; NULL if absent. */
dp_cluster *snapshot_find(const dp_snapshot *s, const char *name);
dp_cluster *snapshot_find_n(const dp_snapshot *s, const char *name, size_t len);

/* Creates a dp_cluster from a translated config (takes ownership of cfg).
 * Exposed for tests. NULL on allocation failure. */
dp_cluster *dp_cluster_create(cluster_config *cfg, stats_scope *stats, uint64_t generation);

#endif
