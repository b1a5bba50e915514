/* http2_pool.c: HTTP/2 upstream connection pool per worker per host (http2_pool.h). */
#include "xdsnode/http2_pool.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "xdsnode/cluster_stats.h"
#include "xdsnode/dlist.h"
#include "xdsnode/h2_common.h"
#include "xdsnode/log.h"
#include "xdsnode/upstream_socket.h"
#include "xdsnode/upstream_tls.h"
#include "xdsnode/wmem.h"
#include "xdsnode/worker.h"

/* Read size per event on an upstream socket. */
#define H2CONN_READ_CHUNK 65536
/* Most header fields one request may carry to nghttp2. */
#define H2_MAX_REQUEST_FIELDS 128

typedef enum { H2C_CONNECTING, H2C_OPEN, H2C_DRAINING } h2conn_state;

typedef struct h2conn h2conn;

struct h2_stream {
    h2conn *conn;
    pool_request *req;        /* NULL once cancelled */
    int32_t id;               /* 0 until HEADERS are submitted */
    header_list reqh;         /* the request trailers, once the body ended */
    buffer body;              /* request DATA not yet framed */
    int req_eof, data_deferred, has_body;
    header_list resph;
    size_t resp_trailer_start;/* response trailers start at this index of resph */
    int status, response_started, response_done, in_trailers;
    int paused;               /* the router's client is slow: hold the window */
    size_t unconsumed;        /* DATA delivered while paused, window not yet returned */
    h2_stream *prev, *next;
};

struct h2conn {
    http2_pool *pool;
    int fd;
    upstream_tls_conn *tls;   /* TLS clusters only; the handshake runs while H2C_CONNECTING */
    int tcp_connected;        /* TLS: the TCP connect is done, the handshake runs */
    h2conn_state state;
    int settings_seen;        /* the peer's SETTINGS arrived: streams may start */
    ev_io rio, wio;
    ev_timer timer;           /* connect timeout, then idle timeout */
    ev_timer ping_timer;      /* connection_keepalive.interval */
    ev_timer ping_timeout;    /* connection_keepalive.timeout */
    ev_timer flush_timer;     /* frames queued by the router go out together, next loop turn */
    nghttp2_session *session;
    buffer wbuf;              /* frames serialized, not yet written */
    h2_stream *streams;
    size_t n_streams;
    uint32_t started;         /* streams ever started */
    int in_session, want_flush, dead;
    int destroy_pending, destroy_remote; /* conn_destroy asked while nghttp2 was on the stack */
    h2conn *prev, *next;
};

struct http2_pool {
    pool_base b;              /* loop, cluster, host, pending queue, counts
                               * (published at the end of every entry point) */
    h2conn *conns;
    size_t n_conns, n_connecting;
    char host_name[80];
    /* Streams the upstream let through on the last connection it sent
     * GOAWAY on (0: none yet). A retried request (refused, or above GOAWAY's
     * last stream) only goes where it is within that many streams: an
     * upstream that serves N streams per connection (nginx's
     * keepalive_requests) would refuse it again behind newer requests. */
    uint32_t goaway_budget;
};

static dp_cluster *pool_cluster(const http2_pool *p) { return pool_base_cluster(&p->b); }
static const cluster_config *pool_cfg(const http2_pool *p) { return pool_base_cluster(&p->b)->cfg; }
static stats_scope *pool_stats(const http2_pool *p) { return pool_base_stats(&p->b); }
static host_stats *pool_host_stats(const http2_pool *p) { return pool_base_host_stats(&p->b); }

static void conn_destroy(h2conn *c, int remote);
static void conn_connected(h2conn *c);
static void conn_tls_handshake(h2conn *c);
static void pool_dispatch_pending(http2_pool *p);
static void conn_flush(h2conn *c);
static void conn_schedule_flush(h2conn *c);

/* --- published counts ------------------------------------------------------- */

/* Publishes the counts (relaxed atomics: each number is exact, the set is
 * as of some moment of this worker's loop). A connection is connecting,
 * draining (GOAWAY, max_requests_per_connection, or the pool drains),
 * active (open with streams) or idle (open, no stream). */
static void pool_publish(http2_pool *p)
{
    size_t v[POOL_COUNT_FIELDS] = {0};
    for (const h2conn *c = p->conns; c != NULL; c = c->next) {
        if (c->state == H2C_CONNECTING)
            v[POOL_COUNT_CONNECTING]++;
        else if (c->state == H2C_DRAINING || p->b.draining)
            v[POOL_COUNT_DRAINING]++;
        else if (c->n_streams > 0)
            v[POOL_COUNT_ACTIVE]++;
        else
            v[POOL_COUNT_IDLE]++;
        v[POOL_COUNT_STREAMS] += c->n_streams;
    }
    v[POOL_COUNT_PENDING] = p->b.n_pending;
    pool_base_publish(&p->b, v);
}

void http2_pool_counts_get(const http2_pool *p, size_t counts[POOL_COUNT_FIELDS])
{
    pool_base_counts_get(&p->b, counts);
}

/* --- pending queue ------------------------------------------------------ */

static void pending_push(http2_pool *p, pool_request *r)
{
    pool_base_pending_push(&p->b, r);
    r->h2pool = p;
}

static void pending_push_front(http2_pool *p, pool_request *r)
{
    pool_base_pending_push_front(&p->b, r);
    r->h2pool = p;
}

static void pending_remove(http2_pool *p, pool_request *r)
{
    pool_base_pending_remove(&p->b, r);
    r->h2pool = NULL;
}

/* --- lists ---------------------------------------------------------------- */

static void conn_link(http2_pool *p, h2conn *c)
{
    DLIST_INSERT_HEAD(p->conns, c);
    p->n_conns++;
}

static void conn_unlink(http2_pool *p, h2conn *c)
{
    DLIST_REMOVE(p->conns, c);
    p->n_conns--;
}

static void stream_link(h2conn *c, h2_stream *st)
{
    DLIST_INSERT_HEAD(c->streams, st);
    c->n_streams++;
    stats_add(pool_stats(c->pool), CLUSTER_STAT_HTTP2_STREAMS_ACTIVE, 1);
}

static void stream_unlink(h2conn *c, h2_stream *st)
{
    DLIST_REMOVE(c->streams, st);
    c->n_streams--;
    stats_dec(pool_stats(c->pool), CLUSTER_STAT_HTTP2_STREAMS_ACTIVE);
}

/* --- capacity --------------------------------------------------------------- */

/* min(peer SETTINGS_MAX_CONCURRENT_STREAMS, configured max_concurrent_streams) */
static uint32_t conn_stream_limit(const h2conn *c)
{
    uint32_t limit = pool_cfg(c->pool)->h2.max_concurrent_streams;
    uint32_t peer = nghttp2_session_get_remote_settings(c->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return peer < limit ? peer : limit;
}

static int conn_has_room(const h2conn *c)
{
    return c->state == H2C_OPEN && c->settings_seen && c->n_streams < conn_stream_limit(c);
}

/* max_requests_per_connection reached or GOAWAY: no new streams. */
static void conn_start_draining(h2conn *c)
{
    if (c->state == H2C_DRAINING)
        return;
    c->state = H2C_DRAINING;
    if (c->n_streams == 0 && !c->in_session)
        conn_destroy(c, 0);
}

/* --- streams ----------------------------------------------------------------- */

static void stream_free(h2_stream *st)
{
    header_list_free(&st->reqh);
    header_list_free(&st->resph);
    buffer_free(&st->body);
    wmem_free(st);
}

/* Unbinds st's request and hands back its counters. */
static pool_request *stream_unbind(h2_stream *st)
{
    pool_request *r = st->req;
    if (r == NULL)
        return NULL;
    http2_pool *p = st->conn->pool;
    st->req = NULL;
    r->h2 = NULL;
    r->h2pool = NULL;
    cb_release(&pool_cluster(p)->cb, r->priority, CB_REQUESTS);
    stats_dec(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_ACTIVE);
    host_stat_add(pool_host_stats(p), HOST_STAT_RQ_ACTIVE, -1);
    return r;
}

/* st is over: unlink it, then drain or idle the connection. */
static void stream_retire(h2_stream *st)
{
    h2conn *c = st->conn;
    stream_unlink(c, st);
    if (st->unconsumed > 0) /* the connection window must not shrink for good */
        nghttp2_session_consume_connection(c->session, st->unconsumed);
    if (st->id > 0)
        nghttp2_session_set_stream_user_data(c->session, st->id, NULL);
    stream_free(st);
}

static void conn_after_stream(h2conn *c)
{
    http2_pool *p = c->pool;
    if (c->state == H2C_DRAINING || p->b.draining) {
        if (c->n_streams == 0 && !c->in_session)
            conn_destroy(c, 0);
        return;
    }
    if (c->n_streams == 0 && pool_cfg(p)->idle_timeout_ms) {
        ev_timer_set(&c->timer, (double)pool_cfg(p)->idle_timeout_ms / 1000.0, 0.);
        ev_timer_start(p->b.loop, &c->timer);
    }
}

static ssize_t read_request_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                 size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                                 void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    h2_stream *st = source->ptr;
    ssize_t n = h2_read_body(st->conn->session, st->id, &st->body, st->req_eof, &st->reqh,
                             0, buf, length, data_flags, &st->data_deferred);
    if (n > 0 && buffer_len(&st->body) == 0 && st->req && st->req->cb->on_drained)
        st->req->cb->on_drained(st->req);
    return n;
}

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* Builds :method :scheme :authority :path and the regular fields (names
 * lower-cased in place; Host becomes :authority; hop-by-hop dropped). */
static size_t build_request_nv(const char *method, const char *path, size_t path_len,
                               header_list *h, nghttp2_nv *nv, size_t max)
{
    size_t alen = 0, clen = 0, n = 0;
    const char *authority = header_list_get(h, "host", &alen);
    const char *conn_val = header_list_get(h, "connection", &clen);
    nv[n++] = h2_nv(":method", 7, method, strlen(method));
    nv[n++] = h2_nv(":scheme", 7, "http", 4);
    nv[n++] = h2_nv(":authority", 10, authority ? authority : "", authority ? alen : 0);
    nv[n++] = h2_nv(":path", 5, path, path_len);
    for (size_t i = 0; i < h->n && n < max; i++) {
        char *name = (char *)header_name(h, i);
        size_t nl = h->h[i].name_len;
        if (name_is(name, nl, "te")) { /* only "trailers" may pass (RFC 9113 8.2.2) */
            if (header_te_trailers(header_value(h, i), h->h[i].value_len))
                nv[n++] = h2_nv("te", 2, "trailers", 8);
            continue;
        }
        if (name_is(name, nl, "host") || header_is_hop_by_hop(name, nl, conn_val, clen))
            continue;
        if (h->mixed_case)
            header_lower(name, nl);
        nv[n++] = h2_nv_field(name, nl, header_value(h, i), h->h[i].value_len);
    }
    return n;
}

int h2_stream_request(h2_stream *st, const char *method, const char *path, size_t path_len,
                      header_list *fields, int has_body)
{
    h2conn *c = st->conn;
    if (st->id > 0)
        return -1;
    nghttp2_nv nv[H2_MAX_REQUEST_FIELDS];
    size_t n = build_request_nv(method, path, path_len, fields, nv, H2_MAX_REQUEST_FIELDS);
    st->has_body = has_body;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_request_body};
    int32_t id = nghttp2_submit_request(c->session, NULL, nv, n, has_body ? &prd : NULL, st);
    if (id < 0) {
        log_warn("http2 pool: cannot submit the request: %s", nghttp2_strerror(id));
        return -1;
    }
    st->id = id;
    conn_schedule_flush(c);
    return 0;
}

/* Request DATA waiting for the window: wake the data provider. */
static void stream_resume_body(h2_stream *st)
{
    if (st->id > 0 && st->has_body && st->data_deferred &&
        (buffer_len(&st->body) > 0 || st->req_eof)) {
        st->data_deferred = 0;
        nghttp2_session_resume_data(st->conn->session, st->id);
    }
    conn_schedule_flush(st->conn);
}

int h2_stream_send(h2_stream *st, const void *data, size_t len)
{
    if (st->req_eof || len == 0)
        return 0;
    if (buffer_append(&st->body, data, len) != 0)
        return -1;
    stream_resume_body(st);
    return 0;
}

void h2_stream_end(h2_stream *st, const header_list *trailers)
{
    if (st->req_eof)
        return;
    st->req_eof = 1;
    header_list_reset(&st->reqh);
    for (size_t i = 0; trailers && i < trailers->n; i++) {
        header_list_add_field(&st->reqh, trailers, i);
    }
    stream_resume_body(st);
}

size_t h2_stream_send_buffered(const h2_stream *st) { return buffer_len(&st->body); }

void h2_stream_pause_reading(h2_stream *st) { st->paused = 1; }

void h2_stream_resume_reading(h2_stream *st)
{
    if (!st->paused)
        return;
    st->paused = 0;
    if (st->unconsumed > 0 && st->id > 0) {
        nghttp2_session_consume(st->conn->session, st->id, st->unconsumed);
        st->unconsumed = 0;
        conn_schedule_flush(st->conn);
    }
}

const char *h2_stream_host_name(const h2_stream *st) { return st->conn->pool->host_name; }

/* Binds r to a new stream on c (the caller checked the room). */
static void stream_bind(h2conn *c, pool_request *r)
{
    http2_pool *p = c->pool;
    h2_stream *st = wmem_calloc(sizeof(*st));
    if (st == NULL) {
        cb_release(&pool_cluster(p)->cb, r->priority, CB_REQUESTS);
        r->cb->on_failure(r, POOL_FAIL_CONNECT, CB_CONNECTIONS);
        return;
    }
    st->conn = c;
    st->req = r;
    header_list_init(&st->reqh);
    header_list_init(&st->resph);
    buffer_init(&st->body);
    stream_link(c, st);
    ev_timer_stop(p->b.loop, &c->timer);
    r->h2 = st;
    r->h2pool = p;
    r->conn = NULL;
    r->pool = NULL;
    c->started++;
    stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_TOTAL);
    stats_add(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_ACTIVE, 1);
    host_stat_add(pool_host_stats(p), HOST_STAT_RQ_TOTAL, 1);
    host_stat_add(pool_host_stats(p), HOST_STAT_RQ_ACTIVE, 1);
    uint32_t max_rq = pool_cfg(p)->max_requests_per_connection;
    if (max_rq && c->started >= max_rq) {
        stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_CX_MAX_REQUESTS);
        c->state = H2C_DRAINING; /* this stream still runs */
    }
    r->cb->on_ready(r, NULL);
}

/* Binds r to c if max_requests allows; otherwise fails r as overflow. */
static void bind_or_overflow(h2conn *c, pool_request *r)
{
    http2_pool *p = c->pool;
    if (!cb_try_acquire(&pool_cluster(p)->cb, r->priority, CB_REQUESTS)) {
        stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_PENDING_OVERFLOW);
        r->h2pool = NULL;
        r->cb->on_failure(r, POOL_FAIL_OVERFLOW, CB_REQUESTS);
        return;
    }
    stream_bind(c, r);
}

/* --- nghttp2 callbacks ---------------------------------------------------- */

static int on_h2_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user_data)
{
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    if (st->in_trailers && (namelen == 0 || name[0] == ':'))
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        st->status = atoi((const char *)value);
        return 0;
    }
    if (header_list_add(&st->resph, (const char *)name, namelen, (const char *)value, valuelen) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* Response HEADERS done: hand an http_parser-shaped status up. */
static void stream_deliver_headers(h2_stream *st, int end_stream)
{
    if (st->status < 200) { /* 1xx: skip */
        header_list_reset(&st->resph);
        return;
    }
    st->response_started = 1;
    st->in_trailers = 1;
    size_t n;
    const char *cl = header_list_get(&st->resph, "content-length", &n);
    /* HEADERS with END_STREAM (gRPC trailers-only): an empty body, said
     * with content-length so the HTTP/1.1 hop keeps it one frame. */
    if (cl == NULL && end_stream && header_list_add(&st->resph, "content-length", 14, "0", 1) == 0)
        cl = "0";
    st->resp_trailer_start = st->resph.n;
    if (st->req == NULL)
        return;
    http_parser hp;
    memset(&hp, 0, sizeof(hp));
    hp.status_code = (unsigned)st->status;
    hp.http_major = 1;
    hp.http_minor = 1;
    hp.content_length = cl ? strtoull(cl, NULL, 10) : ULLONG_MAX;
    st->req->cb->on_response_headers(st->req, &hp, &st->resph);
}

static int on_h2_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2conn *c = user_data;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            c->settings_seen = 1;
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            ev_timer_stop(c->pool->b.loop, &c->ping_timeout);
        break;
    case NGHTTP2_GOAWAY:
        stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_CLOSE_NOTIFY);
        if (frame->goaway.last_stream_id > 0) /* our streams are odd: 1, 3, ... */
            c->pool->goaway_budget = ((uint32_t)frame->goaway.last_stream_id + 1) / 2;
        if (c->state != H2C_DRAINING)
            c->state = H2C_DRAINING;
        break;
    case NGHTTP2_HEADERS: {
        h2_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
        if (st && !st->response_started &&
            (frame->headers.cat == NGHTTP2_HCAT_RESPONSE || frame->headers.cat == NGHTTP2_HCAT_HEADERS)) {
            stream_deliver_headers(st, end);
        } else if (st && st->response_started && frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
            stats_inc(pool_stats(c->pool), CLUSTER_STAT_HTTP2_TRAILERS);
            if (st->req && st->req->cb->on_response_trailers)
                st->req->cb->on_response_trailers(st->req, &st->resph, st->resp_trailer_start);
        }
        if (st && end && st->response_started)
            st->response_done = 1;
        break;
    }
    case NGHTTP2_RST_STREAM:
        stats_inc(pool_stats(c->pool), CLUSTER_STAT_HTTP2_RX_RESET);
        break;
    case NGHTTP2_DATA: {
        h2_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            st->response_done = 1;
        break;
    }
    default:
        break;
    }
    /* Any frame shows the connection alive (Envoy extends the PING timeout). */
    if (frame->hd.type != NGHTTP2_PING)
        ev_timer_stop(c->pool->b.loop, &c->ping_timeout);
    return 0;
}

static int on_h2_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                            const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    h2_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st && st->req && st->response_started) {
        /* The window comes back when the client took the bytes (or at
         * once, unless the router paused this stream). */
        st->req->cb->on_response_body(st->req, (const char *)data, len);
        st = nghttp2_session_get_stream_user_data(session, stream_id);
    }
    if (st && st->paused)
        st->unconsumed += len;
    else
        nghttp2_session_consume(session, stream_id, len);
    return 0;
}

static int on_h2_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    h2conn *c = user_data;
    if (frame->hd.type == NGHTTP2_RST_STREAM)
        stats_inc(pool_stats(c->pool), CLUSTER_STAT_HTTP2_TX_RESET);
    return 0;
}

/* A stream the peer never processed: refused, or above GOAWAY's last id. */
static void stream_report_close(h2_stream *st, uint32_t error_code)
{
    h2conn *c = st->conn;
    int done = st->response_done && error_code == NGHTTP2_NO_ERROR;
    int refused = error_code == NGHTTP2_REFUSED_STREAM;
    pool_request *r = stream_unbind(st);
    /* Refused streams were not processed: the router retries them on a
     * fresh connection as it does for the keep-alive race. */
    upconn_reset_info info = {!st->response_started, refused, refused || c->started > 1, refused, NULL};
    stream_retire(st);
    conn_after_stream(c);
    if (r == NULL)
        return;
    if (done)
        r->cb->on_response_complete(r);
    else
        r->cb->on_reset(r, &info);
}

static int on_h2_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *user_data)
{
    (void)user_data;
    h2_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st == NULL)
        return 0;
    h2conn *c = st->conn;
    stream_report_close(st, error_code);
    if (c->state != H2C_DRAINING && c->pool->b.pending_head)
        c->want_flush = 1;
    return 0;
}

/* HEADERS that never left (GOAWAY arrived first): refused, retried. */
static int on_h2_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame, int lib_error_code,
                                void *user_data)
{
    (void)lib_error_code;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st)
        stream_report_close(st, NGHTTP2_REFUSED_STREAM);
    return 0;
}

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_h2_frame_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_h2_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_h2_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_h2_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_h2_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_h2_frame_not_send);
    return cbs;
}

/* --- connection I/O -------------------------------------------------------------- */

/* Runs a deferred conn_destroy once nghttp2 has returned. Returns 1 if c is gone. */
static int conn_reap(h2conn *c)
{
    if (!c->destroy_pending)
        return 0;
    c->destroy_pending = 0;
    conn_destroy(c, c->destroy_remote);
    return 1;
}

/* Serializes and writes what the session has to send. Returns -1 on an error. */
static long tls_write_out(void *tls, buffer *b) { return upstream_tls_write(tls, b); }

static int conn_pump(h2conn *c)
{
    long w = c->tls ? h2_pump_to(c->session, &c->wbuf, tls_write_out, c->tls)
                    : h2_pump(c->session, &c->wbuf, c->fd);
    if (w > 0)
        stats_add(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_TX_BYTES_TOTAL, (uint64_t)w);
    return w < 0 ? -1 : 0;
}

static void conn_flush(h2conn *c)
{
    if (c->in_session || c->dead) {
        c->want_flush = 1;
        return;
    }
    int rc = 0;
    do {
        c->want_flush = 0;
        c->in_session = 1;
        rc = conn_pump(c);
        c->in_session = 0;
        if (conn_reap(c))
            return;
    } while (rc == 0 && c->want_flush);
    if (rc != 0) {
        conn_destroy(c, 1);
        return;
    }
    if (buffer_len(&c->wbuf) > 0 || nghttp2_session_want_write(c->session))
        ev_io_start(c->pool->b.loop, &c->wio);
    else
        ev_io_stop(c->pool->b.loop, &c->wio);
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
        buffer_len(&c->wbuf) == 0)
        conn_destroy(c, 0);
    else if (c->state == H2C_DRAINING && c->n_streams == 0)
        conn_destroy(c, 0);
}

/* Requests started in one loop turn leave in one write: the router's
 * sends only queue frames and schedule this. */
static void conn_schedule_flush(h2conn *c)
{
    if (c->in_session || c->dead) {
        c->want_flush = 1;
        return;
    }
    if (!ev_is_active(&c->flush_timer))
        ev_timer_start(c->pool->b.loop, &c->flush_timer);
}

static void on_flush_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    http2_pool *p = ((h2conn *)w->data)->pool;
    conn_flush(w->data);
    pool_publish(p);
}

static void conn_on_read(h2conn *c)
{
    uint8_t buf[H2CONN_READ_CHUNK];
    ssize_t n = c->tls ? upstream_tls_read(c->tls, buf, sizeof(buf)) : recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_destroy(c, 1);
        return;
    }
    http2_pool *p = c->pool;
    stats_add(pool_stats(p), CLUSTER_STAT_UPSTREAM_CX_RX_BYTES_TOTAL, (uint64_t)n);
    c->in_session = 1;
    ssize_t rc = nghttp2_session_mem_recv(c->session, buf, (size_t)n);
    c->in_session = 0;
    if (conn_reap(c)) {
        pool_dispatch_pending(p);
        return;
    }
    if (rc < 0) {
        stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_CX_PROTOCOL_ERROR);
        conn_destroy(c, 1);
        return;
    }
    c->want_flush = 0;
    /* The SSL holds more than one read took, which the socket may never
     * signal: read again (a connection closed meanwhile drops the event). */
    if (c->tls && upstream_tls_pending(c->tls))
        ev_feed_event(p->b.loop, &c->rio, EV_READ);
    conn_flush(c);
    pool_dispatch_pending(p);
}

static void on_conn_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    h2conn *c = w->data;
    http2_pool *p = c->pool;
    if (c->state == H2C_CONNECTING) /* only TLS connections read while connecting */
        conn_tls_handshake(c);
    else
        conn_on_read(c);
    pool_publish(p);
}

static int conn_start_session(h2conn *c)
{
    const http2_options *o = &pool_cfg(c->pool)->h2;
    nghttp2_session_callbacks *cbs = make_callbacks();
    nghttp2_option *opt = NULL;
    if (cbs == NULL || nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -1;
    }
    /* Windows are returned as the client takes the bytes (backpressure). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rc = nghttp2_session_client_new3(&c->session, cbs, c, opt, h2_mem());
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->initial_stream_window_size},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, o->hpack_table_size},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0)
        return -1;
    int32_t extra = (int32_t)o->initial_connection_window_size - NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE;
    if (extra > 0)
        nghttp2_submit_window_update(c->session, NGHTTP2_FLAG_NONE, 0, extra);
    return 0;
}

static void conn_connected(h2conn *c)
{
    http2_pool *p = c->pool;
    ev_timer_stop(p->b.loop, &c->timer);
    ev_io_stop(p->b.loop, &c->wio);
    ev_io_stop(p->b.loop, &c->rio);
    p->n_connecting--;
    if (conn_start_session(c) != 0) {
        conn_destroy(c, 0);
        return;
    }
    c->state = H2C_OPEN;
    ev_io_start(p->b.loop, &c->rio);
    uint64_t interval = pool_cfg(p)->h2.keepalive_interval_ms;
    if (interval) {
        ev_timer_set(&c->ping_timer, (double)interval / 1000.0, (double)interval / 1000.0);
        ev_timer_start(p->b.loop, &c->ping_timer);
    }
    conn_flush(c);
}

/* One step of the TLS handshake, inside connect_timeout (as Envoy). */
static void conn_tls_handshake(h2conn *c)
{
    http2_pool *p = c->pool;
    switch (upstream_tls_handshake(c->tls)) {
    case UPSTREAM_TLS_DONE:
        conn_connected(c);
        break;
    case UPSTREAM_TLS_WANT_READ:
        ev_io_stop(p->b.loop, &c->wio);
        ev_io_start(p->b.loop, &c->rio);
        break;
    case UPSTREAM_TLS_WANT_WRITE:
        ev_io_start(p->b.loop, &c->wio);
        break;
    case UPSTREAM_TLS_FAILED:
        log_debug("http2 pool %s: TLS handshake failed: %s", p->host_name,
                  upstream_tls_failure_reason(c->tls));
        dp_cluster_connect_failed(pool_cluster(p), p->b.host);
        conn_destroy(c, 1);
        break;
    }
}

static void conn_on_writable(h2conn *c)
{
    if (c->state == H2C_CONNECTING && c->tcp_connected) {
        conn_tls_handshake(c);
        return;
    }
    if (c->state == H2C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            dp_cluster_connect_failed(pool_cluster(c->pool), c->pool->b.host);
            conn_destroy(c, 1);
            return;
        }
        if (c->tls) {
            c->tcp_connected = 1;
            conn_tls_handshake(c);
            return;
        }
        conn_connected(c);
        return;
    }
    conn_flush(c);
}

static void on_conn_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    http2_pool *p = ((h2conn *)w->data)->pool;
    conn_on_writable(w->data);
    pool_publish(p);
}

static void conn_on_timer(h2conn *c)
{
    if (c->state == H2C_CONNECTING) {
        dp_cluster_connect_failed(pool_cluster(c->pool), c->pool->b.host);
        stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_CONNECT_TIMEOUT);
        conn_destroy(c, 0);
        return;
    }
    if (c->n_streams == 0) {
        stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_IDLE_TIMEOUT);
        conn_destroy(c, 0);
    }
}

static void on_conn_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    http2_pool *p = ((h2conn *)w->data)->pool;
    conn_on_timer(w->data);
    pool_publish(p);
}

/* connection_keepalive: a PING every interval, answered within timeout. */
static void on_ping_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    h2conn *c = w->data;
    if (ev_is_active(&c->ping_timeout))
        return;
    if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) != 0)
        return;
    uint64_t t = pool_cfg(c->pool)->h2.keepalive_timeout_ms;
    if (t) {
        ev_timer_set(&c->ping_timeout, (double)t / 1000.0, 0.);
        ev_timer_start(loop, &c->ping_timeout);
    }
    http2_pool *p = c->pool;
    conn_flush(c);
    pool_publish(p);
}

static void on_ping_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    h2conn *c = w->data;
    http2_pool *p = c->pool;
    log_info("http2 pool %s: keepalive PING not answered, closing", p->host_name);
    stats_inc(pool_stats(p), CLUSTER_STAT_HTTP2_KEEPALIVE_TIMEOUT);
    conn_destroy(c, 0);
    pool_publish(p);
}

/* --- connection lifecycle ------------------------------------------------------ */

/* Fails pending requests no open or opening connection will serve. */
static void fail_unservable_pending(http2_pool *p, pool_failure why)
{
    if (p->n_connecting > 0)
        return;
    for (h2conn *c = p->conns; c; c = c->next) {
        if (c->state == H2C_OPEN)
            return;
    }
    while (p->b.pending_head) {
        pool_request *r = p->b.pending_head;
        pending_remove(p, r);
        r->transport_failure = pool_base_tls_failure(&p->b);
        r->cb->on_failure(r, why, CB_CONNECTIONS);
    }
}

static void conn_close_socket(h2conn *c)
{
    struct ev_loop *loop = c->pool->b.loop;
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->timer);
    ev_timer_stop(loop, &c->ping_timer);
    ev_timer_stop(loop, &c->ping_timeout);
    ev_timer_stop(loop, &c->flush_timer);
    upstream_tls_conn_free(c->tls); /* close_notify unless it failed */
    c->tls = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Resets every stream of a dying connection (the router may retry them). */
static void conn_reset_streams(h2conn *c)
{
    while (c->streams) {
        h2_stream *st = c->streams;
        pool_request *r = stream_unbind(st);
        upconn_reset_info info = {!st->response_started, st->id == 0, c->started > 1, 0,
                                  pool_base_tls_failure(&c->pool->b)};
        stream_unlink(c, st);
        stream_free(st);
        if (r) {
            stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_DESTROY_WITH_ACTIVE_RQ);
            r->cb->on_reset(r, &info);
        }
    }
}

static void conn_destroy(h2conn *c, int remote)
{
    if (c->dead)
        return;
    if (c->in_session) {
        c->destroy_pending = 1;
        c->destroy_remote = remote;
        return;
    }
    http2_pool *p = c->pool;
    stats_scope *st = pool_stats(p);
    int was_connecting = c->state == H2C_CONNECTING;
    c->dead = 1;
    pool_base_note_close(&p->b, c->tls);
    conn_close_socket(c);
    conn_unlink(p, c);
    if (was_connecting)
        p->n_connecting--;
    cb_release(&pool_cluster(p)->cb, PRIORITY_DEFAULT, CB_CONNECTIONS);
    stats_dec(st, CLUSTER_STAT_UPSTREAM_CX_ACTIVE);
    host_stat_add(pool_host_stats(p), HOST_STAT_CX_ACTIVE, -1);
    stats_inc(st, CLUSTER_STAT_UPSTREAM_CX_DESTROY);
    stats_inc(st, remote ? CLUSTER_STAT_UPSTREAM_CX_DESTROY_REMOTE : CLUSTER_STAT_UPSTREAM_CX_DESTROY_LOCAL);
    /* Detach stream pointers from the session before anyone can re-enter. */
    for (h2_stream *s = c->streams; s; s = s->next) {
        if (s->id > 0 && c->session)
            nghttp2_session_set_stream_user_data(c->session, s->id, NULL);
    }
    conn_reset_streams(c);
    nghttp2_session_del(c->session);
    buffer_free(&c->wbuf);
    free(c);
    if (was_connecting)
        fail_unservable_pending(p, POOL_FAIL_CONNECT);
    pool_dispatch_pending(p);
}

static int conn_open(http2_pool *p)
{
    const cluster_config *cfg = pool_cfg(p);
    const cluster_host *h = &cfg->hosts[p->b.host];
    stats_scope *st = pool_stats(p);
    int fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    h2conn *c = fd >= 0 ? calloc(1, sizeof(*c)) : NULL;
    if (c == NULL) {
        if (fd >= 0)
            close(fd);
        cb_release(&pool_cluster(p)->cb, PRIORITY_DEFAULT, CB_CONNECTIONS);
        return -1;
    }
    char err[160];
    if (upstream_socket_apply(fd, cfg, err, sizeof(err)) != 0)
        log_warn("cluster '%s': %s", cfg->name, err);
    c->pool = p;
    c->fd = fd;
    c->state = H2C_CONNECTING;
    dp_cluster *dc = pool_cluster(p);
    if (dc->tls && (c->tls = upstream_tls_conn_new(dc->tls, dc->ssl_stats, fd,
                                                   UPSTREAM_TLS_ALPN_H2)) == NULL) {
        close(fd);
        free(c);
        cb_release(&dc->cb, PRIORITY_DEFAULT, CB_CONNECTIONS);
        return -1;
    }
    buffer_init(&c->wbuf);
    ev_io_init(&c->rio, on_conn_readable, fd, EV_READ);
    ev_io_init(&c->wio, on_conn_writable, fd, EV_WRITE);
    ev_timer_init(&c->timer, on_conn_timer, (double)cfg->connect_timeout_ms / 1000.0, 0.);
    ev_timer_init(&c->ping_timer, on_ping_timer, 1., 0.);
    ev_timer_init(&c->ping_timeout, on_ping_timeout, 1., 0.);
    ev_timer_init(&c->flush_timer, on_flush_timer, 0., 0.);
    c->rio.data = c->wio.data = c->timer.data = c->ping_timer.data = c->ping_timeout.data = c;
    c->flush_timer.data = c;
    conn_link(p, c);
    p->n_connecting++;
    stats_inc(st, CLUSTER_STAT_UPSTREAM_CX_TOTAL);
    stats_inc(st, CLUSTER_STAT_UPSTREAM_CX_HTTP2_TOTAL);
    stats_add(st, CLUSTER_STAT_UPSTREAM_CX_ACTIVE, 1);
    host_stat_add(pool_host_stats(p), HOST_STAT_CX_TOTAL, 1);
    host_stat_add(pool_host_stats(p), HOST_STAT_CX_ACTIVE, 1);
    int rc = connect(fd, (const struct sockaddr *)&h->addr, h->addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
        dp_cluster_connect_failed(pool_cluster(p), p->b.host);
        conn_destroy(c, 1);
        return 0;
    }
    ev_io_start(p->b.loop, &c->wio);
    ev_timer_start(p->b.loop, &c->timer);
    return 0;
}

/* Streams the connections being opened will take (configured limit each). */
static size_t connecting_capacity(const http2_pool *p)
{
    size_t cap = 0;
    uint32_t limit = pool_cfg(p)->h2.max_concurrent_streams;
    for (const h2conn *c = p->conns; c; c = c->next) {
        if (c->state == H2C_CONNECTING || (c->state == H2C_OPEN && !c->settings_seen))
            cap += limit;
    }
    return cap;
}

/* Opens a connection for pending work if the breaker (or an empty pool) allows. */
static void maybe_open_connection(http2_pool *p)
{
    dp_cluster *dc = pool_cluster(p);
    if (p->b.n_pending <= connecting_capacity(p))
        return;
    uint64_t host_cx = atomic_load(&pool_host_stats(p)->v[HOST_STAT_CX_ACTIVE]);
    if (cb_try_acquire_connection(&dc->cb, PRIORITY_DEFAULT, host_cx)) {
        conn_open(p);
        return;
    }
    stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_CX_OVERFLOW);
    if (p->n_conns == 0) { /* Envoy: a pool with no connection opens one anyway */
        cb_force_acquire(&dc->cb, PRIORITY_DEFAULT, CB_CONNECTIONS);
        conn_open(p);
    }
}

static h2conn *find_room_within(http2_pool *p, uint32_t budget)
{
    for (h2conn *c = p->conns; c; c = c->next) {
        if (!c->dead && conn_has_room(c) && (budget == 0 || c->started < budget))
            return c;
    }
    return NULL;
}

/* A new connection is on its way, or the breakers would let one open. */
static int fresh_connection_possible(const http2_pool *p)
{
    if (connecting_capacity(p) > 0)
        return 1;
    const dp_cluster *dc = pool_cluster(p);
    uint64_t host_cx = atomic_load(&pool_host_stats(p)->v[HOST_STAT_CX_ACTIVE]);
    return host_cx < dc->cfg->thresholds[PRIORITY_DEFAULT].max_connections_per_host &&
           cb_remaining(&dc->cb, PRIORITY_DEFAULT, CB_CONNECTIONS) > 0;
}

/* A connection with room for r. A retry (want_fresh) also wants one that
 * has started fewer streams than the upstream's last GOAWAY let through,
 * and waits for a new connection rather than take any other, unless the
 * breakers allow none. */
static h2conn *find_room(http2_pool *p, const pool_request *r)
{
    uint32_t budget = r->want_fresh ? p->goaway_budget : 0;
    h2conn *c = find_room_within(p, budget);
    if (c == NULL && budget > 0 && !fresh_connection_possible(p))
        c = find_room_within(p, 0);
    return c;
}

/* Binds pending requests to connections with room; opens more if needed. */
static void pool_dispatch_pending(http2_pool *p)
{
    while (p->b.pending_head) {
        pool_request *r = p->b.pending_head;
        h2conn *c = find_room(p, r);
        if (c == NULL)
            break; /* in order: a retry at the head waits for a new connection */
        pending_remove(p, r);
        bind_or_overflow(c, r);
        conn_schedule_flush(c);
    }
    if (p->b.pending_head)
        maybe_open_connection(p);
}

/* --- public ---------------------------------------------------------------------- */

static void pool_new_request(http2_pool *p, pool_request *r)
{
    r->conn = NULL;
    r->pool = NULL;
    r->h2 = NULL;
    r->h2pool = NULL;
    /* A retry (want_fresh) after a refused stream may take a connection
     * with room within the GOAWAY budget (draining ones, where it was
     * refused, never have room); otherwise it waits first in line. */
    h2conn *c = (!p->b.pending_head || r->want_fresh) ? find_room(p, r) : NULL;
    if (c) {
        bind_or_overflow(c, r);
        conn_schedule_flush(c);
        return;
    }
    if (!cb_try_acquire(&pool_cluster(p)->cb, r->priority, CB_PENDING)) {
        stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_PENDING_OVERFLOW);
        r->cb->on_failure(r, POOL_FAIL_OVERFLOW, CB_PENDING);
        return;
    }
    if (r->want_fresh)
        pending_push_front(p, r);
    else
        pending_push(p, r);
    maybe_open_connection(p);
}

void http2_pool_new_request(http2_pool *p, pool_request *r)
{
    pool_new_request(p, r);
    pool_publish(p);
}

static void pool_cancel(http2_pool *p, pool_request *r)
{
    if (r->h2 == NULL) {
        pending_remove(p, r);
        stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_CANCELLED);
        return;
    }
    h2_stream *st = r->h2;
    h2conn *c = st->conn;
    stream_unbind(st);
    stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_TX_RESET);
    if (st->id > 0 && !st->response_done) {
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        conn_schedule_flush(c); /* the stream closes, and is freed, when nghttp2 says so */
        return;
    }
    if (st->id <= 0) {
        stream_retire(st);
        conn_after_stream(c);
    }
}

void http2_pool_cancel(pool_request *r)
{
    http2_pool *p = r->h2pool;
    if (p == NULL)
        return;
    pool_cancel(p, r);
    pool_publish(p);
}

http2_pool *http2_pool_create(struct ev_loop *loop, worker_cluster *wc, size_t host_index)
{
    http2_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    pool_base_init(&p->b, loop, wc, host_index);
    const cluster_host *h = &wc->dc->cfg->hosts[host_index];
    cluster_host_format(h, p->host_name, sizeof(p->host_name));
    return p;
}

void http2_pool_drain(http2_pool *p)
{
    p->b.draining = 1;
    h2conn *c = p->conns;
    while (c) {
        h2conn *next = c->next;
        if (c->n_streams == 0)
            conn_destroy(c, 0);
        else if (c->state != H2C_CONNECTING)
            conn_start_draining(c);
        c = next;
    }
    pool_publish(p);
}

int http2_pool_empty(const http2_pool *p) { return p->n_conns == 0 && p->b.n_pending == 0; }

void http2_pool_destroy(http2_pool *p)
{
    if (p == NULL)
        return;
    p->b.draining = 1;
    while (p->b.pending_head)
        pending_remove(p, p->b.pending_head);
    while (p->conns)
        conn_destroy(p->conns, 0);
    free(p);
}
