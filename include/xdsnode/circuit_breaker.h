/*
 * circuit_breaker.h: a cluster's resource manager, as Envoy's: counters of
 * open connections, pending requests, active requests and active retries
 * per routing priority, checked against the cluster's thresholds. The
 * counters are shared by every worker (atomics), so the limits hold for
 * the node as a whole. Every change updates the circuit_breakers.<prio>.*_open
 * gauges and, with track_remaining, the remaining_* gauges.
 *
 * Owns: nothing but its counters; `stats` is borrowed (the owner of the
 * circuit_breakers holds a reference). Threads: any (lock-free).
 */
#ifndef XDSNODE_CIRCUIT_BREAKER_H
#define XDSNODE_CIRCUIT_BREAKER_H

#include <stdatomic.h>
#include <stdint.h>

#include "xdsnode/cluster_config.h"
#include "xdsnode/stats.h"

typedef enum {
    CB_CONNECTIONS = 0,
    CB_PENDING,
    CB_REQUESTS,
    CB_RETRIES,
    CB_CONNECTION_POOLS,
    CB_RESOURCE_COUNT
} cb_resource;

typedef struct {
    cb_thresholds limits[PRIORITY_COUNT];
    _Atomic uint32_t counts[PRIORITY_COUNT][CB_RESOURCE_COUNT];
    stats_scope *stats; /* cluster scope for the circuit_breakers.*_open gauges, or NULL */
    _Atomic int retired; /* a newer generation owns the gauges */
} circuit_breakers;

void cb_init(circuit_breakers *cb, const cb_thresholds limits[PRIORITY_COUNT], stats_scope *stats);
/* The cluster's stats scope now belongs to a newer generation: this one
 * keeps counting (its connections drain) but stops writing the gauges. */
void cb_retire(circuit_breakers *cb);

/* Takes one unit of `r` if it is below its limit. Returns 1 if taken, 0
 * if the limit is reached (the caller counts the overflow). */
int cb_try_acquire(circuit_breakers *cb, int priority, cb_resource r);
/* A new connection to a host that has `host_cx_active` open (all workers,
 * this generation): Envoy's canCreateConnection, i.e. below the host's
 * per_host_thresholds max_connections, then cb_try_acquire(CB_CONNECTIONS).
 * Returns 1 if the connection slot was taken, 0 if either limit is
 * reached (the caller counts upstream_cx_overflow). */
int cb_try_acquire_connection(circuit_breakers *cb, int priority, uint64_t host_cx_active);
/* Takes one unit regardless of the limit (Envoy lets a pool with no
 * connection open one anyway). */
void cb_force_acquire(circuit_breakers *cb, int priority, cb_resource r);
void cb_release(circuit_breakers *cb, int priority, cb_resource r);
uint32_t cb_count(const circuit_breakers *cb, int priority, cb_resource r);
/* The limit now: for CB_RETRIES with a retry budget, budget_percent of
 * the active plus pending requests, at least min_retry_concurrency. */
uint32_t cb_limit(const circuit_breakers *cb, int priority, cb_resource r);
/* limit - count, 0 when at or over the limit. */
uint32_t cb_remaining(const circuit_breakers *cb, int priority, cb_resource r);

/* The threshold's field name ("max_connections", ...), for the
 * x-xdsnode-overflow header. */
const char *cb_resource_limit_name(cb_resource r);

#endif
