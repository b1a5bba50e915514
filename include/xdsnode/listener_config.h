/*
 * listener_config.h: an Envoy Listener from static_resources translated
 * for the data plane (and validated by the same code): address, the one
 * filter chain's terminal filter (http_connection_manager with an inline
 * route_config and http_filters ending in envoy.filters.http.router, or
 * tcp_proxy to a cluster), buffer limit, timeouts and access log.
 * Anything we do not implement is a load-time error naming it with its
 * field path, never silently skipped.
 *
 * Owns: the listener_config and everything in it (listener_config_free).
 * Threads: built on the main thread; read-only afterwards, shared by the
 * workers.
 */
#ifndef XDSNODE_LISTENER_CONFIG_H
#define XDSNODE_LISTENER_CONFIG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "xdsnode/envoy_types.h"
#include "xdsnode/router.h"
#include "envoy/config/listener/v3/listener.pb-c.h"

#define HCM_FILTER_NAME "envoy.filters.network.http_connection_manager"
#define TCP_PROXY_FILTER_NAME "envoy.filters.network.tcp_proxy"
#define ROUTER_FILTER_NAME "envoy.filters.http.router"
#define HCM_TYPE "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#define TCP_PROXY_TYPE "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
#define ROUTER_TYPE "envoy.extensions.filters.http.router.v3.Router"

/* Listener.per_connection_buffer_limit_bytes */
#define LISTENER_DEFAULT_BUFFER_LIMIT_BYTES (1024 * 1024)
/* HttpConnectionManager.max_request_headers_kb */
#define HCM_DEFAULT_MAX_REQUEST_HEADERS_KB 60
/* HttpConnectionManager.common_http_protocol_options.idle_timeout (1 h) */
#define HCM_DEFAULT_IDLE_TIMEOUT_MS (3600 * 1000)
/* HttpConnectionManager.request_headers_timeout (0: disabled) */
#define HCM_DEFAULT_REQUEST_HEADERS_TIMEOUT_MS 0
/* HttpConnectionManager.server_name */
#define HCM_DEFAULT_SERVER_NAME "envoy"
/* TcpProxy.idle_timeout (1 h) */
#define TCP_PROXY_DEFAULT_IDLE_TIMEOUT_MS (3600 * 1000)

typedef enum { LISTENER_HTTP, LISTENER_TCP } listener_kind;
/* HttpConnectionManager.codec_type (HTTP3 is rejected at load). */
typedef enum { HCM_CODEC_AUTO = 0, HCM_CODEC_HTTP1, HCM_CODEC_HTTP2 } hcm_codec;

typedef struct {
    char *name;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint16_t port;              /* as configured (0: any) */
    listener_kind kind;
    uint32_t buffer_limit;
    char *stat_prefix;
    char *access_log_path;      /* NULL: no access log */
    /* http_connection_manager */
    route_table routes;
    uint64_t idle_timeout_ms;
    uint64_t request_headers_timeout_ms;
    uint32_t max_request_headers_bytes;
    char *server_name;
    int use_remote_address;
    int generate_request_id;
    hcm_codec codec;
    uint32_t h2_max_concurrent_streams;     /* http2_protocol_options.max_concurrent_streams */
    uint32_t h2_initial_stream_window_size; /* ...initial_stream_window_size */
    /* Stats (set by the data plane after translation; one reference each,
     * dropped by listener_config_free): "http.<stat_prefix>." and the
     * shared downstream "http2.". NULL for tcp_proxy listeners. */
    struct stats_scope *stats;
    struct stats_scope *h2_stats;
    /* tcp_proxy */
    char *tcp_cluster;
    uint64_t tcp_idle_timeout_ms;
} listener_config;

/* Translates and validates static_resources.listeners[i]; `path` is that
 * field path. Returns 0, or -1 with "PATH: reason" in err. */
int listener_config_translate(const Envoy__Config__Listener__V3__Listener *l, const char *path,
                              listener_config **out, char *err, size_t errlen);
void listener_config_free(listener_config *lc);

/* Every cluster name a listener references (route clusters, weighted
 * targets, tcp_proxy cluster) is passed to fn; used for Envoy's
 * validate_clusters check. Stops at and returns fn's first non-zero. */
int listener_config_each_cluster(const listener_config *lc,
                                 int (*fn)(void *ctx, const char *cluster), void *ctx);

#endif
