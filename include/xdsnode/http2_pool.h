/*
 * http2_pool.h: an HTTP/2 (h2c, prior knowledge) connection pool for one
 * host of one cluster on one worker, with Envoy's semantics (xds-facts
 * §4.5): a request becomes a stream on a connection with room, i.e. fewer
 * active streams than min(peer SETTINGS_MAX_CONCURRENT_STREAMS,
 * http2_protocol_options.max_concurrent_streams); otherwise it waits in the
 * pending queue (max_pending_requests) while a new connection is opened
 * (max_connections; a pool with no connection may always open one).
 * max_requests counts active streams cluster-wide. A connection that
 * reaches max_requests_per_connection or receives GOAWAY drains: no new
 * streams, open ones finish, then it closes. connection_keepalive PINGs
 * close a connection whose PING is not answered in time.
 *
 * The router hands a stream the request as fields (h2_stream_request:
 * Host -> :authority, hop-by-hop headers dropped), body bytes and an end
 * with trailers (a trailing HEADERS frame), and gets responses back as an
 * http_parser-shaped status plus header_list, body bytes, and trailers
 * through on_response_trailers. Windows are returned as
 * the router takes response bytes (h2_stream_pause_reading holds them).
 *
 * Owns: its connections (sockets, nghttp2 sessions, timers) and streams.
 * A pool_request is the caller's; the pool only links it (r->h2pool while
 * pending or bound, r->h2 while bound).
 * Threads: the owning worker's thread only, except http2_pool_counts_get.
 */
#ifndef XDSNODE_HTTP2_POOL_H
#define XDSNODE_HTTP2_POOL_H

#include <stddef.h>

#include "xdsnode/http1_pool.h"

struct ev_loop;
struct worker_cluster;
typedef struct http2_pool http2_pool;
typedef struct h2_stream h2_stream;

http2_pool *http2_pool_create(struct ev_loop *loop, struct worker_cluster *wc, size_t host_index);
/* Closes every connection; the pool must have no pending or bound request. */
void http2_pool_destroy(http2_pool *p);
/* No new requests; idle connections close now, busy ones when their streams end. */
void http2_pool_drain(http2_pool *p);
int http2_pool_empty(const http2_pool *p);

/* The pool's published counts (POOL_COUNT_*, http1_pool.h) for /pools:
 * connections connecting, active (open, with streams), idle (open, no
 * stream) or draining (GOAWAY, max_requests_per_connection, or the pool
 * drains); streams open on them; pending requests. Any thread: reads
 * atomics the owning worker updates at the end of every call and event
 * into the pool; `p` must stay alive meanwhile (see worker_visit_pools). */
void http2_pool_counts_get(const http2_pool *p, size_t counts[POOL_COUNT_FIELDS]);

/* Starts a request: binds it to a stream (on_ready(r, NULL) before this
 * returns), queues it, or fails it (on_failure, before this returns). */
void http2_pool_new_request(http2_pool *p, pool_request *r);
/* Withdraws a request: pending ones leave the queue, a bound stream is
 * reset (RST_STREAM CANCEL) unless its response was complete. */
void http2_pool_cancel(pool_request *r);

/* The request's HEADERS: method, path and fields (host becomes
 * :authority; hop-by-hop fields and TE other than "trailers" are left
 * out; names are lower-cased in place). has_body: DATA follows. Returns 0
 * or -1. */
int h2_stream_request(h2_stream *st, const char *method, const char *path, size_t path_len,
                      header_list *fields, int has_body);
/* Request body bytes, as they are. Returns 0 or -1. */
int h2_stream_send(h2_stream *st, const void *data, size_t len);
/* The body is complete; trailers (may be NULL or empty; copied) go as a
 * trailing HEADERS frame. */
void h2_stream_end(h2_stream *st, const header_list *trailers);
/* Request body bytes not yet taken by the HTTP/2 flow-control window. */
size_t h2_stream_send_buffered(const h2_stream *st);
/* Backpressure from the client: DATA the stream receives while paused
 * keeps its flow-control window closed until resumed. */
void h2_stream_pause_reading(h2_stream *st);
void h2_stream_resume_reading(h2_stream *st);
const char *h2_stream_host_name(const h2_stream *st);

#endif
