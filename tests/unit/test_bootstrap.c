/* Unit tests: bootstrap decoding, --config-yaml merging, node overrides and
 * the semantic checks of validate.c, each with its exact error text. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xdsnode/bootstrap.h"
#include "xdsnode/validate.h"

static pb_bootstrap *parse_ok(const char *yaml)
{
    pb_bootstrap *b = NULL;
    char err[1024];
    int rc = bootstrap_parse_text(yaml, strlen(yaml), 0, "test.yaml", &b, err, sizeof(err));
    cr_assert_eq(rc, 0, "parse failed: %s", err);
    return b;
}

static void expect_invalid(const char *yaml, const char *want)
{
    pb_bootstrap *b = parse_ok(yaml);
    char err[1024];
    cr_assert_eq(validate_bootstrap(b, err, sizeof(err)), -1, "accepted: %s", yaml);
    cr_assert_str_eq(err, want);
    bootstrap_free(b);
}

Test(bootstrap, parse_error_names_source_and_path)
{
    pb_bootstrap *b = NULL;
    char err[1024];
    const char *y = "static_resources: {clusters: [{name: a, connect_timeout: 5x}]}";
    cr_assert_eq(bootstrap_parse_text(y, strlen(y), 0, "f.yaml", &b, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "f.yaml: static_resources.clusters[0].connect_timeout: invalid duration \"5x\"");
    const char *j = "{\"admin\": 3}";
    cr_assert_eq(bootstrap_parse_text(j, strlen(j), 1, "f.json", &b, err, sizeof(err)), -1);
    cr_assert(strncmp(err, "f.json: admin: ", 15) == 0, "%s", err);
    const char *bad = "{\"admin\": ";
    cr_assert_eq(bootstrap_parse_text(bad, strlen(bad), 1, "g.json", &b, err, sizeof(err)), -1);
    cr_assert(strncmp(err, "g.json: line 1, column ", 23) == 0, "%s", err);
}

Test(bootstrap, valid_static_cluster)
{
    pb_bootstrap *b = parse_ok(
        "static_resources:\n"
        "  clusters:\n"
        "  - name: a\n"
        "    connect_timeout: 0.5s\n"
        "    load_assignment:\n"
        "      cluster_name: a\n"
        "      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: '::1', port_value: 80}}}}]}]\n");
    char err[1024];
    cr_assert_eq(validate_bootstrap(b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(b->static_resources->clusters[0]->connect_timeout->nanos, 500000000);
    bootstrap_free(b);
}

Test(validate, cluster_rules)
{
    expect_invalid("static_resources: {clusters: [{connect_timeout: 1s}]}",
                   "static_resources.clusters[0].name: must not be empty");
    expect_invalid("static_resources: {clusters: [{name: a}, {name: b, connect_timeout: 0s}]}",
                   "static_resources.clusters[1].connect_timeout: must be greater than 0s");
    expect_invalid("static_resources: {clusters: [{name: a}, {name: a}]}",
                   "static_resources.clusters[1].name: duplicate cluster 'a'");
    expect_invalid("static_resources: {clusters: [{name: a, type: EDS}]}",
                   "static_resources.clusters[0].eds_cluster_config: cannot create an EDS cluster "
                   "without an EDS config");
    expect_invalid("static_resources: {clusters: [{name: a, eds_cluster_config: {service_name: x}}]}",
                   "static_resources.clusters[0].eds_cluster_config: is only valid with type EDS");
    expect_invalid("static_resources: {clusters: [{name: a, load_assignment: {endpoints: [{lb_endpoints: "
                   "[{endpoint: {address: {socket_address: {address: 1.2.3, port_value: 1}}}}]}]}}]}",
                   "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint."
                   "address.socket_address.address: malformed IP address: 1.2.3");
    expect_invalid("static_resources: {clusters: [{name: a, load_assignment: {endpoints: [{lb_endpoints: "
                   "[{endpoint: {address: {socket_address: {address: 1.2.3.4, port_value: 1}}}, "
                   "load_balancing_weight: 0}]}]}}]}",
                   "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0]."
                   "load_balancing_weight: must be at least 1");
}

Test(validate, unsupported_is_explicit)
{
    expect_invalid("static_resources: {listeners: [{name: l, address: {socket_address: "
                   "{address: 127.0.0.1, port_value: 1}}, filter_chains: [{filters: "
                   "[{name: envoy.filters.network.foo}]}]}]}",
                   "static_resources.listeners[0].filter_chains[0].filters[0]: unsupported filter "
                   "\"envoy.filters.network.foo\"");
    expect_invalid("dynamic_resources: {cds_config: {ads: {}}}",
                   "dynamic_resources.ads_config: is required by cds_config: {ads: {}}");
    expect_invalid("dynamic_resources: {ads_config: {api_type: REST}}",
                   "dynamic_resources.ads_config.api_type: unsupported: only GRPC and DELTA_GRPC");
    expect_invalid("dynamic_resources: {ads_config: {api_type: GRPC, grpc_services: "
                   "[{envoy_grpc: {cluster_name: nope}}]}}",
                   "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: unknown "
                   "static cluster 'nope'");
    expect_invalid("static_resources: {clusters: [{name: a, type: EDS, eds_cluster_config: "
                   "{eds_config: {ads: {}}}}]}",
                   "static_resources.clusters[0].eds_cluster_config.eds_config: needs "
                   "dynamic_resources.ads_config");
    expect_invalid("static_resources: {clusters: [{name: a, transport_socket_matches: [{name: m, "
                   "transport_socket: {name: tls, typed_config: {'@type': "
                   "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext}}}]}]}",
                   "static_resources.clusters[0].transport_socket_matches: unsupported: "
                   "transport_socket_matches are not evaluated, and no match uses a plaintext "
                   "transport socket to fall back on");
    expect_invalid("node: {metadata: {INSTANCE_IPS: [10.0.0.1]}}",
                   "node.metadata.INSTANCE_IPS: INSTANCE_IPS must be a string (istiod rejects other "
                   "types; quote booleans and write IP lists comma-separated)");
    expect_invalid("node: {metadata: {DNS_CAPTURE: true}}",
                   "node.metadata.DNS_CAPTURE: DNS_CAPTURE must be a string (istiod rejects other "
                   "types; quote booleans and write IP lists comma-separated)");
    expect_invalid("static_resources: {clusters: [{name: a, typed_extension_protocol_options: "
                   "{envoy.x: {'@type': type.googleapis.com/google.protobuf.Empty}}}]}",
                   "static_resources.clusters[0].typed_extension_protocol_options[\"envoy.x\"]: no "
                   "protocol options implementation for name \"envoy.x\"");
}

Test(validate, raw_buffer_transport_socket_is_fine)
{
    pb_bootstrap *b = parse_ok(
        "static_resources: {clusters: [{name: a, transport_socket: {name: envoy.transport_sockets.raw_buffer, "
        "typed_config: {'@type': type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer}}}]}");
    char err[1024];
    cr_assert_eq(validate_bootstrap(b, err, sizeof(err)), 0, "%s", err);
    bootstrap_free(b);
}

Test(validate, admin_address)
{
    expect_invalid("admin: {address: {pipe: {path: /tmp/x}}}",
                   "admin.address: a socket_address is required");
    expect_invalid("admin: {address: {socket_address: {address: localhost, port_value: 1}}}",
                   "admin.address.socket_address.address: malformed IP address: localhost");
}

Test(bootstrap, config_yaml_merges_over_file)
{
    char path[] = "/tmp/xdsnode-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *file = "node: {id: file-id, cluster: file-cluster}\n"
                       "static_resources: {clusters: [{name: a, connect_timeout: 1s}]}\n";
    cr_assert_eq(write(fd, file, strlen(file)), (ssize_t)strlen(file));
    close(fd);
    options o;
    char err[1024];
    char *argv[] = {"xdsnode", "-c", path, "--config-yaml",
                    "{node: {id: yaml-id}, static_resources: {clusters: [{name: b}]}}",
                    "--service-zone", "z1", NULL};
    cr_assert_eq(options_parse(7, argv, &o, err, sizeof(err)), 0, "%s", err);
    pb_bootstrap *b = NULL;
    int rc = bootstrap_load(&o, &b, err, sizeof(err));
    unlink(path);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(b->node->id, "yaml-id");
    cr_assert_str_eq(b->node->cluster, "file-cluster");
    cr_assert_str_eq(b->node->locality->zone, "z1");
    cr_assert_eq(b->static_resources->n_clusters, 2);
    cr_assert_str_eq(b->static_resources->clusters[0]->name, "a");
    cr_assert_str_eq(b->static_resources->clusters[1]->name, "b");
    bootstrap_free(b);
}

Test(bootstrap, load_errors)
{
    options o;
    char err[1024];
    char *argv[] = {"xdsnode", "-c", "/nonexistent/x.yaml", NULL};
    cr_assert_eq(options_parse(3, argv, &o, err, sizeof(err)), 0);
    pb_bootstrap *b = NULL;
    cr_assert_eq(bootstrap_load(&o, &b, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "/nonexistent/x.yaml: cannot open: No such file or directory");
    char *argv2[] = {"xdsnode", NULL};
    cr_assert_eq(options_parse(1, argv2, &o, err, sizeof(err)), 0);
    cr_assert_eq(bootstrap_load(&o, &b, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "no configuration: give a bootstrap with -c <path> or --config-yaml");
}

/* Values only a binary (xDS) resource can carry: checked generically. */
Test(validate, binary_values_envoy_refuses)
{
    pb_bootstrap *b = parse_ok(
        "static_resources: {clusters: [{name: a, connect_timeout: 1s, "
        "common_lb_config: {healthy_panic_threshold: {value: 50}}, "
        "typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: "
        "{'@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, "
        "explicit_http_config: {http_protocol_options: {}}}}}]}");
    pb_cluster *c = b->static_resources->clusters[0];
    char err[512];
    cr_assert_eq(validate_cluster(c, "c", err, sizeof(err)), 0, "%s", err);

    c->lb_policy = 99;
    cr_assert_eq(validate_cluster(c, "c", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "c.lb_policy: unknown value 99 for enum envoy.config.cluster.v3.Cluster.LbPolicy");
    c->lb_policy = 0;

    c->connect_timeout->nanos = -5;
    cr_assert_eq(validate_cluster(c, "c", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "c.connect_timeout: invalid duration (seconds 1, nanos -5)");
    c->connect_timeout->nanos = 0;

    c->common_lb_config->healthy_panic_threshold->value = 150;
    cr_assert_eq(validate_cluster(c, "c", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "c.common_lb_config.healthy_panic_threshold: 150 is out of range 0..100");
    c->common_lb_config->healthy_panic_threshold->value = 50;

    Google__Protobuf__Any *any = c->typed_extension_protocol_options[0]->value;
    uint8_t *saved = any->value.data;
    size_t saved_len = any->value.len;
    uint8_t garbage[] = {0x0a, 0xff, 0xff};
    any->value.data = garbage;
    any->value.len = sizeof(garbage);
    cr_assert_eq(validate_cluster(c, "c", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "c.typed_extension_protocol_options[0].value: malformed "
                          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    any->value.data = saved;
    any->value.len = saved_len;
    bootstrap_free(b);
}
