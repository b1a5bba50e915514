/* clusters_admin.c: /clusters text and JSON (clusters_admin.h). */
#include "xdsnode/clusters_admin.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/strbuf.h"

static const char *const health_names[] = {"UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING",
                                           "TIMEOUT", "DEGRADED"};

static const char *health_flags(const cluster_host *h)
{
    switch (h->health_status) {
    case 2: /* UNHEALTHY */
    case 3: /* DRAINING */
    case 4: /* TIMEOUT */
        return "/failed_eds_health";
    case 5:
        return "/degraded_eds_health";
    default:
        return "healthy";
    }
}

static void render_text_cluster(strbuf *b, const dp_cluster *c)
{
    const cluster_config *cfg = c->cfg;
    const char *n = cfg->name;
    static const char *const prio[] = {"default_priority", "high_priority"};
    strbuf_printf(b, "%s::observability_name::%s\n", n, cfg->stat_name);
    for (int p = 0; p < PRIORITY_COUNT; p++) {
        const cb_thresholds *t = &cfg->thresholds[p];
        strbuf_printf(b, "%s::%s::max_connections::%u\n", n, prio[p], t->max_connections);
        strbuf_printf(b, "%s::%s::max_pending_requests::%u\n", n, prio[p], t->max_pending_requests);
        strbuf_printf(b, "%s::%s::max_requests::%u\n", n, prio[p], t->max_requests);
        strbuf_printf(b, "%s::%s::max_retries::%u\n", n, prio[p], t->max_retries);
    }
    strbuf_printf(b, "%s::added_via_api::%s\n", n, c->added_via_api ? "true" : "false");
    if (cfg->eds_service_name[0])
        strbuf_printf(b, "%s::eds_service_name::%s\n", n, cfg->eds_service_name);
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        const cluster_host *h = &cfg->hosts[i];
        char hn[96];
        cluster_host_format(h, hn, sizeof(hn));
        for (int s = 0; s < HOST_STAT_COUNT; s++)
            strbuf_printf(b, "%s::%s::%s::%llu\n", n, hn, host_stat_defs[s].name,
                          (unsigned long long)atomic_load(&c->hosts[i].v[s]));
        strbuf_printf(b, "%s::%s::hostname::%s\n", n, hn, h->hostname);
        strbuf_printf(b, "%s::%s::health_flags::%s\n", n, hn, health_flags(h));
        strbuf_printf(b, "%s::%s::weight::%u\n", n, hn, h->weight);
        strbuf_printf(b, "%s::%s::region::%s\n", n, hn, h->region);
        strbuf_printf(b, "%s::%s::zone::%s\n", n, hn, h->zone);
        strbuf_printf(b, "%s::%s::sub_zone::%s\n", n, hn, h->sub_zone);
        strbuf_printf(b, "%s::%s::canary::false\n", n, hn);
        strbuf_printf(b, "%s::%s::priority::%u\n", n, hn, h->priority);
        strbuf_printf(b, "%s::%s::success_rate::-1\n", n, hn);
        strbuf_printf(b, "%s::%s::local_origin_success_rate::-1\n", n, hn);
    }
}

static json_t *thresholds_json(const cb_thresholds *t, int high)
{
    json_t *o = json_object();
    if (high)
        json_object_set_new(o, "priority", json_string("HIGH"));
    json_object_set_new(o, "max_connections", json_integer(t->max_connections));
    json_object_set_new(o, "max_pending_requests", json_integer(t->max_pending_requests));
    json_object_set_new(o, "max_requests", json_integer(t->max_requests));
    json_object_set_new(o, "max_retries", json_integer(t->max_retries));
    return o;
}

static json_t *host_json(const dp_cluster *c, size_t i)
{
    const cluster_host *h = &c->cfg->hosts[i];
    json_t *o = json_object();
    json_t *sa = json_pack("{s:{s:s,s:i}}", "socket_address", "address", h->ip, "port_value",
                           (json_int_t)h->port);
    json_object_set_new(o, "address", sa);
    json_t *stats = json_array();
    for (int s = 0; s < HOST_STAT_COUNT; s++) {
        char v[32];
        snprintf(v, sizeof(v), "%llu", (unsigned long long)atomic_load(&c->hosts[i].v[s]));
        json_t *m = json_pack("{s:s,s:s}", "name", host_stat_defs[s].name, "value", v);
        if (host_stat_defs[s].type == STAT_GAUGE)
            json_object_set_new(m, "type", json_string("GAUGE"));
        json_array_append_new(stats, m);
    }
    json_object_set_new(o, "stats", stats);
    int hs = h->health_status >= 0 && h->health_status <= 5 ? h->health_status : 0;
    json_object_set_new(o, "health_status",
                        json_pack("{s:s}", "eds_health_status", hs ? health_names[hs] : "HEALTHY"));
    json_object_set_new(o, "weight", json_integer(h->weight));
    if (h->hostname[0])
        json_object_set_new(o, "hostname", json_string(h->hostname));
    if (h->priority)
        json_object_set_new(o, "priority", json_integer(h->priority));
    json_t *loc = json_object();
    if (h->region[0])
        json_object_set_new(loc, "region", json_string(h->region));
    if (h->zone[0])
        json_object_set_new(loc, "zone", json_string(h->zone));
    if (h->sub_zone[0])
        json_object_set_new(loc, "sub_zone", json_string(h->sub_zone));
    json_object_set_new(o, "locality", loc);
    return o;
}

static json_t *remaining_json(const dp_cluster *c, int p)
{
    const circuit_breakers *cb = &c->cb;
    json_t *o = json_pack("{s:I,s:I,s:I,s:I}", "connections", (json_int_t)cb_remaining(cb, p, CB_CONNECTIONS),
                          "pending_requests", (json_int_t)cb_remaining(cb, p, CB_PENDING), "requests",
                          (json_int_t)cb_remaining(cb, p, CB_REQUESTS), "retries",
                          (json_int_t)cb_remaining(cb, p, CB_RETRIES));
    /* null: max_connection_pools unset (unlimited) */
    json_object_set_new(o, "connection_pools",
                        c->cfg->thresholds[p].max_connection_pools == UINT32_MAX
                            ? json_null()
                            : json_integer(cb_remaining(cb, p, CB_CONNECTION_POOLS)));
    return o;
}

static json_t *effective_limits_json(const dp_cluster *c, int p)
{
    const cb_thresholds *t = &c->cfg->thresholds[p];
    json_t *o = thresholds_json(t, p == PRIORITY_HIGH);
    if (p == PRIORITY_DEFAULT)
        json_object_set_new(o, "priority", json_string("DEFAULT"));
    if (t->max_connection_pools != UINT32_MAX)
        json_object_set_new(o, "max_connection_pools", json_integer(t->max_connection_pools));
    if (t->max_connections_per_host != UINT32_MAX) /* per_host_thresholds */
        json_object_set_new(o, "max_connections_per_host", json_integer(t->max_connections_per_host));
    json_object_set_new(o, "track_remaining", json_boolean(t->track_remaining));
    if (t->has_retry_budget)
        json_object_set_new(o, "retry_budget",
                            json_pack("{s:f,s:I}", "budget_percent", t->retry_budget_percent,
                                      "min_retry_concurrency", (json_int_t)t->retry_budget_min_concurrency));
    json_object_set_new(o, "remaining", remaining_json(c, p));
    return o;
}

static json_t *keepalive_json(const cluster_config *cfg)
{
    if (!cfg->tcp_keepalive)
        return json_null();
    json_t *o = json_object();
    /* 0: not set, the OS default applies */
    json_object_set_new(o, "keepalive_time", cfg->keepalive_time ? json_integer(cfg->keepalive_time) : json_null());
    json_object_set_new(o, "keepalive_interval",
                        cfg->keepalive_interval ? json_integer(cfg->keepalive_interval) : json_null());
    json_object_set_new(o, "keepalive_probes", cfg->keepalive_probes ? json_integer(cfg->keepalive_probes) : json_null());
    return o;
}

static json_t *duration_json(uint64_t ms)
{
    return ms ? json_real((double)ms / 1000.0) : json_null();
}

/* xdsnode's own addition: the cluster as translated and enforced. */
static json_t *effective_json(const dp_cluster *c)
{
    const cluster_config *cfg = c->cfg;
    json_t *limits = json_array();
    for (int p = 0; p < PRIORITY_COUNT; p++)
        json_array_append_new(limits, effective_limits_json(c, p));
    json_t *o = json_object();
    json_object_set_new(o, "circuit_breakers", limits);
    json_object_set_new(o, "tcp_keepalive", keepalive_json(cfg));
    json_object_set_new(o, "connect_timeout_seconds", duration_json(cfg->connect_timeout_ms));
    json_object_set_new(o, "idle_timeout_seconds", duration_json(cfg->idle_timeout_ms));
    json_object_set_new(o, "max_connection_duration_seconds", duration_json(cfg->max_connection_duration_ms));
    json_object_set_new(o, "max_stream_duration_seconds", duration_json(cfg->max_stream_duration_ms));
    json_object_set_new(o, "max_requests_per_connection",
                        cfg->max_requests_per_connection ? json_integer(cfg->max_requests_per_connection)
                                                         : json_null());
    json_object_set_new(o, "per_connection_buffer_limit_bytes", json_integer(cfg->buffer_limit));
    json_object_set_new(o, "lb_policy", json_string(cluster_lb_policy_name(cfg->lb)));
    const char *proto = cfg->protocol == UPSTREAM_PROTO_HTTP2        ? "http2"
                        : cfg->protocol == UPSTREAM_PROTO_DOWNSTREAM ? "downstream"
                                                                     : "http1";
    json_object_set_new(o, "upstream_protocol", json_string(proto));
    return o;
}

static json_t *cluster_json(const dp_cluster *c)
{
    const cluster_config *cfg = c->cfg;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(cfg->name));
    json_object_set_new(o, "observability_name", json_string(cfg->stat_name));
    json_t *th = json_array();
    json_array_append_new(th, thresholds_json(&cfg->thresholds[PRIORITY_DEFAULT], 0));
    json_array_append_new(th, thresholds_json(&cfg->thresholds[PRIORITY_HIGH], 1));
    json_object_set_new(o, "circuit_breakers", json_pack("{s:o}", "thresholds", th));
    if (c->added_via_api)
        json_object_set_new(o, "added_via_api", json_true());
    if (cfg->eds_service_name[0])
        json_object_set_new(o, "eds_service_name", json_string(cfg->eds_service_name));
    json_t *hosts = json_array();
    for (size_t i = 0; i < cfg->n_hosts; i++)
        json_array_append_new(hosts, host_json(c, i));
    json_object_set_new(o, "host_statuses", hosts);
    json_object_set_new(o, "xdsnode_effective", effective_json(c));
    return o;
}

static int render_json(const dp_snapshot *snap, admin_response *resp)
{
    json_t *list = json_array();
    for (size_t i = 0; snap && i < snap->n; i++)
        json_array_append_new(list, cluster_json(snap->clusters[i]));
    json_t *root = json_pack("{s:o}", "cluster_statuses", list);
    char *text = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    if (text == NULL)
        return -1;
    int rc = admin_response_set_text(resp, 200, "application/json", text, strlen(text));
    free(text);
    return rc;
}

int clusters_admin_render(const dp_snapshot *snap, const char *query, admin_response *resp)
{
    char format[32];
    if (admin_query_param(query, "format", format, sizeof(format)) == 1 &&
        strcmp(format, "json") == 0)
        return render_json(snap, resp);
    strbuf b;
    strbuf_init(&b);
    for (size_t i = 0; snap && i < snap->n; i++)
        render_text_cluster(&b, snap->clusters[i]);
    size_t len;
    char *text = strbuf_take(&b, &len);
    if (text == NULL)
        return -1;
    int rc = admin_response_set_text(resp, 200, "text/plain; charset=UTF-8", text, len);
    free(text);
    return rc;
}
