/* validate.c: Envoy's semantic checks on bootstrap and Cluster (validate.h). */
#include "xdsnode/validate.h"

#include "envoy/type/v3/percent.pb-c.h"
#include "xdsnode/pbjson.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "xdsnode/listener_config.h"
#include "xdsnode/upstream_tls.h"

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
    if (upstream_tls_socket_kind(ts) != UPSTREAM_SOCKET_OTHER)
        return 0; /* plaintext, or TLS (checked when its context is built) */
    const char *type = ts->name;
    if (ts->config_type_case == ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG) {
        const char *url = ts->typed_config->type_url;
        const char *slash = strrchr(url, '/');
        type = slash ? slash + 1 : url;
    }
    char why[512];
    snprintf(why, sizeof(why),
             "unsupported transport socket \"%s\": xdsnode speaks plaintext (raw_buffer) or TLS "
             "(" UPSTREAM_TLS_SOCKET_NAME " with an UpstreamTlsContext) to upstreams", type);
    return fail(err, errlen, path, "transport_socket", why);
}

/* Istio sends transport_socket_matches with a TLS match and a plaintext
 * fallback. Matches are not evaluated (the cluster's transport_socket
 * applies to every endpoint), so a cluster must have a plaintext one to
 * fall back on. */
static int validate_socket_matches(const pb_cluster *c, const char *path, char *err, size_t errlen)
{
    if (c->n_transport_socket_matches == 0)
        return 0;
    for (size_t i = 0; i < c->n_transport_socket_matches; i++) {
        if (upstream_tls_socket_kind(c->transport_socket_matches[i]->transport_socket) ==
            UPSTREAM_SOCKET_PLAINTEXT)
            return 0;
    }
    return fail(err, errlen, path, "transport_socket_matches",
                "unsupported: transport_socket_matches are not evaluated, and no match uses a "
                "plaintext transport socket to fall back on");
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

/* --- generic value checks (what protoc-gen-validate and protobuf's
 * parser would refuse in a binary resource) ------------------------------ */

#define MAX_DURATION_SECONDS 315576000000LL
#define MAX_CHECK_DEPTH 64

static int check_values(const ProtobufCMessage *m, const char *path, int depth, char *err,
                        size_t errlen);

static int check_duration(const Google__Protobuf__Duration *d, const char *path, char *err,
                          size_t errlen)
{
    int ok = d->seconds >= -MAX_DURATION_SECONDS && d->seconds <= MAX_DURATION_SECONDS &&
             d->nanos > -1000000000 && d->nanos < 1000000000 &&
             !(d->seconds > 0 && d->nanos < 0) && !(d->seconds < 0 && d->nanos > 0);
    if (ok)
        return 0;
    snprintf(err, errlen, "%s: invalid duration (seconds %lld, nanos %d)", path,
             (long long)d->seconds, (int)d->nanos);
    return -1;
}

static int check_any(const Google__Protobuf__Any *any, const char *path, int depth, char *err,
                     size_t errlen)
{
    const ProtobufCMessageDescriptor *d = pbjson_type_lookup(any->type_url);
    if (d == NULL)
        return 0; /* a type xdsnode does not know is kept as bytes */
    ProtobufCMessage *inner = protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
    if (inner == NULL) {
        snprintf(err, errlen, "%s: malformed %s", path, d->name);
        return -1;
    }
    int rc = check_values(inner, path, depth + 1, err, errlen);
    protobuf_c_message_free_unpacked(inner, NULL);
    return rc;
}

static int check_message_kind(const ProtobufCMessage *m, const char *path, int depth, char *err,
                              size_t errlen)
{
    const char *name = m->descriptor->name;
    if (strcmp(name, "google.protobuf.Duration") == 0)
        return check_duration((const Google__Protobuf__Duration *)m, path, err, errlen);
    if (strcmp(name, "google.protobuf.Any") == 0)
        return check_any((const Google__Protobuf__Any *)m, path, depth, err, errlen);
    if (strcmp(name, "envoy.type.v3.Percent") == 0) {
        double v = ((const Envoy__Type__V3__Percent *)m)->value;
        if (v < 0 || v > 100) {
            snprintf(err, errlen, "%s: %g is out of range 0..100", path, v);
            return -1;
        }
        return 0;
    }
    return check_values(m, path, depth + 1, err, errlen);
}

static int check_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char *path,
                       int depth, char *err, size_t errlen)
{
    const uint8_t *base = (const uint8_t *)m;
    size_t n = 1;
    const void *slot = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        n = *(const size_t *)(base + f->quantifier_offset);
        slot = *(void *const *)slot;
    } else if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
               *(const uint32_t *)(base + f->quantifier_offset) != f->id) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char p[768];
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            snprintf(p, sizeof(p), "%s%s%s[%zu]", path, *path ? "." : "", f->name, i);
        else
            snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", f->name);
        if (f->type == PROTOBUF_C_TYPE_ENUM) {
            int v = ((const int *)slot)[i];
            if (protobuf_c_enum_descriptor_get_value(f->descriptor, v) == NULL) {
                snprintf(err, errlen, "%s: unknown value %d for enum %s", p, v,
                         ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
                return -1;
            }
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *sub = ((const ProtobufCMessage *const *)slot)[i];
            if (sub && check_message_kind(sub, p, depth, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

/* Enums hold known values, Durations are in range, Percents are 0..100,
 * and every Any of a known type parses (and holds valid values too). */
static int check_values(const ProtobufCMessage *m, const char *path, int depth, char *err,
                        size_t errlen)
{
    if (depth > MAX_CHECK_DEPTH) {
        snprintf(err, errlen, "%s: nested too deeply", path);
        return -1;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (check_field(m, &d->fields[i], path, depth, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int validate_message_values(const ProtobufCMessage *m, const char *path, char *err, size_t errlen)
{
    return check_values(m, path, 0, err, errlen);
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
    if (validate_message_values(&c->base, path, err, errlen) != 0)
        return -1;
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
    if (is_eds && c->eds_cluster_config->eds_config != NULL &&
        c->eds_cluster_config->eds_config->config_source_specifier_case !=
            ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS)
        return fail(err, errlen, path, "eds_cluster_config.eds_config",
                    "unsupported: only ads is supported as the EDS config source");
    if (is_eds && c->eds_cluster_config->eds_config == NULL)
        return fail(err, errlen, path, "eds_cluster_config.eds_config", "is required");
    if (c->transport_socket && validate_transport_socket(c->transport_socket, path, err, errlen) != 0)
        return -1;
    if (validate_socket_matches(c, path, err, errlen) != 0)
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
        /* TLS: the files are read and parsed now, so a bad one fails the
         * bootstrap (and --mode validate) with its field path. */
        upstream_tls_ctx *tls;
        if (upstream_tls_ctx_create(sr->clusters[i], p, &tls, err, errlen) != 0)
            return -1;
        upstream_tls_ctx_unref(tls);
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

static int is_ads_source(const Envoy__Config__Core__V3__ConfigSource *cs)
{
    return cs != NULL &&
           cs->config_source_specifier_case == ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
}

static const pb_cluster *find_static_cluster(const pb_bootstrap *b, const char *name)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    for (size_t i = 0; sr && i < sr->n_clusters; i++) {
        if (strcmp(sr->clusters[i]->name, name) == 0)
            return sr->clusters[i];
    }
    return NULL;
}

static int validate_ads_config(const pb_bootstrap *b, char *err, size_t errlen)
{
    const Envoy__Config__Core__V3__ApiConfigSource *ads = b->dynamic_resources->ads_config;
    const char *path = "dynamic_resources.ads_config";
    if (ads->api_type != ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC &&
        ads->api_type != ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC)
        return fail(err, errlen, path, "api_type", "unsupported: only GRPC and DELTA_GRPC");
    if (ads->n_grpc_services == 0)
        return fail(err, errlen, path, "grpc_services", "one gRPC service is required");
    const Envoy__Config__Core__V3__GrpcService *gs = ads->grpc_services[0];
    if (gs->target_specifier_case == ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_GOOGLE_GRPC) {
        if (gs->google_grpc->target_uri[0] == '\0')
            return fail(err, errlen, path, "grpc_services[0].google_grpc.target_uri", "must not be empty");
        return 0;
    }
    if (gs->target_specifier_case != ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC)
        return fail(err, errlen, path, "grpc_services[0]", "envoy_grpc or google_grpc is required");
    const pb_cluster *c = find_static_cluster(b, gs->envoy_grpc->cluster_name);
    if (c == NULL) {
        char why[300];
        snprintf(why, sizeof(why), "unknown static cluster '%s'", gs->envoy_grpc->cluster_name);
        return fail(err, errlen, path, "grpc_services[0].envoy_grpc.cluster_name", why);
    }
    if (c->load_assignment == NULL || c->load_assignment->n_endpoints == 0 ||
        c->load_assignment->endpoints[0]->n_lb_endpoints == 0)
        return fail(err, errlen, path, "grpc_services[0].envoy_grpc.cluster_name",
                    "the xDS cluster has no endpoint");
    return 0;
}

static int validate_dynamic_resources(const pb_bootstrap *b, char *err, size_t errlen)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *dr = b->dynamic_resources;
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    int has_ads = dr && dr->ads_config;
    for (size_t i = 0; sr && i < sr->n_clusters; i++) {
        const pb_cluster *c = sr->clusters[i];
        if (c->eds_cluster_config && !has_ads) {
            char p[128];
            snprintf(p, sizeof(p), "static_resources.clusters[%zu].eds_cluster_config", i);
            return fail(err, errlen, p, "eds_config", "needs dynamic_resources.ads_config");
        }
    }
    if (dr == NULL)
        return 0;
    if (dr->cds_config && !is_ads_source(dr->cds_config))
        return fail(err, errlen, "dynamic_resources", "cds_config", "unsupported: only ads is supported");
    if (dr->cds_config && !has_ads)
        return fail(err, errlen, "dynamic_resources", "ads_config", "is required by cds_config: {ads: {}}");
    if (dr->lds_resources_locator[0] || dr->cds_resources_locator[0])
        return fail(err, errlen, "dynamic_resources", dr->lds_resources_locator[0] ?
                    "lds_resources_locator" : "cds_resources_locator", "unsupported: xdstp locators");
    return has_ads ? validate_ads_config(b, err, errlen) : 0;
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
    if (validate_node_metadata(b->node, "node", err, errlen) != 0)
        return -1;
    if (b->static_resources) {
        if (validate_listeners(b->static_resources, err, errlen) != 0)
            return -1;
        if (b->static_resources->n_secrets > 0)
            return fail(err, errlen, "static_resources", "secrets",
                        "unsupported: static SDS secrets are not implemented (give TLS "
                        "certificates inline in the UpstreamTlsContext)");
        if (validate_static_clusters(b->static_resources, err, errlen) != 0)
            return -1;
    }
    if (validate_dynamic_resources(b, err, errlen) != 0)
        return -1;
    if (b->admin && b->admin->address &&
        validate_socket_address(b->admin->address, "admin.address", err, errlen) != 0)
        return -1;
    return 0;
}

/* --- fields kept but not acted on ------------------------------------------ */

/* Cluster fields the node acts on (or checks, like transport sockets). */
static const char *const acted_cluster_fields[] = {
    "name", "type", "eds_cluster_config", "connect_timeout", "per_connection_buffer_limit_bytes",
    "lb_policy", "load_assignment", "circuit_breakers", "upstream_connection_options",
    "typed_extension_protocol_options", "alt_stat_name", "dns_refresh_rate", "dns_lookup_family",
    "respect_dns_ttl", "transport_socket", "transport_socket_matches",
    "max_requests_per_connection", "common_http_protocol_options", "http_protocol_options",
    "http2_protocol_options", "least_request_lb_config", "round_robin_lb_config",
};

static int field_is_acted(const char *name)
{
    for (size_t i = 0; i < sizeof(acted_cluster_fields) / sizeof(acted_cluster_fields[0]); i++) {
        if (strcmp(acted_cluster_fields[i], name) == 0)
            return 1;
    }
    return 0;
}

int validate_field_is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const uint8_t *base = (const uint8_t *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    const void *slot = base + f->offset;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)slot != NULL;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return s != NULL && s[0] != '\0';
    }
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)slot != 0;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)slot)->len > 0;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return *(const uint64_t *)slot != 0;
    default:
        return *(const uint32_t *)slot != 0;
    }
}

size_t validate_cluster_ignored_fields(const pb_cluster *c, char *out, size_t outlen)
{
    const ProtobufCMessageDescriptor *d = c->base.descriptor;
    size_t count = 0, used = 0;
    if (outlen)
        out[0] = '\0';
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (field_is_acted(f->name) || !validate_field_is_set(&c->base, f))
            continue;
        count++;
        if (used < outlen) {
            int n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", f->name);
            used += n > 0 ? (size_t)n : 0;
            if (used > outlen)
                used = outlen;
        }
    }
    /* fields inside the UpstreamTlsContext that are kept but not acted on */
    return count + upstream_tls_ignored_fields(c, out, outlen, &used);
}

/* --- node metadata (istiod decodes it into typed NodeMetadata) ------------ */

static const char *const istio_string_keys[] = {
    "ISTIO_VERSION", "NAMESPACE", "INSTANCE_IPS", "CLUSTER_ID", "SERVICE_ACCOUNT", "NAME",
    "WORKLOAD_NAME", "OWNER", "MESH_ID", "NETWORK", "INTERCEPTION_MODE", "GENERATOR",
    "IDLE_TIMEOUT", "DNS_CAPTURE", "DNS_AUTO_ALLOCATE", "ENABLE_HBONE", "POD_PORTS",
};

static const char *const istio_object_keys[] = {"LABELS", "ANNOTATIONS", "PROXY_CONFIG"};

static int key_in(const char *key, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(key, list[i]) == 0)
            return 1;
    }
    return 0;
}

int validate_node_metadata(const pb_node *node, const char *path, char *err, size_t errlen)
{
    if (node == NULL || node->metadata == NULL)
        return 0;
    const Google__Protobuf__Struct *md = node->metadata;
    for (size_t i = 0; i < md->n_fields; i++) {
        const char *key = md->fields[i]->key;
        const Google__Protobuf__Value *v = md->fields[i]->value;
        char p[512];
        snprintf(p, sizeof(p), "%s.metadata", path);
        int kind = v ? (int)v->kind_case : 0;
        if (key_in(key, istio_string_keys, sizeof(istio_string_keys) / sizeof(istio_string_keys[0])) &&
            kind != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE) {
            char why[300];
            snprintf(why, sizeof(why),
                     "%s must be a string (istiod rejects other types; quote booleans and "
                     "write IP lists comma-separated)", key);
            return fail(err, errlen, p, key, why);
        }
        if (key_in(key, istio_object_keys, sizeof(istio_object_keys) / sizeof(istio_object_keys[0])) &&
            kind != GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE) {
            char why[300];
            snprintf(why, sizeof(why), "%s must be an object (istiod rejects other types)", key);
            return fail(err, errlen, p, key, why);
        }
    }
    return 0;
}
