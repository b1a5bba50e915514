/* circuit_breaker.c: cluster-wide resource limits (circuit_breaker.h). */
#include "xdsnode/circuit_breaker.h"

#include "xdsnode/cluster_stats.h"

static const int open_gauge[PRIORITY_COUNT][CB_RESOURCE_COUNT] = {
    {CLUSTER_STAT_CB_DEFAULT_CX_OPEN, CLUSTER_STAT_CB_DEFAULT_RQ_PENDING_OPEN,
     CLUSTER_STAT_CB_DEFAULT_RQ_OPEN, CLUSTER_STAT_CB_DEFAULT_RQ_RETRY_OPEN},
    {CLUSTER_STAT_CB_HIGH_CX_OPEN, CLUSTER_STAT_CB_HIGH_RQ_PENDING_OPEN,
     CLUSTER_STAT_CB_HIGH_RQ_OPEN, CLUSTER_STAT_CB_HIGH_RQ_RETRY_OPEN},
};

void cb_init(circuit_breakers *cb, const cb_thresholds limits[PRIORITY_COUNT], stats_scope *stats)
{
    for (int p = 0; p < PRIORITY_COUNT; p++) {
        cb->limits[p] = limits[p];
        for (int r = 0; r < CB_RESOURCE_COUNT; r++)
            atomic_init(&cb->counts[p][r], 0);
    }
    cb->stats = stats;
}

uint32_t cb_limit(const circuit_breakers *cb, int priority, cb_resource r)
{
    const cb_thresholds *t = &cb->limits[priority];
    switch (r) {
    case CB_CONNECTIONS: return t->max_connections;
    case CB_PENDING: return t->max_pending_requests;
    case CB_REQUESTS: return t->max_requests;
    default: return t->max_retries;
    }
}

uint32_t cb_count(const circuit_breakers *cb, int priority, cb_resource r)
{
    return atomic_load_explicit(&((circuit_breakers *)cb)->counts[priority][r], memory_order_relaxed);
}

static void update_gauge(circuit_breakers *cb, int priority, cb_resource r, uint32_t now)
{
    if (cb->stats)
        stats_set(cb->stats, (size_t)open_gauge[priority][r], now >= cb_limit(cb, priority, r) ? 1 : 0);
}

int cb_try_acquire(circuit_breakers *cb, int priority, cb_resource r)
{
    uint32_t limit = cb_limit(cb, priority, r);
    uint32_t cur = atomic_load_explicit(&cb->counts[priority][r], memory_order_relaxed);
    do {
        if (cur >= limit)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&cb->counts[priority][r], &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    update_gauge(cb, priority, r, cur + 1);
    return 1;
}

void cb_force_acquire(circuit_breakers *cb, int priority, cb_resource r)
{
    uint32_t now = atomic_fetch_add_explicit(&cb->counts[priority][r], 1, memory_order_relaxed) + 1;
    update_gauge(cb, priority, r, now);
}

void cb_release(circuit_breakers *cb, int priority, cb_resource r)
{
    uint32_t now = atomic_fetch_sub_explicit(&cb->counts[priority][r], 1, memory_order_relaxed) - 1;
    update_gauge(cb, priority, r, now);
}

const char *cb_resource_limit_name(cb_resource r)
{
    switch (r) {
    case CB_CONNECTIONS: return "max_connections";
    case CB_PENDING: return "max_pending_requests";
    case CB_REQUESTS: return "max_requests";
    default: return "max_retries";
    }
}
