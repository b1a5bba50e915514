/* listener_config.c: Listener proto -> listener_config (listener_config.h). */
#include "xdsnode/listener_config.h"
#include "xdsnode/stats.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/cluster_config.h"
#include "xdsnode/pbjson.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager pb_hcm;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy pb_tcp_proxy;

static int fail(char *err, size_t errlen, const char *path, const char *reason)
{
    snprintf(err, errlen, "%s: %s", path, reason);
    return -1;
}

static uint64_t duration_ms(const pb_duration *d)
{
    return d->seconds < 0 ? 0 : (uint64_t)d->seconds * 1000 + (uint64_t)(d->nanos / 1000000);
}

static const char *any_type(const pb_any *a)
{
    const char *slash = strrchr(a->type_url, '/');
    return slash ? slash + 1 : a->type_url;
}

static int translate_address(const pb_address *a, listener_config *lc, const char *path, char *err,
                             size_t errlen)
{
    char p[512];
    snprintf(p, sizeof(p), "%s.address", path);
    if (a == NULL || a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
        return fail(err, errlen, p, "a socket_address is required");
    const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&lc->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&lc->addr;
    if (sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE ||
        sa->port_value > 65535)
        return fail(err, errlen, p, "socket_address.port_value: a port 0-65535 is required");
    lc->port = (uint16_t)sa->port_value;
    if (inet_pton(AF_INET, sa->address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(lc->port);
        lc->addrlen = sizeof(*v4);
    } else if (inet_pton(AF_INET6, sa->address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(lc->port);
        lc->addrlen = sizeof(*v6);
    } else {
        char why[300];
        snprintf(why, sizeof(why), "socket_address.address: malformed IP address: %s", sa->address);
        return fail(err, errlen, p, why);
    }
    return 0;
}

static int translate_access_log(const Envoy__Config__Accesslog__V3__AccessLog *al, listener_config *lc,
                                const char *path, char *err, size_t errlen)
{
    if (al->filter)
        return fail(err, errlen, path, "unsupported: access log filters are not implemented");
    if (al->config_type_case != ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG__CONFIG_TYPE_TYPED_CONFIG)
        return fail(err, errlen, path, "typed_config is required");
    const char *type = any_type(al->typed_config);
    const char *file = NULL;
    char why[400];
    ProtobufCMessage *m = NULL;
    if (pbjson_any_unpack(&al->typed_config->base, &m, why, sizeof(why)) != 0)
        return fail(err, errlen, path, why);
    int custom = 0;
    if (strcmp(type, "envoy.extensions.access_loggers.file.v3.FileAccessLog") == 0) {
        Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog *f = (void *)m;
        file = f->path;
        custom = f->access_log_format_case != 0;
    } else if (strcmp(type, "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog") == 0) {
        file = "/dev/stdout";
        custom = ((Envoy__Extensions__AccessLoggers__Stream__V3__StdoutAccessLog *)m)->access_log_format_case != 0;
    } else if (strcmp(type, "envoy.extensions.access_loggers.stream.v3.StderrAccessLog") == 0) {
        file = "/dev/stderr";
        custom = ((Envoy__Extensions__AccessLoggers__Stream__V3__StderrAccessLog *)m)->access_log_format_case != 0;
    }
    int rc = 0;
    if (file == NULL) {
        snprintf(why, sizeof(why), "unsupported access logger \"%s\"", type);
        rc = fail(err, errlen, path, why);
    } else if (custom) {
        rc = fail(err, errlen, path, "unsupported: custom access log formats (Envoy's default "
                                     "format is implemented)");
    } else if (lc->access_log_path == NULL && (lc->access_log_path = strdup(file)) == NULL) {
        rc = fail(err, errlen, path, "out of memory");
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

static int check_http_filters(const pb_hcm *h, const char *path, char *err, size_t errlen)
{
    char p[600], why[400];
    for (size_t i = 0; i < h->n_http_filters; i++) {
        const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *f =
            h->http_filters[i];
        snprintf(p, sizeof(p), "%s.http_filters[%zu]", path, i);
        int is_router = strcmp(f->name, ROUTER_FILTER_NAME) == 0 ||
                        (f->typed_config && strcmp(any_type(f->typed_config), ROUTER_TYPE) == 0);
        if (!is_router) {
            snprintf(why, sizeof(why), "unsupported http filter \"%s\"", f->name);
            return fail(err, errlen, p, why);
        }
        if (i != h->n_http_filters - 1)
            return fail(err, errlen, p, "the router filter must be the last filter");
    }
    if (h->n_http_filters == 0)
        return fail(err, errlen, path, "http_filters: the terminal filter envoy.filters.http.router "
                                       "is required");
    return 0;
}

/* codec_type and the downstream http2_protocol_options we act on. */
static void translate_codec(const pb_hcm *h, listener_config *lc)
{
    lc->codec = h->codec_type == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP1
                    ? HCM_CODEC_HTTP1
                : h->codec_type == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP2
                    ? HCM_CODEC_HTTP2
                    : HCM_CODEC_AUTO;
    http2_options o;
    http2_options_defaults(&o);
    lc->h2_max_concurrent_streams = o.max_concurrent_streams;
    lc->h2_initial_stream_window_size = o.initial_stream_window_size;
    const Envoy__Config__Core__V3__Http2ProtocolOptions *p = h->http2_protocol_options;
    if (p && p->max_concurrent_streams && p->max_concurrent_streams->value)
        lc->h2_max_concurrent_streams = p->max_concurrent_streams->value;
    if (p && p->initial_stream_window_size && p->initial_stream_window_size->value >= H2_MIN_WINDOW_SIZE)
        lc->h2_initial_stream_window_size = p->initial_stream_window_size->value;
}

static int translate_hcm(const pb_hcm *h, listener_config *lc, const char *path, char *err,
                         size_t errlen)
{
    char p[600];
    lc->kind = LISTENER_HTTP;
    if (check_http_filters(h, path, err, errlen) != 0)
        return -1;
    if (h->route_specifier_case !=
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG)
        return fail(err, errlen, path, "unsupported: only an inline route_config is implemented "
                                       "(rds and scoped_routes are not)");
    if (h->codec_type == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP3)
        return fail(err, errlen, path, "codec_type: unsupported: HTTP3 (HTTP/1.1 and HTTP/2 are implemented)");
    translate_codec(h, lc);
    snprintf(p, sizeof(p), "%s.route_config", path);
    if (route_table_translate(h->route_config, p, &lc->routes, err, errlen) != 0)
        return -1;
    lc->stat_prefix = strdup(h->stat_prefix);
    lc->server_name = strdup(h->server_name[0] ? h->server_name : HCM_DEFAULT_SERVER_NAME);
    lc->idle_timeout_ms = HCM_DEFAULT_IDLE_TIMEOUT_MS;
    if (h->common_http_protocol_options && h->common_http_protocol_options->idle_timeout)
        lc->idle_timeout_ms = duration_ms(h->common_http_protocol_options->idle_timeout);
    lc->request_headers_timeout_ms = h->request_headers_timeout ? duration_ms(h->request_headers_timeout)
                                                                : HCM_DEFAULT_REQUEST_HEADERS_TIMEOUT_MS;
    lc->max_request_headers_bytes = (h->max_request_headers_kb ? h->max_request_headers_kb->value
                                                               : HCM_DEFAULT_MAX_REQUEST_HEADERS_KB) * 1024;
    lc->use_remote_address = h->use_remote_address ? h->use_remote_address->value : 0;
    lc->generate_request_id = h->generate_request_id ? h->generate_request_id->value : 1;
    for (size_t i = 0; i < h->n_access_log; i++) {
        snprintf(p, sizeof(p), "%s.access_log[%zu]", path, i);
        if (translate_access_log(h->access_log[i], lc, p, err, errlen) != 0)
            return -1;
    }
    if (!lc->stat_prefix || !lc->server_name)
        return fail(err, errlen, path, "out of memory");
    return 0;
}

static int translate_tcp_proxy(const pb_tcp_proxy *t, listener_config *lc, const char *path,
                               char *err, size_t errlen)
{
    char p[600];
    lc->kind = LISTENER_TCP;
    if (t->cluster_specifier_case !=
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER)
        return fail(err, errlen, path, "unsupported: tcp_proxy needs `cluster` (weighted_clusters "
                                       "is not implemented)");
    lc->tcp_cluster = strdup(t->cluster);
    lc->stat_prefix = strdup(t->stat_prefix);
    lc->tcp_idle_timeout_ms = t->idle_timeout ? duration_ms(t->idle_timeout) : TCP_PROXY_DEFAULT_IDLE_TIMEOUT_MS;
    for (size_t i = 0; i < t->n_access_log; i++) {
        snprintf(p, sizeof(p), "%s.access_log[%zu]", path, i);
        if (translate_access_log(t->access_log[i], lc, p, err, errlen) != 0)
            return -1;
    }
    return lc->tcp_cluster && lc->stat_prefix ? 0 : fail(err, errlen, path, "out of memory");
}

static int translate_filter(const Envoy__Config__Listener__V3__Filter *f, listener_config *lc,
                            const char *path, char *err, size_t errlen)
{
    char why[512];
    int is_hcm = strcmp(f->name, HCM_FILTER_NAME) == 0;
    int is_tcp = strcmp(f->name, TCP_PROXY_FILTER_NAME) == 0;
    if (f->config_type_case == ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG) {
        is_hcm = is_hcm || strcmp(any_type(f->typed_config), HCM_TYPE) == 0;
        is_tcp = is_tcp || strcmp(any_type(f->typed_config), TCP_PROXY_TYPE) == 0;
    }
    if (!is_hcm && !is_tcp) {
        snprintf(why, sizeof(why), "unsupported filter \"%s\"", f->name);
        return fail(err, errlen, path, why);
    }
    if (f->config_type_case != ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG)
        return fail(err, errlen, path, "typed_config is required");
    char p[600];
    snprintf(p, sizeof(p), "%s.typed_config", path);
    ProtobufCMessage *m = NULL;
    if (pbjson_any_unpack(&f->typed_config->base, &m, why, sizeof(why)) != 0)
        return fail(err, errlen, p, why);
    int rc;
    if (is_hcm && m->descriptor == &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor)
        rc = translate_hcm((const pb_hcm *)m, lc, p, err, errlen);
    else if (is_tcp && m->descriptor == &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor)
        rc = translate_tcp_proxy((const pb_tcp_proxy *)m, lc, p, err, errlen);
    else
        rc = fail(err, errlen, p, "typed_config does not match the filter name");
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

static int translate_chain(const Envoy__Config__Listener__V3__Listener *l, listener_config *lc,
                           const char *path, char *err, size_t errlen)
{
    char p[600];
    if (l->n_filter_chains != 1 || l->default_filter_chain)
        return fail(err, errlen, path, "filter_chains: exactly one filter chain is supported");
    const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[0];
    snprintf(p, sizeof(p), "%s.filter_chains[0]", path);
    if (fc->filter_chain_match)
        return fail(err, errlen, p, "filter_chain_match: unsupported");
    if (fc->transport_socket)
        return fail(err, errlen, p, "transport_socket: unsupported (TLS is not implemented yet)");
    if (fc->n_filters == 0)
        return fail(err, errlen, p, "filters: a terminal filter is required");
    for (size_t i = 0; i < fc->n_filters; i++) {
        char fp[700];
        snprintf(fp, sizeof(fp), "%s.filters[%zu]", p, i);
        if (i != fc->n_filters - 1) {
            char why[400];
            snprintf(why, sizeof(why), "unsupported filter \"%s\"", fc->filters[i]->name);
            return fail(err, errlen, fp, why);
        }
        if (translate_filter(fc->filters[i], lc, fp, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int listener_config_translate(const Envoy__Config__Listener__V3__Listener *l, const char *path,
                              listener_config **out, char *err, size_t errlen)
{
    listener_config *lc = calloc(1, sizeof(*lc));
    if (lc == NULL)
        return fail(err, errlen, path, "out of memory");
    lc->name = strdup(l->name);
    lc->buffer_limit = l->per_connection_buffer_limit_bytes ? l->per_connection_buffer_limit_bytes->value
                                                            : LISTENER_DEFAULT_BUFFER_LIMIT_BYTES;
    int rc = lc->name ? 0 : fail(err, errlen, path, "out of memory");
    if (rc == 0 && l->n_listener_filters)
        rc = fail(err, errlen, path, "listener_filters: unsupported");
    if (rc == 0)
        rc = translate_address(l->address, lc, path, err, errlen);
    if (rc == 0)
        rc = translate_chain(l, lc, path, err, errlen);
    if (rc != 0) {
        listener_config_free(lc);
        return -1;
    }
    *out = lc;
    return 0;
}

void listener_config_free(listener_config *lc)
{
    if (lc == NULL)
        return;
    route_table_free(&lc->routes);
    if (lc->stats)
        stats_scope_unref(lc->stats);
    if (lc->h2_stats)
        stats_scope_unref(lc->h2_stats);
    free(lc->name);
    free(lc->stat_prefix);
    free(lc->access_log_path);
    free(lc->server_name);
    free(lc->tcp_cluster);
    free(lc);
}

int listener_config_each_cluster(const listener_config *lc,
                                 int (*fn)(void *ctx, const char *cluster), void *ctx)
{
    if (lc->kind == LISTENER_TCP)
        return fn(ctx, lc->tcp_cluster);
    for (size_t i = 0; i < lc->routes.n_vhosts; i++) {
        const virtual_host *vh = &lc->routes.vhosts[i];
        for (size_t j = 0; j < vh->n_routes; j++) {
            const route_entry *r = &vh->routes[j];
            int rc = 0;
            if (r->action == ACTION_CLUSTER)
                rc = fn(ctx, r->cluster);
            for (size_t k = 0; rc == 0 && k < r->n_targets; k++)
                rc = fn(ctx, r->targets[k].name);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
