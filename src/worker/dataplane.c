/* dataplane.c: listeners, workers and snapshot publishing (dataplane.h). */
#include "xdsnode/dataplane.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "xdsnode/clusters_admin.h"
#include "xdsnode/http_stats.h"
#include "xdsnode/listener_config.h"
#include "xdsnode/log.h"
#include "xdsnode/pools_admin.h"
#include "xdsnode/snapshot.h"
#include "xdsnode/worker.h"

/* Workers allocate and free per-request memory at a high rate; glibc
 * would otherwise give the top of each worker's heap back to the kernel
 * (madvise, TLB shootdowns on every core) and map it again moments later. */
#define MALLOC_TRIM_THRESHOLD_BYTES (64 * 1024 * 1024)
/* listen(2) backlog for data-plane listeners. */
#define LISTENER_BACKLOG 1024

struct dataplane {
    cluster_manager *cm;
    listener_config **listeners;
    size_t n_listeners;
    worker **workers;
    unsigned n_workers;
    dp_snapshot *snap;
    stats_scope *h2_stats; /* downstream "http2.", shared by the HTTP listeners */
};

static int bind_reuseport(const listener_config *lc, struct sockaddr_storage *addr, socklen_t len,
                          char *err, size_t errlen)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        /* accepted sockets inherit it: responses go out in pieces, no Nagle delay */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)addr, len) != 0 || listen(fd, LISTENER_BACKLOG) != 0) {
        snprintf(err, errlen, "listener '%s': cannot bind port %u: %s", lc->name,
                 (unsigned)lc->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)addr, &len) != 0) { /* port 0: learn the port */
        close(fd);
        snprintf(err, errlen, "listener '%s': getsockname: %s", lc->name, strerror(errno));
        return -1;
    }
    return fd;
}

static void on_clusters_changed(void *ctx, const cluster_manager *cm)
{
    dataplane *dp = ctx;
    dp_snapshot *snap = snapshot_build(cm, dp->snap);
    if (snap == NULL) {
        log_error("data plane: out of memory building a cluster snapshot");
        return;
    }
    for (unsigned i = 0; i < dp->n_workers; i++)
        worker_publish(dp->workers[i], snap);
    snapshot_unref(dp->snap);
    dp->snap = snap;
}

static int translate_listeners(dataplane *dp, const pb_bootstrap *b, char *err, size_t errlen)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    size_t n = sr ? sr->n_listeners : 0;
    dp->listeners = calloc(n ? n : 1, sizeof(listener_config *));
    if (dp->listeners == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof(path), "static_resources.listeners[%zu]", i);
        if (listener_config_translate(sr->listeners[i], path, &dp->listeners[i], err, errlen) != 0)
            return -1;
        dp->n_listeners++;
    }
    return 0;
}

/* SO_REUSEPORT would let us silently share a port another process
 * already listens on (and steal part of its traffic): a plain bind first
 * makes that an "address in use" error at start-up instead. */
static int check_port_free(const listener_config *lc, char *err, size_t errlen)
{
    int fd = socket(lc->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)&lc->addr, lc->addrlen) != 0) {
        snprintf(err, errlen, "listener '%s': cannot bind port %u: %s", lc->name,
                 (unsigned)lc->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Binds one socket per worker per listener into fds[worker][listener]. */
static int bind_all(dataplane *dp, worker_listener *wl, char *err, size_t errlen)
{
    for (size_t l = 0; l < dp->n_listeners; l++) {
        listener_config *lc = dp->listeners[l];
        struct sockaddr_storage addr = lc->addr;
        if (lc->port != 0 && check_port_free(lc, err, errlen) != 0)
            return -1;
        for (unsigned w = 0; w < dp->n_workers; w++) {
            int fd = bind_reuseport(lc, &addr, lc->addrlen, err, errlen);
            if (fd < 0)
                return -1;
            wl[w * dp->n_listeners + l] = (worker_listener){lc, fd};
        }
        char ip[64];
        void *a = addr.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&addr)->sin_addr
                                            : (void *)&((struct sockaddr_in6 *)&addr)->sin6_addr;
        inet_ntop(addr.ss_family, a, ip, sizeof(ip));
        log_info("listener '%s' on %s:%u (%s, %u sockets with SO_REUSEPORT)", lc->name, ip,
                 ntohs(((struct sockaddr_in *)&addr)->sin_port),
                 lc->kind == LISTENER_HTTP ? "http_connection_manager" : "tcp_proxy", dp->n_workers);
    }
    return 0;
}

static int start_workers(dataplane *dp, char *err, size_t errlen)
{
    size_t n = (size_t)dp->n_workers * dp->n_listeners;
    worker_listener *wl = calloc(n ? n : 1, sizeof(*wl));
    dp->workers = calloc(dp->n_workers, sizeof(worker *));
    if (wl == NULL || dp->workers == NULL) {
        free(wl);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        wl[i].fd = -1;
    int rc = bind_all(dp, wl, err, errlen);
    unsigned started = 0;
    for (unsigned w = 0; rc == 0 && w < dp->n_workers; w++) {
        rc = worker_create(w, &wl[(size_t)w * dp->n_listeners], dp->n_listeners, dp->snap, NULL,
                           &dp->workers[w], err, errlen);
        if (rc == 0)
            started = w + 1;
    }
    for (size_t i = (size_t)started * dp->n_listeners; i < n; i++) {
        if (wl[i].fd >= 0)
            close(wl[i].fd); /* sockets no worker took over */
    }
    free(wl);
    return rc;
}

/* http.<stat_prefix>.* per HTTP listener and the shared downstream
 * http2.*, registered with the cluster manager's store. */
static int register_listener_stats(dataplane *dp)
{
    stats_store *store = cluster_manager_stats_store(dp->cm);
    stats_scope *h2 = NULL;
    for (size_t i = 0; i < dp->n_listeners; i++) {
        listener_config *lc = dp->listeners[i];
        if (lc->kind != LISTENER_HTTP)
            continue;
        if (h2 == NULL) {
            h2 = http2_codec_stats_scope_create();
            if (h2 == NULL || stats_store_add(store, h2) != 0)
                return -1;
            dp->h2_stats = h2;
        }
        lc->stats = http_stats_scope_create(lc->stat_prefix);
        if (lc->stats == NULL || stats_store_add(store, lc->stats) != 0)
            return -1;
        stats_scope_ref(h2);
        lc->h2_stats = h2;
    }
    return 0;
}

int dataplane_start(const pb_bootstrap *bootstrap, cluster_manager *cm, unsigned concurrency,
                    dataplane **out, char *err, size_t errlen)
{
    dataplane *dp = calloc(1, sizeof(*dp));
    if (dp == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    dp->cm = cm;
    dp->snap = snapshot_build(cm, NULL);
    if (dp->snap == NULL || translate_listeners(dp, bootstrap, err, errlen) != 0) {
        if (dp->snap == NULL)
            snprintf(err, errlen, "out of memory");
        dataplane_stop(dp);
        return -1;
    }
    if (register_listener_stats(dp) != 0) {
        snprintf(err, errlen, "out of memory");
        dataplane_stop(dp);
        return -1;
    }
    dp->n_workers = dp->n_listeners ? (concurrency ? concurrency : 1) : 0;
    if (dp->n_workers)
        mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES);
    if (dp->n_workers && start_workers(dp, err, errlen) != 0) {
        dataplane_stop(dp);
        return -1;
    }
    cluster_manager_set_change_listener(cm, on_clusters_changed, dp);
    if (dp->n_workers)
        log_info("data plane: %u worker(s), %zu listener(s)", dp->n_workers, dp->n_listeners);
    *out = dp;
    return 0;
}

void dataplane_drain_listeners(dataplane *dp)
{
    if (dp == NULL)
        return;
    for (size_t i = 0; i < dp->n_workers; i++)
        worker_drain(dp->workers[i]);
}

void dataplane_stop(dataplane *dp)
{
    if (dp == NULL)
        return;
    cluster_manager_set_change_listener(dp->cm, NULL, NULL);
    for (unsigned i = 0; dp->workers && i < dp->n_workers; i++)
        worker_stop_and_free(dp->workers[i]);
    free(dp->workers);
    stats_store *store = cluster_manager_stats_store(dp->cm);
    for (size_t i = 0; i < dp->n_listeners; i++) {
        if (dp->listeners[i] && dp->listeners[i]->stats)
            stats_store_remove(store, dp->listeners[i]->stats);
        listener_config_free(dp->listeners[i]);
    }
    if (dp->h2_stats) {
        stats_store_remove(store, dp->h2_stats);
        stats_scope_unref(dp->h2_stats);
    }
    free(dp->listeners);
    snapshot_unref(dp->snap);
    free(dp);
}

int dataplane_render_clusters(const dataplane *dp, const char *query, admin_response *resp)
{
    return clusters_admin_render(dp ? dp->snap : NULL, query, resp);
}

int dataplane_render_pools(const dataplane *dp, const char *query, admin_response *resp)
{
    return pools_admin_render(dp ? dp->workers : NULL, dp ? dp->n_workers : 0, query, resp);
}
