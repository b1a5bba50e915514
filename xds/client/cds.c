/* cds.c: Cluster updates (SotW and Delta): validate every resource, NACK
 * the whole update on any error, otherwise apply it to the cluster manager
 * and ACK (see xds_client.h). */
#include "xds_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/cluster_stats.h"
#include "xdsnode/log.h"
#include "xdsnode/validate.h"

/* One Cluster of an update. */
typedef struct {
    const char *name;
    pb_cluster *cluster;  /* decoded; NULL if it did not parse */
    const uint8_t *bytes; /* as received */
    size_t len;
    const char *version;  /* per-resource version (Delta) or the update's (SotW) */
    upstream_tls_ctx *tls;/* its TLS context, built while checking (NULL: plaintext or unchanged) */
} cds_item;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *type_name_of(const char *type_url)
{
    const char *slash = strrchr(type_url, '/');
    return slash ? slash + 1 : type_url;
}

static void free_items(cds_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (items[i].cluster)
            protobuf_c_message_free_unpacked(&items[i].cluster->base, NULL);
        upstream_tls_ctx_unref(items[i].tls);
    }
    free(items);
}

static int same_config(const cm_cluster *e, const cds_item *it)
{
    if (e->warming_config)
        return e->warming_config_len == it->len && memcmp(e->warming_config, it->bytes, it->len) == 0;
    return e->config_len == it->len && memcmp(e->config, it->bytes, it->len) == 0;
}

/* Checks one item; on error appends "NAME: reason" to why and records it. */
static int check_item(struct xds_client *c, cds_item *it, strbuf *why, xds_failure *f)
{
    char err[1024] = "";
    if (it->cluster == NULL) {
        snprintf(err, sizeof(err), "cannot parse the resource as %s", type_name_of(XDS_CDS_TYPE_URL));
    } else if (validate_cluster(it->cluster, "", err, sizeof(err)) == 0) {
        const cm_cluster *existing = cluster_manager_find(c->cm, it->cluster->name);
        err[0] = '\0';
        if (existing && !existing->added_via_api)
            snprintf(err, sizeof(err), "cannot update static cluster '%s'", it->name);
        /* TLS: files read and the context built once, now, so a bad one
         * NACKs the update; an unchanged cluster keeps the context it has. */
        else if (!(existing && same_config(existing, it)) &&
                 upstream_tls_ctx_create(it->cluster, "", &it->tls, err, sizeof(err)) != 0)
            it->tls = NULL;
    }
    if (err[0] == '\0')
        return 0;
    strbuf_printf(why, "%s%s: %s", why->len ? "; " : "", it->name[0] ? it->name : "<unnamed>", err);
    xds_failure_add(f, it->name, it->bytes, it->len, err);
    return -1;
}

/* Decodes an item from an Any; a wrong type is a parse failure. */
static void decode_item(cds_item *it, const Google__Protobuf__Any *any, const char *name_hint)
{
    it->bytes = any ? any->value.data : NULL;
    it->len = any ? any->value.len : 0;
    it->cluster = NULL;
    if (any && strcmp(type_name_of(any->type_url), type_name_of(XDS_CDS_TYPE_URL)) == 0)
        it->cluster = (pb_cluster *)protobuf_c_message_unpack(PB_CLUSTER_DESC, NULL, it->len, it->bytes);
    it->name = it->cluster ? it->cluster->name : name_hint;
}

static void note_ignored_fields(const cm_cluster *e, const pb_cluster *cl)
{
    char fields[512];
    size_t n = validate_cluster_ignored_fields(cl, fields, sizeof(fields));
    stats_set(e->stats, CLUSTER_STAT_XDSNODE_IGNORED_FIELDS, (int64_t)n);
    if (n > 0)
        log_info("cds: cluster '%s': kept but not acted on: %s", cl->name, fields);
}

/* Applies one valid cluster. Returns 0, or -1 with err. */
static int apply_item(struct xds_client *c, const cds_item *it, char *err, size_t errlen)
{
    const cm_cluster *e = cluster_manager_find(c->cm, it->name);
    int existed = e != NULL;
    if (e && same_config(e, it)) {
        log_debug("cds: cluster '%s' unchanged", it->name);
        return 0;
    }
    int is_eds = it->cluster->eds_cluster_config != NULL;
    int is_dns = dns_cluster_is_dns(it->cluster);
    int warming = is_dns && c->dns != NULL;
    if (is_eds)
        warming = eds_watch_cluster(c, it->cluster);
    else
        eds_unwatch_cluster(c, it->name);
    if (!is_dns && c->dns)
        dns_resolver_unwatch(c->dns, it->name);
    if (cluster_manager_upsert_dynamic(c->cm, it->cluster, it->bytes, it->len, it->version, warming,
                                       it->tls, err, errlen) != 0)
        return -1;
    e = cluster_manager_find(c->cm, it->name);
    note_ignored_fields(e, it->cluster);
    if (is_dns && c->dns && dns_resolver_watch(c->dns, it->cluster) != 0)
        log_error("cds: cluster '%s': cannot start DNS resolution", it->name);
    if (warming && is_eds) {
        eds_start_warming_timer(c, it->name);
    } else if (is_eds) {
        size_t len;
        const char *svc = it->cluster->eds_cluster_config->service_name[0]
                              ? it->cluster->eds_cluster_config->service_name : it->name;
        const uint8_t *cla = xds_client_eds_resource(c, svc, &len, NULL);
        if (cla)
            cluster_manager_set_assignment(c->cm, it->name, cla, len);
    }
    log_info("cds: %s cluster '%s'%s", existed ? "updated" : "added", it->name,
             warming ? " (warming)" : "");
    return 0;
}

static void remove_cluster(struct xds_client *c, const char *name)
{
    eds_unwatch_cluster(c, name);
    if (c->dns)
        dns_resolver_unwatch(c->dns, name);
    if (cluster_manager_remove_dynamic(c->cm, name) == 0)
        log_info("cds: removed cluster '%s'", name);
}

/* SotW: every dynamic cluster absent from the update goes. */
static void remove_absent(struct xds_client *c, const cds_item *items, size_t n)
{
    const char **names = malloc((n ? n : 1) * sizeof(*names));
    if (names == NULL)
        return;
    for (size_t j = 0; j < n; j++)
        names[j] = items[j].name;
    qsort(names, n, sizeof(*names), cmp_name);
    for (size_t i = cluster_manager_count(c->cm); i-- > 0;) {
        const cm_cluster *e = cluster_manager_at(c->cm, i);
        if (!e->added_via_api)
            continue;
        const char *key = e->name;
        if (bsearch(&key, names, n, sizeof(*names), cmp_name) == NULL) {
            char *name = xds_strdup(e->name);
            remove_cluster(c, name);
            free(name);
        }
    }
    free(names);
}

/* Names given twice in one update: each second one is an error. */
static int check_duplicates(cds_item *items, size_t n, strbuf *why, xds_failure *f)
{
    const char **names = malloc((n ? n : 1) * sizeof(*names));
    if (names == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        names[i] = items[i].name;
    qsort(names, n, sizeof(*names), cmp_name);
    int bad = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(names[i], names[i - 1]) != 0 || (i > 1 && strcmp(names[i], names[i - 2]) == 0))
            continue;
        char err[600];
        snprintf(err, sizeof(err), "duplicate cluster '%s' in one update", names[i]);
        strbuf_printf(why, "%s%s: %s", why->len ? "; " : "", names[i], err);
        xds_failure_add(f, names[i], NULL, 0, err);
        bad = 1;
    }
    free(names);
    return bad;
}

/* Validates all items; on any error NACKs and returns -1. */
static int validate_all(struct xds_client *c, cds_item *items, size_t n, const char *version,
                        const char *nonce)
{
    strbuf why;
    strbuf_init(&why);
    xds_failure f;
    memset(&f, 0, sizeof(f));
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= check_item(c, &items[i], &why, &f) != 0;
    bad |= check_duplicates(items, n, &why, &f);
    if (!bad) {
        strbuf_free(&why);
        xds_failure_clear(&f);
        return 0;
    }
    char *text = strbuf_take(&why, NULL);
    char *msg = malloc(strlen(text ? text : "") + 64);
    sprintf(msg, "Error adding/updating cluster(s) %s", text ? text : "");
    log_warn("cds: rejecting version %s: %s", version, msg);
    xds_failure_clear(&c->cds.failure);
    c->cds.failure = f;
    xds_failure_record(&c->cds.failure, version, msg);
    stats_inc(c->cds_stats, CDS_STAT_UPDATE_REJECTED);
    xds_ack_or_nack(c, &c->cds, version, nonce, msg);
    free(text);
    free(msg);
    return -1;
}

static void apply_all(struct xds_client *c, cds_item *items, size_t n, char **removed,
                      size_t n_removed, int full_set)
{
    char err[512];
    cluster_manager_begin_batch(c->cm);
    for (size_t i = 0; i < n; i++) {
        if (apply_item(c, &items[i], err, sizeof(err)) != 0)
            log_error("cds: cluster '%s' not applied: %s", items[i].name, err);
    }
    if (full_set)
        remove_absent(c, items, n);
    for (size_t i = 0; i < n_removed; i++)
        remove_cluster(c, removed[i]);
    cluster_manager_end_batch(c->cm);
}

static void accepted(struct xds_client *c, const char *version)
{
    c->cds_received = 1;
    xds_failure_clear(&c->cds.failure);
    stats_inc(c->cds_stats, CDS_STAT_UPDATE_SUCCESS);
    stats_set(c->cds_stats, CDS_STAT_VERSION, (int64_t)xds_version_hash(version));
}

void cds_on_sotw(struct xds_client *c, const Envoy__Service__Discovery__V3__DiscoveryResponse *r)
{
    stats_inc(c->cds_stats, CDS_STAT_UPDATE_ATTEMPT);
    xds_set_string(&c->cds.nonce, r->nonce);
    cds_item *items = calloc(r->n_resources ? r->n_resources : 1, sizeof(*items));
    if (items == NULL)
        return;
    for (size_t i = 0; i < r->n_resources; i++) {
        decode_item(&items[i], r->resources[i], "");
        items[i].version = r->version_info;
    }
    if (validate_all(c, items, r->n_resources, r->version_info, r->nonce) == 0) {
        apply_all(c, items, r->n_resources, NULL, 0, 1);
        accepted(c, r->version_info);
        /* As Envoy: the EDS request for new clusters goes before the CDS ACK. */
        eds_sync_subscription(c, 0);
        xds_ack_or_nack(c, &c->cds, r->version_info, r->nonce, NULL);
        log_info("cds: accepted version %s (%zu clusters)", r->version_info, r->n_resources);
    }
    free_items(items, r->n_resources);
}

void cds_on_delta(struct xds_client *c, const Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r)
{
    stats_inc(c->cds_stats, CDS_STAT_UPDATE_ATTEMPT);
    xds_set_string(&c->cds.nonce, r->nonce);
    cds_item *items = calloc(r->n_resources ? r->n_resources : 1, sizeof(*items));
    if (items == NULL)
        return;
    for (size_t i = 0; i < r->n_resources; i++) {
        decode_item(&items[i], r->resources[i]->resource, r->resources[i]->name);
        items[i].version = r->resources[i]->version;
    }
    const char *version = r->system_version_info;
    if (validate_all(c, items, r->n_resources, version, r->nonce) == 0) {
        apply_all(c, items, r->n_resources, r->removed_resources, r->n_removed_resources, 0);
        xds_set_string(&c->cds.version, version);
        accepted(c, version);
        eds_sync_subscription(c, 0);
        xds_ack_or_nack(c, &c->cds, version, r->nonce, NULL);
        log_info("cds: accepted delta %s (%zu updated, %zu removed)", r->nonce, r->n_resources,
                 r->n_removed_resources);
    }
    free_items(items, r->n_resources);
}

/* Delta reconnect: the versions of the clusters held, from the cluster
 * manager (each dynamic cluster's version_info is its resource version). */
void cds_initial_versions(struct xds_client *c, held_set *out)
{
    for (size_t i = 0; i < cluster_manager_count(c->cm); i++) {
        const cm_cluster *e = cluster_manager_at(c->cm, i);
        if (e->added_via_api)
            held_put(out, e->name, e->warming_version ? e->warming_version : e->version_info, NULL, 0);
    }
}
