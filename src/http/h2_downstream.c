/* h2_downstream.c: HTTP/2 downstream connections over the HCM (h2_downstream.h). */
#include "xdsnode/h2_downstream.h"

#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
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

#include "xdsnode/buffer.h"
#include "xdsnode/dlist.h"
#include "xdsnode/h2_common.h"
#include "xdsnode/hcm.h"
#include "xdsnode/http_headers.h"
#include "xdsnode/http_stats.h"
#include "xdsnode/log.h"
#include "xdsnode/wmem.h"

#define H2D_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2D_PREFACE_LEN 24
/* Read size per event on the client socket. */
#define H2D_READ_CHUNK 65536
/* Most response header fields passed to nghttp2. */
#define H2D_MAX_RESPONSE_FIELDS 128

typedef struct h2d_conn h2d_conn;

typedef struct h2d_stream {
    h2d_conn *conn;
    int32_t id;
    hcm_pipe *hcm;          /* the HCM's side of the exchange; NULL before and after */
    int started;            /* the request went to the HCM */
    header_list reqh;       /* request fields from HEADERS, handed to the HCM */
    header_list trailers;   /* request trailers */
    buffer out;             /* request body bytes the HCM has not taken yet */
    size_t header_bytes;
    char *method, *path, *authority;
    int chunked, end_stream, has_length, sent_end;
    int end_pending;        /* END_STREAM seen: the HCM gets the end once it took the body */
    int declares_trailers;  /* a "trailer" header: the body goes chunked to keep them */
    char content_length[24];
    http_parser resp;
    header_list resph;
    size_t resp_trailer_start; /* response trailers start at this index of resph */
    int resp_structured;    /* the head came as fields (hcm_response_head), the body raw */
    int resp_end_after;     /* the response ends once the HCM's queued bytes are taken */
    buffer body;            /* response body not yet framed */
    int resp_submitted, resp_eof, data_deferred;
    int want_input, want_output; /* deferred pushes to / pulls from the HCM */
    size_t unconsumed;      /* DATA bytes queued for the HCM, window not yet returned */
    struct h2d_stream *prev, *next;
} h2d_stream;

struct h2d_conn {
    worker_conn link;
    worker *w;
    const listener_config *cfg;
    struct sockaddr_storage peer;
    int fd;
    ev_io rio, wio;
    ev_timer defer;          /* work the HCM asked for, done on the next loop turn */
    nghttp2_session *session;
    buffer wbuf;             /* frames serialized, not yet written */
    h2d_stream *streams;
    int in_session, destroy_pending, want_flush;
    unsigned resets;         /* in the current interval */
    double reset_window_start;
};

static void conn_destroy(h2d_conn *c);
static void conn_flush(h2d_conn *c);

int h2_preface_match(const char *data, size_t len)
{
    size_t n = len < H2D_PREFACE_LEN ? len : H2D_PREFACE_LEN;
    if (memcmp(data, H2D_PREFACE, n) != 0)
        return 0;
    return len >= H2D_PREFACE_LEN ? 1 : -1;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct ev_loop *conn_loop(const h2d_conn *c) { return worker_loop(c->w); }

/* http.<stat_prefix>.* and the downstream http2.* */
static void hstat_add(const h2d_conn *c, size_t i, int64_t n)
{
    if (c->cfg->stats)
        stats_add(c->cfg->stats, i, (uint64_t)n);
}

static void h2stat_add(const h2d_conn *c, size_t i, int64_t n)
{
    if (c->cfg->h2_stats)
        stats_add(c->cfg->h2_stats, i, (uint64_t)n);
}

/* --- streams --------------------------------------------------------------- */

static void conn_defer(h2d_conn *c)
{
    if (!ev_is_active(&c->defer))
        ev_timer_start(conn_loop(c), &c->defer);
}

/* The three digits of an HTTP status into out[0..2]. */
static void status_digits(char *out, unsigned code)
{
    if (code > 999)
        code = 999;
    out[0] = (char)('0' + code / 100);
    out[1] = (char)('0' + code / 10 % 10);
    out[2] = (char)('0' + code % 10);
}

/* A response's fields into nv[n..max) after :status: pseudo-headers,
 * hop-by-hop fields and those its Connection lists are dropped (names
 * lower-cased in place); with drop_server, Server too (the node names
 * itself). Returns the new count. */
static size_t response_fields_nv(header_list *h, int drop_server, nghttp2_nv *nv, size_t n,
                                 size_t max)
{
    size_t clen = 0;
    const char *conn_val = header_list_get(h, "connection", &clen);
    for (size_t i = 0; i < h->n && n < max; i++) {
        char *name = (char *)header_name(h, i);
        size_t nl = h->h[i].name_len;
        if (nl == 0 || name[0] == ':' || header_is_hop_by_hop(name, nl, conn_val, clen) ||
            (drop_server && nl == 6 && strncasecmp(name, "server", 6) == 0))
            continue;
        if (h->mixed_case)
            header_lower(name, nl);
        nv[n++] = h2_nv_field(name, nl, header_value(h, i), h->h[i].value_len);
    }
    return n;
}

static void stream_free(h2d_stream *st)
{
    h2d_conn *c = st->conn;
    h2stat_add(c, HTTP2_STAT_STREAMS_ACTIVE, -1);
    if (st->hcm) {
        hcm_pipe *p = st->hcm;
        st->hcm = NULL;
        hcm_pipe_abort(p);
    }
    DLIST_REMOVE(c->streams, st);
    header_list_free(&st->reqh);
    header_list_free(&st->trailers);
    buffer_free(&st->out);
    buffer_free(&st->body);
    header_list_free(&st->resph);
    wmem_free(st->method);
    wmem_free(st->path);
    wmem_free(st->authority);
    wmem_free(st);
}

static char *dup_n(const uint8_t *p, size_t n)
{
    return wmem_strndup((const char *)p, n);
}

/* Gives queued body bytes, then the end of the request, to the HCM and
 * returns their window. Not for use inside an HCM callback (hcm.h). */
static void stream_push_input(h2d_stream *st)
{
    h2d_conn *c = st->conn;
    st->want_input = 0;
    size_t n = buffer_len(&st->out);
    if (st->hcm && n > 0) {
        if (hcm_pipe_body(st->hcm, buffer_start(&st->out), n) == 0)
            return; /* the HCM is not reading: on_input_ready follows */
        buffer_consume(&st->out, n);
        size_t give = n < st->unconsumed ? n : st->unconsumed;
        if (give > 0) {
            st->unconsumed -= give;
            nghttp2_session_consume(c->session, st->id, give);
        }
    }
    if (st->hcm && st->end_pending && !st->sent_end && buffer_len(&st->out) == 0 &&
        hcm_pipe_end(st->hcm, st->chunked ? &st->trailers : NULL) == 0)
        st->sent_end = 1;
}

static ssize_t read_response_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                  size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                                  void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    h2d_stream *st = source->ptr;
    ssize_t n = h2_read_body(st->conn->session, st->id, &st->body, st->resp_eof, &st->resph,
                             st->resp_trailer_start, buf, length, data_flags, &st->data_deferred);
    if (n < 0)
        return n;
    if (st->hcm && buffer_len(&st->body) < st->conn->cfg->buffer_limit / 2) {
        st->want_output = 1; /* the HCM may hold more: pull it, outside nghttp2 */
        conn_defer(st->conn);
    }
    return n;
}

static int on_resp_field(http_parser *hp, const char *at, size_t n)
{
    h2d_stream *st = hp->data;
    return header_list_add_name(&st->resph, at, n) == 0 ? 0 : -1;
}

static int on_resp_value(http_parser *hp, const char *at, size_t n)
{
    h2d_stream *st = hp->data;
    return header_list_add_value(&st->resph, at, n) == 0 ? 0 : -1;
}

/* The HCM's HTTP/1.1 response head becomes HEADERS (hop-by-hop dropped). */
static int on_resp_headers_complete(http_parser *hp)
{
    h2d_stream *st = hp->data;
    if (hp->status_code < 200) {
        header_list_reset(&st->resph);
        return 0;
    }
    nghttp2_nv nv[H2D_MAX_RESPONSE_FIELDS];
    char status[4];
    status_digits(status, hp->status_code);
    nv[0] = h2_nv(":status", 7, status, 3);
    size_t n = response_fields_nv(&st->resph, 0, nv, 1, H2D_MAX_RESPONSE_FIELDS);
    /* No body at all (HEAD, 204, 304, content-length 0): END_STREAM on
     * HEADERS, as a gRPC trailers-only response needs. */
    int no_body = strcmp(st->method, "HEAD") == 0 || hp->status_code == 204 ||
                  hp->status_code == 304 || hp->content_length == 0;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_response_body};
    nghttp2_submit_response(st->conn->session, st->id, nv, n, no_body ? NULL : &prd);
    st->resp_submitted = 1;
    st->resp_trailer_start = st->resph.n;
    return no_body ? 1 : 0;
}

static int on_resp_body(http_parser *hp, const char *at, size_t n)
{
    h2d_stream *st = hp->data;
    return buffer_append(&st->body, at, n) == 0 ? 0 : -1;
}

static int on_resp_complete(http_parser *hp)
{
    h2d_stream *st = hp->data;
    if (hp->status_code < 200)
        return 0;
    st->resp_eof = 1;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings response_settings = {
    .on_header_field = on_resp_field,
    .on_header_value = on_resp_value,
    .on_headers_complete = on_resp_headers_complete,
    .on_body = on_resp_body,
    .on_message_complete = on_resp_complete,
};

/* Parses response bytes from the HCM. Returns -1 if they are malformed
 * (the stream has been reset). */
static int stream_on_response_bytes(h2d_stream *st, const char *buf, size_t n)
{
    h2d_conn *c = st->conn;
    size_t done = http_parser_execute(&st->resp, &response_settings, buf, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&st->resp);
    if ((e != HPE_OK && e != HPE_PAUSED) || (done < n && !st->resp_eof)) {
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return -1;
    }
    if (st->resp_submitted && st->data_deferred && (buffer_len(&st->body) > 0 || st->resp_eof)) {
        st->data_deferred = 0;
        nghttp2_session_resume_data(c->session, st->id);
    }
    return 0;
}

/* The response body is all there: DATA can end the stream. */
static void stream_response_eof(h2d_stream *st)
{
    st->resp_eof = 1;
    if (st->resp_submitted && st->data_deferred) {
        st->data_deferred = 0;
        nghttp2_session_resume_data(st->conn->session, st->id);
    }
}

/* hcm_pipe_ops: called from inside the HCM; no call back into it here. */
static void pipe_on_output(void *ctx, buffer *out)
{
    h2d_stream *st = ctx;
    size_t limit = st->conn->cfg->buffer_limit;
    size_t have = buffer_len(&st->body);
    if (have >= limit)
        return; /* the HCM keeps the rest and pauses its upstream */
    size_t n = buffer_len(out);
    if (n > limit - have)
        n = limit - have;
    if (st->resp_structured) { /* raw body bytes */
        buffer_append(&st->body, buffer_start(out), n);
        buffer_consume(out, n);
        if (st->resp_end_after && buffer_len(out) == 0)
            stream_response_eof(st);
        else if (st->data_deferred && n > 0) {
            st->data_deferred = 0;
            nghttp2_session_resume_data(st->conn->session, st->id);
        }
        conn_defer(st->conn);
        return;
    }
    if (stream_on_response_bytes(st, buffer_start(out), n) != 0)
        n = buffer_len(out); /* reset: drop it all */
    buffer_consume(out, n);
    conn_defer(st->conn);
}

static void pipe_on_response_head(void *ctx, const hcm_response_head *rh)
{
    h2d_stream *st = ctx;
    nghttp2_nv nv[H2D_MAX_RESPONSE_FIELDS];
    char status[4], ms[24];
    status_digits(status, (unsigned)rh->status);
    nv[0] = h2_nv(":status", 7, status, 3);
    size_t n = response_fields_nv(rh->fields, 1, nv, 1, H2D_MAX_RESPONSE_FIELDS - 2);
    size_t ml = format_u64(ms, rh->service_time_ms);
    nv[n++] = h2_nv_field("x-envoy-upstream-service-time", 29, ms, ml);
    nv[n++] = h2_nv("server", 6, rh->server, strlen(rh->server));
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_response_body};
    nghttp2_submit_response(st->conn->session, st->id, nv, n, rh->no_body ? NULL : &prd);
    st->resp_structured = 1;
    st->resp_submitted = 1;
    header_list_reset(&st->resph); /* from here on it holds the trailers */
    st->resp_trailer_start = 0;
    if (rh->no_body)
        st->resp_eof = 1;
    conn_defer(st->conn);
}

static void pipe_on_response_trailers(void *ctx, const header_list *h, size_t first)
{
    h2d_stream *st = ctx;
    for (size_t i = first; i < h->n; i++)
        header_list_add_field(&st->resph, h, i);
}

static void pipe_on_response_end(void *ctx, size_t queued)
{
    h2d_stream *st = ctx;
    if (queued == 0)
        stream_response_eof(st);
    else
        st->resp_end_after = 1;
    conn_defer(st->conn);
}

static void pipe_on_input_ready(void *ctx)
{
    h2d_stream *st = ctx;
    st->want_input = 1;
    conn_defer(st->conn);
}

/* The HCM side ended: a response that is not complete resets the stream. */
static void pipe_on_close(void *ctx)
{
    h2d_stream *st = ctx;
    h2d_conn *c = st->conn;
    st->hcm = NULL;
    http_parser_execute(&st->resp, &response_settings, NULL, 0); /* EOF ends a close-delimited body */
    if (!st->resp_eof) {
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, st->id,
                                  st->resp_submitted ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_REFUSED_STREAM);
    } else if (st->data_deferred) {
        st->data_deferred = 0;
        nghttp2_session_resume_data(c->session, st->id);
    }
    conn_defer(c);
}

static const hcm_pipe_ops pipe_ops = {
    .on_output = pipe_on_output,
    .on_input_ready = pipe_on_input_ready,
    .on_close = pipe_on_close,
    .on_response_head = pipe_on_response_head,
    .on_response_trailers = pipe_on_response_trailers,
    .on_response_end = pipe_on_response_end,
};

/* HEADERS complete: the HTTP/1.1 request head goes to a new HCM exchange. */
static int stream_start(h2d_stream *st)
{
    h2d_conn *c = st->conn;
    if (st->method == NULL || st->path == NULL)
        return -1;
    st->hcm = hcm_pipe_create(c->w, c->cfg, &c->peer, &pipe_ops, st);
    if (st->hcm == NULL)
        return -1;
    st->started = 1;
    st->chunked = !st->end_stream && (!st->has_length || st->declares_trailers);
    if (st->has_length && !st->chunked)
        header_list_add(&st->reqh, "content-length", 14, st->content_length,
                        strlen(st->content_length));
    if (st->authority)
        header_list_add(&st->reqh, "host", 4, st->authority, strlen(st->authority));
    if (hcm_pipe_request(st->hcm, st->method, st->path, strlen(st->path), &st->reqh, st->chunked) != 0) {
        hcm_pipe *p = st->hcm;
        st->hcm = NULL;
        hcm_pipe_abort(p);
        return -1;
    }
    st->end_pending = st->end_stream;
    stream_push_input(st);
    return 0;
}

/* --- nghttp2 callbacks -------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2d_conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2d_stream *st = wmem_calloc(sizeof(*st));
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->conn = c;
    h2stat_add(c, HTTP2_STAT_STREAMS_ACTIVE, 1);
    st->id = frame->hd.stream_id;
    header_list_init(&st->reqh);
    header_list_init(&st->trailers);
    buffer_init(&st->out);
    buffer_init(&st->body);
    header_list_init(&st->resph);
    http_parser_init(&st->resp, HTTP_RESPONSE);
    st->resp.data = st;
    DLIST_INSERT_HEAD(c->streams, st);
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

static int is_connection_specific(const uint8_t *name, size_t len)
{
    return header_is_hop_by_hop((const char *)name, len, NULL, 0) ||
           (len == 4 && memcmp(name, "host", 4) == 0) ||
           (len == 14 && memcmp(name, "content-length", 14) == 0);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    (void)flags;
    h2d_conn *c = user_data;
    h2d_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    st->header_bytes += namelen + valuelen;
    if (st->header_bytes > c->cfg->max_request_headers_bytes) {
        h2stat_add(c, HTTP2_STAT_HEADER_OVERFLOW, 1);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* header bomb: reset the stream */
    }
    if (st->started) { /* trailers: the HCM passes them on with the request's end */
        if (namelen > 0 && name[0] != ':' && !is_connection_specific(name, namelen))
            header_list_add(&st->trailers, (const char *)name, namelen, (const char *)value, valuelen);
        return 0;
    }
    if (namelen == 2 && memcmp(name, "te", 2) == 0) {
        if (header_te_trailers((const char *)value, valuelen))
            header_list_add(&st->reqh, "te", 2, "trailers", 8);
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":method", 7) == 0)
        st->method = dup_n(value, valuelen);
    else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
        st->path = dup_n(value, valuelen);
    else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
        st->authority = dup_n(value, valuelen);
    else if (namelen == 4 && memcmp(name, "host", 4) == 0 && st->authority == NULL)
        st->authority = dup_n(value, valuelen);
    else if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        if (valuelen == 0 || valuelen >= sizeof(st->content_length) ||
            strspn((const char *)value, "0123456789") < valuelen)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* malformed: reset the stream */
        st->has_length = 1;
        memcpy(st->content_length, value, valuelen);
        st->content_length[valuelen] = '\0';
    } else if (namelen == 7 && memcmp(name, "trailer", 7) == 0) {
        st->declares_trailers = 1;
        header_list_add(&st->reqh, (const char *)name, namelen, (const char *)value, valuelen);
    } else if (name[0] != ':' && !is_connection_specific(name, namelen)) {
        header_list_add(&st->reqh, (const char *)name, namelen, (const char *)value, valuelen);
    }
    return 0;
}

/* Rapid reset: more than H2D_MAX_RESETS_PER_INTERVAL client resets per
 * interval ends the connection. Returns 1 if it is over the limit. */
static int count_reset(h2d_conn *c)
{
    double now = now_mono();
    if (now - c->reset_window_start > H2D_RESET_INTERVAL_S) {
        c->reset_window_start = now;
        c->resets = 0;
    }
    return ++c->resets > H2D_MAX_RESETS_PER_INTERVAL;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2d_conn *c = user_data;
    h2d_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
        h2stat_add(c, HTTP2_STAT_RX_RESET, 1);
        hstat_add(c, HTTP_STAT_DOWNSTREAM_RQ_RX_RESET, 1);
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM && count_reset(c)) {
        log_warn("http2 downstream: more than %d stream resets per %.0f s, closing the connection",
                 H2D_MAX_RESETS_PER_INTERVAL, H2D_RESET_INTERVAL_S);
        nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    if (st == NULL)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        st->end_stream = 1;
    if (frame->hd.type == NGHTTP2_HEADERS && !st->started) {
        if (stream_start(st) != 0)
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    if (st->end_stream && st->started) {
        if (frame->hd.type == NGHTTP2_HEADERS)
            h2stat_add(c, HTTP2_STAT_TRAILERS, 1);
        st->end_pending = 1;
        stream_push_input(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    h2d_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st == NULL || st->hcm == NULL) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    buffer_append(&st->out, data, len); /* raw: the HCM frames it for the upstream */
    st->unconsumed += len;
    stream_push_input(st);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    (void)error_code;
    (void)user_data;
    h2d_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    stream_free(st); /* an unfinished HCM exchange is cancelled */
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    h2d_conn *c = user_data;
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
        h2stat_add(c, HTTP2_STAT_TX_RESET, 1);
        hstat_add(c, HTTP_STAT_DOWNSTREAM_RQ_TX_RESET, 1);
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
        h2stat_add(c, HTTP2_STAT_GOAWAY_SENT, 1);
    }
    return 0;
}

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    return cbs;
}

/* --- connection --------------------------------------------------------------- */

static int conn_pump(h2d_conn *c) { return h2_pump(c->session, &c->wbuf, c->fd) < 0 ? -1 : 0; }

/* Work the HCM asked for from inside its callbacks: request bytes it will
 * take again, response bytes it holds; then the frames go out. */
static void on_defer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    h2d_conn *c = w->data;
    for (h2d_stream *st = c->streams; st; st = st->next) {
        if (st->want_input)
            stream_push_input(st);
        if (st->want_output) {
            st->want_output = 0;
            if (st->hcm)
                hcm_pipe_output_ready(st->hcm);
        }
    }
    conn_flush(c);
}

static void conn_flush(h2d_conn *c)
{
    if (c->in_session) {
        c->want_flush = 1;
        return;
    }
    int rc;
    do {
        c->want_flush = 0;
        c->in_session = 1;
        rc = conn_pump(c);
        c->in_session = 0;
    } while (rc == 0 && c->want_flush && !c->destroy_pending);
    if (rc != 0 || c->destroy_pending ||
        (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
         buffer_len(&c->wbuf) == 0)) {
        conn_destroy(c);
        return;
    }
    if (buffer_len(&c->wbuf) > 0 || nghttp2_session_want_write(c->session))
        ev_io_start(conn_loop(c), &c->wio);
    else
        ev_io_stop(conn_loop(c), &c->wio);
}

static int conn_feed(h2d_conn *c, const uint8_t *data, size_t len)
{
    c->in_session = 1;
    ssize_t rc = nghttp2_session_mem_recv(c->session, data, len);
    c->in_session = 0;
    if (rc < 0) {
        log_info("http2 downstream: closing: %s", nghttp2_strerror((int)rc));
        if (rc == NGHTTP2_ERR_FLOODED || rc == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
            return -1;
        nghttp2_session_terminate_session(c->session, NGHTTP2_PROTOCOL_ERROR);
    }
    conn_flush(c);
    return 0;
}

static void on_conn_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    h2d_conn *c = w->data;
    uint8_t buf[H2D_READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* conn_feed may free c itself (through conn_flush) and then returns 0 */
    if (n <= 0 || conn_feed(c, buf, (size_t)n) != 0)
        conn_destroy(c);
}

static void on_conn_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush(w->data);
}

static void conn_destroy(h2d_conn *c)
{
    if (c->in_session) {
        c->destroy_pending = 1;
        return;
    }
    while (c->streams)
        stream_free(c->streams);
    ev_io_stop(conn_loop(c), &c->rio);
    ev_io_stop(conn_loop(c), &c->wio);
    ev_timer_stop(conn_loop(c), &c->defer);
    close(c->fd);
    nghttp2_session_del(c->session);
    buffer_free(&c->wbuf);
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_HTTP2_ACTIVE, -1);
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_ACTIVE, -1);
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_DESTROY, 1);
    worker_conn_remove(c->w, &c->link);
    free(c);
}

/* Worker shutdown: a GOAWAY, best effort, then close. */
static void conn_close_link(worker_conn *link)
{
    h2d_conn *c = (h2d_conn *)link;
    nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
    conn_pump(c);
    conn_destroy(c);
}

/* Drain: GOAWAY with the last stream we took; those finish, no new ones
 * start, and the connection closes when they are done. */
static void conn_drain_link(worker_conn *link)
{
    h2d_conn *c = (h2d_conn *)link;
    if (c->in_session || c->destroy_pending)
        return;
    int32_t last = nghttp2_session_get_last_proc_stream_id(c->session);
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
    conn_flush(c); /* may close c now if no stream is open */
}

static int conn_start_session(h2d_conn *c)
{
    nghttp2_session_callbacks *cbs = make_callbacks();
    nghttp2_option *opt = NULL;
    if (cbs == NULL || nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -1;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, H2D_MAX_OUTBOUND_ACK);
    int rc = nghttp2_session_server_new3(&c->session, cbs, c, opt, h2_mem());
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->cfg->h2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->cfg->h2_initial_stream_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->cfg->max_request_headers_bytes},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    return nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
}

int h2d_connection_create(worker *w, const listener_config *cfg, int fd,
                          const struct sockaddr_storage *peer, const char *initial, size_t len)
{
    h2d_conn *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->cfg = cfg;
        if (conn_start_session(c) != 0) {
            nghttp2_session_del(c->session);
            free(c);
            c = NULL;
        }
    }
    if (c == NULL) {
        close(fd);
        if (cfg->stats) { /* counted as accepted by the HCM */
            stats_add(cfg->stats, HTTP_STAT_DOWNSTREAM_CX_ACTIVE, (uint64_t)-1);
            stats_inc(cfg->stats, HTTP_STAT_DOWNSTREAM_CX_DESTROY);
        }
        return -1;
    }
    c->w = w;
    c->fd = fd;
    c->peer = *peer;
    c->link.close = conn_close_link;
    c->link.drain = conn_drain_link;
    /* accepted (downstream_cx_total/active) as HTTP/1 by the HCM, which
     * handed it over when it saw the preface */
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_HTTP2_TOTAL, 1);
    hstat_add(c, HTTP_STAT_DOWNSTREAM_CX_HTTP2_ACTIVE, 1);
    c->reset_window_start = now_mono();
    ev_io_init(&c->rio, on_conn_readable, fd, EV_READ);
    ev_io_init(&c->wio, on_conn_writable, fd, EV_WRITE);
    ev_timer_init(&c->defer, on_defer, 0., 0.);
    c->rio.data = c->wio.data = c->defer.data = c;
    buffer_init(&c->wbuf);
    worker_conn_add(w, &c->link);
    ev_io_start(worker_loop(w), &c->rio);
    if (conn_feed(c, (const uint8_t *)initial, len) != 0)
        conn_destroy(c);
    return 0;
}
