/*
 * buffer.h: a byte queue for socket I/O: append at the tail, consume from
 * the head. Capacity grows on demand; callers bound it by checking
 * buffer_len() against their limit (per_connection_buffer_limit_bytes)
 * and pausing their reader, which is how backpressure works everywhere.
 *
 * Owns: its heap storage. Threads: one thread at a time (a worker's).
 */
#ifndef XDSNODE_BUFFER_H
#define XDSNODE_BUFFER_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t head, tail, cap; /* bytes [head, tail) are queued */
} buffer;

void buffer_init(buffer *b);
void buffer_free(buffer *b);
static inline size_t buffer_len(const buffer *b) { return b->tail - b->head; }
static inline const char *buffer_start(const buffer *b) { return b->data + b->head; }
/* Appends n bytes. Returns 0, or -1 on allocation failure. */
int buffer_append(buffer *b, const void *p, size_t n);
/* Appends formatted text. Returns 0 or -1. */
int buffer_printf(buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops n bytes from the head (n <= buffer_len). */
void buffer_consume(buffer *b, size_t n);
void buffer_reset(buffer *b);

/* Writes as much as the socket takes. Returns bytes written (>= 0), or -1
 * with errno set for a real error (EAGAIN is not one: it returns 0). */
long buffer_write_fd(buffer *b, int fd);

#endif
