/* xds_client.c: the ADS stream: Node, requests, ACK/NACK, dispatch by type,
 * reconnect with backoff (see xds_client.h). */
#include "xds_internal.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/log.h"
#include "xdsnode/options.h"
#include "xdsnode/pbmerge.h"

static const stat_def cds_stat_defs[CDS_STAT_COUNT] = {
    [CDS_STAT_UPDATE_ATTEMPT] = {"update_attempt", STAT_COUNTER},
    [CDS_STAT_UPDATE_SUCCESS] = {"update_success", STAT_COUNTER},
    [CDS_STAT_UPDATE_FAILURE] = {"update_failure", STAT_COUNTER},
    [CDS_STAT_UPDATE_REJECTED] = {"update_rejected", STAT_COUNTER},
    [CDS_STAT_VERSION] = {"version", STAT_GAUGE},
    [CDS_STAT_INIT_FETCH_TIMEOUT] = {"init_fetch_timeout", STAT_COUNTER},
};

static const stat_def cp_stat_defs[CP_STAT_COUNT] = {
    [CP_STAT_CONNECTED_STATE] = {"connected_state", STAT_GAUGE},
    [CP_STAT_RATE_LIMIT_ENFORCED] = {"rate_limit_enforced", STAT_COUNTER},
    [CP_STAT_PENDING_REQUESTS] = {"pending_requests", STAT_GAUGE},
};

/* --- small helpers ------------------------------------------------------------ */

char *xds_strdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (d == NULL) {
        log_critical("xds: out of memory");
        abort();
    }
    return d;
}

/* Replaces a malloc'd string (or a protobuf-c field's shared empty string). */
void xds_set_string(char **field, const char *value)
{
    char *d = xds_strdup(value);
    if (*field != protobuf_c_empty_string)
        free(*field);
    *field = d;
}

/* FNV-1a; the cds/eds "version" gauges carry a hash of the version text,
 * as Envoy's do (kept positive for the signed gauge). */
uint64_t xds_version_hash(const char *version)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)version; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h & 0x7fffffffffffffffULL;
}

void xds_failure_clear(xds_failure *f)
{
    for (size_t i = 0; i < f->n_resources; i++) {
        free(f->resources[i].name);
        free(f->resources[i].bytes);
        free(f->resources[i].details);
    }
    free(f->resources);
    free(f->version_info);
    free(f->details);
    memset(f, 0, sizeof(*f));
}

void xds_failure_record(xds_failure *f, const char *version, const char *details)
{
    f->present = 1;
    xds_set_string(&f->version_info, version);
    xds_set_string(&f->details, details);
    clock_gettime(CLOCK_REALTIME, &f->when);
}

int xds_failure_add(xds_failure *f, const char *name, const uint8_t *bytes, size_t len,
                    const char *details)
{
    xds_rejected_resource *p = realloc(f->resources, (f->n_resources + 1) * sizeof(*p));
    if (p == NULL)
        return -1;
    f->resources = p;
    xds_rejected_resource *r = &p[f->n_resources++];
    r->name = xds_strdup(name);
    r->details = xds_strdup(details);
    r->bytes = malloc(len ? len : 1);
    if (r->bytes && len)
        memcpy(r->bytes, bytes, len);
    r->len = r->bytes ? len : 0;
    return 0;
}

/* --- held resources (sorted by name) ------------------------------------------- */

static size_t held_lower_bound(const held_set *h, const char *name, int *found)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(h->items[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < h->n && strcmp(h->items[lo].name, name) == 0;
    return lo;
}

held_resource *held_find(const held_set *h, const char *name)
{
    int found;
    size_t at = held_lower_bound(h, name, &found);
    return found ? &h->items[at] : NULL;
}

static void held_free_item(held_resource *r)
{
    free(r->name);
    free(r->version);
    free(r->bytes);
}

int held_put(held_set *h, const char *name, const char *version, const uint8_t *bytes, size_t len)
{
    int found;
    size_t at = held_lower_bound(h, name, &found);
    uint8_t *copy = NULL;
    if (bytes) {
        copy = malloc(len ? len : 1);
        if (copy == NULL)
            return -1;
        if (len)
            memcpy(copy, bytes, len);
    }
    if (found) {
        held_resource *r = &h->items[at];
        xds_set_string(&r->version, version);
        free(r->bytes);
        r->bytes = copy;
        r->len = len;
        return 0;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        held_resource *p = realloc(h->items, cap * sizeof(*p));
        if (p == NULL) {
            free(copy);
            return -1;
        }
        h->items = p;
        h->cap = cap;
    }
    memmove(&h->items[at + 1], &h->items[at], (h->n - at) * sizeof(*h->items));
    h->items[at] = (held_resource){xds_strdup(name), xds_strdup(version), copy, len};
    h->n++;
    return 0;
}

void held_remove(held_set *h, const char *name)
{
    int found;
    size_t at = held_lower_bound(h, name, &found);
    if (!found)
        return;
    held_free_item(&h->items[at]);
    memmove(&h->items[at], &h->items[at + 1], (h->n - at - 1) * sizeof(*h->items));
    h->n--;
}

void held_clear(held_set *h)
{
    for (size_t i = 0; i < h->n; i++)
        held_free_item(&h->items[i]);
    free(h->items);
    memset(h, 0, sizeof(*h));
}

/* --- requests ------------------------------------------------------------------ */

static Envoy__Config__Core__V3__Node *node_for_request(struct xds_client *c)
{
    if (c->node_sent && c->node_first_only)
        return NULL;
    c->node_sent = 1;
    return c->node;
}

static void send_message(struct xds_client *c, const ProtobufCMessage *m)
{
    if (c->transport == NULL) {
        if (c->request_hook)
            c->request_hook(c->request_hook_ctx, m);
        return;
    }
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        log_error("xds: out of memory building a request");
        return;
    }
    protobuf_c_message_pack(m, buf);
    if (xds_transport_send(c->transport, buf, len) != 0)
        log_debug("xds: no open stream, request dropped (it is resent on reconnect)");
    free(buf);
}

void xds_send_sotw(struct xds_client *c, type_state *ts, char **names, size_t n,
                   const Google__Rpc__Status *error)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest req;
    envoy__service__discovery__v3__discovery_request__init(&req);
    req.version_info = ts->version;
    req.node = node_for_request(c);
    req.n_resource_names = n;
    req.resource_names = names;
    req.type_url = (char *)ts->type_url;
    req.response_nonce = ts->nonce;
    req.error_detail = (Google__Rpc__Status *)error;
    log_debug("xds: sotw request %s version=%s nonce=%s names=%zu%s", ts->type_url, ts->version,
              ts->nonce, n, error ? " (NACK)" : "");
    send_message(c, &req.base);
}

void xds_send_delta(struct xds_client *c, const char *type_url, char **sub, size_t n_sub,
                    char **unsub, size_t n_unsub, const held_set *initial, const char *nonce,
                    const Google__Rpc__Status *error)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req;
    envoy__service__discovery__v3__delta_discovery_request__init(&req);
    size_t n_init = initial ? initial->n : 0;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry *entries =
        calloc(n_init ? n_init : 1, sizeof(*entries));
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry **ptrs =
        calloc(n_init ? n_init : 1, sizeof(*ptrs));
    if (entries == NULL || ptrs == NULL) {
        free(entries);
        free(ptrs);
        log_error("xds: out of memory building a delta request");
        return;
    }
    for (size_t i = 0; i < n_init; i++) {
        envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(&entries[i]);
        entries[i].key = initial->items[i].name;
        entries[i].value = initial->items[i].version;
        ptrs[i] = &entries[i];
    }
    req.node = node_for_request(c);
    req.type_url = (char *)type_url;
    req.n_resource_names_subscribe = n_sub;
    req.resource_names_subscribe = sub;
    req.n_resource_names_unsubscribe = n_unsub;
    req.resource_names_unsubscribe = unsub;
    req.n_initial_resource_versions = n_init;
    req.initial_resource_versions = ptrs;
    req.response_nonce = (char *)(nonce ? nonce : "");
    req.error_detail = (Google__Rpc__Status *)error;
    log_debug("xds: delta request %s sub=%zu unsub=%zu initial=%zu nonce=%s%s", type_url, n_sub,
              n_unsub, n_init, nonce ? nonce : "", error ? " (NACK)" : "");
    send_message(c, &req.base);
    free(entries);
    free(ptrs);
}

/* ACK (error == NULL) or NACK a response of type ts. SotW: an ACK carries
 * the new version; a NACK the last accepted one. */
void xds_ack_or_nack(struct xds_client *c, type_state *ts, const char *version, const char *nonce,
                     const char *error)
{
    Google__Rpc__Status st;
    google__rpc__status__init(&st);
    st.code = XDS_NACK_CODE;
    st.message = (char *)error;
    if (c->delta) {
        xds_send_delta(c, ts->type_url, NULL, 0, NULL, 0, NULL, nonce, error ? &st : NULL);
        return;
    }
    if (error == NULL)
        xds_set_string(&ts->version, version);
    if (ts == &c->cds) {
        xds_send_sotw(c, ts, NULL, 0, error ? &st : NULL);
    } else {
        xds_send_sotw(c, ts, c->eds_names, c->n_eds_names, error ? &st : NULL);
    }
}

/* --- stream lifecycle ------------------------------------------------------------ */

static void send_initial_requests(struct xds_client *c)
{
    if (c->delta) {
        char *wildcard[] = {"*"};
        held_set versions;
        memset(&versions, 0, sizeof(versions));
        cds_initial_versions(c, &versions);
        xds_send_delta(c, XDS_CDS_TYPE_URL, wildcard, 1, NULL, 0, &versions, NULL, NULL);
        held_clear(&versions);
    } else {
        xds_send_sotw(c, &c->cds, NULL, 0, NULL);
    }
    eds_sync_subscription(c, 1);
}

static void start_stream(struct xds_client *c)
{
    c->node_sent = 0;
    c->stream_healthy = 0;
    xds_set_string(&c->cds.nonce, "");
    xds_set_string(&c->eds.nonce, "");
    /* Delta: the server knows nothing of the old stream's subscriptions. */
    for (size_t i = 0; i < c->n_eds_sent; i++)
        free(c->eds_sent[i]);
    free(c->eds_sent);
    c->eds_sent = NULL;
    c->n_eds_sent = 0;
    if (xds_transport_start(c->transport, c->delta ? XDS_DELTA_METHOD : XDS_SOTW_METHOD) != 0) {
        log_error("xds: cannot start a stream to %s", c->target);
        return;
    }
    log_info("xds: %s stream to %s starting", c->delta ? "delta" : "sotw", c->target);
    send_initial_requests(c);
}

static void on_retry_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    start_stream(w->data);
}

static void on_cds_fetch_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct xds_client *c = w->data;
    if (c->cds_received)
        return;
    log_warn("cds: no update within initial_fetch_timeout; initialization continues without it");
    stats_inc(c->cds_stats, CDS_STAT_INIT_FETCH_TIMEOUT);
    c->cds_received = 1;
}

int xds_client_initialized(xds_client *c)
{
    if (c->initialized)
        return 1;
    if (!c->cds_received)
        return 0;
    for (size_t i = 0; i < cluster_manager_count(c->cm); i++) {
        if (cluster_manager_at(c->cm, i)->state == CM_CLUSTER_WARMING)
            return 0;
    }
    c->initialized = 1;
    ev_timer_stop(c->loop, &c->cds_fetch_timer);
    return 1;
}

static void on_open(void *ctx)
{
    struct xds_client *c = ctx;
    stats_set(c->cp_stats, CP_STAT_CONNECTED_STATE, 1);
    log_info("xds: connected to %s", c->target);
}

static void on_closed(void *ctx, int status, const char *details)
{
    struct xds_client *c = ctx;
    stats_set(c->cp_stats, CP_STAT_CONNECTED_STATE, 0);
    stats_inc(c->cds_stats, CDS_STAT_UPDATE_FAILURE);
    if (c->stream_healthy)
        c->backoff_s = XDS_BACKOFF_INITIAL_MS / 1000.0;
    double delay = c->backoff_s * (0.5 + 0.5 * ((double)rand() / RAND_MAX));
    log_warn("xds: stream closed: %d, %s; retrying in %.2fs (last good configuration keeps serving)",
             status, details, delay);
    c->backoff_s *= 2;
    if (c->backoff_s > XDS_BACKOFF_MAX_MS / 1000.0)
        c->backoff_s = XDS_BACKOFF_MAX_MS / 1000.0;
    ev_timer_set(&c->retry_timer, delay, 0.);
    ev_timer_start(c->loop, &c->retry_timer);
}

static void dispatch_sotw(struct xds_client *c, const uint8_t *data, size_t len)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, data);
    if (r == NULL) {
        log_error("xds: cannot parse a DiscoveryResponse (%zu bytes); ignored", len);
        return;
    }
    c->stream_healthy = 1;
    log_debug("xds: sotw response %s version=%s nonce=%s resources=%zu", r->type_url,
              r->version_info, r->nonce, r->n_resources);
    if (strcmp(r->type_url, XDS_CDS_TYPE_URL) == 0)
        cds_on_sotw(c, r);
    else if (strcmp(r->type_url, XDS_EDS_TYPE_URL) == 0)
        eds_on_sotw(c, r);
    else
        log_warn("xds: ignoring unwatched type URL %s", r->type_url);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

static void dispatch_delta(struct xds_client *c, const uint8_t *data, size_t len)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
        envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, data);
    if (r == NULL) {
        log_error("xds: cannot parse a DeltaDiscoveryResponse (%zu bytes); ignored", len);
        return;
    }
    c->stream_healthy = 1;
    log_debug("xds: delta response %s nonce=%s resources=%zu removed=%zu", r->type_url, r->nonce,
              r->n_resources, r->n_removed_resources);
    if (strcmp(r->type_url, XDS_CDS_TYPE_URL) == 0)
        cds_on_delta(c, r);
    else if (strcmp(r->type_url, XDS_EDS_TYPE_URL) == 0)
        eds_on_delta(c, r);
    else
        log_warn("xds: ignoring unwatched type URL %s", r->type_url);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
}

/* Responses above this size leave much freed heap behind (decoded
 * resources); it goes back to the system so RSS tracks what is kept. */
#define XDS_TRIM_AFTER_BYTES (1024 * 1024)

static void on_message(void *ctx, const uint8_t *data, size_t len)
{
    struct xds_client *c = ctx;
    if (c->delta)
        dispatch_delta(c, data, len);
    else
        dispatch_sotw(c, data, len);
    if (len >= XDS_TRIM_AFTER_BYTES)
        malloc_trim(0);
}

/* --- creation ---------------------------------------------------------------------- */

int xds_client_wanted(const pb_bootstrap *b)
{
    return b->dynamic_resources != NULL && b->dynamic_resources->ads_config != NULL;
}

static int target_from_address(const pb_address *a, char *out, size_t outlen, char *err, size_t errlen)
{
    if (a && a->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE) {
        snprintf(out, outlen, "unix:%s", a->pipe->path);
        return 0;
    }
    if (a == NULL || a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS) {
        snprintf(err, errlen, "the xDS cluster's endpoint has no socket address");
        return -1;
    }
    const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
    snprintf(out, outlen, strchr(sa->address, ':') ? "[%s]:%u" : "%s:%u", sa->address,
             sa->port_value);
    return 0;
}

int xds_client_target(const pb_bootstrap *b, char *out, size_t outlen, char *err, size_t errlen)
{
    const Envoy__Config__Core__V3__GrpcService *gs = b->dynamic_resources->ads_config->grpc_services[0];
    if (gs->target_specifier_case == ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_GOOGLE_GRPC) {
        snprintf(out, outlen, "%s", gs->google_grpc->target_uri);
        return 0;
    }
    const char *name = gs->envoy_grpc->cluster_name;
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    for (size_t i = 0; sr && i < sr->n_clusters; i++) {
        const pb_cluster *cl = sr->clusters[i];
        if (strcmp(cl->name, name) != 0)
            continue;
        const pb_cla *la = cl->load_assignment;
        if (la == NULL || la->n_endpoints == 0 || la->endpoints[0]->n_lb_endpoints == 0)
            break;
        const Envoy__Config__Endpoint__V3__LbEndpoint *lb = la->endpoints[0]->lb_endpoints[0];
        if (lb->host_identifier_case != ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT)
            break;
        return target_from_address(lb->endpoint->address, out, outlen, err, errlen);
    }
    snprintf(err, errlen, "xDS cluster '%s' has no endpoint", name);
    return -1;
}

static int make_node(struct xds_client *c, const pb_bootstrap *b)
{
    Envoy__Config__Core__V3__Node empty;
    envoy__config__core__v3__node__init(&empty);
    c->node = (Envoy__Config__Core__V3__Node *)pb_clone(b->node ? &b->node->base : &empty.base);
    if (c->node == NULL)
        return -1;
    xds_set_string(&c->node->user_agent_name, "xdsnode");
    if (c->node->user_agent_version_type_case ==
        ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_BUILD_VERSION)
        protobuf_c_message_free_unpacked(&c->node->user_agent_build_version->base, NULL);
    c->node->user_agent_version_type_case = ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_VERSION;
    c->node->user_agent_version = xds_strdup(XDSNODE_VERSION);
    return 0;
}

static int make_stats(struct xds_client *c)
{
    c->cds_stats = stats_scope_create("cluster_manager.cds.", cds_stat_defs, CDS_STAT_COUNT, NULL,
                                      NULL, NULL);
    c->cp_stats = stats_scope_create("control_plane.", cp_stat_defs, CP_STAT_COUNT, NULL, NULL, NULL);
    if (c->cds_stats == NULL || c->cp_stats == NULL || stats_store_add(c->store, c->cds_stats) != 0 ||
        stats_store_add(c->store, c->cp_stats) != 0)
        return -1;
    return 0;
}

static void init_type(type_state *ts, const char *type_url)
{
    ts->type_url = type_url;
    ts->version = xds_strdup("");
    ts->nonce = xds_strdup("");
}

struct xds_client *xds_client_create_detached(struct ev_loop *loop, int delta, cluster_manager *cm,
                                              stats_store *store,
                                              void (*hook)(void *, const ProtobufCMessage *),
                                              void *hook_ctx)
{
    struct xds_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->cm = cm;
    c->store = store;
    c->delta = delta;
    c->node_first_only = 1;
    c->backoff_s = XDS_BACKOFF_INITIAL_MS / 1000.0;
    c->request_hook = hook;
    c->request_hook_ctx = hook_ctx;
    init_type(&c->cds, XDS_CDS_TYPE_URL);
    init_type(&c->eds, XDS_EDS_TYPE_URL);
    ev_timer_init(&c->retry_timer, on_retry_timer, 0., 0.);
    c->retry_timer.data = c;
    ev_timer_init(&c->cds_fetch_timer, on_cds_fetch_timeout, 0., 0.);
    c->cds_fetch_timer.data = c;
    pb_bootstrap empty;
    envoy__config__bootstrap__v3__bootstrap__init(&empty);
    if (make_node(c, &empty) != 0 || make_stats(c) != 0) {
        xds_client_destroy(c);
        return NULL;
    }
    return c;
}

int xds_client_create(struct ev_loop *loop, const pb_bootstrap *b, cluster_manager *cm,
                      stats_store *store, dns_resolver *dns, xds_client **out, char *err,
                      size_t errlen)
{
    struct xds_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const Envoy__Config__Core__V3__ApiConfigSource *ads = b->dynamic_resources->ads_config;
    c->loop = loop;
    c->cm = cm;
    c->dns = dns;
    c->store = store;
    c->delta = ads->api_type == ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC;
    c->node_first_only = ads->set_node_on_first_message_only || c->delta;
    c->backoff_s = XDS_BACKOFF_INITIAL_MS / 1000.0;
    init_type(&c->cds, XDS_CDS_TYPE_URL);
    init_type(&c->eds, XDS_EDS_TYPE_URL);
    ev_timer_init(&c->retry_timer, on_retry_timer, 0., 0.);
    c->retry_timer.data = c;
    if (make_node(c, b) != 0 || make_stats(c) != 0) {
        snprintf(err, errlen, "out of memory");
        xds_client_destroy(c);
        return -1;
    }
    if (xds_client_target(b, c->target, sizeof(c->target), err, errlen) != 0) {
        xds_client_destroy(c);
        return -1;
    }
    xds_transport_callbacks cbs = {on_open, on_message, on_closed};
    if (xds_transport_create(loop, c->target, &cbs, c, &c->transport, err, errlen) != 0) {
        xds_client_destroy(c);
        return -1;
    }
    ev_timer_init(&c->cds_fetch_timer, on_cds_fetch_timeout, 0., 0.);
    c->cds_fetch_timer.data = c;
    const Envoy__Config__Core__V3__ConfigSource *cds = b->dynamic_resources->cds_config;
    double wait = XDS_DEFAULT_INITIAL_FETCH_TIMEOUT_S;
    if (cds && cds->initial_fetch_timeout)
        wait = (double)cds->initial_fetch_timeout->seconds + cds->initial_fetch_timeout->nanos / 1e9;
    if (cds == NULL) {
        c->cds_received = 1; /* no CDS to wait for */
    } else if (wait > 0) {
        ev_timer_set(&c->cds_fetch_timer, wait, 0.);
        ev_timer_start(loop, &c->cds_fetch_timer);
    }
    /* Static EDS clusters from the bootstrap need endpoints too. */
    for (size_t i = 0; i < cluster_manager_count(cm); i++) {
        const cm_cluster *e = cluster_manager_at(cm, i);
        pb_cluster *pc = (pb_cluster *)protobuf_c_message_unpack(PB_CLUSTER_DESC, NULL,
                                                                 e->config_len, e->config);
        if (pc && pc->eds_cluster_config)
            eds_watch_cluster(c, pc);
        if (pc)
            protobuf_c_message_free_unpacked(&pc->base, NULL);
    }
    start_stream(c);
    *out = c;
    return 0;
}

static void free_type(type_state *ts)
{
    free(ts->version);
    free(ts->nonce);
    held_clear(&ts->held);
    xds_failure_clear(&ts->failure);
}

void xds_client_destroy(xds_client *c)
{
    if (c == NULL)
        return;
    ev_timer_stop(c->loop, &c->retry_timer);
    ev_timer_stop(c->loop, &c->cds_fetch_timer);
    xds_transport_destroy(c->transport);
    eds_destroy(c);
    free_type(&c->cds);
    free_type(&c->eds);
    if (c->node)
        protobuf_c_message_free_unpacked(&c->node->base, NULL);
    if (c->cds_stats) {
        stats_store_remove(c->store, c->cds_stats);
        stats_scope_unref(c->cds_stats);
    }
    if (c->cp_stats) {
        stats_store_remove(c->store, c->cp_stats);
        stats_scope_unref(c->cp_stats);
    }
    free(c);
}

const char *xds_client_cds_version(const xds_client *c) { return c->cds.version; }

const xds_failure *xds_client_cds_failure(const xds_client *c) { return &c->cds.failure; }
