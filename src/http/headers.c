/* headers.c: header lists, hop-by-hop rules, local replies (http_headers.h). */
#include "xdsnode/http_headers.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

void header_list_init(header_list *l)
{
    memset(l, 0, sizeof(*l));
    buffer_init(&l->data);
}

void header_list_free(header_list *l)
{
    buffer_free(&l->data);
    if (l->cap * sizeof(*l->h) == BUFFER_BLOCK_SIZE)
        buffer_block_put(l->h);
    else
        free(l->h);
    memset(l, 0, sizeof(*l));
}

void header_list_reset(header_list *l)
{
    buffer_reset(&l->data);
    l->n = 0;
    l->in_value = 0;
    l->mixed_case = 0;
    l->bytes = 0;
}

/* Starts a field: its text begins at a NUL, so an empty field is "". */
static int start_field(header_list *l, uint32_t *off, uint32_t *len)
{
    *off = (uint32_t)buffer_len(&l->data);
    *len = 0;
    return buffer_append(&l->data, "", 1);
}

/* Appends a piece to the field being built (always the last one in the
 * buffer): its terminating NUL is overwritten and rewritten after it. */
static int append_piece(header_list *l, uint32_t *len, const char *p, size_t n)
{
    l->data.tail--;
    if (buffer_append(&l->data, p, n) != 0 || buffer_append(&l->data, "", 1) != 0)
        return -1;
    *len += (uint32_t)n;
    l->bytes += n;
    return 0;
}

/* The first array is a cached block (buffer.h); later ones double. */
static int header_list_grow(header_list *l)
{
    size_t first = BUFFER_BLOCK_SIZE / sizeof(*l->h);
    size_t cap = l->cap ? l->cap * 2 : first;
    header_entry *h = cap == first ? buffer_block_get() : malloc(cap * sizeof(*h));
    if (h == NULL)
        return -1;
    if (l->n)
        memcpy(h, l->h, l->n * sizeof(*h));
    if (l->cap == first)
        buffer_block_put(l->h);
    else
        free(l->h);
    l->h = h;
    l->cap = cap;
    return 0;
}

int header_list_add_name(header_list *l, const char *p, size_t n)
{
    l->mixed_case = 1;
    if (l->n == 0 || l->in_value) {
        if (l->n == l->cap && header_list_grow(l) != 0)
            return -1;
        header_entry *e = &l->h[l->n++];
        memset(e, 0, sizeof(*e));
        l->in_value = 0;
        if (start_field(l, &e->name_off, &e->name_len) != 0)
            return -1;
    }
    return append_piece(l, &l->h[l->n - 1].name_len, p, n);
}

int header_list_add(header_list *l, const char *name, size_t nl, const char *value, size_t vl)
{
    if (nl > UINT32_MAX / 2 || vl > UINT32_MAX / 2)
        return -1;
    if ((l->n == l->cap && header_list_grow(l) != 0) || buffer_reserve(&l->data, nl + vl + 2) != 0)
        return -1;
    header_entry *e = &l->h[l->n++];
    e->name_off = (uint32_t)buffer_len(&l->data);
    e->name_len = (uint32_t)nl;
    e->value_off = e->name_off + (uint32_t)nl + 1;
    e->value_len = (uint32_t)vl;
    char *d = l->data.data + l->data.tail; /* name NUL value NUL, as the pieces give */
    memcpy(d, name, nl);
    d[nl] = '\0';
    memcpy(d + nl + 1, value, vl);
    d[nl + 1 + vl] = '\0';
    l->data.tail += nl + vl + 2;
    l->in_value = 1;
    l->bytes += nl + vl;
    return 0;
}

int header_list_add_field(header_list *l, const header_list *src, size_t i)
{
    l->mixed_case |= src->mixed_case;
    return header_list_add(l, header_name(src, i), src->h[i].name_len, header_value(src, i),
                           src->h[i].value_len);
}

int header_list_add_value(header_list *l, const char *p, size_t n)
{
    if (l->n == 0)
        return -1;
    header_entry *e = &l->h[l->n - 1];
    if (!l->in_value) {
        l->in_value = 1;
        if (start_field(l, &e->value_off, &e->value_len) != 0)
            return -1;
    }
    return append_piece(l, &e->value_len, p, n);
}

const char *header_list_get(const header_list *l, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    int first = name[0] | 0x20;
    for (size_t i = 0; i < l->n; i++) {
        const char *hn = header_name(l, i);
        if (l->h[i].name_len == nl && (hn[0] | 0x20) == first && strncasecmp(hn, name, nl) == 0) {
            if (len)
                *len = l->h[i].value_len;
            return header_value(l, i);
        }
    }
    return NULL;
}

static int token_listed(const char *name, size_t len, const char *list, size_t list_len)
{
    size_t i = 0;
    while (i < list_len) {
        while (i < list_len && (list[i] == ',' || list[i] == ' ' || list[i] == '\t'))
            i++;
        size_t start = i;
        while (i < list_len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end - start == len && strncasecmp(list + start, name, len) == 0)
            return 1;
    }
    return 0;
}

int header_te_trailers(const char *value, size_t len)
{
    return token_listed("trailers", 8, value, len);
}

int header_is_hop_by_hop(const char *name, size_t len, const char *connection_value,
                         size_t connection_len)
{
    const char *fixed = NULL; /* the one hop-by-hop name of this length, if any */
    switch (len) {
    case 2:
        fixed = "te";
        break;
    case 7:
        fixed = "upgrade";
        break;
    case 10:
        fixed = (name[0] | 0x20) == 'c' ? "connection" : "keep-alive";
        break;
    case 16:
        fixed = "proxy-connection";
        break;
    case 17:
        fixed = "transfer-encoding";
        break;
    default:
        break;
    }
    if (fixed && (name[0] | 0x20) == fixed[0] && strncasecmp(fixed, name, len) == 0)
        return 1;
    return connection_value && token_listed(name, len, connection_value, connection_len);
}

/* SWAR: the high bit of each byte of the result is set where w holds an
 * ASCII upper-case letter (bytes are kept below 0x80 so nothing carries). */
#define UPPER_MASK(T, w)                                                                  \
    ((((w) & (T) ~(high)) + (T)((0x80 - 'A') * ones)) &                                   \
     ~(((w) & (T) ~(high)) + (T)((0x80 - 'Z' - 1) * ones)) & ~(w) & (T)(high))

void header_lower(char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t upper = UPPER_MASK(uint64_t, w);
        if (upper) {
            w |= upper >> 2; /* 0x80 >> 2 == 0x20, the case bit */
            memcpy(p + i, &w, 8);
        }
    }
    if (i + 4 <= n) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        uint32_t upper = UPPER_MASK(uint32_t, w);
        if (upper) {
            w |= upper >> 2;
            memcpy(p + i, &w, 4);
        }
        i += 4;
    }
    for (; i < n; i++) {
        if ((unsigned char)(p[i] - 'A') < 26)
            p[i] = (char)(p[i] + 32);
    }
}

int header_write(buffer *out, const char *name, size_t nlen, const char *value, size_t vlen)
{
    char line[512];
    if (nlen + vlen + 4 <= sizeof(line)) { /* the common case: one append */
        for (size_t i = 0; i < nlen; i++)
            line[i] = (char)tolower((unsigned char)name[i]);
        line[nlen] = ':';
        line[nlen + 1] = ' ';
        memcpy(line + nlen + 2, value, vlen);
        line[nlen + 2 + vlen] = '\r';
        line[nlen + 3 + vlen] = '\n';
        return buffer_append(out, line, nlen + vlen + 4);
    }
    char lower[256];
    const char *n = name;
    if (nlen < sizeof(lower)) {
        for (size_t i = 0; i < nlen; i++)
            lower[i] = (char)tolower((unsigned char)name[i]);
        n = lower;
    }
    if (buffer_append(out, n, nlen) != 0 || buffer_append(out, ": ", 2) != 0 ||
        buffer_append(out, value, vlen) != 0 || buffer_append(out, "\r\n", 2) != 0)
        return -1;
    return 0;
}

long header_keepalive_timeout(const char *value, size_t len)
{
    for (size_t i = 0; i + 8 <= len; i++) {
        if (strncasecmp(value + i, "timeout=", 8) == 0 && (i == 0 || value[i - 1] == ' ' ||
                                                          value[i - 1] == ',')) {
            long n = 0;
            size_t j = i + 8;
            if (j >= len || !isdigit((unsigned char)value[j]))
                return -1;
            while (j < len && isdigit((unsigned char)value[j]) && n < 1000000)
                n = n * 10 + (value[j++] - '0');
            return n;
        }
    }
    return -1;
}

const char *http_reason(int status)
{
    return http_status_str((enum http_status)status);
}

int local_reply_write(buffer *out, int status, const char *body, const char *server_name,
                      const char *extra_headers, int close_after, int is_head)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    size_t blen = strlen(body);
    int rc = buffer_printf(out,
                           "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n"
                           "date: %s\r\nserver: %s\r\n%s%s\r\n",
                           status, http_reason(status), blen, date, server_name,
                           extra_headers ? extra_headers : "", close_after ? "connection: close\r\n" : "");
    if (rc == 0 && !is_head)
        rc = buffer_append(out, body, blen);
    return rc;
}
