/*
 * conn_pool.h: the one pool interface the router uses, whatever the
 * upstream protocol: per worker, per cluster, per host, one HTTP/1.1 pool
 * and one HTTP/2 pool (each created on first use); a request names the
 * protocol, and from then on every call goes through pool_request_*,
 * which dispatches to the pool that holds it.
 *
 * Owns: its http1_pool and http2_pool. Threads: the owning worker's only,
 * except conn_pool_http1/conn_pool_http2.
 */
#ifndef XDSNODE_CONN_POOL_H
#define XDSNODE_CONN_POOL_H

#include <stddef.h>

#include "xdsnode/http1_pool.h"
#include "xdsnode/http2_pool.h"

struct ev_loop;
struct worker_cluster;
typedef struct conn_pool conn_pool;

conn_pool *conn_pool_create(struct ev_loop *loop, struct worker_cluster *wc, size_t host_index);
void conn_pool_destroy(conn_pool *p);
void conn_pool_drain(conn_pool *p);
int conn_pool_empty(const conn_pool *p);
/* For /pools, from any thread while `p` is alive (worker_visit_pools):
 * the host's HTTP/1.1 or HTTP/2 pool, or NULL when no request of that
 * protocol came yet. The pools are created once and published with
 * release/acquire atomics, so a reader sees them fully built. */
http1_pool *conn_pool_http1(const conn_pool *p);
http2_pool *conn_pool_http2(const conn_pool *p);
/* http2: use the HTTP/2 pool. Same contract as http1_pool_new_request. */
void conn_pool_new_request(conn_pool *p, pool_request *r, int http2);

/* Pending or bound to a pool. */
int pool_request_linked(const pool_request *r);
void pool_request_cancel(pool_request *r);
/* HTTP/2: the request head as fields (method, path, and the fields:
 * host becomes :authority, hop-by-hop ones are left out; names are
 * lower-cased in place); the body then goes raw through
 * pool_request_send and ends at pool_request_end, with r->trailers.
 * HTTP/1.1 requests are text through pool_request_send instead. */
int pool_request_send_head(pool_request *r, const char *method, const char *path, size_t path_len,
                           header_list *fields, int has_body);
int pool_request_send(pool_request *r, const void *data, size_t len);
size_t pool_request_send_buffered(const pool_request *r);
void pool_request_end(pool_request *r);
void pool_request_pause_reading(pool_request *r);
void pool_request_resume_reading(pool_request *r);
const char *pool_request_host_name(const pool_request *r);

#endif
