/*
 * http1_pool.h: an HTTP/1.1 connection pool for one host of one cluster
 * on one worker, with Envoy's semantics: a request gets a ready (idle)
 * connection when there is one, otherwise it waits in the pending queue
 * (bounded by the cluster's max_pending_requests) while a connection is
 * opened (bounded by max_connections, except that a pool with no
 * connection may always open one); max_requests is checked when a
 * request is bound. One request per connection at a time, never
 * pipelined. Keep-alive connections are reused; `Connection: close`,
 * max_requests_per_connection, idle_timeout and the upstream's
 * `Keep-Alive: timeout=N` retire them. An idle connection the upstream
 * closed is noticed (read event or a peek before reuse) and dropped.
 *
 * Owns: its connections (sockets, buffers, timers). A pool_request is
 * the caller's; the pool only links it while pending or bound.
 * Threads: the owning worker's thread only, except http1_pool_counts_get.
 */
#ifndef XDSNODE_HTTP1_POOL_H
#define XDSNODE_HTTP1_POOL_H

#include <http_parser.h>
#include <stddef.h>

#include "xdsnode/circuit_breaker.h"
#include "xdsnode/http_headers.h"
#include "xdsnode/pool_base.h"

struct ev_loop;
struct worker_cluster;
typedef struct http1_pool http1_pool;
typedef struct upconn upconn;
typedef struct pool_request pool_request;

typedef enum {
    POOL_FAIL_OVERFLOW = 0,
    POOL_FAIL_CONNECT,   /* remote connection failure */
    POOL_FAIL_TIMEOUT,   /* connect timeout */
} pool_failure;

typedef struct {
    int before_response;   /* no response byte had arrived */
    int nothing_written;   /* no request byte had reached the socket */
    int reused;            /* the connection had served an earlier request */
    int refused;           /* HTTP/2: the peer did not process the stream
                            * (REFUSED_STREAM, or above GOAWAY's last id) */
    const char *transport_failure; /* TLS: Envoy's transport failure reason, or NULL */
} upconn_reset_info;

typedef struct {
    /* Bound to a connection: write the request with upconn_send(). */
    void (*on_ready)(pool_request *r, upconn *c);
    /* Could not get a connection; `limit` names the tripped limit when
     * why == POOL_FAIL_OVERFLOW. The request is no longer linked. */
    void (*on_failure)(pool_request *r, pool_failure why, cb_resource limit);
    void (*on_response_headers)(pool_request *r, const http_parser *p, const header_list *h);
    void (*on_response_body)(pool_request *r, const char *data, size_t len);
    /* The response's trailers: fields first..h->n-1 of h (HTTP/1.1 chunked
     * trailers, or HTTP/2 trailing HEADERS); before on_response_complete.
     * Optional. */
    void (*on_response_trailers)(pool_request *r, const header_list *h, size_t first);
    /* The response is complete; the request is unbound. */
    void (*on_response_complete)(pool_request *r);
    /* The connection failed while bound; the request is unbound. */
    void (*on_reset)(pool_request *r, const upconn_reset_info *info);
    /* The connection's send buffer fell to zero (resume the body source). */
    void (*on_drained)(pool_request *r);
    /* One upstream read has been delivered (a good moment to write the
     * pieces it produced downstream in one go). */
    void (*on_read_done)(pool_request *r);
} pool_request_callbacks;

struct pool_request {
    const pool_request_callbacks *cb;
    int priority;
    int is_head;          /* response has no body */
    int want_fresh;       /* do not reuse an idle connection (retry after a reset) */
    upconn *conn;         /* while bound */
    http1_pool *pool;     /* while pending or bound */
    struct h2_stream *h2; /* HTTP/2 (http2_pool.h): the bound stream */
    struct http2_pool *h2pool; /* HTTP/2: while pending or bound */
    const header_list *trailers; /* HTTP/2: sent at pool_request_end (the caller's) */
    /* Set by the pool before on_failure(POOL_FAIL_CONNECT/TIMEOUT) when a
     * TLS handshake failed: Envoy's transport failure reason (valid during
     * the callback), else NULL. */
    const char *transport_failure;
    pool_request *prev, *next; /* pending queue */
};

http1_pool *http1_pool_create(struct ev_loop *loop, struct worker_cluster *wc, size_t host_index);
/* Closes every connection; the pool must have no pending or bound request. */
void http1_pool_destroy(http1_pool *p);
/* No new requests; idle connections close now, busy ones after their response. */
void http1_pool_drain(http1_pool *p);
/* No connection, no pending request. */
int http1_pool_empty(const http1_pool *p);

/* Any thread: reads atomics the owning worker updates on every change;
 * `p` must stay alive meanwhile (see worker_visit_pools). */
void http1_pool_counts_get(const http1_pool *p, size_t counts[POOL_COUNT_FIELDS]);

/* Starts a request: binds it (on_ready is called before this returns),
 * queues it, or fails it with on_failure (overflow, called before this
 * returns). */
void http1_pool_new_request(http1_pool *p, pool_request *r);
/* Withdraws a request: pending ones leave the queue; a bound one closes
 * its connection unless the response was complete. */
void http1_pool_cancel(pool_request *r);

/* Queues bytes of the request on the bound connection. */
int upconn_send(upconn *c, const void *data, size_t len);
size_t upconn_send_buffered(const upconn *c);
/* The whole request has been queued. */
void upconn_request_end(upconn *c);
/* Backpressure from the downstream: stop/restart reading the response. */
void upconn_pause_reading(upconn *c);
void upconn_resume_reading(upconn *c);
/* "ip:port" of the connection's host. */
const char *upconn_host_name(const upconn *c);

#endif
