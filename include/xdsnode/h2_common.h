/*
 * h2_common.h: what the HTTP/2 downstream codec and the HTTP/2 upstream
 * pool share: header lists as nghttp2 name/value arrays (names
 * lower-cased in place, hop-by-hop fields left out), trailers, and
 * frame output batched into one buffer per connection.
 *
 * Owns: nothing (arrays point into the caller's header_list, which must
 * outlive their use; nghttp2's submit functions copy them; the output
 * buffer is the caller's). Threads: the caller's (a worker's).
 */
#ifndef XDSNODE_H2_COMMON_H
#define XDSNODE_H2_COMMON_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

#include "xdsnode/buffer.h"
#include "xdsnode/http_headers.h"

static inline nghttp2_nv h2_nv(const char *name, size_t nlen, const char *value, size_t vlen)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE};
}

/* How HPACK should treat a (lower-case) field name: NGHTTP2_NV_FLAG_NO_INDEX
 * ("literal never indexed", RFC 7541 6.2.3) for fields whose value is new
 * with almost every message (request and trace ids, service time), since
 * indexing them churns the dynamic table and makes every later lookup
 * compare against dozens of stale values, and for credentials
 * (authorization, RFC 7541 7.1.3); NGHTTP2_NV_FLAG_NONE otherwise. */
uint8_t h2_field_flags(const char *name, size_t len);

/* A regular field: h2_nv with h2_field_flags. */
static inline nghttp2_nv h2_nv_field(const char *name, size_t nlen, const char *value, size_t vlen)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nlen, vlen, h2_field_flags(name, nlen)};
}

/* Fields first..h->n-1 of h (trailers) into nv[0..max): returns how many. */
size_t h2_trailer_nv(header_list *h, size_t first, nghttp2_nv *nv, size_t max);
/* Submits them as the stream's trailing HEADERS. Returns 0, or -1 if
 * there was none to send (the caller then ends the stream with DATA). */
int h2_submit_trailers(nghttp2_session *session, int32_t stream_id, header_list *h, size_t first);

/* A data provider's read: up to `length` bytes of `body` into buf. When
 * body is empty and `eof` is set the stream ends, with fields
 * first..trailers->n-1 as a trailing HEADERS if there are any; when body
 * is empty before eof, *deferred is set and NGHTTP2_ERR_DEFERRED returned
 * (resume the data when more comes). Returns the bytes copied. */
ssize_t h2_read_body(nghttp2_session *session, int32_t stream_id, buffer *body, int eof,
                     header_list *trailers, size_t first, uint8_t *buf, size_t length,
                     uint32_t *data_flags, int *deferred);

/* Frames are written once this many are queued (and at the end of each
 * pump); above it nghttp2 is not asked for more until the socket drains. */
#define H2_WRITE_BATCH 65536
/* Serializes what the session has to send into wbuf and writes it to fd
 * in as few writes as the socket allows. Returns the bytes written, or
 * -1 on a session or socket error. */
long h2_pump(nghttp2_session *session, buffer *wbuf, int fd);
/* The same through a writer with buffer_write_fd's contract (TLS:
 * upstream_tls_write), called with `ctx`. */
long h2_pump_to(nghttp2_session *session, buffer *wbuf, long (*write_out)(void *ctx, buffer *b),
                void *ctx);

/* nghttp2's allocator for worker sessions: wmem (wmem.h), since a
 * session allocates a dozen small blocks per stream. */
nghttp2_mem *h2_mem(void);

#endif
