/* server.c: the main loop, admin endpoints and shutdown (see server.h). */
#include "xdsnode/server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "xdsnode/admin.h"
#include "xdsnode/cluster_manager.h"
#include "xdsnode/config_dump.h"
#include "xdsnode/dataplane.h"
#include "xdsnode/dns.h"
#include "xdsnode/log.h"
#include "xdsnode/pbjson.h"
#include "xdsnode/stats.h"
#include "xdsnode/xds_client.h"

/* How long /quitquitquit waits for its "OK" to be written before exiting. */
#define QUIT_FLUSH_SECONDS 0.1

typedef struct {
    struct ev_loop *loop;
    const options *opts;
    const pb_bootstrap *bootstrap;
    stats_store *stats;
    cluster_manager *clusters;
    dns_resolver *dns;
    xds_client *xds;
    admin_server *admin;
    dataplane *dataplane;
    struct timespec started;      /* CLOCK_REALTIME, for config dump */
    struct timespec started_mono; /* CLOCK_MONOTONIC, for uptime */
    ev_signal sigterm, sigint;
    ev_timer quit_timer;
    int live; /* initialization finished (latched) */
} server;

/* --- admin endpoints ----------------------------------------------------- */

static int handle_config_dump(void *ctx, const admin_request *req, admin_response *resp)
{
    server *s = ctx;
    config_dump_sources src = {
        .bootstrap = s->bootstrap,
        .bootstrap_loaded = s->started,
        .clusters = s->clusters,
        .xds = s->xds,
    };
    return config_dump_render(&src, req->query, resp);
}

/* LIVE once initialization is done (the initial xDS fetch, if any). */
/* LIVE once initialization is done: the initial xDS fetch (if any) and
 * the first resolution of DNS clusters. It stays LIVE after that. */
static int server_is_live(server *s)
{
    if (s->live)
        return 1;
    if (s->xds != NULL && !xds_client_initialized(s->xds))
        return 0;
    for (size_t i = 0; i < cluster_manager_count(s->clusters); i++) {
        if (cluster_manager_at(s->clusters, i)->state == CM_CLUSTER_WARMING)
            return 0;
    }
    s->live = 1;
    return 1;
}

static int handle_ready(void *ctx, const admin_request *req, admin_response *resp)
{
    server *s = ctx;
    (void)req;
    if (!server_is_live(s))
        return admin_response_printf(resp, 503, "INITIALIZING\n");
    return admin_response_printf(resp, 200, "LIVE\n");
}

static int handle_clusters(void *ctx, const admin_request *req, admin_response *resp)
{
    server *s = ctx;
    return dataplane_render_clusters(s->dataplane, req->query, resp);
}

static int handle_pools(void *ctx, const admin_request *req, admin_response *resp)
{
    server *s = ctx;
    return dataplane_render_pools(s->dataplane, req->query, resp);
}

/* Envoy's /drain_listeners (POST): listeners stop accepting; open
 * connections finish what they carry (HTTP/1.1: close after the current
 * response; HTTP/2: GOAWAY, then close when their streams end). The
 * graceful and inboundonly parameters are accepted; the drain is always
 * graceful for the connections and immediate for the listeners. */
static int handle_drain_listeners(void *ctx, const admin_request *req, admin_response *resp)
{
    server *s = ctx;
    (void)req;
    log_info("draining listeners: /drain_listeners");
    dataplane_drain_listeners(s->dataplane);
    return admin_response_printf(resp, 200, "OK\n");
}

static int handle_stats(void *ctx, const admin_request *req, admin_response *resp)
{
    server *s = ctx;
    return stats_render(s->stats, req->query, resp);
}

static int handle_stats_prometheus(void *ctx, const admin_request *req, admin_response *resp)
{
    server *s = ctx;
    return stats_render_prometheus(s->stats, req->query, resp);
}

static void on_quit_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static int handle_quit(void *ctx, const admin_request *req, admin_response *resp)
{
    server *s = ctx;
    (void)req;
    log_info("shutting down: /quitquitquit");
    ev_timer_start(s->loop, &s->quit_timer);
    return admin_response_printf(resp, 200, "OK\n");
}

static void duration_since(const struct timespec *from, Google__Protobuf__Duration *d)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    google__protobuf__duration__init(d);
    d->seconds = now.tv_sec - from->tv_sec - (now.tv_nsec < from->tv_nsec ? 1 : 0);
}

static int handle_server_info(void *ctx, const admin_request *req, admin_response *resp)
{
    server *s = ctx;
    (void)req;
    Envoy__Admin__V3__ServerInfo info;
    Envoy__Admin__V3__CommandLineOptions clo;
    Google__Protobuf__Duration up_cur, up_all, drain, parent;
    envoy__admin__v3__server_info__init(&info);
    envoy__admin__v3__command_line_options__init(&clo);
    duration_since(&s->started_mono, &up_cur);
    up_all = up_cur;
    google__protobuf__duration__init(&drain);
    google__protobuf__duration__init(&parent);

    info.version = (char *)XDSNODE_VERSION "/Clean/RELEASE/OpenSSL";
    info.state = server_is_live(s) ? ENVOY__ADMIN__V3__SERVER_INFO__STATE__LIVE
                                   : ENVOY__ADMIN__V3__SERVER_INFO__STATE__INITIALIZING;
    info.uptime_current_epoch = &up_cur;
    info.uptime_all_epochs = &up_all;
    info.hot_restart_version = (char *)"disabled";
    info.command_line_options = &clo;
    info.node = s->bootstrap->node;

    clo.concurrency = s->opts->concurrency;
    clo.config_path = (char *)(s->opts->config_path ? s->opts->config_path : "");
    clo.config_yaml = (char *)(s->opts->config_yaml ? s->opts->config_yaml : "");
    clo.log_level = (char *)log_level_name(s->opts->level);
    clo.service_cluster = (char *)s->opts->service_cluster;
    clo.service_node = (char *)s->opts->service_node;
    clo.service_zone = (char *)s->opts->service_zone;
    clo.admin_address_path = (char *)(s->opts->admin_address_path ? s->opts->admin_address_path : "");
    clo.mode = s->opts->mode == MODE_VALIDATE ? ENVOY__ADMIN__V3__COMMAND_LINE_OPTIONS__MODE__Validate
                                               : ENVOY__ADMIN__V3__COMMAND_LINE_OPTIONS__MODE__Serve;
    clo.disable_hot_restart = 1;
    clo.drain_time = &drain;
    clo.parent_shutdown_time = &parent;

    char err[256];
    json_t *j = pbjson_encode_ex(&info.base, PBJSON_EMIT_DEFAULTS, err, sizeof(err));
    if (j == NULL)
        return admin_response_printf(resp, 500, "server_info: %s\n", err);
    char *text = json_dumps(j, JSON_INDENT(1));
    json_decref(j);
    if (text == NULL)
        return -1;
    int rc = admin_response_set_text(resp, 200, "application/json", text, strlen(text));
    free(text);
    return rc;
}

typedef struct {
    const char *path;
    const char *help;
    bool mutates;
    admin_handler_fn fn;
} endpoint;

static const endpoint endpoints[] = {
    {"/clusters", "upstream cluster status", false, handle_clusters},
    {"/config_dump", "dump current Envoy configs (experimental)", false, handle_config_dump},
    {"/drain_listeners", "drain listeners", true, handle_drain_listeners},
    {"/ready", "print server state, return 200 if LIVE, otherwise return 503", false, handle_ready},
    {"/server_info", "print server version/status information", false, handle_server_info},
    {"/pools", "upstream connection pools per worker, cluster and host (xdsnode)", false, handle_pools},
    {"/quitquitquit", "exit the server", true, handle_quit},
    {"/stats", "print server stats", false, handle_stats},
    {"/stats/prometheus", "print server stats in prometheus format", false, handle_stats_prometheus},
};

/* --- start-up ------------------------------------------------------------- */

static int write_admin_address(const char *path, const char *addr, uint16_t port, char *err,
                               size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        snprintf(err, errlen, "--admin-address-path %s: %s", path, strerror(errno));
        return -1;
    }
    int v6 = strchr(addr, ':') != NULL;
    fprintf(f, v6 ? "[%s]:%u" : "%s:%u", addr, port);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "--admin-address-path %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int start_admin(server *s, char *err, size_t errlen)
{
    const Envoy__Config__Bootstrap__V3__Admin *a = s->bootstrap->admin;
    if (a == NULL || a->address == NULL) {
        log_info("no admin address configured: admin interface disabled");
        return 0;
    }
    const Envoy__Config__Core__V3__SocketAddress *sa = a->address->socket_address;
    if (admin_server_create(s->loop, sa->address, (uint16_t)sa->port_value, &s->admin, err,
                            errlen) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        if (admin_server_add_handler(s->admin, endpoints[i].path, endpoints[i].help,
                                     endpoints[i].mutates, endpoints[i].fn, s) != 0) {
            snprintf(err, errlen, "admin: cannot register %s", endpoints[i].path);
            return -1;
        }
    }
    uint16_t port = admin_server_port(s->admin);
    log_info("admin address: %s:%u", sa->address, port);
    if (s->opts->admin_address_path &&
        write_admin_address(s->opts->admin_address_path, sa->address, port, err, errlen) != 0)
        return -1;
    return 0;
}

static int load_static_clusters(server *s, char *err, size_t errlen)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = s->bootstrap->static_resources;
    if (dns_resolver_create(s->loop, s->clusters, &s->dns, err, errlen) != 0)
        return -1;
    for (size_t i = 0; sr && i < sr->n_clusters; i++) {
        if (cluster_manager_add_static(s->clusters, sr->clusters[i], err, errlen) != 0)
            return -1;
        if (dns_cluster_is_dns(sr->clusters[i]) && dns_resolver_watch(s->dns, sr->clusters[i]) != 0) {
            snprintf(err, errlen, "cannot resolve cluster '%s'", sr->clusters[i]->name);
            return -1;
        }
    }
    log_info("cm init: %zu static cluster(s)", cluster_manager_count(s->clusters));
    return 0;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    log_info("caught signal %d, shutting down", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

static int start_xds(server *s, char *err, size_t errlen)
{
    if (!xds_client_wanted(s->bootstrap))
        return 0;
    return xds_client_create(s->loop, s->bootstrap, s->clusters, s->stats, s->dns, &s->xds, err,
                             errlen);
}

static void server_cleanup(server *s)
{
    xds_client_destroy(s->xds);
    dns_resolver_destroy(s->dns);
    dataplane_stop(s->dataplane);
    admin_server_destroy(s->admin);
    cluster_manager_destroy(s->clusters);
    stats_store_destroy(s->stats);
    ev_signal_stop(s->loop, &s->sigterm);
    ev_signal_stop(s->loop, &s->sigint);
    ev_timer_stop(s->loop, &s->quit_timer);
}

int server_run(const options *opts, const pb_bootstrap *bootstrap, char *err, size_t errlen)
{
    server s;
    memset(&s, 0, sizeof(s));
    s.loop = ev_default_loop(EVFLAG_AUTO);
    s.opts = opts;
    s.bootstrap = bootstrap;
    clock_gettime(CLOCK_REALTIME, &s.started);
    clock_gettime(CLOCK_MONOTONIC, &s.started_mono);
    signal(SIGPIPE, SIG_IGN);
    ev_signal_init(&s.sigterm, on_signal, SIGTERM);
    ev_signal_init(&s.sigint, on_signal, SIGINT);
    ev_signal_start(s.loop, &s.sigterm);
    ev_signal_start(s.loop, &s.sigint);
    ev_timer_init(&s.quit_timer, on_quit_timer, QUIT_FLUSH_SECONDS, 0.);

    s.stats = stats_store_create();
    s.clusters = s.stats ? cluster_manager_create(s.stats) : NULL;
    if (s.clusters == NULL) {
        snprintf(err, errlen, "out of memory");
        server_cleanup(&s);
        return -1;
    }
    if (load_static_clusters(&s, err, errlen) != 0 ||
        dataplane_start(bootstrap, s.clusters, opts->concurrency, &s.dataplane, err, errlen) != 0 ||
        start_admin(&s, err, errlen) != 0 || start_xds(&s, err, errlen) != 0) {
        server_cleanup(&s);
        return -1;
    }
    log_info("starting main dispatch loop (concurrency %u)", opts->concurrency);
    ev_run(s.loop, 0);
    log_info("exiting");
    server_cleanup(&s);
    return 0;
}
