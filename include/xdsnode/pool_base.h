/*
 * pool_base.h: what the HTTP/1.1 and HTTP/2 pools of one host share:
 * where the pool lives (worker loop, worker cluster, host index), the
 * queue of pending requests (Envoy's upstream_rq_pending_*: a queued
 * request holds a CB_PENDING slot of the cluster's circuit breakers,
 * given back when it leaves the queue), the draining flag, the counts
 * published for /pools, and the last closed connection's TLS failure
 * reason (named in the 503s of the requests that failure fails).
 *
 * Owns: nothing but its counts (queued requests are their callers').
 * Threads: the owning worker's only, except pool_base_counts_get.
 */
#ifndef XDSNODE_POOL_BASE_H
#define XDSNODE_POOL_BASE_H

#include <stdatomic.h>
#include <stddef.h>

#include "xdsnode/snapshot.h"
#include "xdsnode/upstream_tls.h"

struct ev_loop;
struct worker_cluster;
typedef struct pool_request pool_request;

/* A pool's published counts (for /pools). Connections are connecting,
 * active (busy, reusable), idle (ready) or draining (busy, closing after
 * their response); streams are requests bound to a connection; pending
 * are queued requests. */
enum {
    POOL_COUNT_CONNECTING = 0,
    POOL_COUNT_ACTIVE,
    POOL_COUNT_IDLE,
    POOL_COUNT_DRAINING,
    POOL_COUNT_STREAMS,
    POOL_COUNT_PENDING,
    POOL_COUNT_FIELDS
};

typedef struct pool_base {
    struct ev_loop *loop;
    struct worker_cluster *wc;
    dp_cluster *dc;                   /* wc->dc, which never changes for a wc */
    size_t host;                      /* index into the cluster's hosts */
    pool_request *pending_head, *pending_tail;
    size_t n_pending;
    int draining;                     /* no new requests; connections close once done */
    char tls_failure[768];            /* the last closed connection's TLS failure, or "" */
    _Atomic size_t pub[POOL_COUNT_FIELDS];
} pool_base;

void pool_base_init(pool_base *b, struct ev_loop *loop, struct worker_cluster *wc, size_t host);
static inline dp_cluster *pool_base_cluster(const pool_base *b) { return b->dc; }
static inline stats_scope *pool_base_stats(const pool_base *b) { return b->dc->stats; }
static inline host_stats *pool_base_host_stats(const pool_base *b) { return &b->dc->hosts[b->host]; }

/* Notes how a connection of this pool ends: its TLS failure reason (a
 * connection without TLS, or without a failure, clears it). Returns the
 * reason for the requests it fails (pool_base_tls_failure). */
const char *pool_base_note_close(pool_base *b, const upstream_tls_conn *tls);
/* The last closed connection's TLS failure reason, or NULL. */
static inline const char *pool_base_tls_failure(const pool_base *b)
{
    return b->tls_failure[0] ? b->tls_failure : NULL;
}

/* Queues r at the tail (its CB_PENDING slot is already taken) and counts
 * it in upstream_rq_pending_total / _active. */
void pool_base_pending_push(pool_base *b, pool_request *r);
/* The same at the head: a retry goes before requests that came after it. */
void pool_base_pending_push_front(pool_base *b, pool_request *r);
/* Takes r out of the queue and gives back its CB_PENDING slot. */
void pool_base_pending_remove(pool_base *b, pool_request *r);

/* Publishes v (relaxed atomics: each number is exact, the set is as of
 * some moment of the worker's loop). */
void pool_base_publish(pool_base *b, const size_t v[POOL_COUNT_FIELDS]);
/* Any thread, while the pool is alive (worker_visit_pools). */
void pool_base_counts_get(const pool_base *b, size_t counts[POOL_COUNT_FIELDS]);

#endif
