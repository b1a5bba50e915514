/* wmem.c: per-thread small-object caches (wmem.h). */
#include "xdsnode/wmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Blocks of 64 << k bytes for k < WMEM_CLASSES, each with a 16-byte
 * header (requested size, class) that keeps the payload 16-aligned. */
#define WMEM_CLASSES 6
#define WMEM_CACHE 1024
#define WMEM_HDR 16
#define WMEM_NO_CLASS ((size_t)-1)

static _Thread_local struct {
    void *free[WMEM_CACHE];
    size_t n;
} cache[WMEM_CLASSES];

static size_t size_class(size_t need)
{
#ifdef __SANITIZE_ADDRESS__
    (void)need;
    return WMEM_NO_CLASS;
#else
    for (size_t k = 0; k < WMEM_CLASSES; k++) {
        if (need <= ((size_t)64 << k))
            return k;
    }
    return WMEM_NO_CLASS;
#endif
}

void *wmem_alloc(size_t size)
{
    if (size > SIZE_MAX - WMEM_HDR)
        return NULL;
    size_t k = size_class(size + WMEM_HDR);
    char *p;
    if (k != WMEM_NO_CLASS)
        p = cache[k].n > 0 ? cache[k].free[--cache[k].n] : malloc((size_t)64 << k);
    else
        p = malloc(size + WMEM_HDR);
    if (p == NULL)
        return NULL;
    ((size_t *)p)[0] = size;
    ((size_t *)p)[1] = k;
    return p + WMEM_HDR;
}

void *wmem_calloc(size_t size)
{
    void *p = wmem_alloc(size);
    if (p)
        memset(p, 0, size);
    return p;
}

void wmem_free(void *ptr)
{
    if (ptr == NULL)
        return;
    char *p = (char *)ptr - WMEM_HDR;
    size_t k = ((size_t *)p)[1];
    if (k != WMEM_NO_CLASS && cache[k].n < WMEM_CACHE)
        cache[k].free[cache[k].n++] = p;
    else
        free(p);
}

void *wmem_realloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return wmem_alloc(size);
    if (size == 0) {
        wmem_free(ptr);
        return NULL;
    }
    size_t *h = (size_t *)((char *)ptr - WMEM_HDR);
    size_t room = h[1] != WMEM_NO_CLASS ? ((size_t)64 << h[1]) - WMEM_HDR : h[0];
    if (size <= room) {
        h[0] = size;
        return ptr;
    }
    void *q = wmem_alloc(size);
    if (q == NULL)
        return NULL;
    memcpy(q, ptr, h[0] < size ? h[0] : size);
    wmem_free(ptr);
    return q;
}

char *wmem_strndup(const char *p, size_t n)
{
    char *d = wmem_alloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

void wmem_release(void)
{
    for (size_t k = 0; k < WMEM_CLASSES; k++) {
        while (cache[k].n > 0)
            free(cache[k].free[--cache[k].n]);
    }
}
