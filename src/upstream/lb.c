/* lb.c: round robin, least request (P2C) and random host selection (lb.h). */
#include "xdsnode/lb.h"

void lb_state_init(lb_state *st, uint64_t seed)
{
    st->rr_next = seed;
    st->rng = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    if (st->rng == 0)
        st->rng = 1;
}

uint64_t lb_random(lb_state *st)
{
    uint64_t x = st->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st->rng = x;
    return x;
}

/* The priority level in use: the lowest number with a routable host. */
static int active_priority(const cluster_config *cfg, uint64_t *total_weight)
{
    int best = -1;
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        const cluster_host *h = &cfg->hosts[i];
        if (cluster_host_routable(h) && (best < 0 || h->priority < (uint32_t)best))
            best = (int)h->priority;
    }
    *total_weight = 0;
    for (size_t i = 0; best >= 0 && i < cfg->n_hosts; i++) {
        const cluster_host *h = &cfg->hosts[i];
        if (cluster_host_routable(h) && h->priority == (uint32_t)best)
            *total_weight += h->weight;
    }
    return best;
}

/* The host owning position `pos` (< total weight) among the level's hosts. */
static int host_at_weight(const cluster_config *cfg, int prio, uint64_t pos)
{
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        const cluster_host *h = &cfg->hosts[i];
        if (!cluster_host_routable(h) || h->priority != (uint32_t)prio)
            continue;
        if (pos < h->weight)
            return (int)i;
        pos -= h->weight;
    }
    return -1;
}

/* Round robin over the weighted ring: a host of weight w takes w
 * consecutive positions, so over any total-weight window each host gets
 * exactly its share. */
static int pick_round_robin(const cluster_config *cfg, int prio, uint64_t total, lb_state *st)
{
    uint64_t n = st->rr_next++;
    return host_at_weight(cfg, prio, n % total);
}

static int pick_least_request(const cluster_config *cfg, int prio, uint64_t total,
                              _Atomic uint64_t *const *rq_active, lb_state *st, uint32_t choices)
{
    int best = -1;
    uint64_t best_active = 0;
    for (uint32_t c = 0; c < choices; c++) {
        int i = host_at_weight(cfg, prio, lb_random(st) % total);
        uint64_t a = rq_active ? atomic_load_explicit(rq_active[i], memory_order_relaxed) : 0;
        if (best < 0 || a < best_active) {
            best = i;
            best_active = a;
        }
    }
    return best;
}

int lb_pick(const cluster_config *cfg, _Atomic uint64_t *const *rq_active, lb_state *st)
{
    uint64_t total;
    int prio = active_priority(cfg, &total);
    if (prio < 0 || total == 0)
        return -1;
    switch (cfg->lb) {
    case LB_LEAST_REQUEST:
        return pick_least_request(cfg, prio, total, rq_active, st, cfg->choice_count);
    case LB_RANDOM:
        return host_at_weight(cfg, prio, lb_random(st) % total);
    default:
        return pick_round_robin(cfg, prio, total, st);
    }
}
