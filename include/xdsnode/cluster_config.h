/*
 * cluster_config.h: the one translation from an Envoy Cluster (plus the
 * ClusterLoadAssignment in force) to the plain C struct the data plane
 * uses: limits, timeouts, protocol options, LB policy and hosts. Envoy's
 * defaults are written down here once, each naming the field it mirrors.
 *
 * Owns: the cluster_config it returns and every string/array in it
 * (freed by cluster_config_free). The translation is pure: no I/O, no
 * globals, the inputs are only read.
 * Threads: any (main thread in practice; the result is immutable and
 * shared read-only with workers through snapshots).
 */
#ifndef XDSNODE_CLUSTER_CONFIG_H
#define XDSNODE_CLUSTER_CONFIG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "xdsnode/envoy_types.h"

/* Cluster.connect_timeout */
#define CLUSTER_DEFAULT_CONNECT_TIMEOUT_MS 5000
/* Cluster.per_connection_buffer_limit_bytes */
#define CLUSTER_DEFAULT_BUFFER_LIMIT_BYTES (1024 * 1024)
/* HttpProtocolOptions.common_http_protocol_options.idle_timeout (1 h for
 * upstream pools; "0s" disables it) */
#define CLUSTER_DEFAULT_IDLE_TIMEOUT_MS (3600 * 1000)
/* HttpProtocolOptions.common_http_protocol_options.max_requests_per_connection
 * (unset: unlimited, written as 0 here) */
#define CLUSTER_DEFAULT_MAX_REQUESTS_PER_CONNECTION 0
/* CircuitBreakers.Thresholds.max_connections */
#define CB_DEFAULT_MAX_CONNECTIONS 1024
/* CircuitBreakers.per_host_thresholds[].max_connections (unset: unlimited;
 * the only per-host limit Envoy honours) */
#define CB_DEFAULT_MAX_CONNECTIONS_PER_HOST UINT32_MAX
/* CircuitBreakers.Thresholds.max_pending_requests */
#define CB_DEFAULT_MAX_PENDING_REQUESTS 1024
/* CircuitBreakers.Thresholds.max_requests */
#define CB_DEFAULT_MAX_REQUESTS 1024
/* CircuitBreakers.Thresholds.max_retries */
#define CB_DEFAULT_MAX_RETRIES 3
/* CircuitBreakers.Thresholds.max_connection_pools (unset: unlimited) */
#define CB_DEFAULT_MAX_CONNECTION_POOLS UINT32_MAX
/* CircuitBreakers.Thresholds.track_remaining */
#define CB_DEFAULT_TRACK_REMAINING 0
/* CircuitBreakers.Thresholds.RetryBudget.budget_percent */
#define CB_DEFAULT_RETRY_BUDGET_PERCENT 20.0
/* CircuitBreakers.Thresholds.RetryBudget.min_retry_concurrency */
#define CB_DEFAULT_RETRY_BUDGET_MIN_CONCURRENCY 3
/* HttpProtocolOptions.common_http_protocol_options.max_connection_duration
 * (unset: none, written as 0) */
#define CLUSTER_DEFAULT_MAX_CONNECTION_DURATION_MS 0
/* HttpProtocolOptions.common_http_protocol_options.max_stream_duration
 * (unset: none, written as 0) */
#define CLUSTER_DEFAULT_MAX_STREAM_DURATION_MS 0
/* Linux limits for the TcpKeepalive values (setsockopt rejects more). */
#define KEEPALIVE_MAX_PROBES 127
#define KEEPALIVE_MAX_SECONDS 32767
/* Cluster.LeastRequestLbConfig.choice_count */
#define LB_DEFAULT_CHOICE_COUNT 2
/* LbEndpoint.load_balancing_weight */
#define HOST_DEFAULT_WEIGHT 1
/* Http2ProtocolOptions.max_concurrent_streams (1024 in this API version) */
#define H2_DEFAULT_MAX_CONCURRENT_STREAMS 1024
/* Http2ProtocolOptions.initial_stream_window_size (16 MiB) */
#define H2_DEFAULT_INITIAL_STREAM_WINDOW_SIZE (16u * 1024 * 1024)
/* Http2ProtocolOptions.initial_connection_window_size (24 MiB) */
#define H2_DEFAULT_INITIAL_CONNECTION_WINDOW_SIZE (24u * 1024 * 1024)
/* Http2ProtocolOptions.hpack_table_size */
#define H2_DEFAULT_HPACK_TABLE_SIZE 4096
/* Http2ProtocolOptions.max_concurrent_streams / window sizes: valid range */
#define H2_MAX_STREAMS_LIMIT 2147483647u
#define H2_MIN_WINDOW_SIZE 65535u
#define H2_MAX_WINDOW_SIZE 2147483647u

/* Which HTTP version a cluster speaks upstream (HttpProtocolOptions
 * upstream_protocol_options, or the legacy Cluster.http2_protocol_options). */
typedef enum {
    UPSTREAM_PROTO_HTTP1 = 0,   /* explicit http_protocol_options, or nothing set */
    UPSTREAM_PROTO_HTTP2,       /* explicit http2_protocol_options */
    UPSTREAM_PROTO_DOWNSTREAM,  /* use_downstream_protocol_config: the client's version */
} upstream_protocol;

/* Http2ProtocolOptions as the upstream HTTP/2 pool uses them. */
typedef struct {
    uint32_t max_concurrent_streams;         /* upper bound, lowered by the peer's SETTINGS */
    uint32_t initial_stream_window_size;
    uint32_t initial_connection_window_size;
    uint32_t hpack_table_size;
    uint64_t keepalive_interval_ms;          /* connection_keepalive.interval, 0: no PINGs */
    uint64_t keepalive_timeout_ms;           /* connection_keepalive.timeout */
} http2_options;

typedef enum { LB_ROUND_ROBIN = 0, LB_LEAST_REQUEST, LB_RANDOM } lb_policy;

/* RoutingPriority: index into cluster_config.thresholds. */
enum { PRIORITY_DEFAULT = 0, PRIORITY_HIGH = 1, PRIORITY_COUNT = 2 };

typedef struct {
    uint32_t max_connections;
    uint32_t max_pending_requests;
    uint32_t max_requests;
    uint32_t max_retries;
    uint32_t max_connection_pools;  /* UINT32_MAX: unlimited */
    uint32_t max_connections_per_host; /* per_host_thresholds, UINT32_MAX: unlimited */
    int track_remaining;            /* publish remaining_* gauges */
    int has_retry_budget;           /* retry_budget set: overrides max_retries */
    double retry_budget_percent;    /* of active + pending requests */
    uint32_t retry_budget_min_concurrency;
} cb_thresholds;

typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char ip[64];         /* printable IP literal */
    uint32_t port;
    char *hostname;      /* Endpoint.hostname, "" if none */
    uint32_t weight;     /* >= 1 */
    uint32_t priority;   /* LocalityLbEndpoints.priority */
    int health_status;   /* core.v3.HealthStatus number */
    char *region, *zone, *sub_zone;
} cluster_host;

typedef struct {
    char *name;
    char *stat_name;         /* alt_stat_name or name */
    char *eds_service_name;  /* "" unless set */
    int is_eds;
    lb_policy lb;
    uint32_t choice_count;
    uint64_t connect_timeout_ms;
    uint32_t buffer_limit;
    uint64_t idle_timeout_ms;          /* 0: none */
    uint32_t max_requests_per_connection; /* 0: unlimited */
    upstream_protocol protocol;
    int downstream_http2_ok;           /* use_downstream_protocol_config allows HTTP/2 */
    http2_options h2;                  /* Envoy defaults unless configured */
    uint64_t max_connection_duration_ms;  /* 0: none */
    uint64_t max_stream_duration_ms;      /* 0: none */
    int tcp_keepalive;                 /* upstream_connection_options.tcp_keepalive present */
    uint32_t keepalive_probes, keepalive_time, keepalive_interval; /* 0: OS default */
    cb_thresholds thresholds[PRIORITY_COUNT];
    cluster_host *hosts;
    size_t n_hosts;
} cluster_config;

/* Envoy's Http2ProtocolOptions defaults. */
void http2_options_defaults(http2_options *o);

/* The protocol to use for one request: the cluster's, or the downstream
 * one's for use_downstream_protocol_config (1 when the client spoke HTTP/2). */
int cluster_config_upstream_http2(const cluster_config *cfg, int downstream_http2);

/* The cluster's typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS_NAME],
 * unpacked: returns 1 and *out (the caller frees it with
 * protobuf_c_message_free_unpacked), 0 when there is none, -1 when it does
 * not parse. */
int cluster_http_protocol_options(const pb_cluster *c, pb_http_protocol_options **out);

/* Translates `c` with the assignment `cla` (NULL: c->load_assignment).
 * Returns 0 and *out, or -1 with err (an endpoint address that is not an
 * IP literal, an unsupported LB policy, a TcpKeepalive value the kernel
 * refuses, a retry budget percent outside 0..100). */
int cluster_config_translate(const pb_cluster *c, const pb_cla *cla, cluster_config **out,
                             char *err, size_t errlen);

/* The same from serialized bytes (cm_cluster.config / .assignment). */
int cluster_config_from_bytes(const uint8_t *config, size_t config_len, const uint8_t *cla,
                              size_t cla_len, cluster_config **out, char *err, size_t errlen);

void cluster_config_free(cluster_config *cfg);

/* The lb_policy's Envoy name ("ROUND_ROBIN", ...). */
const char *cluster_lb_policy_name(lb_policy lb);

/* A host that may take new requests: EDS health UNKNOWN, HEALTHY or
 * DEGRADED (UNHEALTHY, DRAINING and TIMEOUT get none). */
int cluster_host_routable(const cluster_host *h);

/* The host as Envoy prints an address: "ip:port", "[ip]:port" for IPv6. */
void cluster_host_format(const cluster_host *h, char *out, size_t len);

#endif
