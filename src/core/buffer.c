/* buffer.c: byte queue for socket I/O (buffer.h). */
#include "xdsnode/buffer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BUFFER_MIN_CAP BUFFER_BLOCK_SIZE
/* Size classes kept per thread: BUFFER_BLOCK_SIZE << k for k < N_CLASSES,
 * each up to its own count (at most 2.5 MiB per thread in all). */
#define N_CLASSES 4
static const size_t class_max[N_CLASSES] = {2048, 512, 256, 128};

/* Each thread's cache of free blocks: every request allocates and frees
 * a dozen small buffers, and malloc's own caches are too small for the
 * hundreds of streams a worker has in flight. */
static _Thread_local struct {
    void *free[2048];
    size_t n;
} block_cache[N_CLASSES];

/* The class of a capacity, or -1 when it has none. */
static int size_class(size_t cap)
{
    for (int k = 0; k < N_CLASSES; k++) {
        if (cap == (size_t)BUFFER_BLOCK_SIZE << k)
            return k;
    }
    return -1;
}

static void *class_get(int k)
{
    if (block_cache[k].n > 0)
        return block_cache[k].free[--block_cache[k].n];
    return malloc((size_t)BUFFER_BLOCK_SIZE << k);
}

static void class_put(int k, void *p)
{
    if (block_cache[k].n < class_max[k])
        block_cache[k].free[block_cache[k].n++] = p;
    else
        free(p);
}

void *buffer_block_get(void) { return class_get(0); }

void buffer_block_put(void *p)
{
    if (p != NULL)
        class_put(0, p);
}

void buffer_block_cache_release(void)
{
    for (int k = 0; k < N_CLASSES; k++) {
        while (block_cache[k].n > 0)
            free(block_cache[k].free[--block_cache[k].n]);
    }
}

static void *storage_alloc(size_t cap)
{
    int k = size_class(cap);
    return k >= 0 ? class_get(k) : malloc(cap);
}

static void storage_free(char *data, size_t cap)
{
    if (data == NULL)
        return;
    int k = size_class(cap);
    if (k >= 0)
        class_put(k, data);
    else
        free(data);
}

void buffer_init(buffer *b) { memset(b, 0, sizeof(*b)); }

void buffer_free(buffer *b)
{
    storage_free(b->data, b->cap);
    buffer_init(b);
}

void buffer_reset(buffer *b) { b->head = b->tail = 0; }

int buffer_reserve_grow(buffer *b, size_t n)
{
    if (b->cap - b->tail >= n)
        return 0;
    size_t used = buffer_len(b);
    if (b->head > 0 && b->cap - used >= n) {
        memmove(b->data, b->data + b->head, used);
        b->head = 0;
        b->tail = used;
        return 0;
    }
    size_t cap = b->cap ? b->cap : BUFFER_MIN_CAP;
    while (cap - used < n)
        cap *= 2;
    char *p = storage_alloc(cap);
    if (p == NULL)
        return -1;
    if (used)
        memcpy(p, b->data + b->head, used);
    storage_free(b->data, b->cap);
    b->data = p;
    b->cap = cap;
    b->head = 0;
    b->tail = used;
    return 0;
}

int buffer_append_grow(buffer *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (buffer_reserve_grow(b, n) != 0)
        return -1;
    memcpy(b->data + b->tail, p, n);
    b->tail += n;
    return 0;
}

int buffer_append_str(buffer *b, const char *s) { return buffer_append(b, s, strlen(s)); }

static int append_digits(buffer *b, unsigned long long v, unsigned base)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v > 0);
    return buffer_append(b, tmp + i, sizeof(tmp) - i);
}

int buffer_append_u64(buffer *b, unsigned long long v) { return append_digits(b, v, 10); }

size_t format_u64(char *out, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp), n = 0;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (i < sizeof(tmp))
        out[n++] = tmp[i++];
    return n;
}

int buffer_append_hex(buffer *b, unsigned long long v) { return append_digits(b, v, 16); }

int buffer_printf(buffer *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return buffer_append(b, small, (size_t)n);
    if (buffer_reserve(b, (size_t)n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->tail, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->tail += (size_t)n;
    return 0;
}

void buffer_consume(buffer *b, size_t n)
{
    b->head += n;
    if (b->head >= b->tail)
        b->head = b->tail = 0;
}

long buffer_write_fd(buffer *b, int fd)
{
    long total = 0;
    while (buffer_len(b) > 0) {
        ssize_t w = send(fd, buffer_start(b), buffer_len(b), MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        buffer_consume(b, (size_t)w);
        total += w;
    }
    return total;
}
