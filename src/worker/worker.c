/* worker.c: data-plane worker threads (worker.h). */
#include "xdsnode/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "xdsnode/buffer.h"
#include "xdsnode/cluster_stats.h"
#include "xdsnode/h2_common.h"
#include "xdsnode/hcm.h"
#include "xdsnode/conn_pool.h"
#include "xdsnode/log.h"
#include "xdsnode/tcp_proxy.h"
#include "xdsnode/wmem.h"

/* How often draining clusters and idle pools are checked for emptiness. */
#define WORKER_GC_INTERVAL_SECONDS 0.5
/* A current cluster's pool found empty (no connection, no request) at this
 * many consecutive checks is freed: idle for at least one interval. */
#define WORKER_IDLE_POOL_CHECKS 2
/* Access log files a worker keeps open. */
#define WORKER_MAX_LOG_FILES 8

typedef struct {
    worker *w;
    const listener_config *cfg;
    int fd;
    ev_io io;
} worker_socket;

typedef struct {
    char *path;
    int fd;
} log_file;

struct worker {
    unsigned id;
    pthread_t thread;
    struct ev_loop *loop;
    ev_async wakeup;
    ev_timer gc;
    pthread_mutex_t mu;
    /* Held by the worker while it changes snap/cur/draining or creates or
     * frees a pool, and by worker_visit_pools readers. */
    pthread_mutex_t pools_mu;
    dp_snapshot *incoming; /* guarded by mu */
    int stop_requested;    /* guarded by mu */
    int drain_requested;   /* guarded by mu */
    int drained;           /* listeners closed, connections told to drain */
    dp_snapshot *snap;
    worker_cluster **cur;  /* same order as snap->clusters */
    worker_cluster *draining;
    worker_socket *sockets;
    size_t n_sockets;
    worker_conn conns;     /* list head */
    log_file logs[WORKER_MAX_LOG_FILES];
};

struct ev_loop *worker_loop(worker *w) { return w->loop; }
unsigned worker_id(const worker *w) { return w->id; }

/* --- clusters ------------------------------------------------------------ */

static worker_cluster *cluster_create(worker *w, dp_cluster *dc)
{
    worker_cluster *wc = calloc(1, sizeof(*wc));
    if (wc == NULL)
        return NULL;
    wc->pools = calloc(dc->cfg->n_hosts ? dc->cfg->n_hosts : 1, sizeof(conn_pool *));
    wc->pool_idle = calloc(dc->cfg->n_hosts ? dc->cfg->n_hosts : 1, 1);
    if (wc->pools == NULL || wc->pool_idle == NULL) {
        free(wc->pools);
        free(wc->pool_idle);
        free(wc);
        return NULL;
    }
    dp_cluster_ref(dc);
    wc->dc = dc;
    wc->w = w;
    lb_state_init(&wc->lb, ((uint64_t)w->id + 1) * 7919u + (uint64_t)(uintptr_t)wc);
    wc->lb.rr_next = w->id; /* workers start round robin at different hosts */
    return wc;
}

/* Called with pools_mu held. */
static void cluster_destroy(worker_cluster *wc)
{
    for (size_t i = 0; i < wc->dc->cfg->n_hosts; i++) {
        if (wc->pools[i] == NULL)
            continue;
        conn_pool_destroy(wc->pools[i]);
        cb_release(&wc->dc->cb, PRIORITY_DEFAULT, CB_CONNECTION_POOLS);
    }
    free(wc->pools);
    free(wc->pool_idle);
    dp_cluster_unref(wc->dc);
    free(wc);
}

static int cluster_drained(const worker_cluster *wc)
{
    if (wc->refs > 0)
        return 0;
    for (size_t i = 0; i < wc->dc->cfg->n_hosts; i++) {
        if (wc->pools[i] && !conn_pool_empty(wc->pools[i]))
            return 0;
    }
    return 1;
}

static void cluster_start_draining(worker *w, worker_cluster *wc)
{
    wc->draining = 1;
    for (size_t i = 0; i < wc->dc->cfg->n_hosts; i++) {
        if (wc->pools[i])
            conn_pool_drain(wc->pools[i]);
    }
    wc->next = w->draining;
    w->draining = wc;
}

static void collect_drained(worker *w)
{
    pthread_mutex_lock(&w->pools_mu);
    worker_cluster **pp = &w->draining;
    while (*pp) {
        worker_cluster *wc = *pp;
        if (cluster_drained(wc)) {
            *pp = wc->next;
            cluster_destroy(wc);
        } else {
            pp = &wc->next;
        }
    }
    pthread_mutex_unlock(&w->pools_mu);
}

worker_cluster *worker_cluster_find(worker *w, const char *name, size_t len)
{
    const dp_snapshot *s = w->snap;
    size_t lo = 0, hi = s ? s->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *cn = s->clusters[mid]->cfg->name;
        int cmp = strncmp(cn, name, len);
        if (cmp == 0)
            cmp = cn[len] == '\0' ? 0 : 1;
        if (cmp == 0)
            return w->cur[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

conn_pool *worker_cluster_pool(worker_cluster *wc, size_t host)
{
    if (wc->pools[host])
        return wc->pools[host];
    if (!cb_try_acquire(&wc->dc->cb, PRIORITY_DEFAULT, CB_CONNECTION_POOLS)) {
        stats_inc(wc->dc->stats, CLUSTER_STAT_UPSTREAM_CX_POOL_OVERFLOW);
        return NULL;
    }
    conn_pool *p = conn_pool_create(wc->w->loop, wc, host);
    if (p == NULL) {
        cb_release(&wc->dc->cb, PRIORITY_DEFAULT, CB_CONNECTION_POOLS);
        return NULL;
    }
    pthread_mutex_lock(&wc->w->pools_mu);
    wc->pools[host] = p;
    pthread_mutex_unlock(&wc->w->pools_mu);
    return p;
}

void worker_cluster_hold(worker_cluster *wc) { wc->refs++; }
void worker_cluster_release(worker_cluster *wc) { wc->refs--; }

/* Switches to snap: unchanged clusters keep their pools, the others drain. */
static void worker_swap(worker *w, dp_snapshot *snap)
{
    worker_cluster **cur = calloc(snap->n ? snap->n : 1, sizeof(*cur));
    if (cur == NULL) {
        snapshot_unref(snap);
        return;
    }
    size_t old_n = w->snap ? w->snap->n : 0;
    pthread_mutex_lock(&w->pools_mu); /* readers walk cur and draining */
    for (size_t i = 0; i < snap->n; i++) {
        for (size_t j = 0; j < old_n; j++) {
            if (w->cur[j] && w->cur[j]->dc == snap->clusters[i]) {
                cur[i] = w->cur[j];
                w->cur[j] = NULL;
                break;
            }
        }
        if (cur[i] == NULL)
            cur[i] = cluster_create(w, snap->clusters[i]);
    }
    for (size_t j = 0; j < old_n; j++) {
        if (w->cur[j])
            cluster_start_draining(w, w->cur[j]);
    }
    for (size_t i = 0; i < snap->n; i++) {
        if (cur[i] == NULL) { /* allocation failure: keep the old view */
            for (size_t k = 0; k < snap->n; k++) {
                if (cur[k])
                    cluster_start_draining(w, cur[k]);
            }
            pthread_mutex_unlock(&w->pools_mu);
            free(cur);
            snapshot_unref(snap);
            return;
        }
    }
    free(w->cur);
    w->cur = cur;
    dp_snapshot *old = w->snap;
    w->snap = snap;
    pthread_mutex_unlock(&w->pools_mu);
    snapshot_unref(old);
    collect_drained(w);
}

/* --- connections ---------------------------------------------------------- */

void worker_conn_add(worker *w, worker_conn *c)
{
    c->next = w->conns.next;
    c->prev = &w->conns;
    w->conns.next->prev = c;
    w->conns.next = c;
}

void worker_conn_remove(worker *w, worker_conn *c)
{
    (void)w;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->prev = c->next = c;
}

void worker_access_log(worker *w, const char *path, const char *line, size_t len)
{
    log_file *slot = NULL;
    for (size_t i = 0; i < WORKER_MAX_LOG_FILES; i++) {
        if (w->logs[i].path && strcmp(w->logs[i].path, path) == 0) {
            slot = &w->logs[i];
            break;
        }
        if (w->logs[i].path == NULL && slot == NULL)
            slot = &w->logs[i];
    }
    if (slot == NULL)
        return;
    if (slot->path == NULL) {
        slot->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (slot->fd < 0)
            return;
        slot->path = strdup(path);
    }
    ssize_t n = write(slot->fd, line, len);
    (void)n;
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    worker_socket *ws = io->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(ws->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("listener %s: accept: %s", ws->cfg->name, strerror(errno));
            return;
        }
        /* TCP_NODELAY comes from the listening socket (dataplane.c) */
        if (ws->cfg->kind == LISTENER_HTTP)
            hcm_connection_create(ws->w, ws->cfg, fd, &peer);
        else
            tcp_proxy_session_create(ws->w, ws->cfg, fd, &peer);
    }
}

/* --- thread ---------------------------------------------------------------- */

static void worker_shutdown(worker *w)
{
    for (size_t i = 0; i < w->n_sockets; i++) {
        ev_io_stop(w->loop, &w->sockets[i].io);
        if (w->sockets[i].fd >= 0)
            close(w->sockets[i].fd);
        w->sockets[i].fd = -1;
    }
    while (w->conns.next != &w->conns)
        w->conns.next->close(w->conns.next);
    pthread_mutex_lock(&w->pools_mu);
    for (size_t i = 0; w->snap && i < w->snap->n; i++)
        cluster_start_draining(w, w->cur[i]);
    while (w->draining) {
        worker_cluster *wc = w->draining;
        w->draining = wc->next;
        cluster_destroy(wc);
    }
    free(w->cur);
    w->cur = NULL;
    dp_snapshot *old = w->snap;
    w->snap = NULL;
    pthread_mutex_unlock(&w->pools_mu);
    snapshot_unref(old);
    ev_timer_stop(w->loop, &w->gc);
    ev_async_stop(w->loop, &w->wakeup);
    ev_break(w->loop, EVBREAK_ALL);
}

/* /drain_listeners: no new connections; the open ones finish what they
 * carry (HTTP/1.1: close after the current response, HTTP/2: GOAWAY). */
static void worker_drain_now(worker *w)
{
    if (w->drained)
        return;
    w->drained = 1;
    for (size_t i = 0; i < w->n_sockets; i++) {
        ev_io_stop(w->loop, &w->sockets[i].io);
        close(w->sockets[i].fd);
        w->sockets[i].fd = -1;
    }
    /* A drain callback may close (and unlink) its own connection. */
    worker_conn *c = w->conns.next;
    while (c != &w->conns) {
        worker_conn *next = c->next;
        if (c->drain)
            c->drain(c);
        c = next;
    }
}

static void on_wakeup(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    worker *w = a->data;
    pthread_mutex_lock(&w->mu);
    dp_snapshot *snap = w->incoming;
    w->incoming = NULL;
    int stop = w->stop_requested, drain = w->drain_requested;
    pthread_mutex_unlock(&w->mu);
    if (snap)
        worker_swap(w, snap);
    if (drain && !stop)
        worker_drain_now(w);
    if (stop)
        worker_shutdown(w);
}

/* Frees the current clusters' pools that stayed empty for
 * WORKER_IDLE_POOL_CHECKS checks. Safe for the router: a stream uses its
 * pool only while linked to it (then it is not empty) or in the same loop
 * turn it got it; /pools readers see wc->pools only under pools_mu. */
static void collect_idle_pools(worker *w)
{
    for (size_t i = 0; w->snap && i < w->snap->n; i++) {
        worker_cluster *wc = w->cur[i];
        for (size_t h = 0; wc && h < wc->dc->cfg->n_hosts; h++) {
            conn_pool *p = wc->pools[h];
            if (p == NULL)
                continue;
            if (!conn_pool_empty(p)) {
                wc->pool_idle[h] = 0;
                continue;
            }
            if (++wc->pool_idle[h] < WORKER_IDLE_POOL_CHECKS)
                continue;
            pthread_mutex_lock(&w->pools_mu);
            wc->pools[h] = NULL;
            pthread_mutex_unlock(&w->pools_mu);
            wc->pool_idle[h] = 0;
            conn_pool_destroy(p);
            cb_release(&wc->dc->cb, PRIORITY_DEFAULT, CB_CONNECTION_POOLS);
        }
    }
}

static void on_gc(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    collect_drained(t->data);
    collect_idle_pools(t->data);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    ev_run(w->loop, 0);
    buffer_block_cache_release(); /* the blocks would leak with the thread */
    wmem_release();
    return NULL;
}

int worker_create(unsigned id, const worker_listener *listeners, size_t n, dp_snapshot *snap,
                  const char *unused, worker **out, char *err, size_t errlen)
{
    (void)unused;
    worker *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->sockets = calloc(n ? n : 1, sizeof(worker_socket))) == NULL ||
        (w->loop = ev_loop_new(EVFLAG_AUTO)) == NULL) {
        if (w)
            free(w->sockets);
        free(w);
        snprintf(err, errlen, "worker %u: out of memory", id);
        return -1;
    }
    w->id = id;
    w->conns.next = w->conns.prev = &w->conns;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->pools_mu, NULL);
    ev_async_init(&w->wakeup, on_wakeup);
    w->wakeup.data = w;
    ev_async_start(w->loop, &w->wakeup);
    ev_timer_init(&w->gc, on_gc, WORKER_GC_INTERVAL_SECONDS, WORKER_GC_INTERVAL_SECONDS);
    w->gc.data = w;
    ev_timer_start(w->loop, &w->gc);
    snapshot_ref(snap);
    worker_swap(w, snap);
    for (size_t i = 0; i < n; i++) {
        worker_socket *ws = &w->sockets[i];
        ws->w = w;
        ws->cfg = listeners[i].cfg;
        ws->fd = listeners[i].fd;
        ev_io_init(&ws->io, on_accept, ws->fd, EV_READ);
        ws->io.data = ws;
        ev_io_start(w->loop, &ws->io);
    }
    w->n_sockets = n;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        snprintf(err, errlen, "worker %u: cannot start thread", id);
        worker_shutdown(w);
        ev_loop_destroy(w->loop);
        free(w->sockets);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

void worker_publish(worker *w, dp_snapshot *snap)
{
    snapshot_ref(snap);
    pthread_mutex_lock(&w->mu);
    dp_snapshot *old = w->incoming;
    w->incoming = snap;
    pthread_mutex_unlock(&w->mu);
    snapshot_unref(old);
    ev_async_send(w->loop, &w->wakeup);
}

void worker_drain(worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->drain_requested = 1;
    pthread_mutex_unlock(&w->mu);
    ev_async_send(w->loop, &w->wakeup);
}

void worker_stop_and_free(worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop_requested = 1;
    pthread_mutex_unlock(&w->mu);
    ev_async_send(w->loop, &w->wakeup);
    pthread_join(w->thread, NULL);
    snapshot_unref(w->incoming);
    for (size_t i = 0; i < WORKER_MAX_LOG_FILES; i++) {
        if (w->logs[i].path) {
            close(w->logs[i].fd);
            free(w->logs[i].path);
        }
    }
    ev_loop_destroy(w->loop);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->pools_mu);
    free(w->sockets);
    free(w);
}

_Static_assert(sizeof(((worker_pool_view *)0)->counts) / sizeof(size_t) == POOL_COUNT_FIELDS,
               "worker_pool_view.counts matches http1_pool's counts");

static void visit_cluster(const worker *w, const worker_cluster *wc, worker_pool_visitor fn, void *ctx)
{
    for (size_t i = 0; i < wc->dc->cfg->n_hosts; i++) {
        http1_pool *h1 = wc->pools[i] ? conn_pool_http1(wc->pools[i]) : NULL;
        http2_pool *h2 = wc->pools[i] ? conn_pool_http2(wc->pools[i]) : NULL;
        worker_pool_view v = {.worker_id = w->id, .cfg = wc->dc->cfg, .host = i,
                              .cluster_draining = wc->draining, .generation = wc->dc->generation,
                              .tls = wc->dc->tls != NULL};
        if (h1 != NULL) {
            v.protocol = "http1";
            http1_pool_counts_get(h1, v.counts);
            fn(ctx, &v);
        }
        if (h2 != NULL) {
            v.protocol = "http2";
            http2_pool_counts_get(h2, v.counts);
            fn(ctx, &v);
        }
    }
}

void worker_visit_pools(worker *w, worker_pool_visitor fn, void *ctx)
{
    pthread_mutex_lock(&w->pools_mu);
    for (size_t i = 0; w->snap && i < w->snap->n; i++) {
        if (w->cur[i])
            visit_cluster(w, w->cur[i], fn, ctx);
    }
    for (const worker_cluster *wc = w->draining; wc; wc = wc->next)
        visit_cluster(w, wc, fn, ctx);
    pthread_mutex_unlock(&w->pools_mu);
}
