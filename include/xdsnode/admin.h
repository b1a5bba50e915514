/*
 * admin.h: the admin HTTP/1.1 server (Envoy's admin interface).
 *
 * Owns: its listening socket, every accepted admin connection and their
 * buffers, and the table of registered handlers (copies of the strings).
 * Threads: main thread only. The server runs on the libev loop given to
 * admin_server_create(); handlers run on that loop and must not block.
 * Lifetime: admin_server_destroy() closes the socket and every connection;
 * handler contexts are not owned and must outlive the server.
 *
 * Protocol: HTTP/1.1 with keep-alive (http-parser, strict): requests with a
 * body are accepted up to ADMIN_MAX_REQUEST_BYTES, a malformed request gets
 * 400 and the connection closes, headers above ADMIN_MAX_HEADER_BYTES get
 * 431 and close. Only the path before '?' selects a handler (exact match).
 * Routing, as Envoy's admin does (source/server/admin/admin.cc, runCallback
 * and handlerHelp):
 *  - unknown path: 404, text/plain body "invalid path. admin commands are:\n"
 *    followed by the handler lines of the /help listing;
 *  - handler registered as mutating (e.g. /quitquitquit) and method is not
 *    POST: 405 with body "Method GET not allowed, POST required." (the
 *    method as sent, no trailing newline);
 *  - /help is built in (registered by admin_server_create with Envoy's text
 *    "print out list of admin commands"): "admin commands are:\n" then one
 *    line per handler, /help included, sorted by path: "  /path: help text\n".
 * HEAD is answered like GET (the handler sees method "GET") without a body.
 * Every response carries Content-Type, Content-Length, Envoy's fallback
 * "Cache-Control: no-cache, max-age=0" and "X-Content-Type-Options: nosniff",
 * and "Connection: close" when the server closes after it. Idle connections
 * are closed after 300 s.
 */
#ifndef XDSNODE_ADMIN_H
#define XDSNODE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;

#define ADMIN_MAX_HEADER_BYTES (60 * 1024)
#define ADMIN_MAX_REQUEST_BYTES (1024 * 1024)

typedef struct admin_server admin_server;

typedef struct {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* URL-decoded path, without the query */
    const char *query;  /* raw query string after '?', "" if none */
    const char *body;   /* request body (may contain NULs), body_len bytes */
    size_t body_len;
} admin_request;

/* A response a handler fills. body is malloc'd by the handler (or NULL for
 * an empty body) and freed by the server. */
typedef struct {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "text/plain; charset=UTF-8" */
    char *body;
    size_t body_len;
} admin_response;

/* Returns 0; any other value makes the server answer 500 with the body
 * the handler set (or a generic one). */
typedef int (*admin_handler_fn)(void *ctx, const admin_request *req, admin_response *resp);

/* Creates and starts a server listening on address:port (IPv4 or IPv6
 * literal; port 0 picks a free port). Returns 0, or -1 with err. */
int admin_server_create(struct ev_loop *loop, const char *address, uint16_t port,
                        admin_server **out, char *err, size_t errlen);

/* The bound port (useful with port 0). */
uint16_t admin_server_port(const admin_server *srv);

/* Registers a handler for an exact path ("/ready"). mutates_state marks
 * endpoints that require POST. Returns 0, or -1 if the path exists (/help
 * always does) or does not start with '/'. */
int admin_server_add_handler(admin_server *srv, const char *path, const char *help,
                             bool mutates_state, admin_handler_fn fn, void *ctx);

/* Stops listening and closes every connection. NULL is a no-op. */
void admin_server_destroy(admin_server *srv);

/* Finds query parameter `name` in a raw query string ("a=1&b&c=x%20y").
 * Returns 1 and copies the URL-decoded value ("" for a bare key) into out,
 * 0 if absent, -1 if the value does not fit in outlen. */
int admin_query_param(const char *query, const char *name, char *out, size_t outlen);

/* Helpers for handlers: set resp->body to a malloc'd copy / formatted text. */
int admin_response_set_text(admin_response *resp, int status, const char *content_type,
                            const char *text, size_t len);
int admin_response_printf(admin_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
