/*
 * stats.h: counters and gauges with Envoy's names, rendered for /stats
 * (text and JSON) and /stats/prometheus.
 *
 * A scope is a fixed set of stats that share a name prefix, such as every
 * "cluster.<name>." stat of one cluster: a static table of stat
 * definitions plus one array of atomic values. Names are only built when
 * rendered, so a cluster's stats cost a few hundred bytes.
 *
 * Owns: the store owns its scopes' registration; a scope is reference
 * counted (the store holds one reference while registered).
 * Threads: create/register/unregister/render on the main thread only;
 * stats_inc/add/set/get on a scope's values from any thread (atomics),
 * as long as the caller holds a reference to the scope.
 */
#ifndef XDSNODE_STATS_H
#define XDSNODE_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "xdsnode/admin.h"

typedef enum { STAT_COUNTER, STAT_GAUGE } stat_type;

typedef struct {
    const char *name; /* suffix after the scope prefix, e.g. "upstream_cx_total" */
    stat_type type;
} stat_def;

typedef struct stats_scope {
    char *prefix;     /* e.g. "cluster.backend." (':' already mapped to '_') */
    char *tag_name;   /* Prometheus label, e.g. "envoy_cluster_name", or NULL */
    char *tag_value;  /* e.g. "backend" */
    const char *tag_base;  /* Prometheus name part kept instead of the prefix, e.g. "cluster." */
    const stat_def *defs;
    size_t n;
    _Atomic uint64_t *values; /* gauges store int64 bit patterns */
    _Atomic unsigned char *used;
    _Atomic int refs;
} stats_scope;

typedef struct stats_store stats_store;

stats_store *stats_store_create(void);
/* Unregisters and unrefs every scope. */
void stats_store_destroy(stats_store *st);

/* Creates a scope of n stats named prefix + defs[i].name, all zero, with
 * one reference (the caller's). defs must outlive the scope (static).
 * tag_* (may be NULL) make Prometheus output a label: stats named
 * tag_base + X are exported as envoy_<tag_base><X>{tag_name="tag_value"}.
 * Returns NULL on allocation failure. */
stats_scope *stats_scope_create(const char *prefix, const stat_def *defs, size_t n,
                                const char *tag_base, const char *tag_name, const char *tag_value);
void stats_scope_ref(stats_scope *s);
void stats_scope_unref(stats_scope *s);

/* Registers a scope with the store (the store takes its own reference). */
int stats_store_add(stats_store *st, stats_scope *s);
/* Unregisters (and drops the store's reference). */
void stats_store_remove(stats_store *st, stats_scope *s);

static inline void stats_add(stats_scope *s, size_t i, uint64_t n)
{
    atomic_fetch_add_explicit(&s->values[i], n, memory_order_relaxed);
    atomic_store_explicit(&s->used[i], 1, memory_order_relaxed);
}
static inline void stats_inc(stats_scope *s, size_t i) { stats_add(s, i, 1); }
static inline void stats_dec(stats_scope *s, size_t i)
{
    atomic_fetch_sub_explicit(&s->values[i], 1, memory_order_relaxed);
    atomic_store_explicit(&s->used[i], 1, memory_order_relaxed);
}
static inline void stats_set(stats_scope *s, size_t i, int64_t v)
{
    atomic_store_explicit(&s->values[i], (uint64_t)v, memory_order_relaxed);
    atomic_store_explicit(&s->used[i], 1, memory_order_relaxed);
}
static inline uint64_t stats_get(const stats_scope *s, size_t i)
{
    return atomic_load_explicit(&((stats_scope *)s)->values[i], memory_order_relaxed);
}

/* Maps a name for use in a stat name (':' becomes '_'), as Envoy does.
 * Returns a malloc'd string. */
char *stats_sanitize_name(const char *name);

/* A scope for one named thing of a kind: prefix "<base><name>." (name
 * sanitized), exported to Prometheus as envoy_<base><stat>{tag_name=
 * "<name>"}; e.g. base "cluster.", tag "envoy_cluster_name". */
stats_scope *stats_scope_create_named(const char *base, const char *name, const stat_def *defs,
                                      size_t n, const char *tag_name);

/* /stats: "name: value" lines sorted by name; ?format=json gives
 * {"stats":[{"name":..,"value":..}]}; ?format=prometheus as below;
 * ?filter=RE keeps names matching the POSIX extended regex (search, not
 * whole-name); ?usedonly keeps stats that were ever written. */
int stats_render(const stats_store *st, const char *query, admin_response *resp);

/* /stats/prometheus: text exposition format 0.0.4. */
int stats_render_prometheus(const stats_store *st, const char *query, admin_response *resp);

#endif
