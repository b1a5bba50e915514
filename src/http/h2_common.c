/* h2_common.c: shared HTTP/2 helpers (h2_common.h). */
#include "xdsnode/h2_common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Most trailer fields one HEADERS frame carries. */
#define H2_MAX_TRAILER_FIELDS 64

size_t h2_trailer_nv(header_list *h, size_t first, nghttp2_nv *nv, size_t max)
{
    size_t n = 0;
    for (size_t i = first; i < h->n && n < max; i++) {
        char *name = (char *)header_name(h, i);
        size_t nl = h->h[i].name_len;
        if (nl == 0 || name[0] == ':' || header_is_hop_by_hop(name, nl, NULL, 0))
            continue;
        for (size_t k = 0; k < nl; k++)
            name[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] + 32 : name[k]);
        nv[n++] = h2_nv(name, nl, header_value(h, i), h->h[i].value_len);
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

long h2_pump(nghttp2_session *session, buffer *wbuf, int fd)
{
    long written = 0;
    for (;;) {
        if (buffer_len(wbuf) >= H2_WRITE_BATCH) {
            long w = buffer_write_fd(wbuf, fd);
            if (w < 0)
                return -1;
            written += w;
            if (buffer_len(wbuf) >= H2_WRITE_BATCH)
                return written; /* the socket is full: the write watcher goes on */
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
    long w = buffer_write_fd(wbuf, fd);
    return w < 0 ? -1 : written + w;
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

/* --- allocator ------------------------------------------------------------- */

/* Blocks of 64 << k bytes for k < H2_MEM_CLASSES, each with a 16-byte
 * header (requested size, class) that keeps the payload 16-aligned. */
#define H2_MEM_CLASSES 6
#define H2_MEM_CACHE 1024
#define H2_MEM_HDR 16
#define H2_MEM_NO_CLASS ((size_t)-1)

static _Thread_local struct {
    void *free[H2_MEM_CACHE];
    size_t n;
} mem_cache[H2_MEM_CLASSES];

static size_t mem_class(size_t need)
{
#ifdef __SANITIZE_ADDRESS__
    (void)need;
    return H2_MEM_NO_CLASS;
#else
    for (size_t k = 0; k < H2_MEM_CLASSES; k++) {
        if (need <= ((size_t)64 << k))
            return k;
    }
    return H2_MEM_NO_CLASS;
#endif
}

static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    size_t k = mem_class(size + H2_MEM_HDR);
    char *p;
    if (k != H2_MEM_NO_CLASS)
        p = mem_cache[k].n > 0 ? mem_cache[k].free[--mem_cache[k].n] : malloc((size_t)64 << k);
    else
        p = malloc(size + H2_MEM_HDR);
    if (p == NULL)
        return NULL;
    ((size_t *)p)[0] = size;
    ((size_t *)p)[1] = k;
    return p + H2_MEM_HDR;
}

static void mem_free(void *ptr, void *ud)
{
    (void)ud;
    if (ptr == NULL)
        return;
    char *p = (char *)ptr - H2_MEM_HDR;
    size_t k = ((size_t *)p)[1];
    if (k != H2_MEM_NO_CLASS && mem_cache[k].n < H2_MEM_CACHE)
        mem_cache[k].free[mem_cache[k].n++] = p;
    else
        free(p);
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = mem_malloc(n * size, ud);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *mem_realloc(void *ptr, size_t size, void *ud)
{
    if (ptr == NULL)
        return mem_malloc(size, ud);
    if (size == 0) {
        mem_free(ptr, ud);
        return NULL;
    }
    size_t *h = (size_t *)((char *)ptr - H2_MEM_HDR);
    size_t room = h[1] != H2_MEM_NO_CLASS ? ((size_t)64 << h[1]) - H2_MEM_HDR : h[0];
    if (size <= room) {
        h[0] = size;
        return ptr;
    }
    void *q = mem_malloc(size, ud);
    if (q == NULL)
        return NULL;
    memcpy(q, ptr, h[0] < size ? h[0] : size);
    mem_free(ptr, ud);
    return q;
}

nghttp2_mem *h2_mem(void)
{
    static nghttp2_mem mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};
    return &mem;
}

void h2_mem_release(void)
{
    for (size_t k = 0; k < H2_MEM_CLASSES; k++) {
        while (mem_cache[k].n > 0)
            free(mem_cache[k].free[--mem_cache[k].n]);
    }
}
