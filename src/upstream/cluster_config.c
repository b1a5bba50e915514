/* cluster_config.c: Cluster proto -> cluster_config (cluster_config.h). */
#include "xdsnode/cluster_config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t duration_ms(const pb_duration *d)
{
    if (d->seconds < 0)
        return 0;
    return (uint64_t)d->seconds * 1000 + (uint64_t)(d->nanos / 1000000);
}

static void apply_http_options(cluster_config *cfg, const Envoy__Config__Core__V3__HttpProtocolOptions *o)
{
    if (o == NULL)
        return;
    if (o->idle_timeout)
        cfg->idle_timeout_ms = duration_ms(o->idle_timeout);
    if (o->max_requests_per_connection)
        cfg->max_requests_per_connection = o->max_requests_per_connection->value;
    if (o->max_connection_duration)
        cfg->max_connection_duration_ms = duration_ms(o->max_connection_duration);
    if (o->max_stream_duration)
        cfg->max_stream_duration_ms = duration_ms(o->max_stream_duration);
}

void http2_options_defaults(http2_options *o)
{
    *o = (http2_options){
        .max_concurrent_streams = H2_DEFAULT_MAX_CONCURRENT_STREAMS,
        .initial_stream_window_size = H2_DEFAULT_INITIAL_STREAM_WINDOW_SIZE,
        .initial_connection_window_size = H2_DEFAULT_INITIAL_CONNECTION_WINDOW_SIZE,
        .hpack_table_size = H2_DEFAULT_HPACK_TABLE_SIZE,
    };
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void apply_http2_options(http2_options *o, const Envoy__Config__Core__V3__Http2ProtocolOptions *p)
{
    if (p == NULL)
        return;
    if (p->max_concurrent_streams)
        o->max_concurrent_streams = clamp_u32(p->max_concurrent_streams->value, 1, H2_MAX_STREAMS_LIMIT);
    if (p->initial_stream_window_size)
        o->initial_stream_window_size =
            clamp_u32(p->initial_stream_window_size->value, H2_MIN_WINDOW_SIZE, H2_MAX_WINDOW_SIZE);
    if (p->initial_connection_window_size)
        o->initial_connection_window_size =
            clamp_u32(p->initial_connection_window_size->value, H2_MIN_WINDOW_SIZE, H2_MAX_WINDOW_SIZE);
    if (p->hpack_table_size)
        o->hpack_table_size = p->hpack_table_size->value;
    if (p->connection_keepalive) {
        const Envoy__Config__Core__V3__KeepaliveSettings *k = p->connection_keepalive;
        o->keepalive_interval_ms = k->interval ? duration_ms(k->interval) : 0;
        o->keepalive_timeout_ms = k->timeout ? duration_ms(k->timeout) : 0;
    }
}

int cluster_config_upstream_http2(const cluster_config *cfg, int downstream_http2)
{
    if (cfg->protocol == UPSTREAM_PROTO_DOWNSTREAM)
        return downstream_http2 && cfg->downstream_http2_ok;
    return cfg->protocol == UPSTREAM_PROTO_HTTP2;
}

/* The deprecated Cluster-level fields still apply (Envoy honours them). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void apply_legacy_options(cluster_config *cfg, const pb_cluster *c)
{
    apply_http_options(cfg, c->common_http_protocol_options);
    if (c->max_requests_per_connection)
        cfg->max_requests_per_connection = c->max_requests_per_connection->value;
    if (c->http2_protocol_options) {
        cfg->protocol = UPSTREAM_PROTO_HTTP2;
        apply_http2_options(&cfg->h2, c->http2_protocol_options);
    }
}
#pragma GCC diagnostic pop

typedef Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions pb_http_protocol_options;

/* explicit_http_config / use_downstream_protocol_config (auto_config needs
 * ALPN, which needs TLS: it is treated as HTTP/1.1 until TLS exists). */
static void apply_upstream_protocol(cluster_config *cfg, const pb_http_protocol_options *hpo)
{
    switch (hpo->upstream_protocol_options_case) {
    case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG:
        if (hpo->explicit_http_config->protocol_config_case ==
            ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS) {
            cfg->protocol = UPSTREAM_PROTO_HTTP2;
            apply_http2_options(&cfg->h2, hpo->explicit_http_config->http2_protocol_options);
        } else {
            cfg->protocol = UPSTREAM_PROTO_HTTP1;
        }
        break;
    case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_USE_DOWNSTREAM_PROTOCOL_CONFIG:
        cfg->protocol = UPSTREAM_PROTO_DOWNSTREAM;
        cfg->downstream_http2_ok = hpo->use_downstream_protocol_config->http2_protocol_options != NULL;
        apply_http2_options(&cfg->h2, hpo->use_downstream_protocol_config->http2_protocol_options);
        break;
    default:
        cfg->protocol = UPSTREAM_PROTO_HTTP1;
        break;
    }
}

int cluster_http_protocol_options(const pb_cluster *c, pb_http_protocol_options **out)
{
    *out = NULL;
    for (size_t i = 0; i < c->n_typed_extension_protocol_options; i++) {
        const Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
            c->typed_extension_protocol_options[i];
        if (strcmp(e->key, HTTP_PROTOCOL_OPTIONS_NAME) != 0 || e->value == NULL)
            continue;
        *out = envoy__extensions__upstreams__http__v3__http_protocol_options__unpack(
            NULL, e->value->value.len, e->value->value.data);
        return *out ? 1 : -1; /* map keys are unique */
    }
    return 0;
}

static int apply_protocol_options(cluster_config *cfg, const pb_cluster *c, char *err, size_t errlen)
{
    apply_legacy_options(cfg, c);
    pb_http_protocol_options *hpo;
    int rc = cluster_http_protocol_options(c, &hpo);
    if (rc < 0) {
        snprintf(err, errlen, "cannot parse %s", HTTP_PROTOCOL_OPTIONS_NAME);
        return -1;
    }
    if (rc > 0) {
        apply_http_options(cfg, hpo->common_http_protocol_options);
        apply_upstream_protocol(cfg, hpo);
        protobuf_c_message_free_unpacked(&hpo->base, NULL);
    }
    return 0;
}

static const cb_thresholds default_thresholds = {
    .max_connections = CB_DEFAULT_MAX_CONNECTIONS,
    .max_pending_requests = CB_DEFAULT_MAX_PENDING_REQUESTS,
    .max_requests = CB_DEFAULT_MAX_REQUESTS,
    .max_retries = CB_DEFAULT_MAX_RETRIES,
    .max_connection_pools = CB_DEFAULT_MAX_CONNECTION_POOLS,
    .max_connections_per_host = CB_DEFAULT_MAX_CONNECTIONS_PER_HOST,
    .track_remaining = CB_DEFAULT_TRACK_REMAINING,
    .has_retry_budget = 0,
    .retry_budget_percent = CB_DEFAULT_RETRY_BUDGET_PERCENT,
    .retry_budget_min_concurrency = CB_DEFAULT_RETRY_BUDGET_MIN_CONCURRENCY,
};

static int apply_retry_budget(cb_thresholds *th,
                              const Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds__RetryBudget *b,
                              char *err, size_t errlen)
{
    if (b == NULL)
        return 0;
    th->has_retry_budget = 1;
    if (b->budget_percent) {
        double v = b->budget_percent->value;
        if (!(v >= 0.0 && v <= 100.0)) {
            snprintf(err, errlen, "circuit_breakers: retry_budget.budget_percent %g is outside 0..100", v);
            return -1;
        }
        th->retry_budget_percent = v;
    }
    if (b->min_retry_concurrency)
        th->retry_budget_min_concurrency = b->min_retry_concurrency->value;
    return 0;
}

static int apply_thresholds(cb_thresholds *th, const Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t,
                            char *err, size_t errlen)
{
    if (t->max_connections)
        th->max_connections = t->max_connections->value;
    if (t->max_pending_requests)
        th->max_pending_requests = t->max_pending_requests->value;
    if (t->max_requests)
        th->max_requests = t->max_requests->value;
    if (t->max_retries)
        th->max_retries = t->max_retries->value;
    if (t->max_connection_pools)
        th->max_connection_pools = t->max_connection_pools->value;
    th->track_remaining = t->track_remaining ? 1 : 0;
    return apply_retry_budget(th, t->retry_budget, err, errlen);
}

static int apply_circuit_breakers(cluster_config *cfg, const pb_cluster *c, char *err, size_t errlen)
{
    for (int p = 0; p < PRIORITY_COUNT; p++)
        cfg->thresholds[p] = default_thresholds;
    if (c->circuit_breakers == NULL)
        return 0;
    int seen[PRIORITY_COUNT] = {0};
    for (size_t i = 0; i < c->circuit_breakers->n_thresholds; i++) {
        const Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t =
            c->circuit_breakers->thresholds[i];
        int p = t->priority == ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH ? PRIORITY_HIGH
                                                                               : PRIORITY_DEFAULT;
        if (seen[p]++) /* the first entry for a priority wins, as in Envoy */
            continue;
        if (apply_thresholds(&cfg->thresholds[p], t, err, errlen) != 0)
            return -1;
    }
    /* per_host_thresholds: as Envoy, only max_connections is honoured, and
     * the first entry for a priority wins. */
    int seen_host[PRIORITY_COUNT] = {0};
    for (size_t i = 0; i < c->circuit_breakers->n_per_host_thresholds; i++) {
        const Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t =
            c->circuit_breakers->per_host_thresholds[i];
        int p = t->priority == ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH ? PRIORITY_HIGH
                                                                               : PRIORITY_DEFAULT;
        if (seen_host[p]++)
            continue;
        if (t->max_connections)
            cfg->thresholds[p].max_connections_per_host = t->max_connections->value;
    }
    return 0;
}

static int apply_lb_policy(cluster_config *cfg, const pb_cluster *c, char *err, size_t errlen)
{
    switch (c->lb_policy) {
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN:
        cfg->lb = LB_ROUND_ROBIN;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST:
        cfg->lb = LB_LEAST_REQUEST;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM:
        cfg->lb = LB_RANDOM;
        break;
    default:
        snprintf(err, errlen, "lb_policy: unsupported policy %d (ROUND_ROBIN, LEAST_REQUEST and "
                 "RANDOM are implemented)", (int)c->lb_policy);
        return -1;
    }
    cfg->choice_count = LB_DEFAULT_CHOICE_COUNT;
    if (c->lb_config_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG &&
        c->least_request_lb_config->choice_count &&
        c->least_request_lb_config->choice_count->value >= 2)
        cfg->choice_count = c->least_request_lb_config->choice_count->value;
    return 0;
}

static int fill_host(cluster_host *h, const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc,
                     const Envoy__Config__Endpoint__V3__LbEndpoint *lb, char *err, size_t errlen)
{
    const pb_address *a = lb->endpoint ? lb->endpoint->address : NULL;
    if (a == NULL || a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS) {
        snprintf(err, errlen, "endpoint without a socket_address");
        return -1;
    }
    const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&h->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&h->addr;
    if (inet_pton(AF_INET, sa->address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)sa->port_value);
        h->addrlen = sizeof(*v4);
    } else if (inet_pton(AF_INET6, sa->address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)sa->port_value);
        h->addrlen = sizeof(*v6);
    } else {
        snprintf(err, errlen, "endpoint address \"%s\" is not an IP literal", sa->address);
        return -1;
    }
    snprintf(h->ip, sizeof(h->ip), "%s", sa->address);
    h->port = sa->port_value;
    h->weight = lb->load_balancing_weight && lb->load_balancing_weight->value
                    ? lb->load_balancing_weight->value : HOST_DEFAULT_WEIGHT;
    h->priority = loc->priority;
    h->health_status = lb->health_status;
    const Envoy__Config__Core__V3__Locality *l = loc->locality;
    h->hostname = strdup(lb->endpoint->hostname ? lb->endpoint->hostname : "");
    h->region = strdup(l ? l->region : "");
    h->zone = strdup(l ? l->zone : "");
    h->sub_zone = strdup(l ? l->sub_zone : "");
    if (!h->hostname || !h->region || !h->zone || !h->sub_zone) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int apply_hosts(cluster_config *cfg, const pb_cla *cla, char *err, size_t errlen)
{
    if (cla == NULL)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < cla->n_endpoints; i++)
        n += cla->endpoints[i]->n_lb_endpoints;
    cfg->hosts = calloc(n ? n : 1, sizeof(cluster_host));
    if (cfg->hosts == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = cla->endpoints[i];
        for (size_t j = 0; j < loc->n_lb_endpoints; j++) {
            if (fill_host(&cfg->hosts[cfg->n_hosts++], loc, loc->lb_endpoints[j], err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

static int keepalive_value(const Google__Protobuf__UInt32Value *v, uint32_t max, const char *field,
                           uint32_t *out, char *err, size_t errlen)
{
    if (v == NULL)
        return 0; /* unset: the OS default stays */
    if (v->value > max) {
        snprintf(err, errlen, "upstream_connection_options.tcp_keepalive.%s: %u is above %u",
                 field, v->value, max);
        return -1;
    }
    *out = v->value;
    return 0;
}

static int apply_connection_options(cluster_config *cfg, const pb_cluster *c, char *err, size_t errlen)
{
    const Envoy__Config__Cluster__V3__UpstreamConnectionOptions *o = c->upstream_connection_options;
    if (o == NULL || o->tcp_keepalive == NULL)
        return 0;
    const Envoy__Config__Core__V3__TcpKeepalive *k = o->tcp_keepalive;
    cfg->tcp_keepalive = 1;
    if (keepalive_value(k->keepalive_probes, KEEPALIVE_MAX_PROBES, "keepalive_probes",
                        &cfg->keepalive_probes, err, errlen) != 0 ||
        keepalive_value(k->keepalive_time, KEEPALIVE_MAX_SECONDS, "keepalive_time",
                        &cfg->keepalive_time, err, errlen) != 0 ||
        keepalive_value(k->keepalive_interval, KEEPALIVE_MAX_SECONDS, "keepalive_interval",
                        &cfg->keepalive_interval, err, errlen) != 0)
        return -1;
    return 0;
}

int cluster_config_translate(const pb_cluster *c, const pb_cla *cla, cluster_config **out,
                             char *err, size_t errlen)
{
    cluster_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cfg->name = strdup(c->name);
    cfg->stat_name = strdup(c->alt_stat_name[0] ? c->alt_stat_name : c->name);
    cfg->is_eds = c->cluster_discovery_type_case ==
                      ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE &&
                  c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    cfg->eds_service_name = strdup(c->eds_cluster_config ? c->eds_cluster_config->service_name : "");
    cfg->connect_timeout_ms = c->connect_timeout ? duration_ms(c->connect_timeout)
                                                 : CLUSTER_DEFAULT_CONNECT_TIMEOUT_MS;
    cfg->buffer_limit = c->per_connection_buffer_limit_bytes
                            ? c->per_connection_buffer_limit_bytes->value
                            : CLUSTER_DEFAULT_BUFFER_LIMIT_BYTES;
    cfg->idle_timeout_ms = CLUSTER_DEFAULT_IDLE_TIMEOUT_MS;
    cfg->max_requests_per_connection = CLUSTER_DEFAULT_MAX_REQUESTS_PER_CONNECTION;
    http2_options_defaults(&cfg->h2);
    cfg->max_connection_duration_ms = CLUSTER_DEFAULT_MAX_CONNECTION_DURATION_MS;
    cfg->max_stream_duration_ms = CLUSTER_DEFAULT_MAX_STREAM_DURATION_MS;
    if (!cfg->name || !cfg->stat_name || !cfg->eds_service_name) {
        snprintf(err, errlen, "out of memory");
        cluster_config_free(cfg);
        return -1;
    }
    if (apply_circuit_breakers(cfg, c, err, errlen) != 0 ||
        apply_connection_options(cfg, c, err, errlen) != 0 ||
        apply_lb_policy(cfg, c, err, errlen) != 0 || apply_protocol_options(cfg, c, err, errlen) != 0 ||
        apply_hosts(cfg, cla ? cla : c->load_assignment, err, errlen) != 0) {
        cluster_config_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

int cluster_config_from_bytes(const uint8_t *config, size_t config_len, const uint8_t *cla,
                              size_t cla_len, cluster_config **out, char *err, size_t errlen)
{
    pb_cluster *c = envoy__config__cluster__v3__cluster__unpack(NULL, config_len, config);
    pb_cla *a = cla ? envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, cla_len, cla)
                    : NULL;
    int rc = -1;
    if (c == NULL || (cla && a == NULL))
        snprintf(err, errlen, "cannot parse the cluster's serialized config");
    else
        rc = cluster_config_translate(c, a, out, err, errlen);
    if (c)
        protobuf_c_message_free_unpacked(&c->base, NULL);
    if (a)
        protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

void cluster_config_free(cluster_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        free(cfg->hosts[i].hostname);
        free(cfg->hosts[i].region);
        free(cfg->hosts[i].zone);
        free(cfg->hosts[i].sub_zone);
    }
    free(cfg->hosts);
    free(cfg->name);
    free(cfg->stat_name);
    free(cfg->eds_service_name);
    free(cfg);
}

int cluster_host_routable(const cluster_host *h)
{
    return h->health_status != ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY &&
           h->health_status != ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING &&
           h->health_status != ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__TIMEOUT;
}

const char *cluster_lb_policy_name(lb_policy lb)
{
    switch (lb) {
    case LB_LEAST_REQUEST: return "LEAST_REQUEST";
    case LB_RANDOM: return "RANDOM";
    default: return "ROUND_ROBIN";
    }
}

void cluster_host_format(const cluster_host *h, char *out, size_t len)
{
    snprintf(out, len, h->addr.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", h->ip, h->port);
}
