/* h2_common.c: shared HTTP/2 helpers (h2_common.h). */
#include "xdsnode/h2_common.h"
#include "xdsnode/wmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Most trailer fields one HEADERS frame carries. */
#define H2_MAX_TRAILER_FIELDS 64

/* Field names sent never-indexed (h2_common.h), by length: values new with
 * almost every message, then credentials. */
#define H2_NO_INDEX_MAX_LEN 29
static const char *const no_index_names[H2_NO_INDEX_MAX_LEN + 1][3] = {
    [10] = {"tracestate"},
    [11] = {"traceparent", "x-b3-spanid"},
    [12] = {"x-request-id", "x-b3-traceid"},
    [13] = {"uber-trace-id", "authorization"},
    [15] = {"x-amzn-trace-id"},
    [17] = {"x-b3-parentspanid"},
    [18] = {"x-datadog-trace-id"},
    [19] = {"x-datadog-parent-id", "proxy-authorization"},
    [21] = {"x-cloud-trace-context"},
    [29] = {"x-envoy-upstream-service-time"},
};

uint8_t h2_field_flags(const char *n, size_t len)
{
    if (len > H2_NO_INDEX_MAX_LEN || len == 0)
        return NGHTTP2_NV_FLAG_NONE;
    for (const char *const *want = no_index_names[len]; *want != NULL; want++) {
        if (n[0] == (*want)[0] && memcmp(n, *want, len) == 0)
            return NGHTTP2_NV_FLAG_NO_INDEX;
    }
    return NGHTTP2_NV_FLAG_NONE;
}

size_t h2_trailer_nv(header_list *h, size_t first, nghttp2_nv *nv, size_t max)
{
    size_t n = 0;
    for (size_t i = first; i < h->n && n < max; i++) {
        char *name = (char *)header_name(h, i);
        size_t nl = h->h[i].name_len;
        if (nl == 0 || name[0] == ':' || header_is_hop_by_hop(name, nl, NULL, 0))
            continue;
        if (h->mixed_case)
            header_lower(name, nl);
        nv[n++] = h2_nv_field(name, nl, header_value(h, i), h->h[i].value_len);
    }
    return n;
}

int h2_submit_trailers(nghttp2_session *session, int32_t stream_id, header_list *h, size_t first)
{
    nghttp2_nv nv[H2_MAX_TRAILER_FIELDS];
    size_t n = h2_trailer_nv(h, first, nv, H2_MAX_TRAILER_FIELDS);
    if (n == 0)
        return -1;
    return nghttp2_submit_trailer(session, stream_id, nv, n) == 0 ? 0 : -1;
}

ssize_t h2_read_body(nghttp2_session *session, int32_t stream_id, buffer *body, int eof,
                     header_list *trailers, size_t first, uint8_t *buf, size_t length,
                     uint32_t *data_flags, int *deferred)
{
    size_t n = buffer_len(body);
    if (n > length)
        n = length;
    if (n > 0) {
        memcpy(buf, buffer_start(body), n);
        buffer_consume(body, n);
    }
    if (buffer_len(body) == 0 && eof) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (trailers->n > first && h2_submit_trailers(session, stream_id, trailers, first) == 0)
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    } else if (n == 0) {
        *deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

long h2_pump_to(nghttp2_session *session, buffer *wbuf, long (*write_out)(void *ctx, buffer *b),
                void *ctx)
{
    long written = 0;
    for (;;) {
        if (buffer_len(wbuf) >= H2_WRITE_BATCH) {
            long w = write_out(ctx, wbuf);
            if (w < 0)
                return -1;
            written += w;
            if (buffer_len(wbuf) >= H2_WRITE_BATCH)
                return written;
        }
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(session, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (buffer_append(wbuf, data, (size_t)n) != 0)
            return -1;
    }
    long w = write_out(ctx, wbuf);
    return w < 0 ? -1 : written + w;
}

static long write_fd(void *ctx, buffer *b) { return buffer_write_fd(b, *(const int *)ctx); }

long h2_pump(nghttp2_session *session, buffer *wbuf, int fd)
{
    return h2_pump_to(session, wbuf, write_fd, &fd);
}

/* --- allocator ------------------------------------------------------------- */

static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    return wmem_alloc(size);
}

static void mem_free(void *ptr, void *ud)
{
    (void)ud;
    wmem_free(ptr);
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return wmem_calloc(n * size);
}

static void *mem_realloc(void *ptr, size_t size, void *ud)
{
    (void)ud;
    return wmem_realloc(ptr, size);
}

nghttp2_mem *h2_mem(void)
{
    static nghttp2_mem mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};
    return &mem;
}
