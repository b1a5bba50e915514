/* circuit_breaker.c: cluster-wide resource limits (circuit_breaker.h). */
#include "xdsnode/circuit_breaker.h"

#include "xdsnode/cluster_stats.h"

#include <math.h>

static const int open_gauge[PRIORITY_COUNT][CB_RESOURCE_COUNT] = {
    {CLUSTER_STAT_CB_DEFAULT_CX_OPEN, CLUSTER_STAT_CB_DEFAULT_RQ_PENDING_OPEN,
     CLUSTER_STAT_CB_DEFAULT_RQ_OPEN, CLUSTER_STAT_CB_DEFAULT_RQ_RETRY_OPEN,
     CLUSTER_STAT_CB_DEFAULT_CX_POOL_OPEN},
    {CLUSTER_STAT_CB_HIGH_CX_OPEN, CLUSTER_STAT_CB_HIGH_RQ_PENDING_OPEN,
     CLUSTER_STAT_CB_HIGH_RQ_OPEN, CLUSTER_STAT_CB_HIGH_RQ_RETRY_OPEN,
     CLUSTER_STAT_CB_HIGH_CX_POOL_OPEN},
};

static const int remaining_gauge[PRIORITY_COUNT][CB_RESOURCE_COUNT] = {
    {CLUSTER_STAT_CB_DEFAULT_REMAINING_CX, CLUSTER_STAT_CB_DEFAULT_REMAINING_PENDING,
     CLUSTER_STAT_CB_DEFAULT_REMAINING_RQ, CLUSTER_STAT_CB_DEFAULT_REMAINING_RETRIES,
     CLUSTER_STAT_CB_DEFAULT_REMAINING_CX_POOLS},
    {CLUSTER_STAT_CB_HIGH_REMAINING_CX, CLUSTER_STAT_CB_HIGH_REMAINING_PENDING,
     CLUSTER_STAT_CB_HIGH_REMAINING_RQ, CLUSTER_STAT_CB_HIGH_REMAINING_RETRIES,
     CLUSTER_STAT_CB_HIGH_REMAINING_CX_POOLS},
};

static void update_gauge(circuit_breakers *cb, int priority, cb_resource r, uint32_t now);

void cb_init(circuit_breakers *cb, const cb_thresholds limits[PRIORITY_COUNT], stats_scope *stats)
{
    for (int p = 0; p < PRIORITY_COUNT; p++) {
        cb->limits[p] = limits[p];
        for (int r = 0; r < CB_RESOURCE_COUNT; r++)
            atomic_init(&cb->counts[p][r], 0);
    }
    cb->stats = stats;
    atomic_init(&cb->retired, 0);
    for (int p = 0; p < PRIORITY_COUNT; p++) {
        for (int r = 0; r < CB_RESOURCE_COUNT; r++)
            update_gauge(cb, p, (cb_resource)r, 0);
    }
}

uint32_t cb_limit(const circuit_breakers *cb, int priority, cb_resource r)
{
    const cb_thresholds *t = &cb->limits[priority];
    switch (r) {
    case CB_CONNECTIONS: return t->max_connections;
    case CB_PENDING: return t->max_pending_requests;
    case CB_REQUESTS: return t->max_requests;
    case CB_CONNECTION_POOLS: return t->max_connection_pools;
    default: break;
    }
    if (!t->has_retry_budget)
        return t->max_retries;
    double base = (double)cb_count(cb, priority, CB_REQUESTS) + (double)cb_count(cb, priority, CB_PENDING);
    double budget = floor(base * t->retry_budget_percent / 100.0);
    return budget > t->retry_budget_min_concurrency ? (uint32_t)budget : t->retry_budget_min_concurrency;
}

int cb_try_acquire_connection(circuit_breakers *cb, int priority, uint64_t host_cx_active)
{
    if (host_cx_active >= cb->limits[priority].max_connections_per_host)
        return 0;
    return cb_try_acquire(cb, priority, CB_CONNECTIONS);
}

uint32_t cb_count(const circuit_breakers *cb, int priority, cb_resource r)
{
    return atomic_load_explicit(&((circuit_breakers *)cb)->counts[priority][r], memory_order_relaxed);
}

uint32_t cb_remaining(const circuit_breakers *cb, int priority, cb_resource r)
{
    uint32_t limit = cb_limit(cb, priority, r), n = cb_count(cb, priority, r);
    return n >= limit ? 0 : limit - n;
}

/* Envoy tracks no remaining retries under a retry budget. */
static int tracks_remaining(const circuit_breakers *cb, int priority, cb_resource r)
{
    const cb_thresholds *t = &cb->limits[priority];
    return t->track_remaining && !(r == CB_RETRIES && t->has_retry_budget);
}

void cb_retire(circuit_breakers *cb) { atomic_store_explicit(&cb->retired, 1, memory_order_relaxed); }

static void update_gauge(circuit_breakers *cb, int priority, cb_resource r, uint32_t now)
{
    if (cb->stats == NULL || atomic_load_explicit(&cb->retired, memory_order_relaxed))
        return;
    uint32_t limit = cb_limit(cb, priority, r);
    stats_set(cb->stats, (size_t)open_gauge[priority][r], now >= limit ? 1 : 0);
    if (tracks_remaining(cb, priority, r))
        stats_set(cb->stats, (size_t)remaining_gauge[priority][r], now >= limit ? 0 : (int64_t)(limit - now));
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
    case CB_CONNECTION_POOLS: return "max_connection_pools";
    default: return "max_retries";
    }
}
