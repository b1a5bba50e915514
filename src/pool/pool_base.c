/* pool_base.c: the pending queue and published counts both pools share (pool_base.h). */
#include "xdsnode/pool_base.h"

#include <stdio.h>

#include "xdsnode/cluster_stats.h"
#include "xdsnode/http1_pool.h"
#include "xdsnode/worker.h"

void pool_base_init(pool_base *b, struct ev_loop *loop, struct worker_cluster *wc, size_t host)
{
    b->loop = loop;
    b->wc = wc;
    b->dc = wc->dc;
    b->host = host;
    b->pending_head = b->pending_tail = NULL;
    b->n_pending = 0;
    b->draining = 0;
    b->tls_failure[0] = '\0';
    for (int i = 0; i < POOL_COUNT_FIELDS; i++)
        atomic_init(&b->pub[i], 0);
}

const char *pool_base_note_close(pool_base *b, const upstream_tls_conn *tls)
{
    const char *why = tls ? upstream_tls_failure_reason(tls) : "";
    snprintf(b->tls_failure, sizeof(b->tls_failure), "%s", why);
    return pool_base_tls_failure(b);
}

void pool_base_pending_push(pool_base *b, pool_request *r)
{
    r->prev = b->pending_tail;
    r->next = NULL;
    if (b->pending_tail)
        b->pending_tail->next = r;
    else
        b->pending_head = r;
    b->pending_tail = r;
    b->n_pending++;
    stats_inc(pool_base_stats(b), CLUSTER_STAT_UPSTREAM_RQ_PENDING_TOTAL);
    stats_add(pool_base_stats(b), CLUSTER_STAT_UPSTREAM_RQ_PENDING_ACTIVE, 1);
}

void pool_base_pending_push_front(pool_base *b, pool_request *r)
{
    r->prev = NULL;
    r->next = b->pending_head;
    if (b->pending_head)
        b->pending_head->prev = r;
    else
        b->pending_tail = r;
    b->pending_head = r;
    b->n_pending++;
    stats_inc(pool_base_stats(b), CLUSTER_STAT_UPSTREAM_RQ_PENDING_TOTAL);
    stats_add(pool_base_stats(b), CLUSTER_STAT_UPSTREAM_RQ_PENDING_ACTIVE, 1);
}

void pool_base_pending_remove(pool_base *b, pool_request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        b->pending_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        b->pending_tail = r->prev;
    r->prev = r->next = NULL;
    b->n_pending--;
    stats_dec(pool_base_stats(b), CLUSTER_STAT_UPSTREAM_RQ_PENDING_ACTIVE);
    cb_release(&pool_base_cluster(b)->cb, r->priority, CB_PENDING);
}

void pool_base_publish(pool_base *b, const size_t v[POOL_COUNT_FIELDS])
{
    for (int i = 0; i < POOL_COUNT_FIELDS; i++)
        atomic_store_explicit(&b->pub[i], v[i], memory_order_relaxed);
}

void pool_base_counts_get(const pool_base *b, size_t counts[POOL_COUNT_FIELDS])
{
    for (int i = 0; i < POOL_COUNT_FIELDS; i++)
        counts[i] = atomic_load_explicit(&((pool_base *)b)->pub[i], memory_order_relaxed);
}
