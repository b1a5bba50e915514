/* validate.c: Envoy's semantic checks on bootstrap and Cluster (validate.h). */
#include "xdsnode/validate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "xdsnode/listener_config.h"

#define MAX_PORT 65535

static int fail(char *err, size_t errlen, const char *path, const char *field,
                const char *reason)
{
    snprintf(err, errlen, "%s%s%s: %s", path, (*path && *field) ? "." : "", field, reason);
    return -1;
}

static int is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int validate_socket_address(const pb_address *a, const char *path, char *err, size_t errlen)
{
    char p[512];
    if (a == NULL || a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
        return fail(err, errlen, path, "", "a socket_address is required");
    const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
    snprintf(p, sizeof(p), "%s.socket_address", path);
    if (sa->address[0] == '\0')
        return fail(err, errlen, p, "address", "must not be empty");
    if (!is_ip_literal(sa->address)) {
        char why[300];
        snprintf(why, sizeof(why), "malformed IP address: %s", sa->address);
        return fail(err, errlen, p, "address", why);
    }
    if (sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE)
        return fail(err, errlen, p, "port_value", "a numeric port_value is required");
    if (sa->port_value > MAX_PORT)
        return fail(err, errlen, p, "port_value", "must be at most 65535");
    return 0;
}

static int validate_endpoints(const pb_cla *cla, const char *path, int need_ip,
                              char *err, size_t errlen)
{
    char p[512];
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = cla->endpoints[i];
        for (size_t j = 0; j < loc->n_lb_endpoints; j++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *lb = loc->lb_endpoints[j];
            snprintf(p, sizeof(p), "%s.endpoints[%zu].lb_endpoints[%zu]", path, i, j);
            if (lb->host_identifier_case !=
                ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT)
                return fail(err, errlen, p, "endpoint", "is required (endpoint_name is not supported)");
            if (lb->load_balancing_weight && lb->load_balancing_weight->value < 1)
                return fail(err, errlen, p, "load_balancing_weight", "must be at least 1");
            char ap[600];
            snprintf(ap, sizeof(ap), "%s.endpoint.address", p);
            const pb_address *addr = lb->endpoint->address;
            if (need_ip) {
                if (validate_socket_address(addr, ap, err, errlen) != 0)
                    return -1;
            } else if (addr == NULL ||
                       addr->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS) {
                return fail(err, errlen, ap, "", "a socket_address is required");
            }
        }
    }
    return 0;
}

static int duration_positive(const pb_duration *d)
{
    return d->seconds > 0 || (d->seconds == 0 && d->nanos > 0);
}

static int validate_transport_socket(const Envoy__Config__Core__V3__TransportSocket *ts,
                                     const char *path, char *err, size_t errlen)
{
    const char *type = "";
    if (ts->config_type_case == ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG) {
        const char *url = ts->typed_config->type_url;
        const char *slash = strrchr(url, '/');
        type = slash ? slash + 1 : url;
    }
    if (strcmp(type, RAW_BUFFER_SOCKET_TYPE) == 0 ||
        (type[0] == '\0' && (ts->name[0] == '\0' || strcmp(ts->name, RAW_BUFFER_SOCKET_NAME) == 0)))
        return 0;
    char why[512];
    snprintf(why, sizeof(why),
             "unsupported transport socket \"%s\": xdsnode speaks plaintext to upstreams only "
             "(TLS is not implemented yet)", type[0] ? type : ts->name);
    return fail(err, errlen, path, "transport_socket", why);
}

static int validate_protocol_options(const pb_cluster *c, const char *path, char *err, size_t errlen)
{
    char p[512];
    for (size_t i = 0; i < c->n_typed_extension_protocol_options; i++) {
        const Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
            c->typed_extension_protocol_options[i];
        snprintf(p, sizeof(p), "%s.typed_extension_protocol_options[\"%s\"]", path, e->key);
        if (strcmp(e->key, HTTP_PROTOCOL_OPTIONS_NAME) != 0) {
            char why[512];
            snprintf(why, sizeof(why), "no protocol options implementation for name \"%s\"", e->key);
            return fail(err, errlen, p, "", why);
        }
        if (e->value == NULL)
            return fail(err, errlen, p, "", "value is required");
        const char *slash = strrchr(e->value->type_url, '/');
        if (strcmp(slash ? slash + 1 : e->value->type_url, HTTP_PROTOCOL_OPTIONS_NAME) != 0)
            return fail(err, errlen, p, "", "expected type " HTTP_PROTOCOL_OPTIONS_NAME);
        Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *hpo =
            envoy__extensions__upstreams__http__v3__http_protocol_options__unpack(
                NULL, e->value->value.len, e->value->value.data);
        if (hpo == NULL)
            return fail(err, errlen, p, "", "cannot parse HttpProtocolOptions");
        int missing = hpo->upstream_protocol_options_case ==
                      ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS__NOT_SET;
        protobuf_c_message_free_unpacked(&hpo->base, NULL);
        if (missing)
            return fail(err, errlen, p, "",
                        "one of explicit_http_config, use_downstream_protocol_config or "
                        "auto_config is required");
    }
    return 0;
}

int validate_cluster(const pb_cluster *c, const char *path, char *err, size_t errlen)
{
    int is_eds = c->cluster_discovery_type_case ==
                     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE &&
                 c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    int is_static = c->cluster_discovery_type_case ==
                        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE__NOT_SET ||
                    (c->cluster_discovery_type_case ==
                         ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE &&
                     c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);

    if (c->name[0] == '\0')
        return fail(err, errlen, path, "name", "must not be empty");
    if (c->cluster_discovery_type_case ==
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_CLUSTER_TYPE)
        return fail(err, errlen, path, "cluster_type", "unsupported: custom cluster types are not implemented");
    if (c->connect_timeout && !duration_positive(c->connect_timeout))
        return fail(err, errlen, path, "connect_timeout", "must be greater than 0s");
    if (is_eds && c->eds_cluster_config == NULL)
        return fail(err, errlen, path, "eds_cluster_config",
                    "cannot create an EDS cluster without an EDS config");
    if (!is_eds && c->eds_cluster_config != NULL)
        return fail(err, errlen, path, "eds_cluster_config", "is only valid with type EDS");
    if (c->transport_socket && validate_transport_socket(c->transport_socket, path, err, errlen) != 0)
        return -1;
    if (validate_protocol_options(c, path, err, errlen) != 0)
        return -1;
    if (c->circuit_breakers) {
        for (size_t i = 0; i < c->circuit_breakers->n_thresholds; i++) {
            int prio = c->circuit_breakers->thresholds[i]->priority;
            if (prio != ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__DEFAULT &&
                prio != ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH) {
                char p[512];
                snprintf(p, sizeof(p), "%s.circuit_breakers.thresholds[%zu]", path, i);
                return fail(err, errlen, p, "priority", "must be DEFAULT or HIGH");
            }
        }
    }
    if (c->load_assignment) {
        char p[512];
        snprintf(p, sizeof(p), "%s.load_assignment", path);
        if (validate_endpoints(c->load_assignment, p, is_static, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int validate_static_clusters(const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr,
                                    char *err, size_t errlen)
{
    char p[128];
    for (size_t i = 0; i < sr->n_clusters; i++) {
        snprintf(p, sizeof(p), "static_resources.clusters[%zu]", i);
        if (validate_cluster(sr->clusters[i], p, err, errlen) != 0)
            return -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sr->clusters[j]->name, sr->clusters[i]->name) == 0) {
                char why[300];
                snprintf(why, sizeof(why), "duplicate cluster '%s'", sr->clusters[i]->name);
                return fail(err, errlen, p, "name", why);
            }
        }
    }
    return 0;
}

typedef struct {
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr;
    const char *missing;
} cluster_lookup;

static int cluster_absent(void *ctx, const char *name)
{
    cluster_lookup *cl = ctx;
    for (size_t i = 0; i < cl->sr->n_clusters; i++) {
        if (strcmp(cl->sr->clusters[i]->name, name) == 0)
            return 0;
    }
    cl->missing = name;
    return 1;
}

/* Each listener goes through the data plane's own translation, so what
 * loads is exactly what runs. Inline routes are checked against the
 * static clusters unless validate_clusters is false (Envoy's rule). */
static int validate_listeners(const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr,
                              char *err, size_t errlen)
{
    char p[128];
    for (size_t i = 0; i < sr->n_listeners; i++) {
        snprintf(p, sizeof(p), "static_resources.listeners[%zu]", i);
        listener_config *lc;
        if (listener_config_translate(sr->listeners[i], p, &lc, err, errlen) != 0)
            return -1;
        cluster_lookup cl = {sr, NULL};
        int check = lc->kind == LISTENER_HTTP && lc->routes.validate_clusters;
        int rc = check ? listener_config_each_cluster(lc, cluster_absent, &cl) : 0;
        char why[400];
        if (rc != 0)
            snprintf(why, sizeof(why), "route: unknown cluster '%s' (set route_config."
                     "validate_clusters: false to route to clusters that arrive later)", cl.missing);
        listener_config_free(lc);
        if (rc != 0)
            return fail(err, errlen, p, "", why);
        for (size_t j = 0; j < i; j++) {
            if (sr->listeners[i]->name[0] && strcmp(sr->listeners[j]->name, sr->listeners[i]->name) == 0)
                return fail(err, errlen, p, "name", "duplicate listener name");
        }
    }
    return 0;
}

int validate_bootstrap(const pb_bootstrap *b, char *err, size_t errlen)
{
    if (b->static_resources) {
        if (validate_listeners(b->static_resources, err, errlen) != 0)
            return -1;
        if (b->static_resources->n_secrets > 0)
            return fail(err, errlen, "static_resources", "secrets",
                        "unsupported: secrets (TLS) are not implemented yet");
        if (validate_static_clusters(b->static_resources, err, errlen) != 0)
            return -1;
    }
    if (b->dynamic_resources)
        return fail(err, errlen, "", "dynamic_resources",
                    "unsupported: xDS is not implemented yet");
    if (b->admin && b->admin->address &&
        validate_socket_address(b->admin->address, "admin.address", err, errlen) != 0)
        return -1;
    return 0;
}
