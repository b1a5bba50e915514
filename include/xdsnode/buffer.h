/*
 * buffer.h: a byte queue for socket I/O: append at the tail, consume from
 * the head. Capacity grows on demand; callers bound it by checking
 * buffer_len() against their limit (per_connection_buffer_limit_bytes)
 * and pausing their reader, which is how backpressure works everywhere.
 *
 * Owns: its heap storage. Threads: one thread at a time (a worker's);
 * the block cache is per thread.
 */
#ifndef XDSNODE_BUFFER_H
#define XDSNODE_BUFFER_H

#include <stddef.h>
#include <string.h>

/* The first allocation of every buffer. Storage of this size and of 2,
 * 4 and 8 times it is cached per thread (bounded), so per-request
 * buffers rarely reach malloc; buffer_block_get/put hand out the
 * smallest class for other small per-request arrays. */
#define BUFFER_BLOCK_SIZE 512
void *buffer_block_get(void);
void buffer_block_put(void *p);
/* Frees the calling thread's cached blocks; a thread that used buffers
 * calls it before it exits (thread-local storage goes away with it). */
void buffer_block_cache_release(void);

typedef struct {
    char *data;
    size_t head, tail, cap; /* bytes [head, tail) are queued */
} buffer;

void buffer_init(buffer *b);
void buffer_free(buffer *b);
static inline size_t buffer_len(const buffer *b) { return b->tail - b->head; }
static inline const char *buffer_start(const buffer *b) { return b->data + b->head; }
/* Appends n bytes. Returns 0, or -1 on allocation failure. */
int buffer_append_grow(buffer *b, const void *p, size_t n);
static inline int buffer_append(buffer *b, const void *p, size_t n)
{
    if (n <= b->cap - b->tail) { /* fits: no call */
        if (n > 0)
            memcpy(b->data + b->tail, p, n);
        b->tail += n;
        return 0;
    }
    return buffer_append_grow(b, p, n);
}
/* Makes room for n more bytes after the tail (queued bytes may move to
 * the front). Returns 0, or -1 on allocation failure. */
int buffer_reserve_grow(buffer *b, size_t n);
static inline int buffer_reserve(buffer *b, size_t n)
{
    return n <= b->cap - b->tail ? 0 : buffer_reserve_grow(b, n);
}
/* Appends a NUL-terminated string. Returns 0 or -1. */
int buffer_append_str(buffer *b, const char *s);
/* Appends v in decimal, or in lower-case hex (HTTP/1.1 chunk sizes).
 * Return 0 or -1. */
int buffer_append_u64(buffer *b, unsigned long long v);
/* v in decimal into out (at least 20 bytes, not NUL-terminated); returns
 * the length. */
size_t format_u64(char *out, unsigned long long v);
int buffer_append_hex(buffer *b, unsigned long long v);
/* Appends formatted text (not for per-request hot paths: vsnprintf is
 * slow). Returns 0 or -1. */
int buffer_printf(buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops n bytes from the head (n <= buffer_len). */
void buffer_consume(buffer *b, size_t n);
void buffer_reset(buffer *b);

/* Writes as much as the socket takes. Returns bytes written (>= 0), or -1
 * with errno set for a real error (EAGAIN is not one: it returns 0). */
long buffer_write_fd(buffer *b, int fd);

#endif
