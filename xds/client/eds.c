/* eds.c: EDS watches (one per EDS cluster), the subscription they imply,
 * warming timers (initial_fetch_timeout) and ClusterLoadAssignment updates
 * (see xds_client.h). */
#include "xds_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/cluster_stats.h"
#include "xdsnode/log.h"
#include "xdsnode/validate.h"

/* --- watches (sorted by cluster name) ----------------------------------------- */

static size_t watch_lower_bound(const struct xds_client *c, const char *cluster, int *found)
{
    size_t lo = 0, hi = c->n_watches;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(c->watches[mid]->cluster, cluster) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < c->n_watches && strcmp(c->watches[lo]->cluster, cluster) == 0;
    return lo;
}

static eds_watch *watch_find(struct xds_client *c, const char *cluster)
{
    int found;
    size_t at = watch_lower_bound(c, cluster, &found);
    return found ? c->watches[at] : NULL;
}

static void on_fetch_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    eds_watch *wt = w->data;
    struct xds_client *c = wt->owner;
    wt->timer_active = 0;
    const cm_cluster *e = cluster_manager_find(c->cm, wt->cluster);
    log_warn("eds: cluster '%s': no assignment for '%s' within initial_fetch_timeout (%.3gs); "
             "active with no endpoints until one arrives", wt->cluster, wt->service, wt->fetch_timeout);
    if (e)
        stats_inc(e->stats, CLUSTER_STAT_INIT_FETCH_TIMEOUT);
    stats_inc(c->cds_stats, CDS_STAT_INIT_FETCH_TIMEOUT);
    cluster_manager_finish_warming(c->cm, wt->cluster);
}

static void watch_stop_timer(struct xds_client *c, eds_watch *w)
{
    if (w->timer_active) {
        ev_timer_stop(c->loop, &w->timer);
        w->timer_active = 0;
    }
}

static double fetch_timeout_of(const pb_cluster *cl)
{
    const Envoy__Config__Core__V3__ConfigSource *cs = cl->eds_cluster_config->eds_config;
    if (cs == NULL || cs->initial_fetch_timeout == NULL)
        return XDS_DEFAULT_INITIAL_FETCH_TIMEOUT_S;
    return (double)cs->initial_fetch_timeout->seconds + cs->initial_fetch_timeout->nanos / 1e9;
}

static eds_watch *watch_insert(struct xds_client *c, size_t at, const char *cluster)
{
    if (c->n_watches == c->cap_watches) {
        size_t cap = c->cap_watches ? c->cap_watches * 2 : 16;
        eds_watch **p = realloc(c->watches, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        c->watches = p;
        c->cap_watches = cap;
    }
    eds_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->cluster = xds_strdup(cluster);
    w->owner = c;
    ev_timer_init(&w->timer, on_fetch_timeout, 0., 0.);
    w->timer.data = w;
    memmove(&c->watches[at + 1], &c->watches[at], (c->n_watches - at) * sizeof(*c->watches));
    c->watches[at] = w;
    c->n_watches++;
    return w;
}

int eds_watch_cluster(struct xds_client *c, const pb_cluster *cl)
{
    int found;
    size_t at = watch_lower_bound(c, cl->name, &found);
    eds_watch *w = found ? c->watches[at] : watch_insert(c, at, cl->name);
    if (w == NULL) {
        log_error("eds: out of memory watching '%s'", cl->name);
        return 0;
    }
    const char *svc = cl->eds_cluster_config->service_name[0] ? cl->eds_cluster_config->service_name
                                                              : cl->name;
    if (w->service == NULL || strcmp(w->service, svc) != 0) {
        xds_set_string(&w->service, svc);
        c->by_service_dirty = 1;
    }
    w->fetch_timeout = fetch_timeout_of(cl);
    return held_find(&c->eds.held, svc) == NULL;
}

void eds_unwatch_cluster(struct xds_client *c, const char *cluster)
{
    int found;
    size_t at = watch_lower_bound(c, cluster, &found);
    if (!found)
        return;
    eds_watch *w = c->watches[at];
    watch_stop_timer(c, w);
    free(w->cluster);
    free(w->service);
    free(w);
    memmove(&c->watches[at], &c->watches[at + 1], (c->n_watches - at - 1) * sizeof(*c->watches));
    c->n_watches--;
    c->by_service_dirty = 1;
}

/* --- the service index ------------------------------------------------------------- */

static int cmp_watch_service(const void *a, const void *b)
{
    return strcmp((*(eds_watch *const *)a)->service, (*(eds_watch *const *)b)->service);
}

static void rebuild_by_service(struct xds_client *c)
{
    if (!c->by_service_dirty && c->by_service)
        return;
    free(c->by_service);
    c->by_service = malloc((c->n_watches ? c->n_watches : 1) * sizeof(*c->by_service));
    if (c->by_service == NULL)
        return;
    memcpy(c->by_service, c->watches, c->n_watches * sizeof(*c->watches));
    qsort(c->by_service, c->n_watches, sizeof(*c->by_service), cmp_watch_service);
    c->by_service_dirty = 0;
}

/* The watches of `service`: [*first, *first + count) in by_service. */
static size_t watches_of(struct xds_client *c, const char *service, size_t *first)
{
    rebuild_by_service(c);
    if (c->by_service == NULL)
        return 0;
    size_t lo = 0, hi = c->n_watches;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(c->by_service[mid]->service, service) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < c->n_watches && strcmp(c->by_service[end]->service, service) == 0)
        end++;
    *first = lo;
    return end - lo;
}

void eds_start_warming_timer(struct xds_client *c, const char *cluster)
{
    eds_watch *w = watch_find(c, cluster);
    if (w == NULL || w->fetch_timeout <= 0)
        return; /* 0s (istiod's setting) waits forever */
    watch_stop_timer(c, w);
    ev_timer_set(&w->timer, w->fetch_timeout, 0.);
    ev_timer_start(c->loop, &w->timer);
    w->timer_active = 1;
}

void eds_destroy(struct xds_client *c)
{
    for (size_t i = 0; i < c->n_watches; i++) {
        watch_stop_timer(c, c->watches[i]);
        free(c->watches[i]->cluster);
        free(c->watches[i]->service);
        free(c->watches[i]);
    }
    free(c->watches);
    free(c->by_service);
    for (size_t i = 0; i < c->n_eds_names; i++)
        free(c->eds_names[i]);
    free(c->eds_names);
    for (size_t i = 0; i < c->n_eds_sent; i++)
        free(c->eds_sent[i]);
    free(c->eds_sent);
}

/* --- subscription ----------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int contains(char **list, size_t n, const char *s)
{
    return n > 0 && bsearch(&s, list, n, sizeof(char *), cmp_str) != NULL;
}

/* Sorted unique service names of all watches. */
static char **wanted_names(struct xds_client *c, size_t *n_out)
{
    char **names = calloc(c->n_watches ? c->n_watches : 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; names && i < c->n_watches; i++)
        names[n++] = c->watches[i]->service;
    if (names)
        qsort(names, n, sizeof(char *), cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
            names[u++] = names[i];
    }
    for (size_t i = 0; i < u; i++)
        names[i] = xds_strdup(names[i]);
    *n_out = u;
    return names;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int same_names(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    }
    return 1;
}

/* Drops held assignments nobody watches any more. */
static void forget_unwatched(struct xds_client *c)
{
    for (size_t i = c->eds.held.n; i-- > 0;) {
        const char *name = c->eds.held.items[i].name;
        if (!contains(c->eds_names, c->n_eds_names, name)) {
            char *copy = xds_strdup(name);
            held_remove(&c->eds.held, copy);
            free(copy);
        }
    }
}

static void sync_delta(struct xds_client *c, int force)
{
    char **sub = calloc(c->n_eds_names + 1, sizeof(char *));
    char **unsub = calloc(c->n_eds_sent + 1, sizeof(char *));
    size_t n_sub = 0, n_unsub = 0;
    if (sub == NULL || unsub == NULL) {
        free(sub);
        free(unsub);
        return;
    }
    for (size_t i = 0; i < c->n_eds_names; i++) {
        if (force || !contains(c->eds_sent, c->n_eds_sent, c->eds_names[i]))
            sub[n_sub++] = c->eds_names[i];
    }
    for (size_t i = 0; i < c->n_eds_sent && !force; i++) {
        if (!contains(c->eds_names, c->n_eds_names, c->eds_sent[i]))
            unsub[n_unsub++] = c->eds_sent[i];
    }
    if (n_sub || n_unsub)
        xds_send_delta(c, XDS_EDS_TYPE_URL, sub, n_sub, unsub, n_unsub, force ? &c->eds.held : NULL,
                       NULL, NULL);
    free(sub);
    free(unsub);
    free_names(c->eds_sent, c->n_eds_sent);
    c->eds_sent = calloc(c->n_eds_names + 1, sizeof(char *));
    c->n_eds_sent = 0;
    for (size_t i = 0; c->eds_sent && i < c->n_eds_names; i++)
        c->eds_sent[c->n_eds_sent++] = xds_strdup(c->eds_names[i]);
}

void eds_sync_subscription(struct xds_client *c, int force)
{
    size_t n;
    char **names = wanted_names(c, &n);
    if (names == NULL)
        return;
    int changed = !same_names(names, n, c->eds_names, c->n_eds_names);
    free_names(c->eds_names, c->n_eds_names);
    c->eds_names = names;
    c->n_eds_names = n;
    if (changed)
        forget_unwatched(c);
    if (c->transport != NULL && !xds_transport_is_open(c->transport))
        return;
    if (c->delta) {
        sync_delta(c, force);
    } else if (changed || (force && n > 0)) {
        xds_send_sotw(c, &c->eds, c->eds_names, c->n_eds_names, NULL);
    }
}

/* --- ClusterLoadAssignment updates -------------------------------------------------- */

typedef struct {
    const char *name;
    pb_cla *cla; /* NULL if it did not parse */
    const uint8_t *bytes;
    size_t len;
    const char *version;
} eds_item;

static int check_endpoints(const pb_cla *cla, char *err, size_t errlen)
{
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = cla->endpoints[i];
        if (loc->priority > 128) {
            snprintf(err, errlen, "endpoints[%zu].priority: must be at most 128", i);
            return -1;
        }
        for (size_t j = 0; j < loc->n_lb_endpoints; j++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *lb = loc->lb_endpoints[j];
            char p[128];
            snprintf(p, sizeof(p), "endpoints[%zu].lb_endpoints[%zu].endpoint.address", i, j);
            if (lb->host_identifier_case != ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT) {
                snprintf(err, errlen, "endpoints[%zu].lb_endpoints[%zu].endpoint: is required", i, j);
                return -1;
            }
            if (validate_socket_address(lb->endpoint->address, p, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

static int check_eds_item(const eds_item *it, strbuf *why)
{
    char err[1024] = "";
    if (it->cla == NULL)
        snprintf(err, sizeof(err), "cannot parse the resource as ClusterLoadAssignment");
    else if (it->cla->cluster_name[0] == '\0')
        snprintf(err, sizeof(err), "cluster_name: must not be empty");
    else
        check_endpoints(it->cla, err, sizeof(err));
    if (err[0] == '\0')
        return 0;
    strbuf_printf(why, "%s%s: %s", why->len ? "; " : "", it->name[0] ? it->name : "<unnamed>", err);
    return -1;
}

static void decode_eds_item(eds_item *it, const Google__Protobuf__Any *any, const char *name_hint,
                            const char *version)
{
    it->bytes = any ? any->value.data : NULL;
    it->len = any ? any->value.len : 0;
    it->version = version;
    it->cla = NULL;
    const char *slash = any ? strrchr(any->type_url, '/') : NULL;
    if (any && strcmp(slash ? slash + 1 : any->type_url,
                      "envoy.config.endpoint.v3.ClusterLoadAssignment") == 0)
        it->cla = (pb_cla *)protobuf_c_message_unpack(PB_CLA_DESC, NULL, it->len, it->bytes);
    it->name = it->cla ? it->cla->cluster_name : name_hint;
}

static void count_for_service(struct xds_client *c, const char *service, size_t stat)
{
    size_t first, n = watches_of(c, service, &first);
    for (size_t i = first; i < first + n; i++) {
        const cm_cluster *e = cluster_manager_find(c->cm, c->by_service[i]->cluster);
        if (e)
            stats_inc(e->stats, stat);
    }
}

/* Gives the assignment to every cluster watching `service`. */
static void assign(struct xds_client *c, const char *service, const uint8_t *bytes, size_t len,
                   const char *version)
{
    size_t first, n = watches_of(c, service, &first);
    for (size_t i = first; i < first + n; i++) {
        eds_watch *w = c->by_service[i];
        watch_stop_timer(c, w);
        if (cluster_manager_set_assignment(c->cm, w->cluster, bytes, len) != 0)
            continue;
        const cm_cluster *e = cluster_manager_find(c->cm, w->cluster);
        stats_inc(e->stats, CLUSTER_STAT_UPDATE_SUCCESS);
        stats_set(e->stats, CLUSTER_STAT_VERSION, (int64_t)xds_version_hash(version));
        log_debug("eds: cluster '%s' has assignment '%s' version %s", w->cluster, service, version);
    }
}

/* A name given twice in one update is an error (Envoy rejects it too). */
static int check_eds_duplicates(const eds_item *items, size_t n, strbuf *why)
{
    const char **names = malloc((n ? n : 1) * sizeof(*names));
    if (names == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        names[i] = items[i].name;
    qsort(names, n, sizeof(*names), cmp_str);
    int bad = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(names[i], names[i - 1]) != 0 || (i > 1 && strcmp(names[i], names[i - 2]) == 0))
            continue;
        strbuf_printf(why, "%s%s: duplicate ClusterLoadAssignment '%s' in one update",
                      why->len ? "; " : "", names[i], names[i]);
        bad = 1;
    }
    free(names);
    return bad;
}

static int reject(struct xds_client *c, eds_item *items, size_t n, const char *nonce)
{
    strbuf why;
    strbuf_init(&why);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= check_eds_item(&items[i], &why) != 0;
    bad |= check_eds_duplicates(items, n, &why);
    if (!bad) {
        strbuf_free(&why);
        return 0;
    }
    char *text = strbuf_take(&why, NULL);
    char *msg = malloc(strlen(text ? text : "") + 64);
    sprintf(msg, "Error applying ClusterLoadAssignment(s) %s", text ? text : "");
    log_warn("eds: rejecting update: %s", msg);
    for (size_t i = 0; i < n; i++)
        count_for_service(c, items[i].name, CLUSTER_STAT_UPDATE_REJECTED);
    xds_ack_or_nack(c, &c->eds, c->eds.version, nonce, msg);
    free(text);
    free(msg);
    return -1;
}

static void apply_items(struct xds_client *c, eds_item *items, size_t n)
{
    cluster_manager_begin_batch(c->cm);
    for (size_t i = 0; i < n; i++) {
        if (!contains(c->eds_names, c->n_eds_names, items[i].name)) {
            log_debug("eds: ignoring unrequested assignment '%s'", items[i].name);
            continue;
        }
        held_put(&c->eds.held, items[i].name, items[i].version, NULL, 0);
        assign(c, items[i].name, items[i].bytes, items[i].len, items[i].version);
    }
    cluster_manager_end_batch(c->cm);
}

static void free_eds_items(eds_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (items[i].cla)
            protobuf_c_message_free_unpacked(&items[i].cla->base, NULL);
    }
    free(items);
}

void eds_on_sotw(struct xds_client *c, const Envoy__Service__Discovery__V3__DiscoveryResponse *r)
{
    xds_set_string(&c->eds.nonce, r->nonce);
    eds_item *items = calloc(r->n_resources ? r->n_resources : 1, sizeof(*items));
    if (items == NULL)
        return;
    for (size_t i = 0; i < r->n_resources; i++) {
        decode_eds_item(&items[i], r->resources[i], "", r->version_info);
        count_for_service(c, items[i].name, CLUSTER_STAT_UPDATE_ATTEMPT);
    }
    if (reject(c, items, r->n_resources, r->nonce) == 0) {
        apply_items(c, items, r->n_resources);
        xds_ack_or_nack(c, &c->eds, r->version_info, r->nonce, NULL);
    }
    free_eds_items(items, r->n_resources);
}

/* Delta removal: the clusters keep existing, with no endpoints. */
static void remove_assignment(struct xds_client *c, const char *service)
{
    held_remove(&c->eds.held, service);
    pb_cla empty;
    envoy__config__endpoint__v3__cluster_load_assignment__init(&empty);
    empty.cluster_name = (char *)service;
    size_t len = protobuf_c_message_get_packed_size(&empty.base);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return;
    protobuf_c_message_pack(&empty.base, buf);
    assign(c, service, buf, len, "");
    free(buf);
    log_info("eds: assignment '%s' removed by the server", service);
}

void eds_on_delta(struct xds_client *c, const Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r)
{
    xds_set_string(&c->eds.nonce, r->nonce);
    eds_item *items = calloc(r->n_resources ? r->n_resources : 1, sizeof(*items));
    if (items == NULL)
        return;
    for (size_t i = 0; i < r->n_resources; i++) {
        decode_eds_item(&items[i], r->resources[i]->resource, r->resources[i]->name,
                        r->resources[i]->version);
        count_for_service(c, items[i].name, CLUSTER_STAT_UPDATE_ATTEMPT);
    }
    if (reject(c, items, r->n_resources, r->nonce) == 0) {
        apply_items(c, items, r->n_resources);
        cluster_manager_begin_batch(c->cm);
        for (size_t i = 0; i < r->n_removed_resources; i++)
            remove_assignment(c, r->removed_resources[i]);
        cluster_manager_end_batch(c->cm);
        xds_set_string(&c->eds.version, r->system_version_info);
        xds_ack_or_nack(c, &c->eds, r->system_version_info, r->nonce, NULL);
    }
    free_eds_items(items, r->n_resources);
}

/* The assignment bytes live once, in the cluster manager: any cluster
 * watching the service holds them. */
const uint8_t *xds_client_eds_resource(const xds_client *c, const char *service, size_t *len,
                                       const char **version)
{
    struct xds_client *mc = (struct xds_client *)c;
    held_resource *r = held_find(&mc->eds.held, service);
    if (r == NULL)
        return NULL;
    size_t first, n = watches_of(mc, service, &first);
    for (size_t i = first; i < first + n; i++) {
        const cm_cluster *e = cluster_manager_find(mc->cm, mc->by_service[i]->cluster);
        if (e && e->assignment) {
            *len = e->assignment_len;
            if (version)
                *version = r->version;
            return e->assignment;
        }
    }
    return NULL;
}
