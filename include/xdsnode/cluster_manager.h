/*
 * cluster_manager.h: the set of clusters the node knows, with what the
 * admin interface reports about each (the config as received, when it
 * arrived, which version delivered it).
 *
 * Owns: every cm_cluster and its strings and config bytes. A cluster's
 * config is kept as the serialized Cluster it arrived as, decoded on
 * demand (config dump), so memory per cluster stays small.
 * Threads: main thread only (config is applied there; workers will get
 * immutable snapshots, see ARCHITECTURE.md).
 */
#ifndef XDSNODE_CLUSTER_MANAGER_H
#define XDSNODE_CLUSTER_MANAGER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "xdsnode/envoy_types.h"
#include "xdsnode/stats.h"
#include "xdsnode/upstream_tls.h"

typedef enum {
    CM_CLUSTER_ACTIVE = 0, /* routable */
    CM_CLUSTER_WARMING,    /* waiting for its first EDS assignment */
} cm_cluster_state;

typedef struct {
    char *name;
    uint8_t *config;    /* serialized envoy.config.cluster.v3.Cluster */
    size_t config_len;
    int added_via_api;  /* 0: bootstrap static_resources */
    char *version_info; /* CDS version that delivered it; "" for static */
    struct timespec last_updated; /* CLOCK_REALTIME */
    cm_cluster_state state;
    /* The ClusterLoadAssignment in force, serialized (EDS clusters); NULL
     * means the config's own load_assignment. */
    uint8_t *assignment;
    size_t assignment_len;
    uint64_t generation; /* new on every change of config or assignment; unique across
                            clusters, so a removed and re-added name never repeats one */
    stats_scope *stats;  /* "cluster.<stat name>." (cluster_stats.h) */
    /* TLS to the upstream (upstream_tls.h): the context built from the
     * active config, NULL for plaintext (one reference), and the
     * "cluster.<stat name>.ssl." stats, made when the cluster first uses
     * TLS and kept while it exists (NULL before). */
    upstream_tls_ctx *tls;
    stats_scope *ssl_stats;
    /* A CDS update of an active cluster that waits for its EDS assignment
     * (Envoy's warming update): the active config keeps serving until then.
     * NULL when none. */
    uint8_t *warming_config;
    size_t warming_config_len;
    char *warming_version;
    struct timespec warming_updated;
    upstream_tls_ctx *warming_tls; /* the warming config's TLS context */
} cm_cluster;

typedef struct cluster_manager cluster_manager;

/* Called on the main thread after any change to the set of clusters, their
 * configs or their assignments. */
typedef void (*cm_change_fn)(void *ctx, const cluster_manager *cm);

/* Registers the cluster_manager.* stats and every cluster's stats with
 * `store` (which must outlive the manager). */
cluster_manager *cluster_manager_create(stats_store *store);
/* The store the manager registers its stats with. */
stats_store *cluster_manager_stats_store(const cluster_manager *cm);
void cluster_manager_destroy(cluster_manager *cm);

/* One observer (e.g. the worker snapshot publisher); NULL to clear. */
void cluster_manager_set_change_listener(cluster_manager *cm, cm_change_fn fn, void *ctx);

/* Adds a static (bootstrap) cluster; its name must be new. A STRICT_DNS or
 * LOGICAL_DNS cluster starts warming (its endpoints need resolving). Its
 * TLS context (if any) is built here (reading its files). Returns 0, or -1
 * with err. */
int cluster_manager_add_static(cluster_manager *cm, const pb_cluster *c, char *err, size_t errlen);

/* Dynamic (CDS) clusters. A cluster named like a static one is refused.
 * `warming`: an EDS cluster that must wait for its assignment; a new one
 * enters CM_CLUSTER_WARMING, an active one keeps serving its current
 * config and holds the new one as warming_config. Otherwise the new config
 * is active at once. `tls`: the config's TLS context, built while the
 * update was validated (NULL for plaintext; the manager takes its own
 * reference). Returns 0, or -1 with err. */
int cluster_manager_upsert_dynamic(cluster_manager *cm, const pb_cluster *c, const uint8_t *bytes,
                                   size_t len, const char *version, int warming,
                                   upstream_tls_ctx *tls, char *err, size_t errlen);

/* Removes a dynamic cluster; a static or unknown name is a no-op
 * returning -1. */
int cluster_manager_remove_dynamic(cluster_manager *cm, const char *name);

/* Sets the assignment (serialized ClusterLoadAssignment, copied) of the
 * named cluster and finishes its warming: a warming config becomes the
 * active one. Returns 0, or -1 if the cluster is unknown. */
int cluster_manager_set_assignment(cluster_manager *cm, const char *name, const uint8_t *cla,
                                   size_t len);

/* Finishes warming without an assignment (initial_fetch_timeout). */
int cluster_manager_finish_warming(cluster_manager *cm, const char *name);

/* Groups changes: listeners hear once, at the outermost end. */
void cluster_manager_begin_batch(cluster_manager *cm);
void cluster_manager_end_batch(cluster_manager *cm);

/* The cluster_manager.* stats scope (for CDS subscription stats owners). */
stats_scope *cluster_manager_stats(cluster_manager *cm);

size_t cluster_manager_count(const cluster_manager *cm);

/* Clusters sorted by name (as Envoy lists them). i < count. */
const cm_cluster *cluster_manager_at(const cluster_manager *cm, size_t i);

const cm_cluster *cluster_manager_find(const cluster_manager *cm, const char *name);

#endif
