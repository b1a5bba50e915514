/*
 * upstream_tls.h: TLS origination to upstreams, Envoy's
 * envoy.transport_sockets.tls with an UpstreamTlsContext, through OpenSSL 3
 * (the subset BoringSSL also has). Two halves:
 *
 * - The context (upstream_tls_ctx): the one translation of a cluster's
 *   transport_socket. Every field is supported, ignored (and counted, see
 *   upstream_tls_ignored_fields) or rejected with its field path. Building
 *   it reads the DataSources (files, inline, environment), parses the PEM
 *   and makes the SSL_CTX, once per cluster config. Immutable afterwards
 *   except its session cache (a mutex, taken only when a connection starts
 *   or the server sends a session) and shared read-only with the workers by
 *   reference count (cluster manager -> snapshot dp_cluster -> connection).
 *
 * - The connection (upstream_tls_conn): one SSL on one upstream socket,
 *   used the same way by the HTTP/1.1 pool, the HTTP/2 pool and the TCP
 *   proxy: a non-blocking handshake after the TCP connect (inside
 *   connect_timeout, as Envoy), then recv()/buffer_write_fd()-shaped read
 *   and write, and close_notify on a clean close. Plaintext connections
 *   have no upstream_tls_conn at all (a NULL check is their whole cost).
 *
 * Owns: a context owns its SSL_CTX, matchers and cached sessions; a
 * connection owns its SSL and holds a reference on its context and on the
 * cluster's "cluster.<name>.ssl." stats scope. The socket stays the
 * caller's (upstream_tls_conn_free does not close it).
 * Threads: upstream_tls_ctx_create, upstream_tls_ignored_fields and
 * upstream_tls_stats_scope_create on the main thread (config); ref/unref
 * from any thread (atomics); a connection only on the worker that owns it.
 */
#ifndef XDSNODE_UPSTREAM_TLS_H
#define XDSNODE_UPSTREAM_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xdsnode/buffer.h"
#include "xdsnode/envoy_types.h"
#include "xdsnode/stats.h"

/* TransportSocket.name and typed_config type of Envoy's TLS socket. */
#define UPSTREAM_TLS_SOCKET_NAME "envoy.transport_sockets.tls"
#define UPSTREAM_TLS_CONTEXT_TYPE "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

/* UpstreamTlsContext.max_session_keys (unset: 1; 0 disables resumption) */
#define UPSTREAM_TLS_DEFAULT_MAX_SESSION_KEYS 1
/* TlsParameters.tls_minimum/maximum_protocol_version for clients when
 * TLS_AUTO: TLSv1_2 both (Envoy's ClientContextConfigImpl). */
#define UPSTREAM_TLS_DEFAULT_MIN_VERSION 0x0303
#define UPSTREAM_TLS_DEFAULT_MAX_VERSION 0x0303
/* TlsParameters.cipher_suites for clients when empty (Envoy's OpenSSL
 * list: its BoringSSL equal-preference groups flattened). */
#define UPSTREAM_TLS_DEFAULT_CIPHER_SUITES                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"                           \
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"                               \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
/* TlsParameters.ecdh_curves for clients when empty. */
#define UPSTREAM_TLS_DEFAULT_CURVES "X25519:P-256"
/* Largest DataSource read from a file (Envoy's default max_size). */
#define UPSTREAM_TLS_MAX_DATA_SOURCE_BYTES (4u * 1024 * 1024)

typedef struct upstream_tls_ctx upstream_tls_ctx;
typedef struct upstream_tls_conn upstream_tls_conn;

/* What a TransportSocket is. */
typedef enum {
    UPSTREAM_SOCKET_PLAINTEXT = 0, /* absent, or envoy.transport_sockets.raw_buffer */
    UPSTREAM_SOCKET_TLS,           /* envoy.transport_sockets.tls / UpstreamTlsContext */
    UPSTREAM_SOCKET_OTHER,         /* anything else (not supported) */
} upstream_socket_kind;

upstream_socket_kind upstream_tls_socket_kind(const Envoy__Config__Core__V3__TransportSocket *ts);

/* Builds the context of a cluster's transport_socket. `path` prefixes the
 * field paths of errors (e.g. "static_resources.clusters[0]"; "" for CDS).
 * Returns 0 with *out (NULL for a plaintext socket), or -1 with err
 * ("PATH.transport_socket.typed_config.FIELD: reason"). */
int upstream_tls_ctx_create(const pb_cluster *c, const char *path, upstream_tls_ctx **out,
                            char *err, size_t errlen);
void upstream_tls_ctx_ref(upstream_tls_ctx *t);
void upstream_tls_ctx_unref(upstream_tls_ctx *t);

/* Lists (", "-separated, appended to out at *used) the UpstreamTlsContext
 * fields set on c that are kept but not acted on, as paths from the
 * cluster (e.g. "transport_socket.typed_config.common_tls_context.key_log").
 * Returns how many. */
size_t upstream_tls_ignored_fields(const pb_cluster *c, char *out, size_t outlen, size_t *used);

/* --- stats: "cluster.<stat name>.ssl.*", Envoy's names ------------------ */

#define UPSTREAM_TLS_STATS(X)                                                  \
    X(CONNECTION_ERROR, "connection_error", STAT_COUNTER)                      \
    X(HANDSHAKE, "handshake", STAT_COUNTER)                                    \
    X(SESSION_REUSED, "session_reused", STAT_COUNTER)                          \
    X(NO_CERTIFICATE, "no_certificate", STAT_COUNTER)                          \
    X(FAIL_VERIFY_NO_CERT, "fail_verify_no_cert", STAT_COUNTER)                \
    X(FAIL_VERIFY_ERROR, "fail_verify_error", STAT_COUNTER)                    \
    X(FAIL_VERIFY_SAN, "fail_verify_san", STAT_COUNTER)                        \
    X(FAIL_VERIFY_CERT_HASH, "fail_verify_cert_hash", STAT_COUNTER)            \
    X(VERSION_TLS1_0, "versions.TLSv1", STAT_COUNTER)                          \
    X(VERSION_TLS1_1, "versions.TLSv1.1", STAT_COUNTER)                        \
    X(VERSION_TLS1_2, "versions.TLSv1.2", STAT_COUNTER)                        \
    X(VERSION_TLS1_3, "versions.TLSv1.3", STAT_COUNTER)

#define UPSTREAM_TLS_STAT_ENUM(id, name, type) UPSTREAM_TLS_STAT_##id,
enum { UPSTREAM_TLS_STATS(UPSTREAM_TLS_STAT_ENUM) UPSTREAM_TLS_STAT_COUNT };
#undef UPSTREAM_TLS_STAT_ENUM

extern const stat_def upstream_tls_stat_defs[UPSTREAM_TLS_STAT_COUNT];

/* The "cluster.<stat name>.ssl." scope (Prometheus:
 * envoy_cluster_ssl_<stat>{envoy_cluster_name="<stat name>"}). NULL on
 * allocation failure. */
stats_scope *upstream_tls_stats_scope_create(const char *stat_name);

/* --- one connection (the owning worker's thread) ------------------------- */

/* The ALPN a pool offers when the context configures none (Envoy's
 * fallback: "http/1.1" for the HTTP/1.1 pool, "h2" for the HTTP/2 pool,
 * nothing for tcp_proxy). */
typedef enum {
    UPSTREAM_TLS_ALPN_NONE = 0,
    UPSTREAM_TLS_ALPN_HTTP11,
    UPSTREAM_TLS_ALPN_H2,
} upstream_tls_alpn;

/* A client SSL on the connected (or connecting) socket fd, with the
 * context's SNI and the most recent cached session. `stats` is the
 * cluster's ssl scope (referenced). NULL on allocation failure. */
upstream_tls_conn *upstream_tls_conn_new(upstream_tls_ctx *ctx, stats_scope *stats, int fd,
                                         upstream_tls_alpn fallback);

typedef enum {
    UPSTREAM_TLS_DONE = 0,   /* handshake complete (counted in ssl.handshake) */
    UPSTREAM_TLS_WANT_READ,  /* wait until the socket is readable, then call again */
    UPSTREAM_TLS_WANT_WRITE, /* wait until the socket is writable, then call again */
    UPSTREAM_TLS_FAILED,     /* see upstream_tls_failure_reason */
} upstream_tls_status;

/* One step of the handshake. */
upstream_tls_status upstream_tls_handshake(upstream_tls_conn *t);

/* recv()'s contract: bytes read (> 0), 0 at the end of the stream
 * (close_notify or EOF), or -1 with errno EAGAIN (nothing yet) or
 * ECONNRESET (a TLS error: see upstream_tls_failure_reason). */
ssize_t upstream_tls_read(upstream_tls_conn *t, void *buf, size_t len);

/* buffer_write_fd()'s contract: writes as much of b as the socket takes
 * and consumes it; returns bytes written (>= 0; 0 when the socket is
 * full), or -1 on a TLS or socket error. */
long upstream_tls_write(upstream_tls_conn *t, buffer *b);

/* Decrypted bytes (or an end of stream) are waiting inside the SSL: the
 * socket may not become readable again, so the caller must read anyway. */
int upstream_tls_pending(const upstream_tls_conn *t);

/* For an idle connection before reuse: 1 when it can take a request (no
 * application data, close_notify or EOF waiting), else 0. */
int upstream_tls_idle_ok(upstream_tls_conn *t);

/* Half-close (tcp_proxy): sends close_notify; the caller then shuts the
 * socket down for writing. */
void upstream_tls_shutdown(upstream_tls_conn *t);

/* Sends close_notify unless the connection failed, and frees the SSL
 * (not the socket). NULL is allowed. */
void upstream_tls_conn_free(upstream_tls_conn *t);

/* Envoy's transport failure reason ("TLS_error:|<code>:<lib>:<func>:
 * <reason>[:<detail>]:TLS_error_end"), or "" when none. */
const char *upstream_tls_failure_reason(const upstream_tls_conn *t);

/* The negotiated ALPN protocol ("" when none). */
void upstream_tls_alpn_selected(const upstream_tls_conn *t, char *out, size_t outlen);

#endif
