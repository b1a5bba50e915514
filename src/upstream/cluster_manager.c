/* cluster_manager.c: the node's clusters, sorted by name (cluster_manager.h). */
#include "xdsnode/cluster_manager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/cluster_stats.h"
#include "xdsnode/dns.h"

struct cluster_manager {
    cm_cluster *clusters; /* sorted by name */
    size_t n, cap;
    stats_store *store;
    stats_scope *stats; /* cluster_manager.* */
    cm_change_fn on_change;
    void *on_change_ctx;
    int batch_depth;
    int batch_dirty;
    uint64_t last_generation; /* generations are unique across all clusters */
};

stats_store *cluster_manager_stats_store(const cluster_manager *cm) { return cm->store; }

cluster_manager *cluster_manager_create(stats_store *store)
{
    cluster_manager *cm = calloc(1, sizeof(cluster_manager));
    if (cm == NULL)
        return NULL;
    cm->store = store;
    cm->stats = stats_scope_create("cluster_manager.", cm_stat_defs, CM_STAT_COUNT, NULL, NULL, NULL);
    if (cm->stats == NULL || stats_store_add(store, cm->stats) != 0) {
        stats_scope_unref(cm->stats);
        free(cm);
        return NULL;
    }
    return cm;
}

static void cm_cluster_free(cluster_manager *cm, cm_cluster *c)
{
    if (c->stats) {
        stats_store_remove(cm->store, c->stats);
        stats_scope_unref(c->stats);
    }
    if (c->ssl_stats) {
        stats_store_remove(cm->store, c->ssl_stats);
        stats_scope_unref(c->ssl_stats);
    }
    upstream_tls_ctx_unref(c->tls);
    upstream_tls_ctx_unref(c->warming_tls);
    free(c->name);
    free(c->config);
    free(c->version_info);
    free(c->assignment);
    free(c->warming_config);
    free(c->warming_version);
}

void cluster_manager_destroy(cluster_manager *cm)
{
    if (cm == NULL)
        return;
    for (size_t i = 0; i < cm->n; i++)
        cm_cluster_free(cm, &cm->clusters[i]);
    stats_store_remove(cm->store, cm->stats);
    stats_scope_unref(cm->stats);
    free(cm->clusters);
    free(cm);
}

void cluster_manager_set_change_listener(cluster_manager *cm, cm_change_fn fn, void *ctx)
{
    cm->on_change = fn;
    cm->on_change_ctx = ctx;
}

/* Recomputes the cluster_manager.* gauges and tells the observer. */
static void cm_changed(cluster_manager *cm)
{
    if (cm->batch_depth > 0) {
        cm->batch_dirty = 1;
        return;
    }
    size_t active = 0, warming = 0;
    for (size_t i = 0; i < cm->n; i++) {
        if (cm->clusters[i].state == CM_CLUSTER_WARMING)
            warming++;
        else
            active++;
        if (cm->clusters[i].warming_config)
            warming++;
    }
    stats_set(cm->stats, CM_STAT_ACTIVE_CLUSTERS, (int64_t)active);
    stats_set(cm->stats, CM_STAT_WARMING_CLUSTERS, (int64_t)warming);
    if (cm->on_change)
        cm->on_change(cm->on_change_ctx, cm);
}

void cluster_manager_begin_batch(cluster_manager *cm) { cm->batch_depth++; }

void cluster_manager_end_batch(cluster_manager *cm)
{
    if (cm->batch_depth > 0 && --cm->batch_depth == 0 && cm->batch_dirty) {
        cm->batch_dirty = 0;
        cm_changed(cm);
    }
}

stats_scope *cluster_manager_stats(cluster_manager *cm) { return cm->stats; }

/* Index where `name` is or would be inserted; *found says which. */
static size_t lower_bound(const cluster_manager *cm, const char *name, int *found)
{
    size_t lo = 0, hi = cm->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(cm->clusters[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < cm->n && strcmp(cm->clusters[lo].name, name) == 0;
    return lo;
}

static int reserve(cluster_manager *cm)
{
    if (cm->n < cm->cap)
        return 0;
    size_t cap = cm->cap ? cm->cap * 2 : 16;
    cm_cluster *p = realloc(cm->clusters, cap * sizeof(*p));
    if (p == NULL)
        return -1;
    cm->clusters = p;
    cm->cap = cap;
    return 0;
}

static uint8_t *copy_bytes(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (p != NULL && len)
        memcpy(p, data, len);
    return p;
}

static uint64_t next_generation(cluster_manager *cm) { return ++cm->last_generation; }

/* Puts `tls` (referenced) into *slot; a cluster using TLS gets its
 * cluster.<name>.ssl. stats the first time. Returns 0 or -1 (OOM). */
static int set_tls(cluster_manager *cm, cm_cluster *e, upstream_tls_ctx **slot, upstream_tls_ctx *tls,
                   const char *stat_name)
{
    if (tls && e->ssl_stats == NULL) {
        e->ssl_stats = upstream_tls_stats_scope_create(stat_name);
        if (e->ssl_stats == NULL || stats_store_add(cm->store, e->ssl_stats) != 0) {
            stats_scope_unref(e->ssl_stats);
            e->ssl_stats = NULL;
            return -1;
        }
    }
    upstream_tls_ctx_ref(tls);
    upstream_tls_ctx_unref(*slot);
    *slot = tls;
    return 0;
}

static const char *stat_name_of(const pb_cluster *c)
{
    return c->alt_stat_name[0] ? c->alt_stat_name : c->name;
}

static int fill_cluster(cluster_manager *cm, cm_cluster *out, const pb_cluster *c, const char *version)
{
    memset(out, 0, sizeof(*out));
    out->config_len = protobuf_c_message_get_packed_size(&c->base);
    out->config = malloc(out->config_len ? out->config_len : 1);
    out->name = strdup(c->name);
    out->version_info = strdup(version);
    out->stats = cluster_stats_scope_create(c->alt_stat_name[0] ? c->alt_stat_name : c->name);
    if (out->config == NULL || out->name == NULL || out->version_info == NULL ||
        out->stats == NULL || stats_store_add(cm->store, out->stats) != 0) {
        cm_cluster_free(cm, out);
        return -1;
    }
    protobuf_c_message_pack(&c->base, out->config);
    clock_gettime(CLOCK_REALTIME, &out->last_updated);
    out->generation = next_generation(cm);
    return 0;
}

int cluster_manager_add_static(cluster_manager *cm, const pb_cluster *c, char *err, size_t errlen)
{
    int found;
    size_t at = lower_bound(cm, c->name, &found);
    if (found) {
        snprintf(err, errlen, "cluster manager: duplicate cluster '%s'", c->name);
        return -1;
    }
    upstream_tls_ctx *tls;
    char why[1024];
    if (upstream_tls_ctx_create(c, "", &tls, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cluster '%s': %s", c->name, why);
        return -1;
    }
    cm_cluster entry;
    if (reserve(cm) != 0 || fill_cluster(cm, &entry, c, "") != 0) {
        upstream_tls_ctx_unref(tls);
        snprintf(err, errlen, "cluster manager: out of memory");
        return -1;
    }
    int rc = set_tls(cm, &entry, &entry.tls, tls, stat_name_of(c));
    upstream_tls_ctx_unref(tls);
    if (rc != 0) {
        cm_cluster_free(cm, &entry);
        snprintf(err, errlen, "cluster manager: out of memory");
        return -1;
    }
    /* A DNS cluster warms until its first resolution (dns.h). */
    entry.state = dns_cluster_is_dns(c) ? CM_CLUSTER_WARMING : CM_CLUSTER_ACTIVE;
    memmove(&cm->clusters[at + 1], &cm->clusters[at], (cm->n - at) * sizeof(cm_cluster));
    cm->clusters[at] = entry;
    cm->n++;
    stats_inc(cm->stats, CM_STAT_CLUSTER_ADDED);
    cm_changed(cm);
    return 0;
}

size_t cluster_manager_count(const cluster_manager *cm) { return cm->n; }

const cm_cluster *cluster_manager_at(const cluster_manager *cm, size_t i)
{
    return i < cm->n ? &cm->clusters[i] : NULL;
}

const cm_cluster *cluster_manager_find(const cluster_manager *cm, const char *name)
{
    int found;
    size_t at = lower_bound(cm, name, &found);
    return found ? &cm->clusters[at] : NULL;
}

/* --- dynamic clusters ------------------------------------------------------ */

static cm_cluster *find_mut(cluster_manager *cm, const char *name)
{
    int found;
    size_t at = lower_bound(cm, name, &found);
    return found ? &cm->clusters[at] : NULL;
}

/* Replaces a config slot (active or warming) with a copy of bytes/version. */
static int set_config(uint8_t **cfg_slot, size_t *len_slot, char **ver_slot, struct timespec *when,
                      const uint8_t *bytes, size_t len, const char *version)
{
    uint8_t *cfg = copy_bytes(bytes, len);
    char *ver = strdup(version);
    if (cfg == NULL || ver == NULL) {
        free(cfg);
        free(ver);
        return -1;
    }
    free(*cfg_slot);
    free(*ver_slot);
    *cfg_slot = cfg;
    *len_slot = len;
    *ver_slot = ver;
    clock_gettime(CLOCK_REALTIME, when);
    return 0;
}

static int replace_warming(cm_cluster *e, const uint8_t *bytes, size_t len, const char *version)
{
    return set_config(&e->warming_config, &e->warming_config_len, &e->warming_version,
                      &e->warming_updated, bytes, len, version);
}

static int replace_active(cluster_manager *cm, cm_cluster *e, const uint8_t *bytes, size_t len,
                          const char *version)
{
    if (set_config(&e->config, &e->config_len, &e->version_info, &e->last_updated, bytes, len,
                   version) != 0)
        return -1;
    free(e->warming_config);
    free(e->warming_version);
    e->warming_config = NULL;
    e->warming_version = NULL;
    upstream_tls_ctx_unref(e->warming_tls);
    e->warming_tls = NULL;
    e->generation = next_generation(cm);
    return 0;
}

static int insert_dynamic(cluster_manager *cm, const pb_cluster *c, const char *version, int warming,
                          upstream_tls_ctx *tls, char *err, size_t errlen)
{
    int found;
    size_t at = lower_bound(cm, c->name, &found);
    cm_cluster entry;
    if (reserve(cm) != 0 || fill_cluster(cm, &entry, c, version) != 0) {
        snprintf(err, errlen, "cluster manager: out of memory");
        return -1;
    }
    if (set_tls(cm, &entry, &entry.tls, tls, stat_name_of(c)) != 0) {
        cm_cluster_free(cm, &entry);
        snprintf(err, errlen, "cluster manager: out of memory");
        return -1;
    }
    entry.added_via_api = 1;
    entry.state = warming ? CM_CLUSTER_WARMING : CM_CLUSTER_ACTIVE;
    memmove(&cm->clusters[at + 1], &cm->clusters[at], (cm->n - at) * sizeof(cm_cluster));
    cm->clusters[at] = entry;
    cm->n++;
    stats_inc(cm->stats, CM_STAT_CLUSTER_ADDED);
    return 0;
}

int cluster_manager_upsert_dynamic(cluster_manager *cm, const pb_cluster *c, const uint8_t *bytes,
                                   size_t len, const char *version, int warming,
                                   upstream_tls_ctx *tls, char *err, size_t errlen)
{
    cm_cluster *e = find_mut(cm, c->name);
    int rc;
    if (e == NULL) {
        rc = insert_dynamic(cm, c, version, warming, tls, err, errlen);
    } else if (!e->added_via_api) {
        snprintf(err, errlen, "cannot update static cluster '%s'", c->name);
        return -1;
    } else {
        if (e->state == CM_CLUSTER_ACTIVE && warming) {
            rc = replace_warming(e, bytes, len, version);
            if (rc == 0)
                rc = set_tls(cm, e, &e->warming_tls, tls, stat_name_of(c));
        } else {
            rc = replace_active(cm, e, bytes, len, version);
            if (rc == 0)
                rc = set_tls(cm, e, &e->tls, tls, stat_name_of(c));
        }
        if (rc == 0 && !warming)
            e->state = CM_CLUSTER_ACTIVE;
        if (rc != 0)
            snprintf(err, errlen, "cluster manager: out of memory");
        else
            stats_inc(cm->stats, CM_STAT_CLUSTER_MODIFIED);
    }
    if (rc == 0)
        cm_changed(cm);
    return rc;
}

int cluster_manager_remove_dynamic(cluster_manager *cm, const char *name)
{
    int found;
    size_t at = lower_bound(cm, name, &found);
    if (!found || !cm->clusters[at].added_via_api)
        return -1;
    cm_cluster_free(cm, &cm->clusters[at]);
    memmove(&cm->clusters[at], &cm->clusters[at + 1], (cm->n - at - 1) * sizeof(cm_cluster));
    cm->n--;
    stats_inc(cm->stats, CM_STAT_CLUSTER_REMOVED);
    cm_changed(cm);
    return 0;
}

/* Makes a warming config (or a warming new cluster) the active one. */
static int promote(cluster_manager *cm, cm_cluster *e)
{
    if (e->warming_config) {
        uint8_t *cfg = e->warming_config;
        size_t len = e->warming_config_len;
        char *ver = e->warming_version;
        e->warming_config = NULL;
        e->warming_version = NULL;
        free(e->config);
        free(e->version_info);
        e->config = cfg;
        e->config_len = len;
        e->version_info = ver;
        e->last_updated = e->warming_updated;
        upstream_tls_ctx_unref(e->tls);
        e->tls = e->warming_tls;
        e->warming_tls = NULL;
    }
    e->state = CM_CLUSTER_ACTIVE;
    e->generation = next_generation(cm);
    return 0;
}

int cluster_manager_set_assignment(cluster_manager *cm, const char *name, const uint8_t *cla,
                                   size_t len)
{
    cm_cluster *e = find_mut(cm, name);
    if (e == NULL)
        return -1;
    uint8_t *copy = copy_bytes(cla, len);
    if (copy == NULL)
        return -1;
    free(e->assignment);
    e->assignment = copy;
    e->assignment_len = len;
    promote(cm, e);
    stats_inc(cm->stats, CM_STAT_CLUSTER_UPDATED);
    cm_changed(cm);
    return 0;
}

int cluster_manager_finish_warming(cluster_manager *cm, const char *name)
{
    cm_cluster *e = find_mut(cm, name);
    if (e == NULL)
        return -1;
    if (e->state == CM_CLUSTER_ACTIVE && e->warming_config == NULL)
        return 0;
    promote(cm, e);
    cm_changed(cm);
    return 0;
}
