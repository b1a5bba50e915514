/*
 * test_admin_server.c: the admin HTTP server over real loopback sockets.
 *
 * Each test runs the server on its own ev_loop in a thread, talks to it with
 * plain blocking sockets, then stops the loop through an ev_async it owns
 * and frees everything (the suite also runs under ASan/LSan).
 */
#include "xdsnode/admin.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-value"
#include <ev.h>
#pragma GCC diagnostic pop

#define CLIENT_TIMEOUT_S 5
#define BIG_BODY_BYTES (4 * 1024 * 1024)

/* ---- server fixture ----------------------------------------------------- */

typedef struct {
    struct ev_loop *loop;
    admin_server *srv;
    ev_async stop;
    pthread_t thread;
    atomic_int quit_calls;
} test_server;

static void on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *run_loop(void *arg)
{
    test_server *ts = arg;
    ev_run(ts->loop, 0);
    return NULL;
}

/* Echoes what the handler saw. */
static int handle_echo(void *ctx, const admin_request *req, admin_response *resp)
{
    (void)ctx;
    char val[64] = "";
    int found = admin_query_param(req->query, "x", val, sizeof(val));
    return admin_response_printf(resp, 200, "method=%s path=%s query=%s x=%d:%s body=%.*s",
                                 req->method, req->path, req->query, found, val,
                                 (int)req->body_len, req->body);
}

static int handle_quit(void *ctx, const admin_request *req, admin_response *resp)
{
    (void)req;
    test_server *ts = ctx;
    atomic_fetch_add(&ts->quit_calls, 1);
    return admin_response_set_text(resp, 200, NULL, "OK\n", 3);
}

static int handle_json(void *ctx, const admin_request *req, admin_response *resp)
{
    (void)ctx;
    (void)req;
    const char *text = "{\"ok\":true}";
    return admin_response_set_text(resp, 200, "application/json", text, strlen(text));
}

static int handle_fail(void *ctx, const admin_request *req, admin_response *resp)
{
    (void)ctx;
    (void)req;
    (void)resp;
    return -1;
}

static int handle_big(void *ctx, const admin_request *req, admin_response *resp)
{
    (void)ctx;
    (void)req;
    char *body = malloc(BIG_BODY_BYTES);
    if (body == NULL)
        return -1;
    for (size_t i = 0; i < BIG_BODY_BYTES; i++)
        body[i] = (char)('a' + i % 26);
    resp->body = body;
    resp->body_len = BIG_BODY_BYTES;
    return 0;
}

static void server_start(test_server *ts)
{
    char err[256] = "";
    memset(ts, 0, sizeof(*ts));
    ts->loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(ts->loop);
    int rc = admin_server_create(ts->loop, "127.0.0.1", 0, &ts->srv, err, sizeof(err));
    cr_assert_eq(rc, 0, "create failed: %s", err);
    cr_assert_eq(admin_server_add_handler(ts->srv, "/quit", "exit the server", true, handle_quit,
                                          ts), 0);
    cr_assert_eq(admin_server_add_handler(ts->srv, "/echo", "echo the request", false,
                                          handle_echo, NULL), 0);
    cr_assert_eq(admin_server_add_handler(ts->srv, "/json", "json body", false, handle_json,
                                          NULL), 0);
    cr_assert_eq(admin_server_add_handler(ts->srv, "/fail", "always fails", false, handle_fail,
                                          NULL), 0);
    cr_assert_eq(admin_server_add_handler(ts->srv, "/big", "a large body", false, handle_big,
                                          NULL), 0);
    ev_async_init(&ts->stop, on_stop);
    ev_async_start(ts->loop, &ts->stop);
    cr_assert_eq(pthread_create(&ts->thread, NULL, run_loop, ts), 0);
}

static void server_stop(test_server *ts)
{
    ev_async_send(ts->loop, &ts->stop);
    pthread_join(ts->thread, NULL);
    admin_server_destroy(ts->srv);
    ev_async_stop(ts->loop, &ts->stop);
    ev_loop_destroy(ts->loop);
}

/* ---- blocking client ---------------------------------------------------- */

typedef struct {
    int fd;
    char buf[65536];
    size_t len;
} client;

typedef struct {
    int status;
    char head[8192];
    char *body; /* malloc'd, NUL terminated */
    size_t body_len;
} response;

static int client_connect(client *cl, uint16_t port)
{
    memset(cl, 0, sizeof(*cl));
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (cl->fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_S};
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect(cl->fd, (struct sockaddr *)&sa, sizeof(sa));
}

static void client_send(client *cl, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(cl->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may have closed early; reading tells */
        off += (size_t)n;
    }
}

static void client_send_str(client *cl, const char *s)
{
    client_send(cl, s, strlen(s));
}

/* Reads more bytes into cl->buf; returns the count, 0 on EOF, -1 on error. */
static ssize_t client_fill(client *cl)
{
    if (cl->len == sizeof(cl->buf))
        return -1;
    ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, 0);
    if (n > 0)
        cl->len += (size_t)n;
    return n;
}

static void client_consume(client *cl, size_t n)
{
    memmove(cl->buf, cl->buf + n, cl->len - n);
    cl->len -= n;
}

/* Reads one response; no_body for answers to HEAD. Returns 0 or -1. */
static int client_read_response(client *cl, response *r, bool no_body)
{
    memset(r, 0, sizeof(*r));
    char *end;
    while ((end = memmem(cl->buf, cl->len, "\r\n\r\n", 4)) == NULL) {
        if (client_fill(cl) <= 0)
            return -1;
    }
    size_t head_len = (size_t)(end - cl->buf) + 4;
    if (head_len >= sizeof(r->head))
        return -1;
    memcpy(r->head, cl->buf, head_len);
    r->head[head_len] = '\0';
    client_consume(cl, head_len);
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    const char *cl_hdr = strcasestr(r->head, "\r\nContent-Length:");
    if (cl_hdr == NULL)
        return -1;
    size_t want = strtoul(cl_hdr + strlen("\r\nContent-Length:"), NULL, 10);
    if (no_body)
        want = 0;
    r->body = malloc(want + 1);
    if (r->body == NULL)
        return -1;
    while (r->body_len < want) {
        if (cl->len == 0 && client_fill(cl) <= 0)
            return -1;
        size_t take = cl->len < want - r->body_len ? cl->len : want - r->body_len;
        memcpy(r->body + r->body_len, cl->buf, take);
        r->body_len += take;
        client_consume(cl, take);
    }
    r->body[r->body_len] = '\0';
    return 0;
}

static bool response_has_header(const response *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

/* True if the server closed the connection (EOF, or reset). */
static bool client_sees_close(client *cl)
{
    if (cl->len > 0)
        return false;
    char c;
    ssize_t n = recv(cl->fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* One request on a fresh connection; returns the response. */
static void request_once(test_server *ts, const char *raw, response *r)
{
    client *cl = malloc(sizeof(*cl));
    cr_assert_not_null(cl);
    cr_assert_eq(client_connect(cl, admin_server_port(ts->srv)), 0);
    client_send_str(cl, raw);
    cr_assert_eq(client_read_response(cl, r, false), 0, "no response to %s", raw);
    close(cl->fd);
    free(cl);
}

/* ---- tests -------------------------------------------------------------- */

Test(admin_server, port_zero_gives_real_port)
{
    test_server ts;
    server_start(&ts);
    cr_assert_neq(admin_server_port(ts.srv), 0);
    server_stop(&ts);
}

Test(admin_server, ipv6_literal)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    admin_server *srv = NULL;
    char err[256];
    if (admin_server_create(loop, "::1", 0, &srv, err, sizeof(err)) != 0) {
        ev_loop_destroy(loop);
        cr_skip_test("no IPv6 loopback: %s", err);
    }
    cr_assert_neq(admin_server_port(srv), 0);
    admin_server_destroy(srv);
    cr_assert_eq(admin_server_create(loop, "[::1]", 0, &srv, err, sizeof(err)), 0, "%s", err);
    admin_server_destroy(srv);
    ev_loop_destroy(loop);
}

Test(admin_server, invalid_address_fails_with_error)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    admin_server *srv = (admin_server *)1;
    char err[256] = "";
    cr_assert_eq(admin_server_create(loop, "not-an-ip", 0, &srv, err, sizeof(err)), -1);
    cr_assert_null(srv);
    cr_assert(strstr(err, "not-an-ip") != NULL, "err: %s", err);
    admin_server_destroy(NULL);
    ev_loop_destroy(loop);
}

Test(admin_server, duplicate_handler_rejected)
{
    test_server ts;
    server_start(&ts);
    cr_assert_eq(admin_server_add_handler(ts.srv, "/echo", "again", false, handle_echo, NULL),
                 -1);
    cr_assert_eq(admin_server_add_handler(ts.srv, "/help", "again", false, handle_echo, NULL),
                 -1);
    server_stop(&ts);
}

Test(admin_server, dispatches_to_handler)
{
    test_server ts;
    server_start(&ts);
    response r;
    request_once(&ts, "GET /ec%68o?x=a%20b+c&y=2 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "method=GET path=/echo query=x=a%20b+c&y=2 x=1:a b c body=");
    cr_assert(response_has_header(&r, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"));
    free(r.body);

    request_once(&ts, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "method=POST path=/echo query= x=0: body=hello");
    free(r.body);

    request_once(&ts,
                 "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                 &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "method=POST path=/echo query= x=0: body=abcde");
    free(r.body);

    request_once(&ts, "GET /json HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    cr_assert_eq(r.status, 200);
    cr_assert(response_has_header(&r, "\r\nContent-Type: application/json\r\n"));
    cr_assert_str_eq(r.body, "{\"ok\":true}");
    free(r.body);
    server_stop(&ts);
}

Test(admin_server, handler_failure_is_500)
{
    test_server ts;
    server_start(&ts);
    response r;
    request_once(&ts, "GET /fail HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    cr_assert_eq(r.status, 500);
    cr_assert_gt(r.body_len, 0);
    free(r.body);
    server_stop(&ts);
}

Test(admin_server, keep_alive_two_requests)
{
    test_server ts;
    server_start(&ts);
    client *cl = malloc(sizeof(*cl));
    cr_assert_eq(client_connect(cl, admin_server_port(ts.srv)), 0);
    response r;
    for (int i = 0; i < 2; i++) {
        client_send_str(cl, "GET /echo?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
        cr_assert_eq(client_read_response(cl, &r, false), 0);
        cr_assert_eq(r.status, 200);
        cr_assert(!response_has_header(&r, "Connection: close"));
        cr_assert_str_eq(r.body, "method=GET path=/echo query=x=1 x=1:1 body=");
        free(r.body);
    }
    close(cl->fd);
    free(cl);
    server_stop(&ts);
}

Test(admin_server, http10_keep_alive_only_when_asked)
{
    test_server ts;
    server_start(&ts);
    client *cl = malloc(sizeof(*cl));
    response r;

    cr_assert_eq(client_connect(cl, admin_server_port(ts.srv)), 0);
    client_send_str(cl, "GET /echo HTTP/1.0\r\n\r\n");
    cr_assert_eq(client_read_response(cl, &r, false), 0);
    cr_assert_eq(r.status, 200);
    cr_assert(response_has_header(&r, "\r\nConnection: close\r\n"));
    cr_assert(client_sees_close(cl));
    free(r.body);
    close(cl->fd);

    cr_assert_eq(client_connect(cl, admin_server_port(ts.srv)), 0);
    for (int i = 0; i < 2; i++) {
        client_send_str(cl, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        cr_assert_eq(client_read_response(cl, &r, false), 0);
        cr_assert_eq(r.status, 200);
        cr_assert(!response_has_header(&r, "Connection: close"));
        free(r.body);
    }
    close(cl->fd);

    cr_assert_eq(client_connect(cl, admin_server_port(ts.srv)), 0);
    client_send_str(cl, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cr_assert_eq(client_read_response(cl, &r, false), 0);
    cr_assert(response_has_header(&r, "\r\nConnection: close\r\n"));
    cr_assert(client_sees_close(cl));
    free(r.body);
    close(cl->fd);
    free(cl);
    server_stop(&ts);
}

Test(admin_server, pipelined_requests_answered_in_order)
{
    test_server ts;
    server_start(&ts);
    client *cl = malloc(sizeof(*cl));
    cr_assert_eq(client_connect(cl, admin_server_port(ts.srv)), 0);
    client_send_str(cl, "GET /echo?x=first HTTP/1.1\r\nHost: t\r\n\r\n"
                        "POST /echo?x=second HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
                        "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    response r;
    cr_assert_eq(client_read_response(cl, &r, false), 0);
    cr_assert_str_eq(r.body, "method=GET path=/echo query=x=first x=1:first body=");
    free(r.body);
    cr_assert_eq(client_read_response(cl, &r, false), 0);
    cr_assert_str_eq(r.body, "method=POST path=/echo query=x=second x=1:second body=hi");
    free(r.body);
    cr_assert_eq(client_read_response(cl, &r, false), 0);
    cr_assert_eq(r.status, 404);
    cr_assert(response_has_header(&r, "\r\nConnection: close\r\n"));
    cr_assert(client_sees_close(cl));
    free(r.body);
    close(cl->fd);
    free(cl);
    server_stop(&ts);
}

#define HELP_LISTING                                 \
    "admin commands are:\n"                          \
    "  /big: a large body\n"                         \
    "  /echo: echo the request\n"                    \
    "  /fail: always fails\n"                        \
    "  /help: print out list of admin commands\n"    \
    "  /json: json body\n"                           \
    "  /quit: exit the server\n"

Test(admin_server, unknown_path_is_404_with_help)
{
    test_server ts;
    server_start(&ts);
    response r;
    request_once(&ts, "GET /nope?x=1 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    cr_assert_eq(r.status, 404);
    cr_assert(response_has_header(&r, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"));
    cr_assert_str_eq(r.body, "invalid path. " HELP_LISTING);
    free(r.body);
    server_stop(&ts);
}

Test(admin_server, help_is_sorted)
{
    test_server ts;
    server_start(&ts);
    response r;
    request_once(&ts, "GET /help HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, HELP_LISTING);
    free(r.body);
    server_stop(&ts);
}

Test(admin_server, mutating_handler_requires_post)
{
    test_server ts;
    server_start(&ts);
    response r;
    request_once(&ts, "GET /quit HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    cr_assert_eq(r.status, 405);
    cr_assert_str_eq(r.body, "Method GET not allowed, POST required.");
    free(r.body);
    cr_assert_eq(atomic_load(&ts.quit_calls), 0);

    request_once(&ts, "POST /quit HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "OK\n");
    free(r.body);
    cr_assert_eq(atomic_load(&ts.quit_calls), 1);
    server_stop(&ts);
}

Test(admin_server, head_has_no_body)
{
    test_server ts;
    server_start(&ts);
    client *cl = malloc(sizeof(*cl));
    cr_assert_eq(client_connect(cl, admin_server_port(ts.srv)), 0);
    client_send_str(cl, "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    response r;
    cr_assert_eq(client_read_response(cl, &r, true), 0);
    cr_assert_eq(r.status, 200);
    const char *expect = "method=GET path=/echo query= x=0: body=";
    char line[64];
    snprintf(line, sizeof(line), "\r\nContent-Length: %zu\r\n", strlen(expect));
    cr_assert(response_has_header(&r, line), "head: %s", r.head);
    free(r.body);
    /* No stray body bytes: the next response on the connection parses. */
    client_send_str(cl, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert_eq(client_read_response(cl, &r, false), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, expect);
    free(r.body);
    close(cl->fd);
    free(cl);
    server_stop(&ts);
}

static void expect_rejected(test_server *ts, const char *raw, size_t raw_len, int status)
{
    client *cl = malloc(sizeof(*cl));
    cr_assert_eq(client_connect(cl, admin_server_port(ts->srv)), 0);
    client_send(cl, raw, raw_len);
    response r;
    cr_assert_eq(client_read_response(cl, &r, false), 0);
    cr_assert_eq(r.status, status);
    cr_assert(response_has_header(&r, "\r\nConnection: close\r\n"));
    cr_assert(response_has_header(&r, "\r\nContent-Type: "));
    cr_assert(client_sees_close(cl));
    free(r.body);
    close(cl->fd);
    free(cl);
}

Test(admin_server, malformed_request_line_is_400)
{
    test_server ts;
    server_start(&ts);
    const char *bad = "GARBAGE\r\n\r\n";
    expect_rejected(&ts, bad, strlen(bad), 400);
    bad = "GET /echo HTTP/9.x\r\n\r\n";
    expect_rejected(&ts, bad, strlen(bad), 400);
    bad = "GET /echo HTTP/1.1\r\nBad Header\r\n\r\n";
    expect_rejected(&ts, bad, strlen(bad), 400);
    server_stop(&ts);
}

Test(admin_server, conflicting_length_is_400)
{
    test_server ts;
    server_start(&ts);
    const char *both = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    expect_rejected(&ts, both, strlen(both), 400);
    const char *two = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                      "Content-Length: 4\r\n\r\nabcd";
    expect_rejected(&ts, two, strlen(two), 400);
    server_stop(&ts);
}

Test(admin_server, huge_headers_are_431)
{
    test_server ts;
    server_start(&ts);
    size_t value_len = ADMIN_MAX_HEADER_BYTES + 1024;
    char *raw = malloc(value_len + 128);
    int n = snprintf(raw, 128, "GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(raw + n, 'v', value_len);
    memcpy(raw + n + value_len, "\r\n\r\n", 4);
    expect_rejected(&ts, raw, (size_t)n + value_len + 4, 431);
    free(raw);
    server_stop(&ts);
}

Test(admin_server, oversized_body_is_413)
{
    test_server ts;
    server_start(&ts);
    char raw[256];
    snprintf(raw, sizeof(raw), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n",
             ADMIN_MAX_REQUEST_BYTES + 1);
    expect_rejected(&ts, raw, strlen(raw), 413);
    server_stop(&ts);
}

Test(admin_server, large_response_with_backpressure)
{
    test_server ts;
    server_start(&ts);
    client *cl = malloc(sizeof(*cl));
    cr_assert_eq(client_connect(cl, admin_server_port(ts.srv)), 0);
    int small = 4096;
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    client_send_str(cl, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(100 * 1000); /* let the server fill the socket and wait */
    response r;
    cr_assert_eq(client_read_response(cl, &r, false), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, BIG_BODY_BYTES);
    bool intact = true;
    for (size_t i = 0; i < r.body_len && intact; i++)
        intact = r.body[i] == (char)('a' + i % 26);
    cr_assert(intact);
    free(r.body);
    close(cl->fd);
    free(cl);
    server_stop(&ts);
}

Test(admin_server, survives_garbage_and_early_close)
{
    test_server ts;
    server_start(&ts);
    uint16_t port = admin_server_port(ts.srv);
    client *cl = malloc(sizeof(*cl));
    unsigned seed = 12345;
    char junk[2048];
    for (int round = 0; round < 50; round++) {
        cr_assert_eq(client_connect(cl, port), 0);
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (char)(rand_r(&seed) & 0xff);
        client_send(cl, junk, (size_t)(rand_r(&seed) % sizeof(junk)) + 1);
        close(cl->fd);
    }
    /* Half a request, then the client goes away. */
    cr_assert_eq(client_connect(cl, port), 0);
    client_send_str(cl, "GET /echo HTTP/1.1\r\nHo");
    close(cl->fd);
    /* A request whose response the client never reads. */
    cr_assert_eq(client_connect(cl, port), 0);
    client_send_str(cl, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    close(cl->fd);
    free(cl);

    response r;
    request_once(&ts, "GET /help HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    cr_assert_eq(r.status, 200);
    free(r.body);
    server_stop(&ts);
}

Test(admin_server, destroy_with_open_connections)
{
    test_server ts;
    server_start(&ts);
    client *cl = malloc(sizeof(*cl));
    cr_assert_eq(client_connect(cl, admin_server_port(ts.srv)), 0);
    client_send_str(cl, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    response r;
    cr_assert_eq(client_read_response(cl, &r, false), 0);
    free(r.body);
    client_send_str(cl, "GET /echo HTTP/1.1\r\nHo"); /* left half-parsed */
    usleep(50 * 1000);
    server_stop(&ts);
    cr_assert(client_sees_close(cl));
    close(cl->fd);
    free(cl);
}

/* ---- admin_query_param ------------------------------------------------- */

Test(admin_query_param, finds_values)
{
    char out[32];
    cr_assert_eq(admin_query_param("a=1&b&c=x%20y", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "1");
    cr_assert_eq(admin_query_param("a=1&b&c=x%20y", "b", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "");
    cr_assert_eq(admin_query_param("a=1&b&c=x%20y", "c", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "x y");
    cr_assert_eq(admin_query_param("a=1&b&c=x%20y", "d", out, sizeof(out)), 0);
    cr_assert_eq(admin_query_param("", "a", out, sizeof(out)), 0);
    cr_assert_eq(admin_query_param("ab=1", "a", out, sizeof(out)), 0);
    cr_assert_eq(admin_query_param("a=", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "");
    cr_assert_eq(admin_query_param("&&a=2&", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "2");
}

Test(admin_query_param, decodes)
{
    char out[32];
    cr_assert_eq(admin_query_param("filter=a+b%2Bc", "filter", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "a b+c");
    cr_assert_eq(admin_query_param("k%65y=v%3d1", "key", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "v=1");
    cr_assert_eq(admin_query_param("a=x=y", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "x=y");
    cr_assert_eq(admin_query_param("my+key=1", "my key", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "1");
}

Test(admin_query_param, bad_escapes_are_literal)
{
    char out[32];
    cr_assert_eq(admin_query_param("a=%zz", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "%zz");
    cr_assert_eq(admin_query_param("a=1%4", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "1%4");
    cr_assert_eq(admin_query_param("a=%", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "%");
    cr_assert_eq(admin_query_param("a=%g1%41", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "%g1A");
}

Test(admin_query_param, first_match_wins_and_size_limit)
{
    char out[4];
    cr_assert_eq(admin_query_param("a=1&a=2", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "1");
    cr_assert_eq(admin_query_param("a=123", "a", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "123");
    cr_assert_eq(admin_query_param("a=1234", "a", out, sizeof(out)), -1);
    cr_assert_eq(admin_query_param("a=1", "a", out, 0), -1);
}

/* ---- response helpers --------------------------------------------------- */

Test(admin_response, set_text_and_printf)
{
    admin_response resp = {.status = 200, .content_type = "text/plain; charset=UTF-8"};
    cr_assert_eq(admin_response_set_text(&resp, 503, "application/json", "{}", 2), 0);
    cr_assert_eq(resp.status, 503);
    cr_assert_str_eq(resp.content_type, "application/json");
    cr_assert_eq(resp.body_len, 2);
    cr_assert_eq(memcmp(resp.body, "{}", 2), 0);
    cr_assert_eq(admin_response_printf(&resp, 200, "n=%d %s", 42, "x"), 0);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(resp.body_len, strlen("n=42 x"));
    cr_assert_str_eq(resp.body, "n=42 x");
    cr_assert_eq(admin_response_set_text(&resp, 200, NULL, "a\0b", 3), 0);
    cr_assert_eq(resp.body_len, 3);
    cr_assert_eq(memcmp(resp.body, "a\0b", 3), 0);
    cr_assert_str_eq(resp.content_type, "application/json");
    free(resp.body);
}
