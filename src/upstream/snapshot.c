/* snapshot.c: immutable cluster snapshots for workers (snapshot.h). */
#include "xdsnode/snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "xdsnode/cluster_stats.h"
#include "xdsnode/log.h"
#include "xdsnode/upstream_tls.h"

#define HOST_STAT_DEF(id, name, type) [HOST_STAT_##id] = {name, type},
const stat_def host_stat_defs[HOST_STAT_COUNT] = {HOST_STATS(HOST_STAT_DEF)};
#undef HOST_STAT_DEF

dp_cluster *dp_cluster_create(cluster_config *cfg, stats_scope *stats, uint64_t generation)
{
    dp_cluster *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->hosts = calloc(cfg->n_hosts ? cfg->n_hosts : 1, sizeof(host_stats));
    c->rq_active = calloc(cfg->n_hosts ? cfg->n_hosts : 1, sizeof(*c->rq_active));
    if (c->hosts == NULL || c->rq_active == NULL) {
        free(c->hosts);
        free(c->rq_active);
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_hosts; i++)
        c->rq_active[i] = &c->hosts[i].v[HOST_STAT_RQ_ACTIVE];
    atomic_init(&c->refs, 1);
    c->cfg = cfg;
    c->generation = generation;
    c->stats = stats;
    if (stats)
        stats_scope_ref(stats);
    cb_init(&c->cb, cfg->thresholds, stats);
    return c;
}

void dp_cluster_ref(dp_cluster *c) { atomic_fetch_add(&c->refs, 1); }

void dp_cluster_unref(dp_cluster *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    cluster_config_free(c->cfg);
    if (c->stats)
        stats_scope_unref(c->stats);
    upstream_tls_ctx_unref(c->tls);
    if (c->ssl_stats)
        stats_scope_unref(c->ssl_stats);
    free(c->hosts);
    free(c->rq_active);
    free(c);
}

void snapshot_ref(dp_snapshot *s) { atomic_fetch_add(&s->refs, 1); }

void snapshot_unref(dp_snapshot *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        dp_cluster_unref(s->clusters[i]);
    free(s->clusters);
    free(s);
}

dp_cluster *snapshot_find_n(const dp_snapshot *s, const char *name, size_t len)
{
    size_t lo = 0, hi = s ? s->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *cn = s->clusters[mid]->cfg->name;
        int cmp = strncmp(cn, name, len);
        if (cmp == 0)
            cmp = cn[len] == '\0' ? 0 : 1;
        if (cmp == 0)
            return s->clusters[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

dp_cluster *snapshot_find(const dp_snapshot *s, const char *name)
{
    return snapshot_find_n(s, name, strlen(name));
}

static dp_cluster *cluster_for(const cm_cluster *cc, const dp_snapshot *prev)
{
    dp_cluster *old = prev ? snapshot_find(prev, cc->name) : NULL;
    if (old && old->generation == cc->generation) {
        dp_cluster_ref(old);
        return old;
    }
    cluster_config *cfg;
    char err[512];
    if (cluster_config_from_bytes(cc->config, cc->config_len, cc->assignment, cc->assignment_len,
                                  &cfg, err, sizeof(err)) != 0) {
        log_warn("cluster '%s' not routable: %s", cc->name, err);
        return NULL;
    }
    if (old)
        cb_retire(&old->cb); /* the new generation's breaker owns the gauges */
    dp_cluster *c = dp_cluster_create(cfg, cc->stats, cc->generation);
    if (c == NULL) {
        cluster_config_free(cfg);
        return NULL;
    }
    c->added_via_api = cc->added_via_api;
    if (cc->tls) { /* built once per config by the cluster manager, shared read-only */
        upstream_tls_ctx_ref(cc->tls);
        c->tls = cc->tls;
        stats_scope_ref(cc->ssl_stats);
        c->ssl_stats = cc->ssl_stats;
    }
    stats_set(cc->stats, CLUSTER_STAT_MEMBERSHIP_TOTAL, (int64_t)cfg->n_hosts);
    size_t healthy = 0;
    for (size_t i = 0; i < cfg->n_hosts; i++)
        healthy += cluster_host_routable(&cfg->hosts[i]) ? 1 : 0;
    stats_set(cc->stats, CLUSTER_STAT_MEMBERSHIP_HEALTHY, (int64_t)healthy);
    return c;
}

dp_snapshot *snapshot_build(const cluster_manager *cm, const dp_snapshot *prev)
{
    dp_snapshot *s = calloc(1, sizeof(*s));
    size_t n = cluster_manager_count(cm);
    if (s == NULL || (s->clusters = calloc(n ? n : 1, sizeof(dp_cluster *))) == NULL) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    for (size_t i = 0; i < n; i++) {
        const cm_cluster *cc = cluster_manager_at(cm, i);
        if (cc->state != CM_CLUSTER_ACTIVE)
            continue;
        dp_cluster *c = cluster_for(cc, prev);
        if (c)
            s->clusters[s->n++] = c;
    }
    return s;
}

void dp_cluster_connect_failed(dp_cluster *c, size_t host)
{
    stats_inc(c->stats, CLUSTER_STAT_UPSTREAM_CX_CONNECT_FAIL);
    host_stat_add(&c->hosts[host], HOST_STAT_CX_CONNECT_FAIL, 1);
}
