/* http1_pool.c: HTTP/1.1 upstream connection pool per worker per host (http1_pool.h). */
#include "xdsnode/http1_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "xdsnode/cluster_stats.h"
#include "xdsnode/dlist.h"
#include "xdsnode/log.h"
#include "xdsnode/upstream_socket.h"
#include "xdsnode/upstream_tls.h"
#include "xdsnode/worker.h"

/* Read size per event on an upstream socket. */
#define UPCONN_READ_CHUNK 65536
/* An upstream Keep-Alive: timeout=N connection is retired this long
 * before N, and at most after this fraction of N, to avoid racing the
 * upstream's close. */
#define KEEPALIVE_MARGIN_SECONDS 1.0
#define KEEPALIVE_MIN_FRACTION 0.5

typedef enum { UC_CONNECTING, UC_READY, UC_BUSY } upconn_state;

struct upconn {
    http1_pool *pool;
    int fd;
    upstream_tls_conn *tls;    /* TLS clusters only; the handshake runs while UC_CONNECTING */
    int tcp_connected;         /* TLS: the TCP connect is done, the handshake runs */
    upconn_state state;
    ev_io rio, wio;
    ev_timer timer; /* connect timeout, then idle timeout */
    ev_timer lifetime; /* max_connection_duration */
    int priority;   /* the circuit breaker priority its connection slot counts under */
    buffer out;
    http_parser parser;
    header_list hdrs;
    size_t trailer_start;    /* response trailers start at this index of hdrs */
    pool_request *req;
    uint32_t served;           /* responses completed */
    double keepalive_s;        /* from Keep-Alive: timeout=N, 0 if none */
    int close_after;           /* Connection: close or HTTP/1.0 */
    size_t written;            /* request bytes sent for the current request */
    int response_started, response_done, request_done, reading_paused, in_callback;
    int destroyed_in_callback;
    int draining;              /* takes no further request (counted in n_draining) */
    int connect_timed_out;     /* destroyed by the connect timeout */
    char host_name[80];
    upconn *prev, *next;
};

struct http1_pool {
    pool_base b;               /* loop, cluster, host, pending queue, counts */
    upconn *conns;             /* every connection, any state */
    size_t n_conns, n_connecting, n_ready, n_draining, n_bound;
};

/* Publishes the counts (pool_base_publish). */
static void pool_publish(http1_pool *p)
{
    size_t busy = p->n_conns - p->n_connecting - p->n_ready;
    /* In a draining pool every busy connection closes once the queue is served. */
    size_t draining = p->b.draining ? busy : p->n_draining;
    size_t v[POOL_COUNT_FIELDS] = {
        [POOL_COUNT_CONNECTING] = p->n_connecting,
        [POOL_COUNT_ACTIVE] = busy - draining,
        [POOL_COUNT_IDLE] = p->n_ready,
        [POOL_COUNT_DRAINING] = draining,
        [POOL_COUNT_STREAMS] = p->n_bound,
        [POOL_COUNT_PENDING] = p->b.n_pending,
    };
    pool_base_publish(&p->b, v);
}

void http1_pool_counts_get(const http1_pool *p, size_t counts[POOL_COUNT_FIELDS])
{
    pool_base_counts_get(&p->b, counts);
}

/* A busy connection that will close after its response. */
static void conn_set_draining(upconn *c)
{
    c->close_after = 1;
    if (c->draining || c->state != UC_BUSY)
        return;
    c->draining = 1;
    c->pool->n_draining++;
    pool_publish(c->pool);
}

static dp_cluster *pool_cluster(const http1_pool *p) { return pool_base_cluster(&p->b); }
static stats_scope *pool_stats(const http1_pool *p) { return pool_base_stats(&p->b); }
static host_stats *pool_host_stats(const http1_pool *p) { return pool_base_host_stats(&p->b); }

static void conn_destroy(upconn *c, int remote);
static void conn_on_ready(upconn *c);
static void conn_connected(upconn *c);
static void conn_tls_handshake(upconn *c);
static void maybe_open_connection(http1_pool *p, int priority);

/* --- pending queue ------------------------------------------------------ */

static void pending_push(http1_pool *p, pool_request *r)
{
    pool_base_pending_push(&p->b, r);
    r->pool = p;
    pool_publish(p);
}

static void pending_remove(http1_pool *p, pool_request *r)
{
    pool_base_pending_remove(&p->b, r);
    pool_publish(p);
}

/* --- connection list ----------------------------------------------------- */

static void conn_link(http1_pool *p, upconn *c)
{
    DLIST_INSERT_HEAD(p->conns, c);
    p->n_conns++;
}

static void conn_unlink(http1_pool *p, upconn *c)
{
    DLIST_REMOVE(p->conns, c);
    p->n_conns--;
}

/* --- I/O ------------------------------------------------------------------ */

static void conn_flush(upconn *c)
{
    size_t before = buffer_len(&c->out);
    long w = c->tls ? upstream_tls_write(c->tls, &c->out) : buffer_write_fd(&c->out, c->fd);
    if (w < 0) {
        /* Reported by the read side (EOF or reset), never from inside a
         * caller's upconn_send(). */
        ev_io_stop(c->pool->b.loop, &c->wio);
        buffer_reset(&c->out);
        ev_io_start(c->pool->b.loop, &c->rio);
        if (c->tls) /* a TLS error need not make the socket readable */
            ev_feed_event(c->pool->b.loop, &c->rio, EV_READ);
        return;
    }
    c->written += (size_t)w;
    stats_add(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_TX_BYTES_TOTAL, (uint64_t)w);
    if (buffer_len(&c->out) > 0) {
        ev_io_start(c->pool->b.loop, &c->wio);
    } else {
        ev_io_stop(c->pool->b.loop, &c->wio);
        if (before > 0 && c->req && c->req->cb->on_drained)
            c->req->cb->on_drained(c->req);
    }
}

int upconn_send(upconn *c, const void *data, size_t len)
{
    if (buffer_append(&c->out, data, len) != 0)
        return -1;
    if (!ev_is_active(&c->wio))
        conn_flush(c);
    return 0;
}

size_t upconn_send_buffered(const upconn *c) { return buffer_len(&c->out); }

void upconn_request_end(upconn *c) { c->request_done = 1; }

void upconn_pause_reading(upconn *c)
{
    c->reading_paused = 1;
    ev_io_stop(c->pool->b.loop, &c->rio);
}

void upconn_resume_reading(upconn *c)
{
    c->reading_paused = 0;
    ev_io_start(c->pool->b.loop, &c->rio);
    if (c->tls && upstream_tls_pending(c->tls)) /* decrypted bytes wait in the SSL */
        ev_feed_event(c->pool->b.loop, &c->rio, EV_READ);
}

const char *upconn_host_name(const upconn *c) { return c->host_name; }

/* --- response parsing ----------------------------------------------------- */

static int on_resp_begin(http_parser *hp)
{
    upconn *c = hp->data;
    header_list_reset(&c->hdrs);
    return 0;
}

static int on_resp_field(http_parser *hp, const char *at, size_t n)
{
    upconn *c = hp->data;
    if (c->destroyed_in_callback)
        return -1;
    return header_list_add_name(&c->hdrs, at, n) == 0 ? 0 : -1;
}

static int on_resp_value(http_parser *hp, const char *at, size_t n)
{
    upconn *c = hp->data;
    if (c->destroyed_in_callback)
        return -1;
    return header_list_add_value(&c->hdrs, at, n) == 0 ? 0 : -1;
}

static int on_resp_headers_complete(http_parser *hp)
{
    upconn *c = hp->data;
    if (c->destroyed_in_callback)
        return -1;
    if (hp->status_code < 200) /* 1xx: skip (100-continue is not forwarded) */
        return 0;
    size_t n;
    const char *ka = header_list_get(&c->hdrs, "keep-alive", &n);
    long t = ka ? header_keepalive_timeout(ka, n) : -1;
    if (t >= 0)
        c->keepalive_s = (double)t;
    if (!http_should_keep_alive(hp)) {
        if (!c->close_after)
            stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_CLOSE_NOTIFY);
        conn_set_draining(c);
    }
    c->response_started = 1;
    c->trailer_start = c->hdrs.n;
    if (c->req)
        c->req->cb->on_response_headers(c->req, hp, &c->hdrs);
    return c->req && c->req->is_head ? 1 : 0;
}

static int on_resp_body(http_parser *hp, const char *at, size_t n)
{
    upconn *c = hp->data;
    if (c->destroyed_in_callback)
        return -1;
    if (c->req)
        c->req->cb->on_response_body(c->req, at, n);
    return 0;
}

static int on_resp_complete(http_parser *hp)
{
    upconn *c = hp->data;
    if (c->destroyed_in_callback)
        return -1;
    if (hp->status_code < 200) {
        c->response_started = 0;
        return 0;
    }
    c->response_done = 1;
    if (c->req && c->hdrs.n > c->trailer_start && c->req->cb->on_response_trailers)
        c->req->cb->on_response_trailers(c->req, &c->hdrs, c->trailer_start);
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings response_settings = {
    .on_message_begin = on_resp_begin,
    .on_header_field = on_resp_field,
    .on_header_value = on_resp_value,
    .on_headers_complete = on_resp_headers_complete,
    .on_body = on_resp_body,
    .on_message_complete = on_resp_complete,
};

/* --- lifecycle ------------------------------------------------------------ */

/* Unbinds c's request (if any) and hands back the request counters. */
static pool_request *conn_unbind(upconn *c)
{
    pool_request *r = c->req;
    if (r == NULL)
        return NULL;
    c->req = NULL;
    r->conn = NULL;
    r->pool = NULL;
    c->pool->n_bound--;
    pool_publish(c->pool);
    cb_release(&pool_cluster(c->pool)->cb, r->priority, CB_REQUESTS);
    stats_dec(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_RQ_ACTIVE);
    host_stat_add(pool_host_stats(c->pool), HOST_STAT_RQ_ACTIVE, -1);
    return r;
}

/* Fails pending requests that no connection being opened will serve. */
static void fail_unservable_pending(http1_pool *p, pool_failure why)
{
    while (p->b.n_pending > p->n_connecting + p->n_ready && p->b.pending_head) {
        pool_request *r = p->b.pending_head;
        pending_remove(p, r);
        r->pool = NULL;
        r->transport_failure = pool_base_tls_failure(&p->b);
        r->cb->on_failure(r, why, CB_CONNECTIONS);
    }
}

static void conn_close_socket(upconn *c)
{
    struct ev_loop *loop = c->pool->b.loop;
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->timer);
    ev_timer_stop(loop, &c->lifetime);
    upstream_tls_conn_free(c->tls); /* close_notify unless it failed */
    c->tls = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Closes c. `remote`: the upstream closed or failed it. A bound request
 * is reset (on_reset) after the connection is gone. */
static void conn_destroy(upconn *c, int remote)
{
    http1_pool *p = c->pool;
    stats_scope *st = pool_stats(p);
    int was_connecting = c->state == UC_CONNECTING;
    pool_failure why = c->connect_timed_out ? POOL_FAIL_TIMEOUT : POOL_FAIL_CONNECT;
    upconn_reset_info info = {!c->response_started, c->written == 0, c->served > 0, 0, NULL};
    info.transport_failure = pool_base_note_close(&p->b, c->tls);
    conn_close_socket(c);
    conn_unlink(p, c);
    if (was_connecting)
        p->n_connecting--;
    if (c->state == UC_READY)
        p->n_ready--;
    if (c->draining)
        p->n_draining--;
    pool_request *r = conn_unbind(c);
    pool_publish(p);
    cb_release(&pool_cluster(p)->cb, c->priority, CB_CONNECTIONS);
    stats_dec(st, CLUSTER_STAT_UPSTREAM_CX_ACTIVE);
    host_stat_add(pool_host_stats(p), HOST_STAT_CX_ACTIVE, -1);
    stats_inc(st, CLUSTER_STAT_UPSTREAM_CX_DESTROY);
    stats_inc(st, remote ? CLUSTER_STAT_UPSTREAM_CX_DESTROY_REMOTE : CLUSTER_STAT_UPSTREAM_CX_DESTROY_LOCAL);
    if (r)
        stats_inc(st, CLUSTER_STAT_UPSTREAM_CX_DESTROY_WITH_ACTIVE_RQ);
    buffer_free(&c->out);
    header_list_free(&c->hdrs);
    if (c->in_callback)
        c->destroyed_in_callback = 1;
    else
        free(c);
    if (r)
        r->cb->on_reset(r, &info);
    if (was_connecting)
        fail_unservable_pending(p, why);
    else if (p->b.pending_head)
        maybe_open_connection(p, p->b.pending_head->priority); /* queued requests need a connection */
}

static void conn_bind(upconn *c, pool_request *r)
{
    http1_pool *p = c->pool;
    if (c->state == UC_READY)
        p->n_ready--;
    c->state = UC_BUSY;
    c->req = r;
    r->conn = c;
    r->pool = p;
    p->n_bound++;
    pool_publish(p);
    c->written = 0;
    c->response_started = c->response_done = c->request_done = 0;
    ev_timer_stop(p->b.loop, &c->timer);
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_TOTAL);
    stats_add(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_ACTIVE, 1);
    host_stat_add(pool_host_stats(p), HOST_STAT_RQ_TOTAL, 1);
    host_stat_add(pool_host_stats(p), HOST_STAT_RQ_ACTIVE, 1);
    ev_io_start(p->b.loop, &c->rio);
    r->cb->on_ready(r, c);
}

/* Binds r to c if max_requests allows; otherwise fails r as overflow. */
static void bind_or_overflow(upconn *c, pool_request *r)
{
    dp_cluster *dc = pool_cluster(c->pool);
    if (!cb_try_acquire(&dc->cb, r->priority, CB_REQUESTS)) {
        stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_RQ_PENDING_OVERFLOW);
        r->pool = NULL;
        r->cb->on_failure(r, POOL_FAIL_OVERFLOW, CB_REQUESTS);
        return;
    }
    conn_bind(c, r);
}

static double idle_seconds(const upconn *c)
{
    const cluster_config *cfg = pool_cluster(c->pool)->cfg;
    double idle = cfg->idle_timeout_ms ? (double)cfg->idle_timeout_ms / 1000.0 : 0;
    if (c->keepalive_s > 0) {
        double ka = c->keepalive_s - KEEPALIVE_MARGIN_SECONDS;
        if (ka < c->keepalive_s * KEEPALIVE_MIN_FRACTION)
            ka = c->keepalive_s * KEEPALIVE_MIN_FRACTION;
        if (idle == 0 || ka < idle)
            idle = ka;
    }
    return idle;
}

/* c has no request: serve the next pending one or wait idle. */
static void conn_on_ready(upconn *c)
{
    http1_pool *p = c->pool;
    if (c->state != UC_READY) {
        c->state = UC_READY;
        p->n_ready++;
        pool_publish(p);
    }
    while (p->b.pending_head) {
        pool_request *r = p->b.pending_head;
        pending_remove(p, r);
        bind_or_overflow(c, r);
        if (c->state == UC_BUSY)
            return;
    }
    if (p->b.draining) {
        conn_destroy(c, 0);
        return;
    }
    ev_io_start(p->b.loop, &c->rio); /* notices an upstream close while idle */
    double idle = idle_seconds(c);
    if (idle > 0) {
        ev_timer_set(&c->timer, idle, 0.);
        ev_timer_start(p->b.loop, &c->timer);
    }
}

static void conn_response_done(upconn *c)
{
    http1_pool *p = c->pool;
    const cluster_config *cfg = pool_cluster(p)->cfg;
    c->served++;
    int reuse = !c->close_after && c->request_done && buffer_len(&c->out) == 0;
    if (reuse && cfg->max_requests_per_connection && c->served >= cfg->max_requests_per_connection) {
        stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_CX_MAX_REQUESTS);
        reuse = 0;
    }
    pool_request *r = conn_unbind(c);
    if (!reuse)
        conn_destroy(c, 0);
    else
        conn_on_ready(c); /* may bind the next pending request */
    if (r)
        r->cb->on_response_complete(r);
}

static void conn_on_read(upconn *c)
{
    char buf[UPCONN_READ_CHUNK];
    ssize_t n = c->tls ? upstream_tls_read(c->tls, buf, sizeof(buf)) : recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (c->state != UC_BUSY || c->req == NULL) {
        /* Idle: EOF or unexpected bytes both end the connection. */
        conn_destroy(c, n <= 0);
        return;
    }
    if (n > 0)
        stats_add(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_RX_BYTES_TOTAL, (uint64_t)n);
    c->in_callback = 1;
    size_t done = http_parser_execute(&c->parser, &response_settings, buf, n > 0 ? (size_t)n : 0);
    c->in_callback = 0;
    if (c->destroyed_in_callback) {
        free(c);
        return;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->response_done) {
        if (done < (size_t)(n > 0 ? n : 0))
            conn_set_draining(c); /* bytes after the response: do not reuse */
        conn_response_done(c);
        return;
    }
    if (n <= 0 || (e != HPE_OK && e != HPE_PAUSED)) {
        if (e != HPE_OK && e != HPE_PAUSED)
            stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_PROTOCOL_ERROR);
        conn_destroy(c, 1);
        return;
    }
    /* The SSL holds more than one read took, which the socket may never
     * signal: read again (a connection closed meanwhile drops the event). */
    if (c->tls && !c->reading_paused && upstream_tls_pending(c->tls))
        ev_feed_event(c->pool->b.loop, &c->rio, EV_READ);
    if (c->req && c->req->cb->on_read_done)
        c->req->cb->on_read_done(c->req);
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    upconn *c = w->data;
    if (c->state == UC_CONNECTING) { /* only TLS connections read while connecting */
        conn_tls_handshake(c);
        return;
    }
    conn_on_read(c);
}

static void conn_connected(upconn *c)
{
    http1_pool *p = c->pool;
    ev_timer_stop(p->b.loop, &c->timer);
    p->n_connecting--;
    c->state = UC_BUSY; /* transitional */
    pool_publish(p);
    conn_on_ready(c);
}

/* One step of the TLS handshake, inside connect_timeout (as Envoy). */
static void conn_tls_handshake(upconn *c)
{
    http1_pool *p = c->pool;
    switch (upstream_tls_handshake(c->tls)) {
    case UPSTREAM_TLS_DONE:
        ev_io_stop(p->b.loop, &c->rio);
        ev_io_stop(p->b.loop, &c->wio);
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
        log_debug("cluster '%s': %s: TLS handshake failed: %s", pool_cluster(p)->cfg->name,
                  c->host_name, upstream_tls_failure_reason(c->tls));
        dp_cluster_connect_failed(pool_cluster(p), p->b.host);
        conn_destroy(c, 1);
        break;
    }
}

static void on_conn_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    upconn *c = w->data;
    if (c->state == UC_CONNECTING && c->tcp_connected) {
        conn_tls_handshake(c);
        return;
    }
    if (c->state == UC_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            dp_cluster_connect_failed(pool_cluster(c->pool), c->pool->b.host);
            conn_destroy(c, 1);
            return;
        }
        ev_io_stop(c->pool->b.loop, &c->wio);
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

static void on_conn_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    upconn *c = w->data;
    if (c->state == UC_CONNECTING) {
        dp_cluster_connect_failed(pool_cluster(c->pool), c->pool->b.host);
        stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_CONNECT_TIMEOUT);
        c->connect_timed_out = 1;
        conn_destroy(c, 0);
        return;
    }
    if (c->state == UC_READY) {
        stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_IDLE_TIMEOUT);
        conn_destroy(c, 0);
    }
}

/* max_connection_duration: an idle connection closes now, a busy one
 * after its response (it takes no further request). */
static void on_conn_lifetime(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    upconn *c = w->data;
    stats_inc(pool_stats(c->pool), CLUSTER_STAT_UPSTREAM_CX_MAX_DURATION_REACHED);
    if (c->state == UC_READY) {
        conn_destroy(c, 0);
        return;
    }
    conn_set_draining(c);
}

static void conn_start_lifetime(upconn *c, const cluster_config *cfg)
{
    ev_timer_init(&c->lifetime, on_conn_lifetime, (double)cfg->max_connection_duration_ms / 1000.0, 0.);
    c->lifetime.data = c;
    if (cfg->max_connection_duration_ms > 0)
        ev_timer_start(c->pool->b.loop, &c->lifetime);
}

/* Opens one connection (the caller has taken the connection resource at
 * `priority`). */
static int conn_open(http1_pool *p, int priority)
{
    const cluster_config *cfg = pool_cluster(p)->cfg;
    const cluster_host *h = &cfg->hosts[p->b.host];
    stats_scope *st = pool_stats(p);
    int fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    upconn *c = fd >= 0 ? calloc(1, sizeof(*c)) : NULL;
    if (c == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char err[160];
    if (upstream_socket_apply(fd, cfg, err, sizeof(err)) != 0)
        log_warn("cluster '%s': %s", cfg->name, err);
    c->pool = p;
    c->fd = fd;
    c->priority = priority;
    c->state = UC_CONNECTING;
    dp_cluster *dc = pool_cluster(p);
    if (dc->tls && (c->tls = upstream_tls_conn_new(dc->tls, dc->ssl_stats, fd,
                                                   UPSTREAM_TLS_ALPN_HTTP11)) == NULL) {
        close(fd);
        free(c);
        return -1;
    }
    cluster_host_format(h, c->host_name, sizeof(c->host_name));
    buffer_init(&c->out);
    header_list_init(&c->hdrs);
    ev_io_init(&c->rio, on_conn_io, fd, EV_READ);
    ev_io_init(&c->wio, on_conn_writable, fd, EV_WRITE);
    ev_timer_init(&c->timer, on_conn_timer, (double)cfg->connect_timeout_ms / 1000.0, 0.);
    c->rio.data = c->wio.data = c->timer.data = c;
    conn_start_lifetime(c, cfg);
    conn_link(p, c);
    p->n_connecting++;
    pool_publish(p);
    stats_inc(st, CLUSTER_STAT_UPSTREAM_CX_TOTAL);
    stats_inc(st, CLUSTER_STAT_UPSTREAM_CX_HTTP1_TOTAL);
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

/* Opens a connection for pending work if the breaker (or an empty pool) allows. */
static void maybe_open_connection(http1_pool *p, int priority)
{
    dp_cluster *dc = pool_cluster(p);
    if (p->b.n_pending <= p->n_connecting)
        return;
    uint64_t host_cx = atomic_load(&pool_host_stats(p)->v[HOST_STAT_CX_ACTIVE]);
    if (cb_try_acquire_connection(&dc->cb, priority, host_cx)) {
        conn_open(p, priority);
        return;
    }
    stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_CX_OVERFLOW);
    if (p->n_conns == 0) { /* Envoy: a pool with no connection opens one anyway */
        cb_force_acquire(&dc->cb, priority, CB_CONNECTIONS);
        conn_open(p, priority);
    }
}

/* An idle connection the upstream has closed shows EOF to a peek. */
static int conn_still_open(const upconn *c)
{
    if (c->tls)
        return upstream_tls_idle_ok(c->tls);
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static upconn *take_ready(http1_pool *p)
{
    upconn *c = p->conns;
    while (c) {
        upconn *next = c->next;
        if (c->state == UC_READY) {
            if (conn_still_open(c))
                return c;
            conn_destroy(c, 1);
        }
        c = next;
    }
    return NULL;
}

void http1_pool_new_request(http1_pool *p, pool_request *r)
{
    r->conn = NULL;
    r->pool = NULL;
    upconn *c = (!r->want_fresh && p->n_ready > 0) ? take_ready(p) : NULL;
    if (c) {
        bind_or_overflow(c, r);
        return;
    }
    dp_cluster *dc = pool_cluster(p);
    if (!cb_try_acquire(&dc->cb, r->priority, CB_PENDING)) {
        stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_PENDING_OVERFLOW);
        r->cb->on_failure(r, POOL_FAIL_OVERFLOW, CB_PENDING);
        return;
    }
    pending_push(p, r);
    maybe_open_connection(p, r->priority);
}

void http1_pool_cancel(pool_request *r)
{
    http1_pool *p = r->pool;
    if (p == NULL)
        return;
    if (r->conn == NULL) {
        pending_remove(p, r);
        r->pool = NULL;
        stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_CANCELLED);
        return;
    }
    upconn *c = r->conn;
    conn_unbind(c);
    stats_inc(pool_stats(p), CLUSTER_STAT_UPSTREAM_RQ_TX_RESET);
    conn_destroy(c, 0);
}

http1_pool *http1_pool_create(struct ev_loop *loop, worker_cluster *wc, size_t host_index)
{
    http1_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    pool_base_init(&p->b, loop, wc, host_index);
    return p;
}

void http1_pool_drain(http1_pool *p)
{
    p->b.draining = 1;
    pool_publish(p);
    upconn *c = p->conns;
    while (c) {
        upconn *next = c->next;
        if (c->state == UC_READY)
            conn_destroy(c, 0);
        c = next;
    }
}

int http1_pool_empty(const http1_pool *p) { return p->n_conns == 0 && p->b.n_pending == 0; }

void http1_pool_destroy(http1_pool *p)
{
    if (p == NULL)
        return;
    while (p->b.pending_head) {
        pool_request *r = p->b.pending_head;
        pending_remove(p, r);
        r->pool = NULL;
    }
    while (p->conns) {
        upconn *c = p->conns;
        if (c->req) {
            pool_request *r = conn_unbind(c);
            (void)r;
        }
        conn_destroy(c, 0);
    }
    free(p);
}
