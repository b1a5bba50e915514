/*
 * cluster_stats.h: the per-cluster stats ("cluster.<name>.*") and the
 * cluster manager's own ("cluster_manager.*"), with Envoy's names. Every
 * module that counts something about a cluster uses these indexes into
 * the cluster's stats_scope.
 *
 * Owns: the static definition tables. Threads: any (constant data).
 */
#ifndef XDSNODE_CLUSTER_STATS_H
#define XDSNODE_CLUSTER_STATS_H

#include <stddef.h>

#include "xdsnode/stats.h"

#define CLUSTER_STATS(X)                                                                   \
    X(UPSTREAM_CX_TOTAL, "upstream_cx_total", STAT_COUNTER)                                \
    X(UPSTREAM_CX_ACTIVE, "upstream_cx_active", STAT_GAUGE)                                \
    X(UPSTREAM_CX_HTTP1_TOTAL, "upstream_cx_http1_total", STAT_COUNTER)                    \
    X(UPSTREAM_CX_HTTP2_TOTAL, "upstream_cx_http2_total", STAT_COUNTER)                    \
    X(UPSTREAM_CX_CONNECT_FAIL, "upstream_cx_connect_fail", STAT_COUNTER)                  \
    X(UPSTREAM_CX_CONNECT_TIMEOUT, "upstream_cx_connect_timeout", STAT_COUNTER)            \
    X(UPSTREAM_CX_IDLE_TIMEOUT, "upstream_cx_idle_timeout", STAT_COUNTER)                  \
    X(UPSTREAM_CX_MAX_REQUESTS, "upstream_cx_max_requests", STAT_COUNTER)                  \
    X(UPSTREAM_CX_MAX_DURATION_REACHED, "upstream_cx_max_duration_reached", STAT_COUNTER)  \
    X(UPSTREAM_RQ_MAX_DURATION_REACHED, "upstream_rq_max_duration_reached", STAT_COUNTER)  \
    X(UPSTREAM_CX_OVERFLOW, "upstream_cx_overflow", STAT_COUNTER)                          \
    X(UPSTREAM_CX_POOL_OVERFLOW, "upstream_cx_pool_overflow", STAT_COUNTER)                \
    X(UPSTREAM_CX_DESTROY, "upstream_cx_destroy", STAT_COUNTER)                            \
    X(UPSTREAM_CX_DESTROY_LOCAL, "upstream_cx_destroy_local", STAT_COUNTER)                \
    X(UPSTREAM_CX_DESTROY_REMOTE, "upstream_cx_destroy_remote", STAT_COUNTER)              \
    X(UPSTREAM_CX_DESTROY_WITH_ACTIVE_RQ, "upstream_cx_destroy_with_active_rq", STAT_COUNTER) \
    X(UPSTREAM_CX_CLOSE_NOTIFY, "upstream_cx_close_notify", STAT_COUNTER)                  \
    X(UPSTREAM_CX_PROTOCOL_ERROR, "upstream_cx_protocol_error", STAT_COUNTER)              \
    X(UPSTREAM_CX_NONE_HEALTHY, "upstream_cx_none_healthy", STAT_COUNTER)                  \
    X(UPSTREAM_CX_RX_BYTES_TOTAL, "upstream_cx_rx_bytes_total", STAT_COUNTER)              \
    X(UPSTREAM_CX_TX_BYTES_TOTAL, "upstream_cx_tx_bytes_total", STAT_COUNTER)              \
    X(UPSTREAM_RQ_TOTAL, "upstream_rq_total", STAT_COUNTER)                                \
    X(UPSTREAM_RQ_ACTIVE, "upstream_rq_active", STAT_GAUGE)                                \
    X(UPSTREAM_RQ_COMPLETED, "upstream_rq_completed", STAT_COUNTER)                        \
    X(UPSTREAM_RQ_PENDING_TOTAL, "upstream_rq_pending_total", STAT_COUNTER)                \
    X(UPSTREAM_RQ_PENDING_ACTIVE, "upstream_rq_pending_active", STAT_GAUGE)                \
    X(UPSTREAM_RQ_PENDING_OVERFLOW, "upstream_rq_pending_overflow", STAT_COUNTER)          \
    X(UPSTREAM_RQ_PENDING_FAILURE_EJECT, "upstream_rq_pending_failure_eject", STAT_COUNTER) \
    X(UPSTREAM_RQ_CANCELLED, "upstream_rq_cancelled", STAT_COUNTER)                        \
    X(UPSTREAM_RQ_TIMEOUT, "upstream_rq_timeout", STAT_COUNTER)                            \
    X(UPSTREAM_RQ_RX_RESET, "upstream_rq_rx_reset", STAT_COUNTER)                          \
    X(UPSTREAM_RQ_TX_RESET, "upstream_rq_tx_reset", STAT_COUNTER)                          \
    X(UPSTREAM_RQ_RETRY, "upstream_rq_retry", STAT_COUNTER)                                \
    X(UPSTREAM_RQ_RETRY_SUCCESS, "upstream_rq_retry_success", STAT_COUNTER)                \
    X(UPSTREAM_RQ_RETRY_OVERFLOW, "upstream_rq_retry_overflow", STAT_COUNTER)              \
    X(UPSTREAM_RQ_2XX, "upstream_rq_2xx", STAT_COUNTER)                                    \
    X(UPSTREAM_RQ_3XX, "upstream_rq_3xx", STAT_COUNTER)                                    \
    X(UPSTREAM_RQ_4XX, "upstream_rq_4xx", STAT_COUNTER)                                    \
    X(UPSTREAM_RQ_5XX, "upstream_rq_5xx", STAT_COUNTER)                                    \
    /* the HTTP/2 codec (cluster.<name>.http2.*) */                                       \
    X(HTTP2_RX_RESET, "http2.rx_reset", STAT_COUNTER)                                      \
    X(HTTP2_TX_RESET, "http2.tx_reset", STAT_COUNTER)                                      \
    X(HTTP2_TRAILERS, "http2.trailers", STAT_COUNTER)                                      \
    X(HTTP2_KEEPALIVE_TIMEOUT, "http2.keepalive_timeout", STAT_COUNTER)                    \
    X(HTTP2_STREAMS_ACTIVE, "http2.streams_active", STAT_GAUGE)                            \
    X(MEMBERSHIP_TOTAL, "membership_total", STAT_GAUGE)                                    \
    X(MEMBERSHIP_HEALTHY, "membership_healthy", STAT_GAUGE)                                \
    X(MEMBERSHIP_DEGRADED, "membership_degraded", STAT_GAUGE)                              \
    X(MEMBERSHIP_CHANGE, "membership_change", STAT_COUNTER)                                \
    X(UPDATE_ATTEMPT, "update_attempt", STAT_COUNTER)                                      \
    X(UPDATE_SUCCESS, "update_success", STAT_COUNTER)                                      \
    X(UPDATE_FAILURE, "update_failure", STAT_COUNTER)                                      \
    X(UPDATE_REJECTED, "update_rejected", STAT_COUNTER)                                    \
    X(UPDATE_EMPTY, "update_empty", STAT_COUNTER)                                          \
    X(UPDATE_NO_REBUILD, "update_no_rebuild", STAT_COUNTER)                                \
    X(VERSION, "version", STAT_GAUGE)                                                      \
    X(INIT_FETCH_TIMEOUT, "init_fetch_timeout", STAT_COUNTER)                              \
    X(CB_DEFAULT_CX_OPEN, "circuit_breakers.default.cx_open", STAT_GAUGE)                  \
    X(CB_DEFAULT_CX_POOL_OPEN, "circuit_breakers.default.cx_pool_open", STAT_GAUGE)        \
    X(CB_DEFAULT_RQ_PENDING_OPEN, "circuit_breakers.default.rq_pending_open", STAT_GAUGE)  \
    X(CB_DEFAULT_RQ_OPEN, "circuit_breakers.default.rq_open", STAT_GAUGE)                  \
    X(CB_DEFAULT_RQ_RETRY_OPEN, "circuit_breakers.default.rq_retry_open", STAT_GAUGE)      \
    X(CB_HIGH_CX_OPEN, "circuit_breakers.high.cx_open", STAT_GAUGE)                        \
    X(CB_HIGH_CX_POOL_OPEN, "circuit_breakers.high.cx_pool_open", STAT_GAUGE)              \
    X(CB_HIGH_RQ_PENDING_OPEN, "circuit_breakers.high.rq_pending_open", STAT_GAUGE)        \
    X(CB_HIGH_RQ_OPEN, "circuit_breakers.high.rq_open", STAT_GAUGE)                        \
    X(CB_HIGH_RQ_RETRY_OPEN, "circuit_breakers.high.rq_retry_open", STAT_GAUGE)            \
    /* set only with track_remaining */                                                   \
    X(CB_DEFAULT_REMAINING_CX, "circuit_breakers.default.remaining_cx", STAT_GAUGE)        \
    X(CB_DEFAULT_REMAINING_PENDING, "circuit_breakers.default.remaining_pending", STAT_GAUGE) \
    X(CB_DEFAULT_REMAINING_RQ, "circuit_breakers.default.remaining_rq", STAT_GAUGE)        \
    X(CB_DEFAULT_REMAINING_RETRIES, "circuit_breakers.default.remaining_retries", STAT_GAUGE) \
    X(CB_DEFAULT_REMAINING_CX_POOLS, "circuit_breakers.default.remaining_cx_pools", STAT_GAUGE) \
    X(CB_HIGH_REMAINING_CX, "circuit_breakers.high.remaining_cx", STAT_GAUGE)              \
    X(CB_HIGH_REMAINING_PENDING, "circuit_breakers.high.remaining_pending", STAT_GAUGE)    \
    X(CB_HIGH_REMAINING_RQ, "circuit_breakers.high.remaining_rq", STAT_GAUGE)              \
    X(CB_HIGH_REMAINING_RETRIES, "circuit_breakers.high.remaining_retries", STAT_GAUGE)    \
    X(CB_HIGH_REMAINING_CX_POOLS, "circuit_breakers.high.remaining_cx_pools", STAT_GAUGE)  \
    /* xdsnode: Cluster fields set but not acted on (kept, shown in /config_dump) */     \
    X(XDSNODE_IGNORED_FIELDS, "xdsnode_ignored_fields", STAT_GAUGE)

#define CLUSTER_STAT_ENUM(id, name, type) CLUSTER_STAT_##id,
enum { CLUSTER_STATS(CLUSTER_STAT_ENUM) CLUSTER_STAT_COUNT };
#undef CLUSTER_STAT_ENUM

extern const stat_def cluster_stat_defs[CLUSTER_STAT_COUNT];

#define CM_STATS(X)                                             \
    X(CLUSTER_ADDED, "cluster_added", STAT_COUNTER)             \
    X(CLUSTER_MODIFIED, "cluster_modified", STAT_COUNTER)       \
    X(CLUSTER_REMOVED, "cluster_removed", STAT_COUNTER)         \
    X(CLUSTER_UPDATED, "cluster_updated", STAT_COUNTER)         \
    X(ACTIVE_CLUSTERS, "active_clusters", STAT_GAUGE)           \
    X(WARMING_CLUSTERS, "warming_clusters", STAT_GAUGE)

#define CM_STAT_ENUM(id, name, type) CM_STAT_##id,
enum { CM_STATS(CM_STAT_ENUM) CM_STAT_COUNT };
#undef CM_STAT_ENUM

extern const stat_def cm_stat_defs[CM_STAT_COUNT];

/* Creates the "cluster.<stat name>." scope for a cluster: the stat name is
 * alt_stat_name when set, else the cluster name, with ':' mapped to '_'.
 * The Prometheus label is envoy_cluster_name. NULL on allocation failure. */
stats_scope *cluster_stats_scope_create(const char *stat_name);

#endif
