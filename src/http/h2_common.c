/* h2_common.c: shared HTTP/2 helpers (h2_common.h). */
#include "xdsnode/h2_common.h"

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
