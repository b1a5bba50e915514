/*
 * lb.h: host selection for one cluster: ROUND_ROBIN, LEAST_REQUEST (power
 * of `choice_count` choices) and RANDOM, with endpoint weights and
 * priorities (the lowest-numbered priority that has a routable host
 * takes all requests; Envoy's overprovisioning spill-over between
 * priorities is not modelled). Hosts whose EDS health is UNHEALTHY,
 * DRAINING or TIMEOUT are skipped.
 *
 * Owns: nothing. lb_state is the caller's per-worker state (round robin
 * position, random generator); hosts' active-request counts are atomics
 * shared by all workers. Threads: any, one lb_state per thread.
 */
#ifndef XDSNODE_LB_H
#define XDSNODE_LB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "xdsnode/cluster_config.h"

typedef struct {
    uint64_t rr_next;
    uint64_t rng; /* xorshift64 state, never 0 */
} lb_state;

void lb_state_init(lb_state *st, uint64_t seed);

/* Picks a host index for `cfg`, reading rq_active[i] (may be NULL for
 * policies that do not need it). Returns -1 when no host is routable. */
int lb_pick(const cluster_config *cfg, _Atomic uint64_t *const *rq_active, lb_state *st);

/* A pseudo-random number from the state (also used for weighted clusters). */
uint64_t lb_random(lb_state *st);

#endif
