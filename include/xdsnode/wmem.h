/*
 * wmem.h: the workers' small-object allocator. Objects made and freed
 * with every request (streams, their copied request fields, nghttp2's
 * own blocks) come from per-thread caches of 64 B to 2 KiB blocks
 * instead of malloc, whose per-thread cache is too small for a dozen
 * allocations per request. Larger sizes go to malloc. Built with
 * AddressSanitizer, every call is plain malloc/free so ASan still sees
 * each block.
 *
 * Owns: the calling thread's cache of free blocks (bounded per size
 * class). Threads: any; a block may be freed on another thread than the
 * one that made it (it then joins that thread's cache). A thread that
 * used wmem calls wmem_release before it exits, or its cached blocks
 * leak.
 */
#ifndef XDSNODE_WMEM_H
#define XDSNODE_WMEM_H

#include <stddef.h>

/* size bytes (any size; 0 is allowed). NULL when out of memory. */
void *wmem_alloc(size_t size);
/* size zeroed bytes. */
void *wmem_calloc(size_t size);
/* Resizes a wmem block, keeping min(old, new) bytes; size 0 frees it and
 * returns NULL. */
void *wmem_realloc(void *p, size_t size);
/* Frees a block from wmem_alloc/calloc/realloc; NULL is ignored. Never
 * pass it a pointer from malloc. */
void wmem_free(void *p);
/* A NUL-terminated copy of p[0..n). */
char *wmem_strndup(const char *p, size_t n);
/* Frees the calling thread's cached blocks. */
void wmem_release(void);

#endif
