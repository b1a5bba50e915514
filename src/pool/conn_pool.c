/* conn_pool.c: protocol dispatch between the HTTP/1.1 and HTTP/2 pools (conn_pool.h). */
#include "xdsnode/conn_pool.h"

#include <stdatomic.h>
#include <stdlib.h>

struct conn_pool {
    struct ev_loop *loop;
    struct worker_cluster *wc;
    size_t host;
    /* written once by the worker (release), read by /pools (acquire) */
    _Atomic(http1_pool *) h1;
    _Atomic(http2_pool *) h2;
};

static http1_pool *pool_h1(const conn_pool *p)
{
    return atomic_load_explicit(&((conn_pool *)p)->h1, memory_order_acquire);
}

static http2_pool *pool_h2(const conn_pool *p)
{
    return atomic_load_explicit(&((conn_pool *)p)->h2, memory_order_acquire);
}

conn_pool *conn_pool_create(struct ev_loop *loop, struct worker_cluster *wc, size_t host_index)
{
    conn_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->wc = wc;
    p->host = host_index;
    return p;
}

void conn_pool_destroy(conn_pool *p)
{
    if (p == NULL)
        return;
    if (pool_h1(p))
        http1_pool_destroy(pool_h1(p));
    if (pool_h2(p))
        http2_pool_destroy(pool_h2(p));
    free(p);
}

void conn_pool_drain(conn_pool *p)
{
    if (pool_h1(p))
        http1_pool_drain(pool_h1(p));
    if (pool_h2(p))
        http2_pool_drain(pool_h2(p));
}

int conn_pool_empty(const conn_pool *p)
{
    return (pool_h1(p) == NULL || http1_pool_empty(pool_h1(p))) &&
           (pool_h2(p) == NULL || http2_pool_empty(pool_h2(p)));
}

http1_pool *conn_pool_http1(const conn_pool *p) { return pool_h1(p); }
http2_pool *conn_pool_http2(const conn_pool *p) { return pool_h2(p); }

void conn_pool_new_request(conn_pool *p, pool_request *r, int http2)
{
    r->h2 = NULL;
    r->h2pool = NULL;
    r->transport_failure = NULL;
    if (http2 && pool_h2(p) == NULL)
        atomic_store_explicit(&p->h2, http2_pool_create(p->loop, p->wc, p->host),
                              memory_order_release);
    if (!http2 && pool_h1(p) == NULL)
        atomic_store_explicit(&p->h1, http1_pool_create(p->loop, p->wc, p->host),
                              memory_order_release);
    if (http2 && pool_h2(p)) {
        http2_pool_new_request(pool_h2(p), r);
    } else if (!http2 && pool_h1(p)) {
        http1_pool_new_request(pool_h1(p), r);
    } else {
        r->pool = NULL;
        r->conn = NULL;
        r->cb->on_failure(r, POOL_FAIL_CONNECT, CB_CONNECTIONS);
    }
}

int pool_request_linked(const pool_request *r) { return r->pool != NULL || r->h2pool != NULL; }

void pool_request_cancel(pool_request *r)
{
    if (r->h2pool)
        http2_pool_cancel(r);
    else if (r->pool)
        http1_pool_cancel(r);
}

int pool_request_send_head(pool_request *r, const char *method, const char *path, size_t path_len,
                           header_list *fields, int has_body)
{
    return r->h2 ? h2_stream_request(r->h2, method, path, path_len, fields, has_body) : -1;
}

int pool_request_send(pool_request *r, const void *data, size_t len)
{
    if (r->h2)
        return h2_stream_send(r->h2, data, len);
    return r->conn ? upconn_send(r->conn, data, len) : -1;
}

size_t pool_request_send_buffered(const pool_request *r)
{
    if (r->h2)
        return h2_stream_send_buffered(r->h2);
    return r->conn ? upconn_send_buffered(r->conn) : 0;
}

void pool_request_end(pool_request *r)
{
    if (r->conn)
        upconn_request_end(r->conn);
    else if (r->h2)
        h2_stream_end(r->h2, r->trailers);
}

/* HTTP/2: the stream's flow-control window stays closed while paused. */
void pool_request_pause_reading(pool_request *r)
{
    if (r->h2)
        h2_stream_pause_reading(r->h2);
    else if (r->conn)
        upconn_pause_reading(r->conn);
}

void pool_request_resume_reading(pool_request *r)
{
    if (r->h2)
        h2_stream_resume_reading(r->h2);
    else if (r->conn)
        upconn_resume_reading(r->conn);
}

const char *pool_request_host_name(const pool_request *r)
{
    if (r->h2)
        return h2_stream_host_name(r->h2);
    return r->conn ? upconn_host_name(r->conn) : "-";
}
