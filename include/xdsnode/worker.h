/*
 * worker.h: one data-plane worker thread: its own libev loop, its own
 * SO_REUSEPORT socket per listener, the downstream connections it
 * accepted, and per cluster its load-balancer state and connection pools
 * (one conn_pool per host). It reads config only through its current snapshot,
 * which the main thread replaces with worker_publish().
 *
 * Owns: its thread, loop, listener sockets (handed over at creation),
 * connections, pools and one reference on its current snapshot. Clusters
 * that leave the snapshot (or change) drain: their pools take no new
 * requests, finish in-flight ones and are freed when empty. A current
 * cluster's pool with no connection and no request for a while is freed
 * too (as Envoy removes idle pools), giving back its max_connection_pools
 * slot; the next request to the host makes a new one.
 * Threads: worker_create/publish/stop/join from the main thread; every
 * other function only on the worker's own thread.
 */
#ifndef XDSNODE_WORKER_H
#define XDSNODE_WORKER_H

#include <stddef.h>

#include "xdsnode/lb.h"
#include "xdsnode/listener_config.h"
#include "xdsnode/snapshot.h"

struct ev_loop;
struct conn_pool;
typedef struct worker worker;

typedef struct worker_cluster {
    dp_cluster *dc;            /* one reference */
    lb_state lb;
    struct conn_pool **pools;  /* dc->cfg->n_hosts, created on first use,
                                  freed once idle (see worker.c) */
    unsigned char *pool_idle;  /* per host: gc ticks its pool was found empty */
    int draining;
    int refs;                  /* streams and tcp sessions using it */
    worker *w;
    struct worker_cluster *next;
} worker_cluster;

typedef struct {
    const listener_config *cfg; /* shared, read-only, outlives workers */
    int fd;                     /* this worker's SO_REUSEPORT socket */
} worker_listener;

/* Starts a worker thread serving `listeners` (fds now owned by the
 * worker) with `snap` (the worker takes its own reference). */
int worker_create(unsigned id, const worker_listener *listeners, size_t n, dp_snapshot *snap,
                  const char *access_log_dir_unused, worker **out, char *err, size_t errlen);
/* Hands a new snapshot to the worker (it takes its own reference). */
void worker_publish(worker *w, dp_snapshot *snap);
/* Asks the worker to stop accepting and to drain its connections (each
 * finishes what it carries, then closes: HTTP/1.1 after the current
 * response, HTTP/2 after GOAWAY once its streams end). Returns at once. */
void worker_drain(worker *w);
/* Asks the worker to close everything and exit, then joins and frees it. */
void worker_stop_and_free(worker *w);

/* One pool as another thread sees it (for /pools); valid only during the
 * visitor call. */
typedef struct {
    unsigned worker_id;
    const cluster_config *cfg;  /* the pool's cluster generation */
    size_t host;                /* index into cfg->hosts */
    const char *protocol;       /* "http1" or "http2" */
    int tls;                    /* the cluster originates TLS (ALPN offered: the protocol) */
    int cluster_draining;       /* the generation was replaced or removed */
    uint64_t generation;
    size_t counts[6];           /* POOL_COUNT_* (http1_pool.h) */
} worker_pool_view;
typedef void (*worker_pool_visitor)(void *ctx, const worker_pool_view *v);
/* Main thread (any thread but the worker's own): calls fn for each of the
 * worker's pools, current clusters first, under the worker's pool lock
 * (the worker only takes it to add or free pools and clusters). */
void worker_visit_pools(worker *w, worker_pool_visitor fn, void *ctx);

/* --- worker thread only --- */
struct ev_loop *worker_loop(worker *w);
unsigned worker_id(const worker *w);
/* The routable cluster named name[0..len) in the current snapshot, or NULL. */
worker_cluster *worker_cluster_find(worker *w, const char *name, size_t len);
/* The pool for host i of the cluster (created on demand), NULL on OOM. */
struct conn_pool *worker_cluster_pool(worker_cluster *wc, size_t host);
void worker_cluster_hold(worker_cluster *wc);
void worker_cluster_release(worker_cluster *wc);
/* Connections register so shutdown can close them. */
typedef struct worker_conn {
    void (*close)(struct worker_conn *c); /* frees the connection */
    /* Optional: finish in-flight work, take no more, close when done
     * (may close and free the connection before returning). */
    void (*drain)(struct worker_conn *c);
    struct worker_conn *prev, *next;
} worker_conn;
void worker_conn_add(worker *w, worker_conn *c);
void worker_conn_remove(worker *w, worker_conn *c);
/* Appends one line to the access log file (one write()). */
void worker_access_log(worker *w, const char *path, const char *line, size_t len);

#endif
