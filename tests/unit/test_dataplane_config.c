/* Unit tests: Cluster -> cluster_config translation (Envoy's defaults,
 * every field we act on) and Listener -> listener_config (routes, egress,
 * errors with field paths). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "xdsnode/bootstrap.h"
#include "xdsnode/cluster_config.h"
#include "xdsnode/listener_config.h"

static pb_bootstrap *parse(const char *yaml)
{
    pb_bootstrap *b = NULL;
    char err[1024];
    cr_assert_eq(bootstrap_parse_text(yaml, strlen(yaml), 0, "t.yaml", &b, err, sizeof(err)), 0,
                 "%s", err);
    return b;
}

static cluster_config *translate_cluster(const char *yaml)
{
    pb_bootstrap *b = parse(yaml);
    cluster_config *cfg = NULL;
    char err[512];
    int rc = cluster_config_translate(b->static_resources->clusters[0], NULL, &cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    bootstrap_free(b);
    return cfg;
}

Test(cluster_config, envoy_defaults)
{
    cluster_config *c = translate_cluster("static_resources: {clusters: [{name: a}]}");
    cr_assert_str_eq(c->name, "a");
    cr_assert_str_eq(c->stat_name, "a");
    cr_assert_eq(c->lb, LB_ROUND_ROBIN);
    cr_assert_eq(c->connect_timeout_ms, 5000);
    cr_assert_eq(c->buffer_limit, 1024 * 1024);
    cr_assert_eq(c->idle_timeout_ms, 3600 * 1000);
    cr_assert_eq(c->max_requests_per_connection, 0);
    for (int p = 0; p < PRIORITY_COUNT; p++) {
        cr_assert_eq(c->thresholds[p].max_connections, 1024);
        cr_assert_eq(c->thresholds[p].max_pending_requests, 1024);
        cr_assert_eq(c->thresholds[p].max_requests, 1024);
        cr_assert_eq(c->thresholds[p].max_retries, 3);
        cr_assert_eq(c->thresholds[p].max_connection_pools, UINT32_MAX, "unlimited");
        cr_assert_eq(c->thresholds[p].max_connections_per_host, UINT32_MAX, "unlimited");
        cr_assert_eq(c->thresholds[p].track_remaining, 0);
        cr_assert_eq(c->thresholds[p].has_retry_budget, 0);
    }
    cr_assert_eq(c->max_connection_duration_ms, 0, "none");
    cr_assert_eq(c->max_stream_duration_ms, 0, "none");
    cr_assert_eq(c->protocol, UPSTREAM_PROTO_HTTP1);
    cr_assert_str_eq(cluster_lb_policy_name(c->lb), "ROUND_ROBIN");
    cr_assert_eq(c->n_hosts, 0);
    cr_assert_eq(c->tcp_keepalive, 0);
    cr_assert_eq(c->keepalive_probes, 0, "OS default");
    cr_assert_eq(c->keepalive_time, 0, "OS default");
    cr_assert_eq(c->keepalive_interval, 0, "OS default");
    cluster_config_free(c);
}

Test(cluster_config, every_field_we_act_on)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, alt_stat_name: 'a;', connect_timeout: 0.25s,"
        " lb_policy: LEAST_REQUEST, least_request_lb_config: {choice_count: 3},"
        " per_connection_buffer_limit_bytes: 32768,"
        " circuit_breakers: {thresholds: [{max_connections: 2, max_pending_requests: 3},"
        "   {priority: HIGH, max_retries: 9}, {max_connections: 77}]},"
        " upstream_connection_options: {tcp_keepalive: {keepalive_time: 300}},"
        " typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions:"
        "   {'@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions,"
        "    common_http_protocol_options: {idle_timeout: 60s, max_requests_per_connection: 100},"
        "    explicit_http_config: {http_protocol_options: {}}}},"
        " load_assignment: {endpoints: [{locality: {region: r, zone: z}, lb_endpoints: ["
        "   {endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}, hostname: h1},"
        "    load_balancing_weight: 5},"
        "   {endpoint: {address: {socket_address: {address: '::1', port_value: 81}}},"
        "    health_status: DRAINING}]},"
        "  {priority: 1, lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.0.0.2, port_value: 82}}}}]}]}}]}");
    cr_assert_str_eq(c->stat_name, "a;");
    cr_assert_eq(c->lb, LB_LEAST_REQUEST);
    cr_assert_eq(c->choice_count, 3);
    cr_assert_eq(c->connect_timeout_ms, 250);
    cr_assert_eq(c->buffer_limit, 32768);
    cr_assert_eq(c->idle_timeout_ms, 60000);
    cr_assert_eq(c->max_requests_per_connection, 100);
    cr_assert_eq(c->thresholds[PRIORITY_DEFAULT].max_connections, 2, "first entry per priority wins");
    cr_assert_eq(c->thresholds[PRIORITY_DEFAULT].max_pending_requests, 3);
    cr_assert_eq(c->thresholds[PRIORITY_DEFAULT].max_requests, 1024);
    cr_assert_eq(c->thresholds[PRIORITY_HIGH].max_retries, 9);
    cr_assert_eq(c->thresholds[PRIORITY_HIGH].max_connections, 1024);
    cr_assert_eq(c->tcp_keepalive, 1);
    cr_assert_eq(c->keepalive_time, 300);
    cr_assert_eq(c->n_hosts, 3);
    cr_assert_str_eq(c->hosts[0].ip, "10.0.0.1");
    cr_assert_eq(c->hosts[0].port, 80);
    cr_assert_eq(c->hosts[0].weight, 5);
    cr_assert_str_eq(c->hosts[0].hostname, "h1");
    cr_assert_str_eq(c->hosts[0].zone, "z");
    cr_assert_eq(c->hosts[1].addr.ss_family, AF_INET6);
    cr_assert_eq(c->hosts[1].weight, 1);
    cr_assert_not(cluster_host_routable(&c->hosts[1]));
    cr_assert(cluster_host_routable(&c->hosts[0]));
    cr_assert_eq(c->hosts[2].priority, 1);
    cluster_config_free(c);
}

#define HPO_KEY "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#define HPO_TYPE "'@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

Test(cluster_config, http2_defaults_and_http1_by_default)
{
    cluster_config *c = translate_cluster("static_resources: {clusters: [{name: a}]}");
    cr_assert_eq(c->protocol, UPSTREAM_PROTO_HTTP1);
    cr_assert_not(cluster_config_upstream_http2(c, 1));
    cr_assert_eq(c->h2.max_concurrent_streams, 1024);
    cr_assert_eq(c->h2.initial_stream_window_size, 16u * 1024 * 1024);
    cr_assert_eq(c->h2.initial_connection_window_size, 24u * 1024 * 1024);
    cr_assert_eq(c->h2.hpack_table_size, 4096);
    cr_assert_eq(c->h2.keepalive_interval_ms, 0);
    cluster_config_free(c);
}

Test(cluster_config, explicit_http2_with_every_option)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, typed_extension_protocol_options: {" HPO_KEY ": {" HPO_TYPE ","
        "  explicit_http_config: {http2_protocol_options: {max_concurrent_streams: 10,"
        "   initial_stream_window_size: 65536, initial_connection_window_size: 1048576,"
        "   hpack_table_size: 0, connection_keepalive: {interval: 2s, timeout: 0.5s}}}}}}]}");
    cr_assert_eq(c->protocol, UPSTREAM_PROTO_HTTP2);
    cr_assert(cluster_config_upstream_http2(c, 0));
    cr_assert_eq(c->h2.max_concurrent_streams, 10);
    cr_assert_eq(c->h2.initial_stream_window_size, 65536);
    cr_assert_eq(c->h2.initial_connection_window_size, 1048576);
    cr_assert_eq(c->h2.hpack_table_size, 0);
    cr_assert_eq(c->h2.keepalive_interval_ms, 2000);
    cr_assert_eq(c->h2.keepalive_timeout_ms, 500);
    cluster_config_free(c);
}

Test(cluster_config, explicit_http1_overrides_legacy_http2)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, http2_protocol_options: {max_concurrent_streams: 5},"
        " typed_extension_protocol_options: {" HPO_KEY ": {" HPO_TYPE ","
        "  explicit_http_config: {http_protocol_options: {}}}}}]}");
    cr_assert_eq(c->protocol, UPSTREAM_PROTO_HTTP1);
    cluster_config_free(c);
}

Test(cluster_config, legacy_http2_protocol_options)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, http2_protocol_options: {max_concurrent_streams: 5}}]}");
    cr_assert_eq(c->protocol, UPSTREAM_PROTO_HTTP2);
    cr_assert_eq(c->h2.max_concurrent_streams, 5);
    cr_assert_eq(c->h2.initial_stream_window_size, 16u * 1024 * 1024);
    cluster_config_free(c);
}

Test(cluster_config, use_downstream_protocol_config)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, typed_extension_protocol_options: {" HPO_KEY ": {" HPO_TYPE ","
        "  use_downstream_protocol_config: {http_protocol_options: {},"
        "   http2_protocol_options: {max_concurrent_streams: 7}}}}}]}");
    cr_assert_eq(c->protocol, UPSTREAM_PROTO_DOWNSTREAM);
    cr_assert(cluster_config_upstream_http2(c, 1));
    cr_assert_not(cluster_config_upstream_http2(c, 0));
    cr_assert_eq(c->h2.max_concurrent_streams, 7);
    cluster_config_free(c);
    c = translate_cluster(
        "static_resources: {clusters: [{name: a, typed_extension_protocol_options: {" HPO_KEY ": {" HPO_TYPE ","
        "  use_downstream_protocol_config: {http_protocol_options: {}}}}}]}");
    cr_assert_not(cluster_config_upstream_http2(c, 1), "no http2_protocol_options: HTTP/1.1 only");
    cluster_config_free(c);
}

Test(cluster_config, http2_window_sizes_are_clamped_to_valid_range)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, http2_protocol_options: {initial_stream_window_size: 100,"
        " initial_connection_window_size: 4294967295}}]}");
    cr_assert_eq(c->h2.initial_stream_window_size, 65535);
    cr_assert_eq(c->h2.initial_connection_window_size, 2147483647u);
    cluster_config_free(c);
}

Test(cluster_config, circuit_breaker_fields_per_priority)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, circuit_breakers: {thresholds: ["
        " {max_connections: 8, max_pending_requests: 9, max_requests: 10, max_retries: 11,"
        "  track_remaining: true, max_connection_pools: 4},"
        " {priority: HIGH, max_connections: 80, retry_budget: {budget_percent: {value: 25},"
        "  min_retry_concurrency: 7}}]}}]}");
    const cb_thresholds *d = &c->thresholds[PRIORITY_DEFAULT], *h = &c->thresholds[PRIORITY_HIGH];
    cr_assert_eq(d->max_connections, 8);
    cr_assert_eq(d->max_pending_requests, 9);
    cr_assert_eq(d->max_requests, 10);
    cr_assert_eq(d->max_retries, 11);
    cr_assert_eq(d->track_remaining, 1);
    cr_assert_eq(d->max_connection_pools, 4);
    cr_assert_eq(d->has_retry_budget, 0);
    cr_assert_eq(h->max_connections, 80);
    cr_assert_eq(h->max_pending_requests, 1024, "unset fields keep the default");
    cr_assert_eq(h->max_retries, 3);
    cr_assert_eq(h->track_remaining, 0);
    cr_assert_eq(h->max_connection_pools, UINT32_MAX);
    cr_assert_eq(h->has_retry_budget, 1);
    cr_assert_float_eq(h->retry_budget_percent, 25.0, 1e-9);
    cr_assert_eq(h->retry_budget_min_concurrency, 7);
    cluster_config_free(c);
}

Test(cluster_config, per_host_thresholds_only_max_connections_per_priority)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, circuit_breakers: {"
        " thresholds: [{max_connections: 8}],"
        " per_host_thresholds: [{max_connections: 2, max_pending_requests: 1, max_requests: 1},"
        "  {max_connections: 5},"
        "  {priority: HIGH, max_connections: 3}]}}]}");
    const cb_thresholds *d = &c->thresholds[PRIORITY_DEFAULT], *h = &c->thresholds[PRIORITY_HIGH];
    cr_assert_eq(d->max_connections_per_host, 2, "the first DEFAULT entry wins");
    cr_assert_eq(d->max_connections, 8, "the cluster-wide limit is separate");
    cr_assert_eq(d->max_pending_requests, 1024, "only max_connections is honoured per host");
    cr_assert_eq(d->max_requests, 1024);
    cr_assert_eq(h->max_connections_per_host, 3);
    cr_assert_eq(h->max_connections, 1024);
    cluster_config_free(c);

    c = translate_cluster("static_resources: {clusters: [{name: a, circuit_breakers: {"
                          " per_host_thresholds: [{max_pending_requests: 1}]}}]}");
    cr_assert_eq(c->thresholds[PRIORITY_DEFAULT].max_connections_per_host, UINT32_MAX,
                 "an entry without max_connections leaves the host unlimited");
    cluster_config_free(c);
}

Test(cluster_config, retry_budget_defaults)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, circuit_breakers: {thresholds: [{retry_budget: {}}]}}]}");
    cr_assert_eq(c->thresholds[PRIORITY_DEFAULT].has_retry_budget, 1);
    cr_assert_float_eq(c->thresholds[PRIORITY_DEFAULT].retry_budget_percent, 20.0, 1e-9);
    cr_assert_eq(c->thresholds[PRIORITY_DEFAULT].retry_budget_min_concurrency, 3);
    cr_assert_eq(c->thresholds[PRIORITY_HIGH].has_retry_budget, 0);
    cluster_config_free(c);
}

Test(cluster_config, keepalive_and_http_durations)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, lb_policy: RANDOM,"
        " upstream_connection_options: {tcp_keepalive: {keepalive_time: 30, keepalive_interval: 5,"
        "  keepalive_probes: 3}},"
        " typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions:"
        "   {'@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions,"
        "    common_http_protocol_options: {idle_timeout: 0s, max_connection_duration: 2.5s,"
        "     max_stream_duration: 7s},"
        "    explicit_http_config: {http_protocol_options: {}}}}}]}");
    cr_assert_eq(c->tcp_keepalive, 1);
    cr_assert_eq(c->keepalive_time, 30);
    cr_assert_eq(c->keepalive_interval, 5);
    cr_assert_eq(c->keepalive_probes, 3);
    cr_assert_eq(c->idle_timeout_ms, 0, "0s disables the idle timeout");
    cr_assert_eq(c->max_connection_duration_ms, 2500);
    cr_assert_eq(c->max_stream_duration_ms, 7000);
    cr_assert_eq(c->lb, LB_RANDOM);
    cr_assert_str_eq(cluster_lb_policy_name(c->lb), "RANDOM");
    cluster_config_free(c);
}

Test(cluster_config, keepalive_present_but_empty_keeps_os_defaults)
{
    cluster_config *c = translate_cluster(
        "static_resources: {clusters: [{name: a, upstream_connection_options: {tcp_keepalive: {}}}]}");
    cr_assert_eq(c->tcp_keepalive, 1, "SO_KEEPALIVE is set");
    cr_assert_eq(c->keepalive_time + c->keepalive_interval + c->keepalive_probes, 0);
    cluster_config_free(c);
}

static void expect_translation_error(const char *yaml, const char *needle)
{
    pb_bootstrap *b = parse(yaml);
    cluster_config *cfg = NULL;
    char err[512] = "";
    cr_assert_eq(cluster_config_translate(b->static_resources->clusters[0], NULL, &cfg, err, sizeof(err)), -1,
                 "%s", yaml);
    cr_assert_null(cfg);
    cr_assert(strstr(err, needle) != NULL, "%s", err);
    bootstrap_free(b);
}

Test(cluster_config, bad_values_are_errors)
{
    expect_translation_error("static_resources: {clusters: [{name: a, upstream_connection_options:"
                             " {tcp_keepalive: {keepalive_probes: 128}}}]}", "keepalive_probes: 128 is above 127");
    expect_translation_error("static_resources: {clusters: [{name: a, upstream_connection_options:"
                             " {tcp_keepalive: {keepalive_time: 40000}}}]}", "keepalive_time");
    expect_translation_error("static_resources: {clusters: [{name: a, upstream_connection_options:"
                             " {tcp_keepalive: {keepalive_interval: 32768}}}]}", "keepalive_interval");
    expect_translation_error("static_resources: {clusters: [{name: a, circuit_breakers: {thresholds:"
                             " [{retry_budget: {budget_percent: {value: 150}}}]}}]}", "budget_percent");
    expect_translation_error("static_resources: {clusters: [{name: a, load_assignment: {endpoints: [{lb_endpoints:"
                             " [{endpoint: {address: {socket_address: {address: example.com, port_value: 80}}}}]}]}}]}",
                             "not an IP literal");
}

Test(cluster_config, unsupported_lb_policy_is_an_error)
{
    pb_bootstrap *b = parse("static_resources: {clusters: [{name: a, lb_policy: MAGLEV}]}");
    cluster_config *cfg = NULL;
    char err[512];
    cr_assert_eq(cluster_config_translate(b->static_resources->clusters[0], NULL, &cfg, err, sizeof(err)), -1);
    cr_assert(strstr(err, "lb_policy") != NULL, "%s", err);
    bootstrap_free(b);
}

static const char *HCM_HEAD =
    "static_resources: {listeners: [{name: l, address: {socket_address: {address: 127.0.0.1, port_value: 8080}},"
    " filter_chains: [{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {"
    " '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager,"
    " stat_prefix: s, http_filters: [{name: envoy.filters.http.router, typed_config: {'@type': "
    " type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}], route_config: ";

static int translate_listener(const char *route_config, listener_config **out, char *err, size_t errlen)
{
    char yaml[4096];
    snprintf(yaml, sizeof(yaml), "%s%s}}]}]}]}", HCM_HEAD, route_config);
    pb_bootstrap *b = parse(yaml);
    int rc = listener_config_translate(b->static_resources->listeners[0], "static_resources.listeners[0]",
                                       out, err, errlen);
    bootstrap_free(b);
    return rc;
}

Test(listener_config, hcm_defaults)
{
    listener_config *lc;
    char err[512];
    cr_assert_eq(translate_listener("{virtual_hosts: [{name: v, domains: ['*'], routes: ["
                                    "{match: {prefix: /}, route: {cluster: c}}]}]}", &lc, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(lc->kind, LISTENER_HTTP);
    cr_assert_eq(lc->port, 8080);
    cr_assert_eq(lc->buffer_limit, 1024 * 1024);
    cr_assert_eq(lc->max_request_headers_bytes, 60 * 1024);
    cr_assert_eq(lc->idle_timeout_ms, 3600 * 1000);
    cr_assert_eq(lc->routes.validate_clusters, 1);
    cr_assert_str_eq(lc->server_name, "envoy");
    cr_assert_eq(lc->routes.vhosts[0].routes[0].timeout_ms, 15000);
    cr_assert_eq(lc->routes.vhosts[0].routes[0].not_found_status, 503);
    cr_assert_null(lc->access_log_path);
    listener_config_free(lc);
}

Test(listener_config, codec_type_and_downstream_http2_options)
{
    listener_config *lc;
    char err[512];
    const char *vh = "{virtual_hosts: [{name: v, domains: ['*'], routes: [{match: {prefix: /}, route: {cluster: c}}]}]}";
    cr_assert_eq(translate_listener(vh, &lc, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(lc->codec, HCM_CODEC_AUTO);
    cr_assert_eq(lc->h2_max_concurrent_streams, 1024);
    cr_assert_eq(lc->h2_initial_stream_window_size, 16u * 1024 * 1024);
    listener_config_free(lc);
    char rc[512];
    snprintf(rc, sizeof(rc), "%s, codec_type: HTTP2, http2_protocol_options: {max_concurrent_streams: 50,"
             " initial_stream_window_size: 1048576}", vh);
    cr_assert_eq(translate_listener(rc, &lc, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(lc->codec, HCM_CODEC_HTTP2);
    cr_assert_eq(lc->h2_max_concurrent_streams, 50);
    cr_assert_eq(lc->h2_initial_stream_window_size, 1048576);
    listener_config_free(lc);
    snprintf(rc, sizeof(rc), "%s, codec_type: HTTP1", vh);
    cr_assert_eq(translate_listener(rc, &lc, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(lc->codec, HCM_CODEC_HTTP1);
    listener_config_free(lc);
    snprintf(rc, sizeof(rc), "%s, codec_type: HTTP3", vh);
    cr_assert_eq(translate_listener(rc, &lc, err, sizeof(err)), -1);
    cr_assert(strstr(err, "codec_type") != NULL, "%s", err);
}

Test(listener_config, errors_name_the_field)
{
    listener_config *lc;
    char err[512];
    cr_assert_eq(translate_listener("{virtual_hosts: [{name: v, domains: ['*'], routes: ["
                                    "{match: {prefix: /}, redirect: {host_redirect: x}}]}]}", &lc, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config."
                          "route_config.virtual_hosts[0].routes[0]: unsupported route action (only `route` is implemented)");
    cr_assert_eq(translate_listener("{virtual_hosts: [{name: v, domains: ['*']}, {name: w, domains: ['*']}]}",
                                    &lc, err, sizeof(err)), -1);
    cr_assert(strstr(err, "Duplicate entry of domain *") != NULL, "%s", err);
    cr_assert_eq(translate_listener("{virtual_hosts: [{name: v, domains: ['*'], routes: [{match: {prefix: /},"
                                    " route: {cluster: c}, metadata: {filter_metadata: {xdsnode: {istio_egress: true}}}}]}]}",
                                    &lc, err, sizeof(err)), -1);
    cr_assert(strstr(err, "istio_egress needs route.cluster_header") != NULL, "%s", err);
}
