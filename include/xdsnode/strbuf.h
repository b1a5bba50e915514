/*
 * strbuf.h: a growable text buffer for building admin responses.
 *
 * Owns: its heap buffer, until strbuf_take() hands it to the caller.
 * Threads: one thread at a time (no locking).
 * An allocation failure sets `failed`; later appends are ignored, so
 * callers check once at the end.
 */
#ifndef XDSNODE_STRBUF_H
#define XDSNODE_STRBUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} strbuf;

void strbuf_init(strbuf *b);
void strbuf_free(strbuf *b);
void strbuf_append(strbuf *b, const char *s, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the NUL-terminated text (caller frees) and resets b; NULL if an
 * allocation failed. */
char *strbuf_take(strbuf *b, size_t *len);

#endif
