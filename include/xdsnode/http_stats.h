/*
 * http_stats.h: the HTTP connection manager's downstream stats, with
 * Envoy's names: "http.<stat_prefix>.*" per listener (Prometheus:
 * envoy_http_<stat>{envoy_http_conn_manager_prefix="<stat_prefix>"}),
 * and the downstream HTTP/2 codec's "http2.*", shared by every listener
 * (Envoy roots downstream HTTP/2 codec stats at "http2.").
 *
 * Owns: the static definition tables. Threads: any (constant data; the
 * scopes' values are atomics).
 */
#ifndef XDSNODE_HTTP_STATS_H
#define XDSNODE_HTTP_STATS_H

#include "xdsnode/stats.h"

#define HTTP_STATS(X)                                                                   \
    X(DOWNSTREAM_CX_TOTAL, "downstream_cx_total", STAT_COUNTER)                         \
    X(DOWNSTREAM_CX_ACTIVE, "downstream_cx_active", STAT_GAUGE)                         \
    X(DOWNSTREAM_CX_HTTP1_TOTAL, "downstream_cx_http1_total", STAT_COUNTER)             \
    X(DOWNSTREAM_CX_HTTP1_ACTIVE, "downstream_cx_http1_active", STAT_GAUGE)             \
    X(DOWNSTREAM_CX_HTTP2_TOTAL, "downstream_cx_http2_total", STAT_COUNTER)             \
    X(DOWNSTREAM_CX_HTTP2_ACTIVE, "downstream_cx_http2_active", STAT_GAUGE)             \
    X(DOWNSTREAM_CX_DESTROY, "downstream_cx_destroy", STAT_COUNTER)                     \
    X(DOWNSTREAM_CX_PROTOCOL_ERROR, "downstream_cx_protocol_error", STAT_COUNTER)       \
    X(DOWNSTREAM_CX_DRAIN_CLOSE, "downstream_cx_drain_close", STAT_COUNTER)             \
    X(DOWNSTREAM_RQ_TOTAL, "downstream_rq_total", STAT_COUNTER)                         \
    X(DOWNSTREAM_RQ_HTTP1_TOTAL, "downstream_rq_http1_total", STAT_COUNTER)             \
    X(DOWNSTREAM_RQ_HTTP2_TOTAL, "downstream_rq_http2_total", STAT_COUNTER)             \
    X(DOWNSTREAM_RQ_ACTIVE, "downstream_rq_active", STAT_GAUGE)                         \
    X(DOWNSTREAM_RQ_COMPLETED, "downstream_rq_completed", STAT_COUNTER)                 \
    X(DOWNSTREAM_RQ_1XX, "downstream_rq_1xx", STAT_COUNTER)                             \
    X(DOWNSTREAM_RQ_2XX, "downstream_rq_2xx", STAT_COUNTER)                             \
    X(DOWNSTREAM_RQ_3XX, "downstream_rq_3xx", STAT_COUNTER)                             \
    X(DOWNSTREAM_RQ_4XX, "downstream_rq_4xx", STAT_COUNTER)                             \
    X(DOWNSTREAM_RQ_5XX, "downstream_rq_5xx", STAT_COUNTER)                             \
    X(DOWNSTREAM_RQ_RX_RESET, "downstream_rq_rx_reset", STAT_COUNTER)                   \
    X(DOWNSTREAM_RQ_TX_RESET, "downstream_rq_tx_reset", STAT_COUNTER)

#define HTTP_STAT_ENUM(id, name, type) HTTP_STAT_##id,
enum { HTTP_STATS(HTTP_STAT_ENUM) HTTP_STAT_COUNT };
#undef HTTP_STAT_ENUM

#define HTTP2_CODEC_STATS(X)                                                            \
    X(RX_RESET, "rx_reset", STAT_COUNTER)                                               \
    X(TX_RESET, "tx_reset", STAT_COUNTER)                                               \
    X(GOAWAY_SENT, "goaway_sent", STAT_COUNTER)                                         \
    X(TRAILERS, "trailers", STAT_COUNTER)                                               \
    X(HEADER_OVERFLOW, "header_overflow", STAT_COUNTER)                                 \
    X(STREAMS_ACTIVE, "streams_active", STAT_GAUGE)

#define HTTP2_STAT_ENUM(id, name, type) HTTP2_STAT_##id,
enum { HTTP2_CODEC_STATS(HTTP2_STAT_ENUM) HTTP2_STAT_COUNT };
#undef HTTP2_STAT_ENUM

/* "http.<stat_prefix>." (one reference, the caller's); NULL on OOM. */
stats_scope *http_stats_scope_create(const char *stat_prefix);
/* "http2." (one reference, the caller's); NULL on OOM. */
stats_scope *http2_codec_stats_scope_create(void);

#endif
