/* Unit tests: load balancing (round robin, least request, random,
 * weights, priorities, health) and the cluster-wide circuit breakers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/circuit_breaker.h"
#include "xdsnode/cluster_stats.h"
#include "xdsnode/lb.h"

static cluster_config *make(lb_policy p, size_t n, const uint32_t *weights, const uint32_t *prios,
                            const int *health)
{
    cluster_config *c = calloc(1, sizeof(*c));
    c->lb = p;
    c->choice_count = 2;
    c->hosts = calloc(n, sizeof(cluster_host));
    c->n_hosts = n;
    for (size_t i = 0; i < n; i++) {
        c->hosts[i].weight = weights ? weights[i] : 1;
        c->hosts[i].priority = prios ? prios[i] : 0;
        c->hosts[i].health_status = health ? health[i] : 0;
    }
    return c;
}

static void count_picks(cluster_config *c, _Atomic uint64_t **active, int picks, int *counts)
{
    lb_state st;
    lb_state_init(&st, 1);
    for (int i = 0; i < picks; i++) {
        int h = lb_pick(c, active, &st);
        cr_assert(h >= 0);
        counts[h]++;
    }
}

Test(lb, round_robin_is_exact)
{
    cluster_config *c = make(LB_ROUND_ROBIN, 3, NULL, NULL, NULL);
    int counts[3] = {0};
    count_picks(c, NULL, 300, counts);
    cr_assert_eq(counts[0], 100);
    cr_assert_eq(counts[1], 100);
    cr_assert_eq(counts[2], 100);
    free(c->hosts);
    free(c);
}

Test(lb, round_robin_weights)
{
    uint32_t w[] = {1, 3};
    cluster_config *c = make(LB_ROUND_ROBIN, 2, w, NULL, NULL);
    int counts[2] = {0};
    count_picks(c, NULL, 400, counts);
    cr_assert_eq(counts[0], 100);
    cr_assert_eq(counts[1], 300);
    free(c->hosts);
    free(c);
}

Test(lb, unhealthy_draining_timeout_get_nothing)
{
    int health[] = {2, 3, 4, 1, 5, 0}; /* UNHEALTHY DRAINING TIMEOUT HEALTHY DEGRADED UNKNOWN */
    cluster_config *c = make(LB_RANDOM, 6, NULL, NULL, health);
    int counts[6] = {0};
    count_picks(c, NULL, 3000, counts);
    cr_assert_eq(counts[0] + counts[1] + counts[2], 0);
    cr_assert(counts[3] > 0 && counts[4] > 0 && counts[5] > 0);
    free(c->hosts);
    free(c);
}

Test(lb, lowest_priority_with_healthy_hosts)
{
    uint32_t prio[] = {0, 1, 1};
    int health[] = {2, 0, 0};
    cluster_config *c = make(LB_ROUND_ROBIN, 3, NULL, prio, health);
    int counts[3] = {0};
    count_picks(c, NULL, 10, counts);
    cr_assert_eq(counts[0], 0);
    cr_assert_eq(counts[1], 5);
    cr_assert_eq(counts[2], 5);
    c->hosts[0].health_status = 1;
    memset(counts, 0, sizeof(counts));
    count_picks(c, NULL, 10, counts);
    cr_assert_eq(counts[0], 10, "priority 0 takes everything once healthy");
    free(c->hosts);
    free(c);
}

Test(lb, no_routable_host)
{
    int health[] = {2};
    cluster_config *c = make(LB_LEAST_REQUEST, 1, NULL, NULL, health);
    lb_state st;
    lb_state_init(&st, 1);
    cr_assert_eq(lb_pick(c, NULL, &st), -1);
    c->n_hosts = 0;
    cr_assert_eq(lb_pick(c, NULL, &st), -1);
    free(c->hosts);
    free(c);
}

Test(lb, least_request_avoids_busy_host)
{
    cluster_config *c = make(LB_LEAST_REQUEST, 2, NULL, NULL, NULL);
    _Atomic uint64_t a0 = 50, a1 = 0;
    _Atomic uint64_t *active[] = {&a0, &a1};
    int counts[2] = {0};
    count_picks(c, active, 1000, counts);
    /* P2C: host 0 only wins when both draws hit it (~1/4). */
    cr_assert(counts[1] > 650, "%d", counts[1]);
    cr_assert(counts[0] > 150, "%d", counts[0]);
    free(c->hosts);
    free(c);
}

Test(lb, random_follows_weights)
{
    uint32_t w[] = {1, 9};
    cluster_config *c = make(LB_RANDOM, 2, w, NULL, NULL);
    int counts[2] = {0};
    count_picks(c, NULL, 10000, counts);
    cr_assert(counts[1] > 8500 && counts[1] < 9500, "%d", counts[1]);
    free(c->hosts);
    free(c);
}

static circuit_breakers *new_cb(uint32_t cx, uint32_t pending, uint32_t rq, uint32_t retries)
{
    cb_thresholds t[PRIORITY_COUNT] = {
        {.max_connections = cx, .max_pending_requests = pending, .max_requests = rq, .max_retries = retries,
         .max_connection_pools = UINT32_MAX},
        {.max_connections = 1024, .max_pending_requests = 1024, .max_requests = 1024, .max_retries = 3,
         .max_connection_pools = UINT32_MAX}};
    circuit_breakers *cb = calloc(1, sizeof(*cb));
    cb_init(cb, t, NULL);
    return cb;
}

Test(circuit_breaker, limits_per_resource_and_priority)
{
    circuit_breakers *cb = new_cb(2, 1, 1, 0);
    cr_assert(cb_try_acquire(cb, PRIORITY_DEFAULT, CB_CONNECTIONS));
    cr_assert(cb_try_acquire(cb, PRIORITY_DEFAULT, CB_CONNECTIONS));
    cr_assert_not(cb_try_acquire(cb, PRIORITY_DEFAULT, CB_CONNECTIONS));
    cr_assert(cb_try_acquire(cb, PRIORITY_HIGH, CB_CONNECTIONS), "HIGH has its own counters");
    cr_assert(cb_try_acquire(cb, PRIORITY_DEFAULT, CB_PENDING));
    cr_assert_not(cb_try_acquire(cb, PRIORITY_DEFAULT, CB_PENDING));
    cr_assert_not(cb_try_acquire(cb, PRIORITY_DEFAULT, CB_RETRIES), "max_retries 0");
    cb_release(cb, PRIORITY_DEFAULT, CB_CONNECTIONS);
    cr_assert(cb_try_acquire(cb, PRIORITY_DEFAULT, CB_CONNECTIONS));
    cb_force_acquire(cb, PRIORITY_DEFAULT, CB_CONNECTIONS);
    cr_assert_eq(cb_count(cb, PRIORITY_DEFAULT, CB_CONNECTIONS), 3);
    cr_assert_str_eq(cb_resource_limit_name(CB_PENDING), "max_pending_requests");
    cr_assert_str_eq(cb_resource_limit_name(CB_REQUESTS), "max_requests");
    free(cb);
}

static void *hammer(void *arg)
{
    circuit_breakers *cb = arg;
    int got = 0;
    for (int i = 0; i < 100000; i++) {
        if (cb_try_acquire(cb, PRIORITY_DEFAULT, CB_REQUESTS)) {
            got++;
            cb_release(cb, PRIORITY_DEFAULT, CB_REQUESTS);
        }
    }
    return (void *)(intptr_t)got;
}

Test(circuit_breaker, never_exceeds_limit_across_threads)
{
    circuit_breakers *cb = new_cb(1024, 1024, 3, 3);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, cb);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(cb_count(cb, PRIORITY_DEFAULT, CB_REQUESTS), 0);
    free(cb);
}

Test(circuit_breaker, per_host_max_connections_then_the_cluster_limit)
{
    circuit_breakers *cb = new_cb(3, 1, 1, 0);
    cb->limits[PRIORITY_DEFAULT].max_connections_per_host = 2;
    cb->limits[PRIORITY_HIGH].max_connections_per_host = UINT32_MAX;
    cr_assert(cb_try_acquire_connection(cb, PRIORITY_DEFAULT, 0));
    cr_assert(cb_try_acquire_connection(cb, PRIORITY_DEFAULT, 1));
    cr_assert_not(cb_try_acquire_connection(cb, PRIORITY_DEFAULT, 2), "the host has 2 open");
    cr_assert_eq(cb_count(cb, PRIORITY_DEFAULT, CB_CONNECTIONS), 2, "nothing taken on a host overflow");
    cr_assert(cb_try_acquire_connection(cb, PRIORITY_DEFAULT, 0), "another host: its own count");
    cr_assert_not(cb_try_acquire_connection(cb, PRIORITY_DEFAULT, 0), "cluster max_connections 3 reached");
    cr_assert(cb_try_acquire_connection(cb, PRIORITY_HIGH, 5), "HIGH has no per-host limit");
    free(cb);
}

static cb_thresholds thresholds_with(uint32_t cx, uint32_t pools, int track)
{
    return (cb_thresholds){.max_connections = cx, .max_pending_requests = 1024, .max_requests = 1024,
                           .max_retries = 3, .max_connection_pools = pools, .track_remaining = track,
                           .retry_budget_percent = 20.0, .retry_budget_min_concurrency = 3};
}

Test(circuit_breaker, gauges_open_and_remaining)
{
    stats_scope *st = cluster_stats_scope_create("c");
    cb_thresholds t[PRIORITY_COUNT] = {thresholds_with(2, 1, 1), thresholds_with(5, 9, 0)};
    circuit_breakers cb;
    cb_init(&cb, t, st);
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_REMAINING_CX), 2, "published at init");
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_REMAINING_RETRIES), 3);
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_HIGH_REMAINING_CX), 0, "HIGH does not track");
    cr_assert(cb_try_acquire(&cb, PRIORITY_DEFAULT, CB_CONNECTIONS));
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_REMAINING_CX), 1);
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_CX_OPEN), 0);
    cr_assert(cb_try_acquire(&cb, PRIORITY_DEFAULT, CB_CONNECTIONS));
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_REMAINING_CX), 0);
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_CX_OPEN), 1);
    cr_assert_eq(cb_remaining(&cb, PRIORITY_DEFAULT, CB_CONNECTIONS), 0);
    cr_assert(cb_try_acquire(&cb, PRIORITY_DEFAULT, CB_CONNECTION_POOLS));
    cr_assert_not(cb_try_acquire(&cb, PRIORITY_DEFAULT, CB_CONNECTION_POOLS), "max_connection_pools 1");
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_CX_POOL_OPEN), 1);
    cr_assert_str_eq(cb_resource_limit_name(CB_CONNECTION_POOLS), "max_connection_pools");
    cb_release(&cb, PRIORITY_DEFAULT, CB_CONNECTIONS);
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_CX_OPEN), 0);
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_REMAINING_CX), 1);
    stats_scope_unref(st);
}

Test(circuit_breaker, retry_budget_overrides_max_retries)
{
    cb_thresholds t[PRIORITY_COUNT] = {thresholds_with(1024, UINT32_MAX, 1), thresholds_with(1024, UINT32_MAX, 0)};
    t[PRIORITY_DEFAULT].has_retry_budget = 1;
    t[PRIORITY_DEFAULT].retry_budget_percent = 25.0;
    t[PRIORITY_DEFAULT].retry_budget_min_concurrency = 2;
    t[PRIORITY_DEFAULT].max_retries = 0;
    circuit_breakers cb;
    cb_init(&cb, t, NULL);
    cr_assert_eq(cb_limit(&cb, PRIORITY_DEFAULT, CB_RETRIES), 2, "min_retry_concurrency floor");
    for (int i = 0; i < 20; i++)
        cb_force_acquire(&cb, PRIORITY_DEFAULT, CB_REQUESTS);
    for (int i = 0; i < 4; i++)
        cb_force_acquire(&cb, PRIORITY_DEFAULT, CB_PENDING);
    cr_assert_eq(cb_limit(&cb, PRIORITY_DEFAULT, CB_RETRIES), 6, "25%% of 24 active + pending");
    for (int i = 0; i < 6; i++)
        cr_assert(cb_try_acquire(&cb, PRIORITY_DEFAULT, CB_RETRIES));
    cr_assert_not(cb_try_acquire(&cb, PRIORITY_DEFAULT, CB_RETRIES));
    cr_assert_eq(cb_limit(&cb, PRIORITY_HIGH, CB_RETRIES), 3, "HIGH keeps max_retries");
}

Test(circuit_breaker, retired_generation_leaves_the_gauges_alone)
{
    stats_scope *st = cluster_stats_scope_create("c");
    cb_thresholds t[PRIORITY_COUNT] = {thresholds_with(8, UINT32_MAX, 1), thresholds_with(8, UINT32_MAX, 0)};
    circuit_breakers old_cb, new_cb;
    cb_init(&old_cb, t, st);
    cr_assert(cb_try_acquire(&old_cb, PRIORITY_DEFAULT, CB_CONNECTIONS));
    t[PRIORITY_DEFAULT].max_connections = 2;
    cb_retire(&old_cb);
    cb_init(&new_cb, t, st);
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_REMAINING_CX), 2);
    cb_release(&old_cb, PRIORITY_DEFAULT, CB_CONNECTIONS); /* an old connection closes */
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_REMAINING_CX), 2, "the old limit 8 is not written back");
    cr_assert(cb_try_acquire(&new_cb, PRIORITY_DEFAULT, CB_CONNECTIONS));
    cr_assert_eq(stats_get(st, CLUSTER_STAT_CB_DEFAULT_REMAINING_CX), 1);
    stats_scope_unref(st);
}
