/*
 * http_headers.h: HTTP/1.1 header lists as http-parser delivers them
 * (names and values in pieces), the hop-by-hop rules a proxy applies,
 * and Envoy's local replies (status, body, headers) written as HTTP/1.1.
 *
 * Owns: a header_list owns its storage. Threads: one thread at a time.
 */
#ifndef XDSNODE_HTTP_HEADERS_H
#define XDSNODE_HTTP_HEADERS_H

#include <stddef.h>
#include <stdint.h>

#include "xdsnode/buffer.h"

typedef struct {
    uint32_t name_off, name_len, value_off, value_len;
} header_entry;

typedef struct {
    buffer data;
    header_entry *h;
    size_t n, cap;
    int in_value;  /* last piece was a value */
    int mixed_case; /* a name may hold upper-case letters (HTTP/1.1 pieces) */
    size_t bytes;  /* total bytes of names and values seen */
} header_list;

void header_list_init(header_list *l);
void header_list_free(header_list *l);
void header_list_reset(header_list *l);
/* Feed http-parser's on_header_field / on_header_value pieces (the
 * list is then mixed_case). */
int header_list_add_name(header_list *l, const char *p, size_t n);
int header_list_add_value(header_list *l, const char *p, size_t n);
/* Adds a whole field whose name is lower case (an HTTP/2 field, which
 * nghttp2 has checked, or a literal); name and value must not point into
 * l. Returns 0, or -1 on allocation failure. */
int header_list_add(header_list *l, const char *name, size_t nl, const char *value, size_t vl);
/* Adds field i of src (not l) to l; l becomes mixed_case if src is. */
int header_list_add_field(header_list *l, const header_list *src, size_t i);

static inline const char *header_name(const header_list *l, size_t i)
{
    return buffer_start(&l->data) + l->h[i].name_off;
}
static inline const char *header_value(const header_list *l, size_t i)
{
    return buffer_start(&l->data) + l->h[i].value_off;
}
/* Case-insensitive lookup of the first header named `name`; returns its
 * value and length, or NULL. */
const char *header_list_get(const header_list *l, const char *name, size_t *len);

/* 1 if a TE header value lists the "trailers" token (the only TE value
 * a proxy passes on, as gRPC needs it). */
int header_te_trailers(const char *value, size_t len);
/* True for headers a proxy must not forward: Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade, TE, and every name the
 * Connection header lists (connection_value, may be NULL). */
int header_is_hop_by_hop(const char *name, size_t len, const char *connection_value,
                         size_t connection_len);

/* Lower-cases the ASCII letters of p[0..n) in place (eight bytes at a
 * time; bytes outside A-Z, including non-ASCII ones, are left as they
 * are). HTTP/2 field names must be lower case. */
void header_lower(char *p, size_t n);

/* Writes name (lower-cased, as Envoy sends them) ": " value CRLF. */
int header_write(buffer *out, const char *name, size_t nlen, const char *value, size_t vlen);

/* Parses "timeout=N" from a Keep-Alive header value; returns N or -1. */
long header_keepalive_timeout(const char *value, size_t len);

/* Envoy's local reply (xds-facts §6) as a full HTTP/1.1 response: status
 * line, content-length, content-type text/plain, date, server, optional
 * extra header lines (each "name: value\r\n", may be NULL), connection:
 * close when close_after, then body. HEAD gets no body. */
int local_reply_write(buffer *out, int status, const char *body, const char *server_name,
                      const char *extra_headers, int close_after, int is_head);

/* Reason phrase for a status code ("Service Unavailable"). */
const char *http_reason(int status);

#endif
