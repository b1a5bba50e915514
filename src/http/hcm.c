/* hcm.c: downstream HTTP/1.1 connections, routing and the upstream request (hcm.h). */
#include "xdsnode/hcm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "xdsnode/access_log.h"
#include "xdsnode/cluster_stats.h"
#include "xdsnode/conn_pool.h"
#include "xdsnode/h2_downstream.h"
#include "xdsnode/http_headers.h"
#include "xdsnode/http_stats.h"
#include "xdsnode/log.h"
#include "xdsnode/wmem.h"

/* HttpConnectionManager.delayed_close_timeout: after a response that
 * closes the connection, wait this long for the client to close first
 * (so unread request bytes do not turn our close into a reset). */
#define HCM_DELAYED_CLOSE_TIMEOUT_S 1.0
/* Read size per event on a downstream socket. */
#define DCONN_READ_CHUNK 65536
/* Envoy's local reply bodies (xds-facts §6). */
#define BODY_NO_HEALTHY "no healthy upstream"
#define BODY_OVERFLOW "upstream connect error or disconnect/reset before headers. reset reason: overflow"
#define BODY_TERMINATION "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
#define BODY_RETRIED_TERMINATION "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection termination"
#define BODY_TIMEOUT "upstream request timeout"
#define BODY_MAX_STREAM_DURATION "upstream max stream duration reached"
#define BODY_BAD_REQUEST "Bad Request"
/* Retries of a request the HTTP/2 upstream refused (REFUSED_STREAM or
 * above GOAWAY's last stream id: never processed, so always safe). */
#define HCM_MAX_REFUSED_STREAM_RETRIES 5
#define BODY_HEADERS_TOO_LARGE "Request Header Fields Too Large"

typedef struct dconn dconn;

typedef struct stream {
    dconn *dc;
    pool_request pr;
    worker_cluster *wc;
    conn_pool *pool;
    size_t host;
    const route_entry *route;
    int method;
    buffer pre;    /* request bytes waiting for a connection */
    buffer replay; /* everything sent upstream, while it fits the limit */
    int replay_ok;
    int req_chunked, req_complete, keepalive;
    int resp_started, resp_complete, resp_chunked, resp_close_delimited, discard_response;
    int status;
    int race_retried, retries, retry_cb_held, retried, awaiting_request_end, send_continue;
    int refused_retries;
    int trailers_sent;       /* the response's trailer chunk was written */
    int resp_structured;     /* the response head went to the pipe's peer as fields */
    int up_h2;               /* HTTP/2 upstream: head as fields (uph), body raw, trailers */
    int req_has_body;        /* content-length > 0 or chunked */
    header_list uph;         /* HTTP/2 upstream: the request head fields */
    header_list up_trailers; /* HTTP/2 upstream: the request trailers */
    uint64_t bytes_received, bytes_sent;
    struct timespec start_wall;
    double start, upstream_start;
    long upstream_service_ms;
    ev_timer timeout;
    ev_timer max_duration; /* the cluster's max_stream_duration, per upstream attempt */
    char flags[8];
    char upstream_host[80];
    char request_id[40];
    /* access log copies */
    const char *method_str; /* static (http_method_str) */
    /* copies for the access log (NULL without one); xff also for use_remote_address */
    char *path, *authority, *user_agent, *xff;
} stream;

struct dconn {
    worker_conn link;
    worker *w;
    const listener_config *cfg;
    int fd;
    ev_io rio, wio;
    ev_timer timer; /* idle / request headers */
    http_parser parser;
    header_list hdrs;
    buffer url;
    buffer in, out;
    stream *s;
    int close_after, read_blocked, closing, in_parser, headers_too_large, lingering;
    int linger_pending;
    int client_close;             /* the client asked to close (Connection: close, HTTP/1.0) */
    int counted_http1;            /* counted in downstream_cx_http1_active */
    int handed_over;              /* went to h2_downstream, which counts it from now on */
    int sniffed;                  /* codec AUTO/HTTP2: the HTTP/2 preface check is done */
    size_t trailer_start;         /* request trailers start at this index of hdrs */
    /* An in-memory exchange (hcm_pipe_create): no socket; bytes go to and
     * come from the peer (h2_downstream) through these. */
    const hcm_pipe_ops *pipe_ops; /* NULL once the peer has detached */
    void *pipe_ctx;
    int is_pipe;
    struct sockaddr_storage peer_addr;
    char peer[64];
};

static void dconn_close(dconn *c);
static void dconn_linger(dconn *c);
static int dconn_flush(dconn *c);
static void dconn_process_input(dconn *c);
static void stream_finish(stream *s);
static void stream_local_reply(stream *s, int status, const char *body, const char *flag,
                               const char *extra);
static const pool_request_callbacks stream_pool_callbacks;
static void format_peer(const struct sockaddr_storage *peer, char *out, size_t len);

/* Copies src into buf (truncating, NUL-terminated); returns its length. */
static int copy_str(char *buf, size_t len, const char *src)
{
    size_t n = strlen(src);
    if (n >= len)
        n = len - 1;
    memcpy(buf, src, n);
    buf[n] = '\0';
    return (int)n;
}

/* "<hex size>\r\n" into out (24 bytes); returns its length. */
static size_t chunk_size_line(char *out, size_t len)
{
    char tmp[20];
    size_t i = sizeof(tmp), n = 0;
    do {
        tmp[--i] = "0123456789abcdef"[len & 15];
        len >>= 4;
    } while (len > 0);
    while (i < sizeof(tmp))
        out[n++] = tmp[i++];
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

/* http.<stat_prefix>.* of the connection's listener. */
static void hstat_add(const dconn *c, size_t i, int64_t n)
{
    if (c->cfg->stats)
        stats_add(c->cfg->stats, i, (uint64_t)n);
}

static void dconn_count_http1(dconn *c)
{
    if (c->is_pipe || c->counted_http1)
        return;
    c->counted_http1 = 1;
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_HTTP1_TOTAL, 1);
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_HTTP1_ACTIVE, 1);
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_flag(stream *s, const char *flag)
{
    if (s->flags[0] == '\0')
        snprintf(s->flags, sizeof(s->flags), "%s", flag);
}

/* --- downstream socket ---------------------------------------------------- */

static void dconn_stop_reading(dconn *c)
{
    c->read_blocked = 1;
    if (!c->is_pipe)
        ev_io_stop(worker_loop(c->w), &c->rio);
}

static void dconn_resume_reading(dconn *c)
{
    if (!c->read_blocked || c->closing)
        return;
    c->read_blocked = 0;
    if (!c->is_pipe)
        ev_io_start(worker_loop(c->w), &c->rio);
    else if (c->pipe_ops)
        c->pipe_ops->on_input_ready(c->pipe_ctx);
}

/* Hands queued response bytes to the socket or to the pipe's peer.
 * Returns what the socket write returned (-1: the connection failed). */
static long dconn_out_write(dconn *c)
{
    if (!c->is_pipe)
        return buffer_write_fd(&c->out, c->fd);
    if (c->pipe_ops == NULL)
        return -1;
    size_t before = buffer_len(&c->out);
    if (before > 0)
        c->pipe_ops->on_output(c->pipe_ctx, &c->out);
    return (long)(before - buffer_len(&c->out));
}

static void dconn_arm_timer(dconn *c)
{
    struct ev_loop *loop = worker_loop(c->w);
    ev_timer_stop(loop, &c->timer);
    uint64_t ms = 0;
    if (c->s == NULL)
        ms = c->cfg->idle_timeout_ms;
    else if (!c->s->route && c->cfg->request_headers_timeout_ms)
        ms = c->cfg->request_headers_timeout_ms;
    if (ms) {
        ev_timer_set(&c->timer, (double)ms / 1000.0, 0.);
        ev_timer_start(loop, &c->timer);
    }
}

static void dconn_write(dconn *c, const void *p, size_t n)
{
    if (buffer_append(&c->out, p, n) != 0) {
        c->closing = 1;
        return;
    }
    if (c->s)
        c->s->bytes_sent += n;
}

/* Everything is written: half-close and wait for the client's FIN. */
static void dconn_linger(dconn *c)
{
    if (c->in_parser) {
        c->linger_pending = 1; /* done by dconn_process_input */
        return;
    }
    if (c->lingering)
        return;
    if (c->is_pipe) { /* the exchange is over: nothing to linger on */
        dconn_close(c);
        return;
    }
    struct ev_loop *loop = worker_loop(c->w);
    c->lingering = 1;
    shutdown(c->fd, SHUT_WR);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->timer);
    ev_timer_set(&c->timer, HCM_DELAYED_CLOSE_TIMEOUT_S, 0.);
    ev_timer_start(loop, &c->timer);
    c->read_blocked = 0;
    ev_io_start(loop, &c->rio);
}

/* Writes what the socket takes. Returns -1 if the connection is gone
 * (closed here, or marked closing while inside the parser). */
static int dconn_flush(dconn *c)
{
    long w = dconn_out_write(c);
    if (w < 0) {
        dconn_close(c);
        return -1;
    }
    struct ev_loop *loop = worker_loop(c->w);
    stream *s = c->s;
    if (s && (s->pr.conn || s->pr.h2) && !s->resp_complete &&
        buffer_len(&c->out) <= c->cfg->buffer_limit / 2)
        pool_request_resume_reading(&s->pr);
    if (buffer_len(&c->out) > 0) {
        if (!c->is_pipe) /* a pipe's peer calls hcm_pipe_output_ready */
            ev_io_start(loop, &c->wio);
        return 0;
    }
    if (!c->is_pipe)
        ev_io_stop(loop, &c->wio);
    if (c->s == NULL && c->close_after) {
        /* The client asked to close and sent nothing more: close now (no
         * unread bytes, so the close cannot turn into a reset). Otherwise
         * half-close and wait for the client (delayed close). */
        if (c->client_close && buffer_len(&c->in) == 0 && !c->in_parser)
            dconn_close(c);
        else
            dconn_linger(c);
        return -1;
    }
    return 0;
}

/* Writes what the socket takes now without ever closing here (a write
 * error is met again, and handled, by the write watcher). */
static void dconn_try_write(dconn *c)
{
    if (c->is_pipe) {
        dconn_out_write(c);
        return;
    }
    if (ev_is_active(&c->wio))
        return;
    long w = buffer_write_fd(&c->out, c->fd);
    if (w < 0 || buffer_len(&c->out) > 0)
        ev_io_start(worker_loop(c->w), &c->wio);
}

/* Above this many queued bytes a response piece is written at once;
 * smaller pieces wait for the end of the upstream read (one write). */
#define DCONN_WRITE_THRESHOLD 16384

/* Queues bytes for the client, pausing the upstream when over the limit. */
static void stream_write_down(stream *s, const void *p, size_t n)
{
    dconn *c = s->dc;
    dconn_write(c, p, n);
    if (buffer_len(&c->out) >= DCONN_WRITE_THRESHOLD)
        dconn_try_write(c);
    if (buffer_len(&c->out) > c->cfg->buffer_limit && (s->pr.conn || s->pr.h2))
        pool_request_pause_reading(&s->pr);
}

/* --- stream lifecycle --------------------------------------------------- */

static char *dup_n(const char *p, size_t n)
{
    return wmem_strndup(p, n);
}

static char *header_dup(const header_list *h, const char *name)
{
    size_t n;
    const char *v = header_list_get(h, name, &n);
    return v ? dup_n(v, n) : NULL;
}

static void stream_free(stream *s)
{
    hstat_add(s->dc, HTTP_STAT_DOWNSTREAM_RQ_ACTIVE, -1);
    ev_timer_stop(worker_loop(s->dc->w), &s->timeout);
    ev_timer_stop(worker_loop(s->dc->w), &s->max_duration);
    if (pool_request_linked(&s->pr))
        pool_request_cancel(&s->pr);
    if (s->retry_cb_held)
        cb_release(&s->wc->dc->cb, s->route->priority, CB_RETRIES);
    if (s->wc)
        worker_cluster_release(s->wc);
    buffer_free(&s->pre);
    buffer_free(&s->replay);
    header_list_free(&s->uph);
    header_list_free(&s->up_trailers);
    wmem_free(s->path);
    wmem_free(s->authority);
    wmem_free(s->user_agent);
    wmem_free(s->xff);
    wmem_free(s);
}

static void stream_access_log(stream *s)
{
    static const size_t classes[] = {HTTP_STAT_DOWNSTREAM_RQ_1XX, HTTP_STAT_DOWNSTREAM_RQ_2XX,
                                     HTTP_STAT_DOWNSTREAM_RQ_3XX, HTTP_STAT_DOWNSTREAM_RQ_4XX,
                                     HTTP_STAT_DOWNSTREAM_RQ_5XX};
    if (s->status >= 100 && s->status < 600) {
        hstat_add(s->dc, classes[s->status / 100 - 1], 1);
        hstat_add(s->dc, HTTP_STAT_DOWNSTREAM_RQ_COMPLETED, 1);
    }
    const char *path = s->dc->cfg->access_log_path;
    if (path == NULL)
        return;
    access_log_entry e = {
        .start = s->start_wall,
        .method = s->method_str,
        .path = s->path,
        .protocol = s->dc->is_pipe ? "HTTP/2" : "HTTP/1.1",
        .response_code = s->status,
        .response_flags = s->flags,
        .bytes_received = s->bytes_received,
        .bytes_sent = s->bytes_sent,
        .duration_ms = (long)((now_mono() - s->start) * 1000),
        .upstream_service_time_ms = s->upstream_service_ms,
        .x_forwarded_for = s->xff,
        .user_agent = s->user_agent,
        .request_id = s->request_id,
        .authority = s->authority,
        .upstream_host = s->upstream_host,
    };
    char line[4096];
    size_t n = access_log_format(&e, line, sizeof(line));
    worker_access_log(s->dc->w, path, line, n);
}

/* The response is queued in full: log, then the connection goes on. A
 * request whose body is still arriving is read to its end (and dropped)
 * first, so the connection can stay alive. */
static void stream_finish(stream *s)
{
    dconn *c = s->dc;
    s->resp_complete = 1;
    ev_timer_stop(worker_loop(c->w), &s->timeout);
    ev_timer_stop(worker_loop(c->w), &s->max_duration);
    if (!s->req_complete && !c->closing && !c->close_after) {
        s->awaiting_request_end = 1;
        dconn_resume_reading(c);
        dconn_flush(c);
        return;
    }
    stream_access_log(s);
    if (!s->keepalive) {
        c->close_after = 1;
        c->client_close = s->req_complete;
    }
    c->s = NULL;
    stream_free(s);
    if (c->closing) {
        dconn_close(c);
        return;
    }
    dconn_arm_timer(c);
    if (c->close_after) {
        dconn_stop_reading(c);
        dconn_flush(c);
        return;
    }
    http_parser_pause(&c->parser, 0);
    if (dconn_flush(c) != 0)
        return;
    dconn_resume_reading(c);
    if (!c->in_parser)
        dconn_process_input(c);
}

static void stream_count_response(stream *s, int status)
{
    if (s->wc == NULL)
        return;
    static const int classes[] = {0, 0, CLUSTER_STAT_UPSTREAM_RQ_2XX, CLUSTER_STAT_UPSTREAM_RQ_3XX,
                                  CLUSTER_STAT_UPSTREAM_RQ_4XX, CLUSTER_STAT_UPSTREAM_RQ_5XX};
    int k = status / 100;
    if (k >= 2 && k <= 5)
        stats_inc(s->wc->dc->stats, (size_t)classes[k]);
    stats_inc(s->wc->dc->stats, CLUSTER_STAT_UPSTREAM_RQ_COMPLETED);
}

static void stream_local_reply(stream *s, int status, const char *body, const char *flag,
                               const char *extra)
{
    dconn *c = s->dc;
    if (flag)
        set_flag(s, flag);
    if (pool_request_linked(&s->pr))
        pool_request_cancel(&s->pr);
    if (s->resp_started) { /* too late for a reply: reset the client */
        c->closing = 1;
        c->s = NULL;
        stream_access_log(s);
        stream_free(s);
        dconn_close(c);
        return;
    }
    s->status = status;
    s->resp_started = 1;
    size_t before = buffer_len(&c->out);
    local_reply_write(&c->out, status, body, c->cfg->server_name, extra,
                      c->close_after || !s->keepalive, s->method == HTTP_HEAD);
    s->bytes_sent += buffer_len(&c->out) - before;
    stream_finish(s);
}

/* --- upstream request ----------------------------------------------------- */

static int is_idempotent(int method)
{
    return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_OPTIONS ||
           method == HTTP_PUT || method == HTTP_DELETE || method == HTTP_TRACE;
}

/* Queues request bytes: to the bound connection or into `pre`, keeping a
 * replay copy while it fits the buffer limit. */
static void stream_send_up(stream *s, const void *p, size_t n)
{
    if (s->replay_ok) {
        if (buffer_len(&s->replay) + n <= s->dc->cfg->buffer_limit) {
            buffer_append(&s->replay, p, n);
        } else {
            s->replay_ok = 0;
            buffer_free(&s->replay);
        }
    }
    int bound = s->pr.conn || s->pr.h2;
    if (bound)
        pool_request_send(&s->pr, p, n);
    else
        buffer_append(&s->pre, p, n);
    size_t queued = bound ? pool_request_send_buffered(&s->pr) : buffer_len(&s->pre);
    if (queued > s->dc->cfg->buffer_limit)
        dconn_stop_reading(s->dc);
}

/* The worker thread's generator for request ids and weighted picks. */
static uint64_t worker_random(worker *w)
{
    static _Thread_local lb_state rng;
    if (rng.rng == 0)
        lb_state_init(&rng, (uint64_t)time(NULL) ^ ((uint64_t)worker_id(w) << 32) ^
                                (uint64_t)(uintptr_t)&rng);
    return lb_random(&rng);
}

/* v as 16 lower-case hex digits into p, a byte (two digits) at a time. */
static void hex16(char *p, uint64_t v)
{
    static const char pairs[] = /* "00" "01" ... "ff" */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    for (int i = 14; i >= 0; i -= 2, v >>= 8)
        memcpy(p + i, pairs + 2 * (v & 0xff), 2);
}

static void random_uuid(worker *w, char *out, size_t outlen)
{
    uint64_t a = worker_random(w), b = worker_random(w);
    a = (a & ~0xF000ull) | 0x4000ull;                   /* version 4 */
    b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull; /* variant 10 */
    char d[32], u[37];
    hex16(d, a);
    hex16(d + 16, b);
    memcpy(u, d, 8); /* 8-4-4-4-12 */
    u[8] = '-';
    memcpy(u + 9, d + 8, 4);
    u[13] = '-';
    memcpy(u + 14, d + 12, 4);
    u[18] = '-';
    memcpy(u + 19, d + 16, 4);
    u[23] = '-';
    memcpy(u + 24, d + 20, 12);
    u[36] = '\0';
    copy_str(out, outlen, u);
}

/* Where the upstream request head goes: HTTP/1.1 text, or fields for an
 * HTTP/2 upstream (no text to parse back). */
typedef struct {
    buffer *text;
    header_list *list;
} head_out;

static void head_field(head_out *o, const char *name, size_t nl, const char *value, size_t vl)
{
    if (o->list) {
        header_list_add(o->list, name, nl, value, vl);
    } else {
        header_write(o->text, name, nl, value, vl);
    }
}

static void head_field_str(head_out *o, const char *name, const char *value)
{
    head_field(o, name, strlen(name), value, strlen(value));
}

/* The request head for the upstream: HTTP/1.1 text into s->pre/replay,
 * or, for an HTTP/2 upstream, fields into s->uph (sent by on_pool_ready
 * on every attempt). */
static void stream_write_head(stream *s)
{
    dconn *c = s->dc;
    const header_list *h = &c->hdrs;
    buffer head;
    buffer_init(&head);
    head_out o = {&head, s->up_h2 ? &s->uph : NULL};
    s->uph.mixed_case |= c->hdrs.mixed_case; /* its names are copied as they came */
    if (!s->up_h2) {
        buffer_append_str(&head, http_method_str((enum http_method)s->method));
        buffer_append(&head, " ", 1);
        buffer_append(&head, buffer_start(&c->url), buffer_len(&c->url));
        buffer_append(&head, " HTTP/1.1\r\n", 11);
    }
    size_t conn_len = 0;
    const char *conn_val = header_list_get(h, "connection", &conn_len);
    int have_xfp = 0, have_rid = 0;
    for (size_t i = 0; i < c->trailer_start && i < h->n; i++) {
        const char *name = header_name(h, i);
        size_t nl = h->h[i].name_len;
        if (nl == 2 && strncasecmp(name, "te", 2) == 0 &&
            header_te_trailers(header_value(h, i), h->h[i].value_len)) {
            head_field(&o, "te", 2, "trailers", 8); /* the one TE value that passes (gRPC) */
            continue;
        }
        if (header_is_hop_by_hop(name, nl, conn_val, conn_len))
            continue;
        if (nl == 17 && strncasecmp(name, "x-forwarded-proto", nl) == 0) {
            if (c->cfg->use_remote_address)
                continue;
            have_xfp = 1;
        }
        if (nl == 12 && strncasecmp(name, "x-request-id", nl) == 0) {
            have_rid = 1;
            snprintf(s->request_id, sizeof(s->request_id), "%.*s", (int)h->h[i].value_len,
                     header_value(h, i));
        }
        if (nl == 15 && strncasecmp(name, "x-forwarded-for", nl) == 0 && c->cfg->use_remote_address)
            continue;
        if (nl == 6 && strncasecmp(name, "expect", 6) == 0)
            continue; /* answered here (proxy_100_continue is off, as in Envoy) */
        head_field(&o, name, nl, header_value(h, i), h->h[i].value_len);
    }
    if (c->cfg->use_remote_address) {
        const char *xff = s->xff;
        char v[512];
        if (c->peer[0] == '\0') /* formatted on first use */
            format_peer(&c->peer_addr, c->peer, sizeof(c->peer));
        if (xff && *xff)
            snprintf(v, sizeof(v), "%s, %s", xff, c->peer);
        else
            snprintf(v, sizeof(v), "%s", c->peer);
        head_field_str(&o, "x-forwarded-for", v);
    }
    if (!have_xfp)
        head_field(&o, "x-forwarded-proto", 17, "http", 4);
    if (!have_rid && c->cfg->generate_request_id) {
        random_uuid(c->w, s->request_id, sizeof(s->request_id));
        head_field_str(&o, "x-request-id", s->request_id);
    }
    if (s->route->timeout_ms) {
        char v[24];
        size_t n = format_u64(v, (unsigned long long)s->route->timeout_ms);
        head_field(&o, "x-envoy-expected-rq-timeout-ms", 30, v, n);
    }
    if (!s->up_h2) {
        if (s->req_chunked)
            buffer_append_str(&head, "transfer-encoding: chunked\r\n");
        buffer_append(&head, "\r\n", 2);
        stream_send_up(s, buffer_start(&head), buffer_len(&head));
    }
    buffer_free(&head);
}

/* Starts (or restarts) the upstream attempt on the chosen host's pool. */
static void stream_attempt(stream *s, int want_fresh)
{
    s->pr.cb = &stream_pool_callbacks;
    s->pr.priority = s->route->priority;
    s->pr.is_head = s->method == HTTP_HEAD;
    s->pr.want_fresh = want_fresh;
    ev_timer_stop(worker_loop(s->dc->w), &s->max_duration); /* the last attempt's */
    conn_pool_new_request(s->pool, &s->pr, s->up_h2);
}

/* A retry replays everything sent so far on a new attempt. */
static int stream_can_replay(const stream *s) { return s->replay_ok; }

static void stream_retry(stream *s, int want_fresh)
{
    stats_inc(s->wc->dc->stats, CLUSTER_STAT_UPSTREAM_RQ_RETRY);
    s->retried = 1;
    s->resp_started = 0;
    s->discard_response = 0;
    buffer_reset(&s->pre);
    buffer_append(&s->pre, buffer_start(&s->replay), buffer_len(&s->replay));
    stream_attempt(s, want_fresh);
}

/* Route policy retry: takes the max_retries breaker. Returns 1 if retried;
 * 0 if not wanted; -1 if the breaker refused (flag UO, header set). */
static int stream_policy_retry(stream *s, unsigned condition)
{
    const route_entry *r = s->route;
    if (!(r->retry_on & condition) || s->retries >= (int)r->num_retries || !stream_can_replay(s))
        return 0;
    if (!s->retry_cb_held) {
        if (!cb_try_acquire(&s->wc->dc->cb, r->priority, CB_RETRIES)) {
            stats_inc(s->wc->dc->stats, CLUSTER_STAT_UPSTREAM_RQ_RETRY_OVERFLOW);
            return -1;
        }
        s->retry_cb_held = 1;
    }
    s->retries++;
    /* Envoy picks the host again for a retry. */
    int h = lb_pick(s->wc->dc->cfg, s->wc->dc->rq_active, &s->wc->lb);
    conn_pool *pool = h >= 0 ? worker_cluster_pool(s->wc, (size_t)h) : NULL;
    if (pool) {
        s->host = (size_t)h;
        s->pool = pool;
    }
    stream_retry(s, 0);
    return 1;
}

static const char *overflow_header(cb_resource limit, char *buf, size_t len)
{
    snprintf(buf, len, "x-envoy-overloaded: true\r\nx-xdsnode-overflow: %s\r\n",
             cb_resource_limit_name(limit));
    return buf;
}

static void reply_retry_overflow(stream *s, int status, const char *body)
{
    char extra[128];
    stream_local_reply(s, status, body, "UO", overflow_header(CB_RETRIES, extra, sizeof(extra)));
}

static void on_pool_ready(pool_request *r, upconn *c)
{
    (void)c;
    stream *s = (stream *)((char *)r - offsetof(stream, pr));
    copy_str(s->upstream_host, sizeof(s->upstream_host), pool_request_host_name(r));
    uint64_t max_ms = s->wc->dc->cfg->max_stream_duration_ms;
    if (max_ms) { /* Envoy arms it when the pool hands over the stream */
        ev_timer_set(&s->max_duration, (double)max_ms / 1000.0, 0.);
        ev_timer_start(worker_loop(s->dc->w), &s->max_duration);
    }
    if (s->up_h2 && pool_request_send_head(r, s->method_str, buffer_start(&s->dc->url),
                                           buffer_len(&s->dc->url), &s->uph, s->req_has_body) != 0) {
        stream_local_reply(s, 503, BODY_TERMINATION, "UC", NULL); /* cancels the stream */
        return;
    }
    pool_request_send(r, buffer_start(&s->pre), buffer_len(&s->pre));
    buffer_reset(&s->pre);
    if (s->req_complete)
        pool_request_end(r);
    dconn_resume_reading(s->dc);
}

/* Envoy's reply to an upstream reset: "upstream connect error or
 * disconnect/reset before headers. [retried and the latest ]reset reason:
 * R[, transport failure reason: T]". */
static const char *reset_body(char *buf, size_t len, const stream *s, const char *reason,
                              const char *transport_failure)
{
    int tf = transport_failure && transport_failure[0];
    snprintf(buf, len, "upstream connect error or disconnect/reset before headers. %sreset reason: %s%s%s",
             s->retried ? "retried and the latest " : "", reason,
             tf ? ", transport failure reason: " : "", tf ? transport_failure : "");
    return buf;
}

static void on_pool_failure(pool_request *r, pool_failure why, cb_resource limit)
{
    stream *s = (stream *)((char *)r - offsetof(stream, pr));
    if (why == POOL_FAIL_OVERFLOW) {
        char extra[128];
        stream_local_reply(s, 503, BODY_OVERFLOW, "UO", overflow_header(limit, extra, sizeof(extra)));
        return;
    }
    char tls_reason[800] = "";
    if (r->transport_failure) /* copied: a retry reuses the request */
        copy_str(tls_reason, sizeof(tls_reason), r->transport_failure);
    int rc = stream_policy_retry(s, RETRY_ON_CONNECT_FAILURE | RETRY_ON_RESET);
    if (rc == 1)
        return;
    char buf[1024];
    const char *body = reset_body(buf, sizeof(buf), s,
                                  why == POOL_FAIL_TIMEOUT ? "connection timeout" : "connection failure",
                                  tls_reason);
    set_flag(s, "UF");
    if (rc < 0)
        reply_retry_overflow(s, 503, body);
    else
        stream_local_reply(s, 503, body, "UF", NULL);
}

static int status_retriable(const stream *s, int status)
{
    unsigned on = s->route->retry_on;
    if ((on & RETRY_ON_5XX) && status >= 500)
        return 1;
    if ((on & RETRY_ON_GATEWAY_ERROR) && (status == 502 || status == 503 || status == 504))
        return 1;
    for (size_t i = 0; (on & RETRY_ON_RETRIABLE_STATUS) && i < s->route->n_retriable_status; i++) {
        if ((int)s->route->retriable_status[i] == status)
            return 1;
    }
    return 0;
}

/* A pipe's peer takes the head as fields, the body raw (no framing). */
static void pipe_response_head(stream *s, const http_parser *p, const header_list *h)
{
    dconn *c = s->dc;
    s->status = p->status_code;
    s->resp_structured = 1;
    hcm_response_head rh = {
        .status = (int)p->status_code,
        .fields = (header_list *)h,
        .service_time_ms = (unsigned long long)(s->upstream_service_ms > 0 ? s->upstream_service_ms : 0),
        .server = c->cfg->server_name,
        .no_body = s->method == HTTP_HEAD || p->status_code == 204 || p->status_code == 304 ||
                   ((p->flags & F_CHUNKED) == 0 && p->content_length == 0),
    };
    c->pipe_ops->on_response_head(c->pipe_ctx, &rh);
}

static void write_response_head(stream *s, const http_parser *p, const header_list *h)
{
    dconn *c = s->dc;
    if (c->is_pipe && c->pipe_ops) {
        pipe_response_head(s, p, h);
        return;
    }
    buffer head;
    buffer_init(&head);
    s->status = p->status_code;
    buffer_append_str(&head, "HTTP/1.1 ");
    buffer_append_u64(&head, p->status_code);
    buffer_append(&head, " ", 1);
    buffer_append_str(&head, http_reason(p->status_code));
    buffer_append(&head, "\r\n", 2);
    size_t conn_len = 0;
    const char *conn_val = header_list_get(h, "connection", &conn_len);
    for (size_t i = 0; i < h->n; i++) {
        const char *name = header_name(h, i);
        size_t nl = h->h[i].name_len;
        if (header_is_hop_by_hop(name, nl, conn_val, conn_len))
            continue;
        if (nl == 6 && strncasecmp(name, "server", 6) == 0)
            continue; /* Envoy overwrites it (server_header_transformation OVERWRITE) */
        header_write(&head, name, nl, header_value(h, i), h->h[i].value_len);
    }
    int no_body = s->method == HTTP_HEAD || p->status_code == 204 || p->status_code == 304;
    int has_length = (p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX;
    if (!no_body && !has_length) {
        if (s->dc->parser.http_major == 1 && s->dc->parser.http_minor == 0) {
            s->resp_close_delimited = 1;
            c->close_after = 1;
        } else {
            s->resp_chunked = 1;
            buffer_append_str(&head, "transfer-encoding: chunked\r\n");
        }
    }
    buffer_append_str(&head, "x-envoy-upstream-service-time: ");
    buffer_append_u64(&head, (unsigned long long)(s->upstream_service_ms > 0 ? s->upstream_service_ms : 0));
    buffer_append_str(&head, "\r\nserver: ");
    buffer_append_str(&head, c->cfg->server_name);
    buffer_append(&head, "\r\n", 2);
    if (!s->keepalive || c->close_after || !s->req_complete)
        buffer_append_str(&head, "connection: close\r\n");
    buffer_append(&head, "\r\n", 2);
    stream_write_down(s, buffer_start(&head), buffer_len(&head));
    buffer_free(&head);
}

static void on_pool_headers(pool_request *r, const http_parser *p, const header_list *h)
{
    stream *s = (stream *)((char *)r - offsetof(stream, pr));
    s->upstream_service_ms = (long)((now_mono() - s->upstream_start) * 1000);
    if (s->req_complete && status_retriable(s, p->status_code) && stream_can_replay(s) &&
        s->retries < (int)s->route->num_retries) {
        s->discard_response = 1; /* decided at completion: retry or not */
        s->status = p->status_code;
        return;
    }
    s->resp_started = 1;
    write_response_head(s, p, h);
}

static void on_pool_body(pool_request *r, const char *data, size_t len)
{
    stream *s = (stream *)((char *)r - offsetof(stream, pr));
    if (s->discard_response)
        return;
    if (s->resp_chunked) {
        char sz[24];
        size_t n = chunk_size_line(sz, len);
        stream_write_down(s, sz, n);
        stream_write_down(s, data, len);
        stream_write_down(s, "\r\n", 2);
    } else {
        stream_write_down(s, data, len);
    }
}

/* Trailers go to the client only in the last chunk of a chunked response
 * to an HTTP/2 client (Envoy's HTTP/1 codec drops them by default). */
static void on_pool_trailers(pool_request *r, const header_list *h, size_t first)
{
    stream *s = (stream *)((char *)r - offsetof(stream, pr));
    if (s->resp_structured && !s->discard_response && !s->trailers_sent && s->dc->pipe_ops) {
        s->dc->pipe_ops->on_response_trailers(s->dc->pipe_ctx, h, first);
        s->trailers_sent = 1;
        return;
    }
    if (s->discard_response || !s->resp_chunked || !s->dc->is_pipe || s->trailers_sent)
        return;
    buffer t;
    buffer_init(&t);
    buffer_append(&t, "0\r\n", 3);
    for (size_t i = first; i < h->n; i++) {
        const char *name = header_name(h, i);
        size_t nl = h->h[i].name_len;
        if (nl == 0 || name[0] == ':' || header_is_hop_by_hop(name, nl, NULL, 0))
            continue;
        header_write(&t, name, nl, header_value(h, i), h->h[i].value_len);
    }
    buffer_append(&t, "\r\n", 2);
    stream_write_down(s, buffer_start(&t), buffer_len(&t));
    buffer_free(&t);
    s->trailers_sent = 1;
}

static void stream_count_host(stream *s, int ok)
{
    host_stat_add(&s->wc->dc->hosts[s->host], ok ? HOST_STAT_RQ_SUCCESS : HOST_STAT_RQ_ERROR, 1);
}

static void on_pool_complete(pool_request *r)
{
    stream *s = (stream *)((char *)r - offsetof(stream, pr));
    stream_count_response(s, s->status);
    stream_count_host(s, s->status < 500);
    if (s->discard_response) {
        int rc = stream_policy_retry(s, RETRY_ON_5XX | RETRY_ON_GATEWAY_ERROR | RETRY_ON_RETRIABLE_STATUS);
        if (rc == 1)
            return;
        /* The held response is gone; answer as Envoy does when the retry
         * breaker refuses: the upstream's status with flag UO. */
        reply_retry_overflow(s, s->status, "");
        return;
    }
    if (s->retried)
        stats_inc(s->wc->dc->stats, CLUSTER_STAT_UPSTREAM_RQ_RETRY_SUCCESS);
    if (s->resp_chunked && !s->trailers_sent)
        stream_write_down(s, "0\r\n\r\n", 5);
    if (s->resp_structured && s->dc->pipe_ops)
        s->dc->pipe_ops->on_response_end(s->dc->pipe_ctx, buffer_len(&s->dc->out));
    s->resp_complete = 1;
    stream_finish(s);
}

static void on_pool_reset(pool_request *r, const upconn_reset_info *info)
{
    stream *s = (stream *)((char *)r - offsetof(stream, pr));
    stats_inc(s->wc->dc->stats, CLUSTER_STAT_UPSTREAM_RQ_RX_RESET);
    stream_count_host(s, 0);
    /* HTTP/2: a stream the upstream never processed goes to a fresh one. */
    if (info->refused && info->before_response && stream_can_replay(s) &&
        s->refused_retries < HCM_MAX_REFUSED_STREAM_RETRIES) {
        s->refused_retries++;
        stream_retry(s, 1);
        return;
    }
    /* The idle-close race: a reused connection the upstream had closed. */
    if (info->reused && info->before_response && !s->race_retried &&
        (info->nothing_written || (is_idempotent(s->method) && stream_can_replay(s)))) {
        s->race_retried = 1;
        stream_retry(s, 1);
        return;
    }
    if (info->before_response && !s->resp_started) {
        int rc = stream_policy_retry(s, RETRY_ON_RESET | RETRY_ON_5XX | RETRY_ON_GATEWAY_ERROR);
        if (rc == 1)
            return;
        char buf[1024];
        const char *body = info->transport_failure
                               ? reset_body(buf, sizeof(buf), s, "connection termination", info->transport_failure)
                               : s->retried ? BODY_RETRIED_TERMINATION : BODY_TERMINATION;
        if (rc < 0)
            reply_retry_overflow(s, 503, body);
        else
            stream_local_reply(s, 503, body, "UC", NULL);
        return;
    }
    set_flag(s, "UC");
    stream_local_reply(s, 503, BODY_TERMINATION, NULL, NULL); /* resets the client */
}

static void on_pool_drained(pool_request *r)
{
    stream *s = (stream *)((char *)r - offsetof(stream, pr));
    dconn_resume_reading(s->dc);
}

static void on_pool_read_done(pool_request *r)
{
    stream *s = (stream *)((char *)r - offsetof(stream, pr));
    dconn_try_write(s->dc);
}

static const pool_request_callbacks stream_pool_callbacks = {
    .on_read_done = on_pool_read_done,
    .on_ready = on_pool_ready,
    .on_failure = on_pool_failure,
    .on_response_headers = on_pool_headers,
    .on_response_body = on_pool_body,
    .on_response_trailers = on_pool_trailers,
    .on_response_complete = on_pool_complete,
    .on_reset = on_pool_reset,
    .on_drained = on_pool_drained,
};

static void on_route_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    stream *s = w->data;
    if (s->wc) {
        stats_inc(s->wc->dc->stats, CLUSTER_STAT_UPSTREAM_RQ_TIMEOUT);
        host_stat_add(&s->wc->dc->hosts[s->host], HOST_STAT_RQ_TIMEOUT, 1);
    }
    s->discard_response = 0;
    stream_local_reply(s, 504, BODY_TIMEOUT, "UT", NULL);
}

/* The cluster's max_stream_duration passed on this attempt. As Envoy: the
 * upstream stream is reset, retried if the policy retries resets, else the
 * client gets 408 while its request is still arriving, 504 after (a reset
 * once the response started), flag UMSDR. */
static void on_max_stream_duration(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    stream *s = w->data;
    stats_inc(s->wc->dc->stats, CLUSTER_STAT_UPSTREAM_RQ_MAX_DURATION_REACHED);
    if (!s->resp_started) {
        pool_request_cancel(&s->pr);
        s->discard_response = 0;
        if (stream_policy_retry(s, RETRY_ON_RESET) == 1)
            return;
    }
    s->discard_response = 0;
    stream_local_reply(s, s->req_complete ? 504 : 408, BODY_MAX_STREAM_DURATION, "UMSDR", NULL);
}

/* --- routing -------------------------------------------------------------- */

/* The cluster name for the route, into buf. Returns its length or -1. */
static int route_cluster_name(stream *s, char *buf, size_t len)
{
    const route_entry *r = s->route;
    const header_list *h = &s->dc->hdrs;
    size_t n = 0;
    const char *v;
    switch (r->action) {
    case ACTION_CLUSTER:
        return copy_str(buf, len, r->cluster);
    case ACTION_WEIGHTED:
        return copy_str(buf, len, router_pick_weighted(r, worker_random(s->dc->w)));
    case ACTION_CLUSTER_HEADER:
        v = header_list_get(h, r->cluster, &n);
        return v ? snprintf(buf, len, "%.*s", (int)n, v) : -1;
    case ACTION_EGRESS:
        v = header_list_get(h, "host", &n);
        return v ? router_egress_cluster(v, n, s->dc->cfg->port, buf, len) : -1;
    }
    return -1;
}

static void stream_route(stream *s)
{
    dconn *c = s->dc;
    size_t hn = 0;
    const char *host = header_list_get(&c->hdrs, "host", &hn);
    const virtual_host *vh = router_find_vhost(&c->cfg->routes, host ? host : "", hn);
    size_t path_len = strcspn(buffer_start(&c->url), "?");
    if (path_len > buffer_len(&c->url))
        path_len = buffer_len(&c->url);
    s->route = router_find_route(vh, buffer_start(&c->url), path_len);
    if (s->route == NULL) {
        stream_local_reply(s, 404, "", "NR", NULL);
        return;
    }
    char name[512];
    int n = route_cluster_name(s, name, sizeof(name));
    worker_cluster *wc = n > 0 ? worker_cluster_find(c->w, name, (size_t)n) : NULL;
    if (wc == NULL) {
        stream_local_reply(s, s->route->not_found_status, "", "NC", NULL);
        return;
    }
    s->wc = wc;
    worker_cluster_hold(wc);
    int host_index = lb_pick(wc->dc->cfg, wc->dc->rq_active, &wc->lb);
    if (host_index < 0) {
        stats_inc(wc->dc->stats, CLUSTER_STAT_UPSTREAM_CX_NONE_HEALTHY);
        stream_local_reply(s, 503, BODY_NO_HEALTHY, "UH", NULL);
        return;
    }
    s->host = (size_t)host_index;
    s->pool = worker_cluster_pool(wc, s->host);
    if (s->pool == NULL) {
        stream_local_reply(s, 503, BODY_OVERFLOW, "UO", NULL);
        return;
    }
    ev_timer_init(&s->timeout, on_route_timeout, (double)s->route->timeout_ms / 1000.0, 0.);
    s->timeout.data = s;
    s->up_h2 = cluster_config_upstream_http2(wc->dc->cfg, c->is_pipe);
    stream_write_head(s);
    s->upstream_start = now_mono();
    stream_attempt(s, 0);
}

/* --- downstream parser callbacks ---------------------------------------- */

static stream *stream_create(dconn *c)
{
    stream *s = wmem_calloc(sizeof(*s));
    if (s == NULL)
        return NULL;
    s->dc = c;
    hstat_add(c, HTTP_STAT_DOWNSTREAM_RQ_TOTAL, 1);
    hstat_add(c, c->is_pipe ? HTTP_STAT_DOWNSTREAM_RQ_HTTP2_TOTAL : HTTP_STAT_DOWNSTREAM_RQ_HTTP1_TOTAL, 1);
    hstat_add(c, HTTP_STAT_DOWNSTREAM_RQ_ACTIVE, 1);
    s->start = now_mono();
    clock_gettime(CLOCK_REALTIME, &s->start_wall);
    s->replay_ok = 1;
    s->upstream_service_ms = -1;
    buffer_init(&s->pre);
    buffer_init(&s->replay);
    header_list_init(&s->uph);
    header_list_init(&s->up_trailers);
    ev_timer_init(&s->timeout, on_route_timeout, 1., 0.);
    s->timeout.data = s;
    ev_timer_init(&s->max_duration, on_max_stream_duration, 1., 0.);
    s->max_duration.data = s;
    return s;
}

static int on_req_begin(http_parser *p)
{
    dconn *c = p->data;
    header_list_reset(&c->hdrs);
    buffer_reset(&c->url);
    c->s = stream_create(c);
    if (c->s == NULL)
        return -1;
    dconn_arm_timer(c);
    return 0;
}

static int on_req_url(http_parser *p, const char *at, size_t n)
{
    dconn *c = p->data;
    if (buffer_len(&c->url) + n > c->cfg->max_request_headers_bytes) {
        c->headers_too_large = 1;
        return -1;
    }
    return buffer_append(&c->url, at, n);
}

static int check_header_size(dconn *c)
{
    if (c->hdrs.bytes + buffer_len(&c->url) > c->cfg->max_request_headers_bytes) {
        c->headers_too_large = 1;
        return -1;
    }
    return 0;
}

static int on_req_field(http_parser *p, const char *at, size_t n)
{
    dconn *c = p->data;
    if (header_list_add_name(&c->hdrs, at, n) != 0)
        return -1;
    return check_header_size(c);
}

static int on_req_value(http_parser *p, const char *at, size_t n)
{
    dconn *c = p->data;
    if (header_list_add_value(&c->hdrs, at, n) != 0)
        return -1;
    return check_header_size(c);
}

static int on_req_headers_complete(http_parser *p)
{
    dconn *c = p->data;
    stream *s = c->s;
    s->method = p->method;
    c->trailer_start = c->hdrs.n;
    s->keepalive = http_should_keep_alive(p);
    s->req_chunked = (p->flags & F_CHUNKED) != 0;
    s->req_has_body = s->req_chunked || (p->content_length > 0 && p->content_length != ULLONG_MAX);
    s->pr.trailers = &s->up_trailers;
    s->method_str = http_method_str((enum http_method)p->method);
    if (c->cfg->access_log_path) {
        s->path = dup_n(buffer_start(&c->url), buffer_len(&c->url));
        s->authority = header_dup(&c->hdrs, "host");
        s->user_agent = header_dup(&c->hdrs, "user-agent");
    }
    if (c->cfg->access_log_path || c->cfg->use_remote_address)
        s->xff = header_dup(&c->hdrs, "x-forwarded-for");
    if (buffer_append(&c->url, "", 1) != 0) /* NUL for string use; not counted */
        return -1;
    c->url.tail--;
    size_t en = 0;
    const char *expect = header_list_get(&c->hdrs, "expect", &en);
    if (expect && en == 12 && strncasecmp(expect, "100-continue", 12) == 0 && p->http_minor >= 1)
        s->send_continue = 1;
    stream_route(s);
    if (c->s == s) {
        if (s->send_continue && !s->resp_started) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            dconn_write(c, cont, sizeof(cont) - 1);
            s->bytes_sent -= sizeof(cont) - 1;
            dconn_try_write(c);
        }
        dconn_arm_timer(c);
    }
    return 0;
}

static int on_req_body(http_parser *p, const char *at, size_t n)
{
    dconn *c = p->data;
    stream *s = c->s;
    if (s == NULL || s->resp_complete)
        return 0; /* answered already: the body is dropped */
    s->bytes_received += n;
    if (s->req_chunked && !s->up_h2) {
        char sz[24];
        size_t k = chunk_size_line(sz, n);
        stream_send_up(s, sz, k);
        stream_send_up(s, at, n);
        stream_send_up(s, "\r\n", 2);
    } else {
        stream_send_up(s, at, n);
    }
    return 0;
}

/* The last chunk, with the request's trailers (gRPC and HTTP/2 clients
 * send them; an HTTP/1.1 upstream gets them as chunked trailers). */
static void stream_send_trailers(stream *s)
{
    const header_list *h = &s->dc->hdrs;
    if (s->up_h2) { /* the pool sends them as a trailing HEADERS at the end */
        for (size_t i = s->dc->trailer_start; i < h->n; i++) {
            header_list_add_field(&s->up_trailers, h, i);
        }
        return;
    }
    if (h->n <= s->dc->trailer_start) {
        stream_send_up(s, "0\r\n\r\n", 5);
        return;
    }
    buffer t;
    buffer_init(&t);
    buffer_append(&t, "0\r\n", 3);
    for (size_t i = s->dc->trailer_start; i < h->n; i++) {
        const char *name = header_name(h, i);
        size_t nl = h->h[i].name_len;
        if (header_is_hop_by_hop(name, nl, NULL, 0) ||
            (nl == 14 && strncasecmp(name, "content-length", 14) == 0))
            continue;
        header_write(&t, name, nl, header_value(h, i), h->h[i].value_len);
    }
    buffer_append(&t, "\r\n", 2);
    stream_send_up(s, buffer_start(&t), buffer_len(&t));
    buffer_free(&t);
}

static int on_req_complete(http_parser *p)
{
    dconn *c = p->data;
    stream *s = c->s;
    http_parser_pause(p, 1); /* one request at a time */
    if (s == NULL)
        return 0;
    s->req_complete = 1;
    if (s->awaiting_request_end) {
        stream_finish(s);
        return 0;
    }
    if (s->req_chunked && !s->resp_complete)
        stream_send_trailers(s);
    if (s->pr.conn || s->pr.h2)
        pool_request_end(&s->pr);
    if (s->route && s->route->timeout_ms && !s->resp_complete)
        ev_timer_start(worker_loop(c->w), &s->timeout);
    return 0;
}

static const http_parser_settings request_settings = {
    .on_message_begin = on_req_begin,
    .on_url = on_req_url,
    .on_header_field = on_req_field,
    .on_header_value = on_req_value,
    .on_headers_complete = on_req_headers_complete,
    .on_body = on_req_body,
    .on_message_complete = on_req_complete,
};

/* --- downstream connection ---------------------------------------------- */

static void dconn_protocol_error(dconn *c)
{
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_PROTOCOL_ERROR, 1);
    int status = c->headers_too_large ? 431 : 400;
    const char *body = c->headers_too_large ? BODY_HEADERS_TOO_LARGE : BODY_BAD_REQUEST;
    if (c->s && c->s->resp_started) {
        dconn_close(c);
        return;
    }
    if (c->s == NULL)
        c->s = stream_create(c);
    if (c->s == NULL) {
        dconn_close(c);
        return;
    }
    c->close_after = 1;
    c->s->req_complete = 1;
    dconn_stop_reading(c);
    stream_local_reply(c->s, status, body, "DPE", NULL);
}

static void dconn_process_input(dconn *c)
{
    while (buffer_len(&c->in) > 0 && !c->closing && !c->close_after) {
        if (c->s && c->s->req_complete)
            break; /* the next request waits for this response */
        c->in_parser = 1;
        size_t n = http_parser_execute(&c->parser, &request_settings, buffer_start(&c->in),
                                       buffer_len(&c->in));
        c->in_parser = 0;
        if (c->closing) {
            dconn_close(c);
            return;
        }
        if (c->linger_pending) {
            c->linger_pending = 0;
            dconn_linger(c);
            return;
        }
        buffer_consume(&c->in, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            if (c->s == NULL) { /* finished while parsing: go on */
                http_parser_pause(&c->parser, 0);
                continue;
            }
            break;
        }
        if (e == HPE_OK && n == 0)
            break;
        if (e != HPE_OK) {
            dconn_protocol_error(c);
            return;
        }
    }
    if (c->s && c->s->req_complete && buffer_len(&c->in) > c->cfg->buffer_limit)
        dconn_stop_reading(c);
    dconn_flush(c);
}

static void dconn_on_eof(dconn *c)
{
    stream *s = c->s;
    if (s && !s->req_complete) {
        c->in_parser = 1;
        http_parser_execute(&c->parser, &request_settings, NULL, 0);
        c->in_parser = 0;
    }
    s = c->s;
    if (s) {
        set_flag(s, "DC");
        if (s->wc)
            stats_inc(s->wc->dc->stats, CLUSTER_STAT_UPSTREAM_RQ_CANCELLED);
        c->s = NULL;
        stream_access_log(s);
        stream_free(s);
    }
    dconn_close(c);
}

/* codec_type AUTO or HTTP2: a connection opening with the HTTP/2 preface
 * goes to the HTTP/2 codec (h2_downstream.h) with the bytes read so far.
 * Returns 1 if the connection left (or must wait for more bytes). */
static int dconn_sniff_http2(dconn *c)
{
    if (c->cfg->codec == HCM_CODEC_HTTP1) {
        c->sniffed = 1;
        dconn_count_http1(c);
        return 0;
    }
    int m = h2_preface_match(buffer_start(&c->in), buffer_len(&c->in));
    if (m < 0)
        return 1;
    c->sniffed = 1;
    if (m == 0) {
        if (c->cfg->codec != HCM_CODEC_HTTP2) {
            dconn_count_http1(c);
            return 0;
        }
        dconn_close(c); /* codec HTTP2 without the preface */
        return 1;
    }
    int fd = c->fd;
    buffer in = c->in;
    struct sockaddr_storage peer = c->peer_addr;
    buffer_init(&c->in);
    ev_io_stop(worker_loop(c->w), &c->rio);
    c->fd = -1;
    worker *w = c->w;
    const listener_config *cfg = c->cfg;
    c->handed_over = 1;
    dconn_close(c);
    h2d_connection_create(w, cfg, fd, &peer, buffer_start(&in), buffer_len(&in));
    buffer_free(&in);
    return 1;
}

static void on_dconn_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    dconn *c = w->data;
    char buf[DCONN_READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (c->lingering) { /* discard until the client closes */
        if (n <= 0)
            dconn_close(c);
        return;
    }
    if (n <= 0) {
        dconn_on_eof(c);
        return;
    }
    if (buffer_append(&c->in, buf, (size_t)n) != 0) {
        dconn_close(c);
        return;
    }
    if (!c->sniffed && dconn_sniff_http2(c))
        return;
    dconn_process_input(c);
}

static void on_dconn_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    dconn_flush(w->data);
}

static void on_dconn_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    dconn *c = w->data;
    if (c->lingering) {
        dconn_close(c);
        return;
    }
    if (c->s && !c->s->route) { /* request_headers_timeout: Envoy answers 408 */
        c->close_after = 1;
        c->s->req_complete = 1;
        stream_local_reply(c->s, 408, "request headers timeout", NULL, NULL);
        return;
    }
    if (c->s == NULL)
        dconn_close(c); /* idle_timeout */
}

static void dconn_close(dconn *c)
{
    if (c->in_parser) {
        c->closing = 1;
        return;
    }
    struct ev_loop *loop = worker_loop(c->w);
    if (c->s) {
        stream *s = c->s;
        c->s = NULL;
        stream_free(s);
    }
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->timer);
    if (c->fd >= 0)
        close(c->fd);
    if (c->is_pipe) {
        if (c->pipe_ops)
            c->pipe_ops->on_close(c->pipe_ctx);
    } else {
        worker_conn_remove(c->w, &c->link);
        if (c->counted_http1)
            hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_HTTP1_ACTIVE, -1);
        if (!c->handed_over) {
            hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_ACTIVE, -1);
            hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_DESTROY, 1);
        }
    }
    header_list_free(&c->hdrs);
    buffer_free(&c->url);
    buffer_free(&c->in);
    buffer_free(&c->out);
    wmem_free(c);
}

static void dconn_close_link(worker_conn *l) { dconn_close((dconn *)l); }

/* Drain: an idle connection closes now, a busy one after its response
 * (which then says "connection: close"). */
static void dconn_drain_link(worker_conn *l)
{
    dconn *c = (dconn *)l;
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_DRAIN_CLOSE, 1);
    if (c->s == NULL && buffer_len(&c->out) == 0) {
        dconn_close(c);
        return;
    }
    c->close_after = 1;
}

static void format_peer(const struct sockaddr_storage *peer, char *out, size_t len)
{
    out[0] = '\0';
    if (peer->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, out, (socklen_t)len);
    else if (peer->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, out, (socklen_t)len);
}

static dconn *dconn_new(worker *w, const listener_config *cfg, int fd,
                        const struct sockaddr_storage *peer)
{
    dconn *c = wmem_calloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    c->w = w;
    c->cfg = cfg;
    c->fd = fd;
    c->link.close = dconn_close_link;
    c->link.drain = dconn_drain_link;
    c->peer_addr = *peer; /* c->peer is formatted when first needed */
    header_list_init(&c->hdrs);
    buffer_init(&c->url);
    buffer_init(&c->in);
    buffer_init(&c->out);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    ev_io_init(&c->rio, on_dconn_read, fd, EV_READ);
    ev_io_init(&c->wio, on_dconn_write, fd, EV_WRITE);
    ev_timer_init(&c->timer, on_dconn_timer, 1., 0.);
    c->rio.data = c->wio.data = c->timer.data = c;
    return c;
}

int hcm_connection_create(worker *w, const listener_config *cfg, int fd,
                          const struct sockaddr_storage *peer)
{
    dconn *c = dconn_new(w, cfg, fd, peer);
    if (c == NULL) {
        close(fd);
        return -1;
    }
    worker_conn_add(w, &c->link);
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_TOTAL, 1);
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_ACTIVE, 1);
    ev_io_start(worker_loop(w), &c->rio);
    dconn_arm_timer(c);
    return 0;
}

/* --- in-memory exchanges (hcm.h) ------------------------------------------ */

hcm_pipe *hcm_pipe_create(worker *w, const listener_config *cfg,
                          const struct sockaddr_storage *peer, const hcm_pipe_ops *ops,
                          void *ctx)
{
    dconn *c = dconn_new(w, cfg, -1, peer);
    if (c == NULL)
        return NULL;
    c->is_pipe = 1;
    c->sniffed = 1;
    c->pipe_ops = ops;
    c->pipe_ctx = ctx;
    dconn_arm_timer(c);
    return (hcm_pipe *)c;
}

/* The HTTP/1.1 method named `name`, or -1. */
static int method_from_name(const char *name)
{
    static const enum http_method common[] = {HTTP_GET, HTTP_POST, HTTP_PUT, HTTP_DELETE,
                                              HTTP_HEAD, HTTP_OPTIONS, HTTP_PATCH};
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
        if (strcmp(name, http_method_str(common[i])) == 0)
            return (int)common[i];
    }
    for (int m = 0; m < 64; m++) {
        const char *s = http_method_str((enum http_method)m);
        if (strcmp(s, "<unknown>") == 0)
            break;
        if (strcmp(name, s) == 0)
            return m;
    }
    return -1;
}

/* After callbacks run outside the parser: what they asked for (close,
 * linger), then the output. Returns -1 if c is gone. */
static int pipe_after_callbacks(dconn *c)
{
    c->in_parser = 0;
    if (c->closing) {
        dconn_close(c);
        return -1;
    }
    if (c->linger_pending) {
        c->linger_pending = 0;
        dconn_linger(c);
        return -1;
    }
    return dconn_flush(c);
}

int hcm_pipe_request(hcm_pipe *p, const char *method, const char *path, size_t path_len,
                     header_list *headers, int chunked)
{
    dconn *c = (dconn *)p;
    int m = method_from_name(method);
    if (m < 0 || c->s != NULL || c->closing)
        return -1;
    http_parser *hp = &c->parser;
    c->in_parser = 1;
    if (on_req_begin(hp) != 0 || on_req_url(hp, path, path_len) != 0) {
        c->in_parser = 0;
        dconn_protocol_error(c);
        return 0;
    }
    header_list mine = c->hdrs; /* take the caller's fields, leave it our empty list */
    c->hdrs = *headers;
    *headers = mine;
    header_list_reset(headers);
    hp->method = (unsigned)m;
    hp->http_major = 1;
    hp->http_minor = 1;
    hp->flags = chunked ? F_CHUNKED : 0;
    size_t cl_len = 0;
    const char *cl = header_list_get(&c->hdrs, "content-length", &cl_len);
    hp->content_length = cl ? strtoull(cl, NULL, 10) : chunked ? ULLONG_MAX : 0;
    on_req_headers_complete(hp);
    pipe_after_callbacks(c);
    return 0;
}

size_t hcm_pipe_body(hcm_pipe *p, const char *data, size_t len)
{
    dconn *c = (dconn *)p;
    if (c->read_blocked || c->closing || c->lingering || c->s == NULL)
        return 0;
    c->in_parser = 1;
    on_req_body(&c->parser, data, len);
    pipe_after_callbacks(c);
    return len;
}

int hcm_pipe_end(hcm_pipe *p, const header_list *trailers)
{
    dconn *c = (dconn *)p;
    if (c->read_blocked || c->closing || c->lingering || c->s == NULL)
        return -1;
    for (size_t i = 0; trailers && i < trailers->n; i++) {
        if (header_list_add_field(&c->hdrs, trailers, i) != 0)
            break;
    }
    c->in_parser = 1;
    on_req_complete(&c->parser);
    pipe_after_callbacks(c);
    return 0;
}

void hcm_pipe_output_ready(hcm_pipe *p) { dconn_flush((dconn *)p); }

void hcm_pipe_abort(hcm_pipe *p)
{
    dconn *c = (dconn *)p;
    c->pipe_ops = NULL;
    dconn_on_eof(c);
}
