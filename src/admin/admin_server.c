/*
 * admin_server.c: the admin HTTP/1.1 server (see include/xdsnode/admin.h).
 *
 * One listening socket, a list of connections, a table of handlers. Each
 * connection parses with http-parser; when a request is complete the parser
 * is paused, the response is built in one malloc'd buffer and written with
 * backpressure, and only then does parsing (of any pipelined bytes) resume.
 * So a connection has at most one request in flight and its input buffer is
 * bounded: while a response is pending we do not read.
 */
#include "xdsnode/admin.h"
#include "xdsnode/dlist.h"
#include "xdsnode/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-value"
#include <ev.h>
#pragma GCC diagnostic pop

#include <http_parser.h>

/* Idle connection timeout; mirrors the default of Envoy's
 * HttpConnectionManager.stream_idle_timeout (5 minutes). */
#define ADMIN_IDLE_TIMEOUT_S 300.0
/* Bytes read from a socket at a time (also the input buffer capacity). */
#define ADMIN_READ_CHUNK 16384
/* listen() backlog. */
#define ADMIN_LISTEN_BACKLOG 128
/* Per-header framing bytes counted towards the header limit (": ", CRLF). */
#define ADMIN_HEADER_OVERHEAD 4

#define ADMIN_DEFAULT_CONTENT_TYPE "text/plain; charset=UTF-8"

typedef struct {
    char *path;
    char *help;
    bool mutates_state;
    admin_handler_fn fn;
    void *ctx;
} admin_handler;

typedef struct admin_conn admin_conn;

struct admin_server {
    struct ev_loop *loop;
    int fd;
    uint16_t port;
    ev_io accept_watcher;
    admin_handler *handlers;
    size_t nhandlers;
    size_t handlers_cap;
    admin_conn *conns; /* doubly linked list of open connections */
};

struct admin_conn {
    admin_server *srv;
    admin_conn *prev;
    admin_conn *next;
    int fd;
    ev_io read_watcher;
    ev_io write_watcher;
    ev_timer idle_timer;
    http_parser parser;

    char in[ADMIN_READ_CHUNK]; /* unparsed input (only kept while paused) */
    size_t in_len;

    /* The request being parsed. */
    char *url;
    size_t url_len;
    char *body;
    size_t body_len;
    size_t head_bytes;   /* request line + headers, approximately */
    int reject_status;   /* 413/431 decided inside a callback, else 0 */
    bool request_ready;  /* on_message_complete fired */

    /* The response being written. */
    char *out;
    size_t out_len;
    size_t out_off;
    bool close_after_write;
};

/* ---- small buffers ------------------------------------------------------ */

/* Appends len bytes to a malloc'd buffer of *blen bytes; the buffer is kept
 * NUL terminated. Returns 0, or -1 on allocation failure. */
static int buf_append(char **buf, size_t *blen, const char *data, size_t len)
{
    char *grown = realloc(*buf, *blen + len + 1);
    if (grown == NULL)
        return -1;
    memcpy(grown + *blen, data, len);
    *blen += len;
    grown[*blen] = '\0';
    *buf = grown;
    return 0;
}

static int buf_appendf(char **buf, size_t *blen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int buf_appendf(char **buf, size_t *blen, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return buf_append(buf, blen, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = buf_append(buf, blen, big, (size_t)n);
    free(big);
    return rc;
}

/* ---- URL decoding ------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the character at s[*pos] (len bytes in s) and advances *pos.
 * "%XX" becomes one byte; a bad escape is taken literally; '+' becomes a
 * space when plus_is_space. */
static unsigned char url_decode_next(const char *s, size_t len, size_t *pos, bool plus_is_space)
{
    char c = s[*pos];
    if (c == '%' && *pos + 2 < len) {
        int hi = hex_value(s[*pos + 1]);
        int lo = hex_value(s[*pos + 2]);
        if (hi >= 0 && lo >= 0) {
            *pos += 3;
            return (unsigned char)(hi * 16 + lo);
        }
    }
    *pos += 1;
    if (c == '+' && plus_is_space)
        return ' ';
    return (unsigned char)c;
}

/* Decodes s[0..len) into out (outlen bytes, NUL terminated). Returns the
 * decoded length, or -1 if it does not fit or decodes to a NUL byte and
 * reject_nul is set. */
static long url_decode(const char *s, size_t len, bool plus_is_space, bool reject_nul,
                       char *out, size_t outlen)
{
    size_t n = 0;
    size_t pos = 0;
    while (pos < len) {
        unsigned char c = url_decode_next(s, len, &pos, plus_is_space);
        if (c == '\0' && reject_nul)
            return -1;
        if (n + 1 >= outlen)
            return -1;
        out[n++] = (char)c;
    }
    if (outlen == 0)
        return -1;
    out[n] = '\0';
    return (long)n;
}

/* True if the query key s[0..len), URL-decoded, equals name. */
static bool query_key_equals(const char *s, size_t len, const char *name)
{
    size_t pos = 0;
    size_t i = 0;
    while (pos < len) {
        unsigned char c = url_decode_next(s, len, &pos, true);
        if (name[i] == '\0' || (unsigned char)name[i] != c)
            return false;
        i++;
    }
    return name[i] == '\0';
}

int admin_query_param(const char *query, const char *name, char *out, size_t outlen)
{
    if (query == NULL || name == NULL)
        return 0;
    const char *p = query;
    while (*p != '\0') {
        size_t seg_len = strcspn(p, "&");
        const char *eq = memchr(p, '=', seg_len);
        size_t key_len = eq != NULL ? (size_t)(eq - p) : seg_len;
        if (key_len > 0 && query_key_equals(p, key_len, name)) {
            const char *val = eq != NULL ? eq + 1 : p + seg_len;
            size_t val_len = (size_t)(p + seg_len - val);
            if (out == NULL || url_decode(val, val_len, true, false, out, outlen) < 0)
                return -1;
            return 1;
        }
        p += seg_len;
        if (*p == '&')
            p++;
    }
    return 0;
}

/* ---- response helpers --------------------------------------------------- */

int admin_response_set_text(admin_response *resp, int status, const char *content_type,
                            const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    if (len > 0)
        memcpy(copy, text, len);
    copy[len] = '\0';
    free(resp->body);
    resp->body = copy;
    resp->body_len = len;
    resp->status = status;
    if (content_type != NULL)
        resp->content_type = content_type;
    return 0;
}

int admin_response_printf(admin_response *resp, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    char *text = malloc((size_t)n + 1);
    if (text == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    free(resp->body);
    resp->body = text;
    resp->body_len = (size_t)n;
    resp->status = status;
    return 0;
}

/* ---- handler table ------------------------------------------------------ */

static admin_handler *find_handler(admin_server *srv, const char *path)
{
    for (size_t i = 0; i < srv->nhandlers; i++) {
        if (strcmp(srv->handlers[i].path, path) == 0)
            return &srv->handlers[i];
    }
    return NULL;
}

int admin_server_add_handler(admin_server *srv, const char *path, const char *help,
                             bool mutates_state, admin_handler_fn fn, void *ctx)
{
    if (srv == NULL || path == NULL || path[0] != '/' || fn == NULL)
        return -1;
    if (find_handler(srv, path) != NULL)
        return -1;
    if (srv->nhandlers == srv->handlers_cap) {
        size_t cap = srv->handlers_cap ? srv->handlers_cap * 2 : 16;
        admin_handler *grown = realloc(srv->handlers, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        srv->handlers = grown;
        srv->handlers_cap = cap;
    }
    admin_handler *h = &srv->handlers[srv->nhandlers];
    h->path = strdup(path);
    h->help = strdup(help != NULL ? help : "");
    if (h->path == NULL || h->help == NULL) {
        free(h->path);
        free(h->help);
        return -1;
    }
    h->mutates_state = mutates_state;
    h->fn = fn;
    h->ctx = ctx;
    srv->nhandlers++;
    return 0;
}

static int compare_handler_paths(const void *a, const void *b)
{
    const admin_handler *const *ha = a;
    const admin_handler *const *hb = b;
    return strcmp((*ha)->path, (*hb)->path);
}

/* Appends Envoy's help listing ("admin commands are:\n" + one line per
 * handler, sorted by path) to a buffer. Returns 0 or -1. */
static int append_help(const admin_server *srv, char **buf, size_t *blen)
{
    if (buf_appendf(buf, blen, "admin commands are:\n") != 0)
        return -1;
    if (srv->nhandlers == 0)
        return 0;
    const admin_handler **sorted = malloc(srv->nhandlers * sizeof(*sorted));
    if (sorted == NULL)
        return -1;
    for (size_t i = 0; i < srv->nhandlers; i++)
        sorted[i] = &srv->handlers[i];
    qsort(sorted, srv->nhandlers, sizeof(*sorted), compare_handler_paths);
    int rc = 0;
    for (size_t i = 0; i < srv->nhandlers && rc == 0; i++)
        rc = buf_appendf(buf, blen, "  %s: %s\n", sorted[i]->path, sorted[i]->help);
    free(sorted);
    return rc;
}

/* The built-in /help handler (Envoy registers /help the same way). */
static int handle_help(void *ctx, const admin_request *req, admin_response *resp)
{
    (void)req;
    return append_help(ctx, &resp->body, &resp->body_len);
}

/* ---- status lines ------------------------------------------------------- */

static const char *status_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* ---- connections -------------------------------------------------------- */

static void conn_on_readable(struct ev_loop *loop, ev_io *w, int revents);
static void conn_on_writable(struct ev_loop *loop, ev_io *w, int revents);
static void conn_on_idle(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_parse_pending(admin_conn *c);

static void conn_reset_request(admin_conn *c)
{
    free(c->url);
    free(c->body);
    c->url = NULL;
    c->url_len = 0;
    c->body = NULL;
    c->body_len = 0;
    c->head_bytes = 0;
    c->reject_status = 0;
    c->request_ready = false;
}

static void conn_close(admin_conn *c)
{
    admin_server *srv = c->srv;
    ev_io_stop(srv->loop, &c->read_watcher);
    ev_io_stop(srv->loop, &c->write_watcher);
    ev_timer_stop(srv->loop, &c->idle_timer);
    close(c->fd);
    DLIST_REMOVE(srv->conns, c);
    conn_reset_request(c);
    free(c->out);
    free(c);
}

/* Counts bytes towards the header and request limits; on overflow records
 * the status to answer with and returns -1 (which stops the parser). */
static int conn_count_head(admin_conn *c, size_t len)
{
    c->head_bytes += len;
    if (c->head_bytes > ADMIN_MAX_HEADER_BYTES) {
        c->reject_status = 431;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    admin_conn *c = p->data;
    conn_reset_request(c);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    admin_conn *c = p->data;
    if (conn_count_head(c, len) != 0)
        return -1;
    return buf_append(&c->url, &c->url_len, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    (void)at;
    admin_conn *c = p->data;
    return conn_count_head(c, len + ADMIN_HEADER_OVERHEAD);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    (void)at;
    admin_conn *c = p->data;
    return conn_count_head(c, len);
}

static int on_headers_complete(http_parser *p)
{
    admin_conn *c = p->data;
    /* content_length is ULLONG_MAX when absent. */
    if (!(p->flags & F_CHUNKED) && p->content_length != (uint64_t)-1 &&
        p->content_length > ADMIN_MAX_REQUEST_BYTES - c->head_bytes) {
        c->reject_status = 413;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    admin_conn *c = p->data;
    if (c->head_bytes + c->body_len + len > ADMIN_MAX_REQUEST_BYTES) {
        c->reject_status = 413;
        return -1;
    }
    return buf_append(&c->body, &c->body_len, at, len);
}

static int on_message_complete(http_parser *p)
{
    admin_conn *c = p->data;
    c->request_ready = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Queues a serialized response and starts writing it. head_only omits the
 * body (HEAD) while keeping its Content-Length. Returns 0 or -1. */
static int conn_queue_response(admin_conn *c, int status, const char *content_type,
                               const char *body, size_t body_len, bool head_only,
                               bool keep_alive)
{
    char *out = NULL;
    size_t out_len = 0;
    bool http10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
    int rc = buf_appendf(&out, &out_len,
                         "HTTP/1.1 %d %s\r\n"
                         "Content-Type: %s\r\n"
                         "Content-Length: %zu\r\n"
                         "Cache-Control: no-cache, max-age=0\r\n"
                         "X-Content-Type-Options: nosniff\r\n"
                         "%s\r\n",
                         status, status_reason(status), content_type, body_len,
                         !keep_alive ? "Connection: close\r\n"
                         : http10    ? "Connection: keep-alive\r\n"
                                     : "");
    if (rc == 0 && !head_only && body_len > 0)
        rc = buf_append(&out, &out_len, body, body_len);
    if (rc != 0) {
        free(out);
        return -1;
    }
    free(c->out);
    c->out = out;
    c->out_len = out_len;
    c->out_off = 0;
    c->close_after_write = !keep_alive;
    ev_io_stop(c->srv->loop, &c->read_watcher);
    ev_io_start(c->srv->loop, &c->write_watcher);
    return 0;
}

/* Answers an error without running a handler, then closes. */
static void conn_reject(admin_conn *c, int status, const char *text)
{
    if (conn_queue_response(c, status, ADMIN_DEFAULT_CONTENT_TYPE, text, strlen(text), false,
                            false) != 0)
        conn_close(c);
}

/* Splits and decodes the request target. Returns 0, or -1 if malformed.
 * *path and *query are malloc'd. */
static int parse_target(const char *url, size_t url_len, char **path, char **query)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, url_len, 0, &u) != 0)
        return -1;
    const char *raw_path = "/";
    size_t raw_path_len = 1;
    if (u.field_set & (1 << UF_PATH)) {
        raw_path = url + u.field_data[UF_PATH].off;
        raw_path_len = u.field_data[UF_PATH].len;
    }
    *path = malloc(raw_path_len + 1);
    if (*path == NULL)
        return -1;
    if (url_decode(raw_path, raw_path_len, false, true, *path, raw_path_len + 1) < 0) {
        free(*path);
        return -1;
    }
    const char *raw_query = "";
    size_t raw_query_len = 0;
    if (u.field_set & (1 << UF_QUERY)) {
        raw_query = url + u.field_data[UF_QUERY].off;
        raw_query_len = u.field_data[UF_QUERY].len;
    }
    *query = strndup(raw_query, raw_query_len);
    if (*query == NULL) {
        free(*path);
        return -1;
    }
    return 0;
}

/* Routes a request as Envoy's AdminImpl::runCallback does and fills resp.
 * wire_method is the method as sent (req->method says GET for HEAD). */
static void route_request(admin_server *srv, const admin_request *req, const char *wire_method,
                          admin_response *resp)
{
    const admin_handler *h = find_handler(srv, req->path);
    if (h == NULL) {
        /* Envoy: "invalid path. " followed by the /help output. */
        resp->status = 404;
        if (buf_appendf(&resp->body, &resp->body_len, "invalid path. ") != 0 ||
            append_help(srv, &resp->body, &resp->body_len) != 0)
            resp->status = 500;
        return;
    }
    if (h->mutates_state && strcmp(req->method, "POST") != 0) {
        log_error("admin path \"%s\" mutates state, method=%s rather than POST", h->path,
                  wire_method);
        admin_response_printf(resp, 405, "Method %s not allowed, POST required.", wire_method);
        return;
    }
    /* The handler may register handlers (moving the table): keep the path. */
    const char *path = h->path;
    if (h->fn(h->ctx, req, resp) != 0) {
        resp->status = 500;
        if (resp->body == NULL)
            admin_response_printf(resp, 500, "handler for %s failed\n", path);
    }
}

/* Runs the completed request and queues its response. */
static void conn_dispatch(admin_conn *c)
{
    char *path = NULL;
    char *query = NULL;
    bool keep_alive = http_should_keep_alive(&c->parser) != 0;
    if (c->url == NULL || parse_target(c->url, c->url_len, &path, &query) != 0) {
        conn_reject(c, 400, "Bad Request\n");
        return;
    }
    const char *method = http_method_str((enum http_method)c->parser.method);
    bool is_head = c->parser.method == HTTP_HEAD;
    admin_request req = {
        .method = is_head ? "GET" : method,
        .path = path,
        .query = query,
        .body = c->body != NULL ? c->body : "",
        .body_len = c->body_len,
    };
    admin_response resp = {.status = 200, .content_type = ADMIN_DEFAULT_CONTENT_TYPE};
    route_request(c->srv, &req, method, &resp);
    log_debug("admin: %s %s -> %d", method, path, resp.status);
    int rc = conn_queue_response(c, resp.status,
                                 resp.content_type ? resp.content_type
                                                   : ADMIN_DEFAULT_CONTENT_TYPE,
                                 resp.body, resp.body_len, is_head, keep_alive);
    free(resp.body);
    free(path);
    free(query);
    if (rc != 0)
        conn_close(c);
}

/* Maps a parser failure to the status to answer with. */
static int parser_error_status(admin_conn *c, enum http_errno err)
{
    if (c->reject_status != 0)
        return c->reject_status;
    if (err == HPE_HEADER_OVERFLOW)
        return 431;
    return 400;
}

/* Feeds buffered input to the parser until it pauses at a complete request,
 * fails, or runs out of bytes. May close the connection. */
static void conn_parse_pending(admin_conn *c)
{
    if (c->in_len == 0)
        return;
    size_t n = http_parser_execute(&c->parser, &parser_settings, c->in, c->in_len);
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
    if (err != HPE_OK && err != HPE_PAUSED) {
        int status = parser_error_status(c, err);
        log_debug("admin: rejecting request (%s): %d", http_errno_name(err), status);
        c->in_len = 0;
        conn_reject(c, status, status == 431   ? "Request Header Fields Too Large\n"
                               : status == 413 ? "Payload Too Large\n"
                                               : "Bad Request\n");
        return;
    }
    if (n > c->in_len)
        n = c->in_len;
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
    if (c->request_ready) {
        c->request_ready = false;
        conn_dispatch(c);
    }
}

static void conn_on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    admin_conn *c = w->data;
    if (c->in_len == sizeof(c->in))
        return; /* cannot happen: reading only while the parser is not paused */
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_close(c);
        return;
    }
    if (n == 0) {
        conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    ev_timer_again(loop, &c->idle_timer);
    conn_parse_pending(c);
}

/* After a response went out: close, or resume with the next request. */
static void conn_on_response_done(admin_conn *c)
{
    free(c->out);
    c->out = NULL;
    c->out_len = 0;
    c->out_off = 0;
    ev_io_stop(c->srv->loop, &c->write_watcher);
    if (c->close_after_write) {
        conn_close(c);
        return;
    }
    conn_reset_request(c);
    http_parser_pause(&c->parser, 0);
    ev_io_start(c->srv->loop, &c->read_watcher);
    conn_parse_pending(c);
}

static void conn_on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    admin_conn *c = w->data;
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_close(c);
            return;
        }
        c->out_off += (size_t)n;
        ev_timer_again(loop, &c->idle_timer);
    }
    conn_on_response_done(c);
}

static void conn_on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    admin_conn *c = w->data;
    log_debug("admin: closing idle connection");
    conn_close(c);
}

static void conn_open(admin_server *srv, int fd)
{
    admin_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    ev_io_init(&c->read_watcher, conn_on_readable, fd, EV_READ);
    ev_io_init(&c->write_watcher, conn_on_writable, fd, EV_WRITE);
    ev_init(&c->idle_timer, conn_on_idle);
    c->idle_timer.repeat = ADMIN_IDLE_TIMEOUT_S;
    c->read_watcher.data = c;
    c->write_watcher.data = c;
    c->idle_timer.data = c;
    DLIST_INSERT_HEAD(srv->conns, c);
    ev_io_start(srv->loop, &c->read_watcher);
    ev_timer_again(srv->loop, &c->idle_timer);
}

static void server_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    admin_server *srv = w->data;
    for (;;) {
        int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("admin: accept failed: %s", strerror(errno));
            return;
        }
        conn_open(srv, fd);
    }
}

/* ---- listening socket --------------------------------------------------- */

/* Parses an IPv4 or IPv6 literal ("[::1]" also accepted) into ss. */
static int parse_address(const char *address, uint16_t port, struct sockaddr_storage *ss,
                         socklen_t *sslen)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *sslen = sizeof(*v4);
        return 0;
    }
    char buf[INET6_ADDRSTRLEN + 2];
    size_t len = strlen(address);
    if (len >= 2 && address[0] == '[' && address[len - 1] == ']' && len - 2 < sizeof(buf)) {
        memcpy(buf, address + 1, len - 2);
        buf[len - 2] = '\0';
        address = buf;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *sslen = sizeof(*v6);
        return 0;
    }
    return -1;
}

/* Opens, binds and listens; returns the fd and the bound port, or -1. */
static int listen_on(const char *address, uint16_t port, uint16_t *bound_port, char *err,
                     size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (address == NULL || parse_address(address, port, &ss, &sslen) != 0) {
        snprintf(err, errlen, "admin: invalid address '%s'", address ? address : "(null)");
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "admin: socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, ADMIN_LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "admin: cannot listen on %s:%u: %s", address, port,
                 strerror(errno));
        close(fd);
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t boundlen = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &boundlen) != 0) {
        snprintf(err, errlen, "admin: getsockname: %s", strerror(errno));
        close(fd);
        return -1;
    }
    *bound_port = bound.ss_family == AF_INET6
                      ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                      : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

int admin_server_create(struct ev_loop *loop, const char *address, uint16_t port,
                        admin_server **out, char *err, size_t errlen)
{
    *out = NULL;
    admin_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, errlen, "admin: out of memory");
        return -1;
    }
    srv->loop = loop;
    srv->fd = listen_on(address, port, &srv->port, err, errlen);
    if (srv->fd < 0) {
        free(srv);
        return -1;
    }
    if (admin_server_add_handler(srv, "/help", "print out list of admin commands", false,
                                 handle_help, srv) != 0) {
        snprintf(err, errlen, "admin: out of memory");
        close(srv->fd);
        free(srv);
        return -1;
    }
    ev_io_init(&srv->accept_watcher, server_on_accept, srv->fd, EV_READ);
    srv->accept_watcher.data = srv;
    ev_io_start(loop, &srv->accept_watcher);
    log_info("admin: listening on %s port %u", address, srv->port);
    *out = srv;
    return 0;
}

uint16_t admin_server_port(const admin_server *srv)
{
    return srv != NULL ? srv->port : 0;
}

void admin_server_destroy(admin_server *srv)
{
    if (srv == NULL)
        return;
    ev_io_stop(srv->loop, &srv->accept_watcher);
    close(srv->fd);
    while (srv->conns != NULL)
        conn_close(srv->conns);
    for (size_t i = 0; i < srv->nhandlers; i++) {
        free(srv->handlers[i].path);
        free(srv->handlers[i].help);
    }
    free(srv->handlers);
    free(srv);
}
