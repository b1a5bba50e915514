/* Unit tests: virtual host and route matching as Envoy's router does it,
 * the Istio egress cluster name, weighted picks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "xdsnode/bootstrap.h"
#include "xdsnode/cluster_config.h"
#include "xdsnode/listener_config.h"

static listener_config *lc;

static void load(const char *route_config)
{
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "static_resources: {listeners: [{name: l, address: {socket_address: {address: 127.0.0.1, port_value: 8080}},"
             " filter_chains: [{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {"
             " '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager,"
             " stat_prefix: s, http_filters: [{name: envoy.filters.http.router}], route_config: %s}}]}]}]}",
             route_config);
    pb_bootstrap *b = NULL;
    char err[1024];
    cr_assert_eq(bootstrap_parse_text(yaml, strlen(yaml), 0, "t", &b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(listener_config_translate(b->static_resources->listeners[0], "l", &lc, err, sizeof(err)), 0, "%s", err);
    bootstrap_free(b);
}

static void unload(void) { listener_config_free(lc); }

static const char *vhost_for(const char *host)
{
    const virtual_host *vh = router_find_vhost(&lc->routes, host, strlen(host));
    return vh ? vh->name : "(none)";
}

Test(router, domain_precedence, .fini = unload)
{
    load("{virtual_hosts: ["
         "{name: any, domains: ['*']},"
         "{name: exact, domains: ['api.example.com']},"
         "{name: short_suffix, domains: ['*.com']},"
         "{name: long_suffix, domains: ['*.example.com']},"
         "{name: prefix, domains: ['api.*']},"
         "{name: long_prefix, domains: ['api.example.*']}]}");
    cr_assert_str_eq(vhost_for("api.example.com"), "exact");
    cr_assert_str_eq(vhost_for("API.Example.COM"), "exact", "case-insensitive");
    cr_assert_str_eq(vhost_for("www.example.com"), "long_suffix");
    cr_assert_str_eq(vhost_for("www.other.com"), "short_suffix");
    cr_assert_str_eq(vhost_for("api.example.org"), "long_prefix", "suffix beats prefix, longer prefix first");
    cr_assert_str_eq(vhost_for("api.other.org"), "prefix");
    cr_assert_str_eq(vhost_for("example.com"), "short_suffix");
    cr_assert_str_eq(vhost_for("nothing"), "any");
    cr_assert_str_eq(vhost_for(".com"), "any", "a wildcard matches at least one character");
}

Test(router, no_default_vhost_means_no_route, .fini = unload)
{
    load("{virtual_hosts: [{name: a, domains: ['a.test']}]}");
    cr_assert_str_eq(vhost_for("b.test"), "(none)");
    cr_assert_str_eq(vhost_for("a.test:80"), "(none)", "the port is part of the host");
}

Test(router, ignore_port_in_host_matching, .fini = unload)
{
    load("{ignore_port_in_host_matching: true, virtual_hosts: [{name: a, domains: ['a.test']}]}");
    cr_assert_str_eq(vhost_for("a.test:8080"), "a");
}

static const char *cluster_for(const char *path)
{
    const virtual_host *vh = router_find_vhost(&lc->routes, "x", 1);
    const route_entry *r = router_find_route(vh, path, strlen(path));
    return r ? r->cluster : "(none)";
}

Test(router, routes_first_match_wins, .fini = unload)
{
    load("{virtual_hosts: [{name: v, domains: ['*'], routes: ["
         "{match: {path: /exact}, route: {cluster: exact}},"
         "{match: {safe_regex: {regex: '/items/[0-9]+'}}, route: {cluster: regex}},"
         "{match: {prefix: /API, case_sensitive: false}, route: {cluster: api}},"
         "{match: {prefix: /static/}, route: {cluster: static}},"
         "{match: {prefix: /}, route: {cluster: default}}]}]}");
    cr_assert_str_eq(cluster_for("/exact"), "exact");
    cr_assert_str_eq(cluster_for("/exactly"), "default");
    cr_assert_str_eq(cluster_for("/items/12"), "regex");
    cr_assert_str_eq(cluster_for("/items/12/x"), "default", "safe_regex matches the whole path");
    cr_assert_str_eq(cluster_for("/api/v1"), "api");
    cr_assert_str_eq(cluster_for("/static/a.css"), "static");
    cr_assert_str_eq(cluster_for("/Static/a.css"), "default", "case-sensitive by default");
}

Test(router, actions_and_retry_policy, .fini = unload)
{
    load("{virtual_hosts: [{name: v, domains: ['*'], routes: ["
         "{match: {prefix: /h}, route: {cluster_header: X-Target, timeout: 0s, priority: HIGH,"
         "  cluster_not_found_response_code: NOT_FOUND,"
         "  retry_policy: {retry_on: '5xx,connect-failure', num_retries: 2}}},"
         "{match: {prefix: /w}, route: {weighted_clusters: {clusters: [{name: a, weight: 1}, {name: b, weight: 3}]}}},"
         "{match: {prefix: /e}, route: {cluster_header: x-xdsnode-cluster},"
         "  metadata: {filter_metadata: {xdsnode: {istio_egress: true}}}}]}]}");
    const virtual_host *vh = &lc->routes.vhosts[0];
    const route_entry *h = &vh->routes[0];
    cr_assert_eq(h->action, ACTION_CLUSTER_HEADER);
    cr_assert_str_eq(h->cluster, "x-target");
    cr_assert_eq(h->timeout_ms, 0);
    cr_assert_eq(h->priority, PRIORITY_HIGH);
    cr_assert_eq(h->not_found_status, 404);
    cr_assert_eq(h->retry_on, RETRY_ON_5XX | RETRY_ON_CONNECT_FAILURE);
    cr_assert_eq(h->num_retries, 2);
    const route_entry *w = &vh->routes[1];
    cr_assert_eq(w->action, ACTION_WEIGHTED);
    cr_assert_eq(w->total_weight, 4);
    cr_assert_str_eq(router_pick_weighted(w, 0), "a");
    cr_assert_str_eq(router_pick_weighted(w, 1), "b");
    cr_assert_str_eq(router_pick_weighted(w, 3), "b");
    cr_assert_str_eq(router_pick_weighted(w, 4), "a");
    cr_assert_eq(vh->routes[2].action, ACTION_EGRESS);
}

Test(router, istio_egress_cluster_name)
{
    char out[128];
    cr_assert_eq(router_egress_cluster("reviews.default.svc.cluster.local", 33, 9080, out, sizeof(out)), 48);
    cr_assert_str_eq(out, "outbound|9080||reviews.default.svc.cluster.local");
    router_egress_cluster("Reviews:8080", 12, 9080, out, sizeof(out));
    cr_assert_str_eq(out, "outbound|8080||reviews");
    router_egress_cluster("[::1]:81", 8, 9080, out, sizeof(out));
    cr_assert_str_eq(out, "outbound|81||[::1]");
    cr_assert_eq(router_egress_cluster("", 0, 80, out, sizeof(out)), -1);
}
