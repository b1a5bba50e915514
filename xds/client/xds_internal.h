/*
 * xds_internal.h: state shared by the xDS client's files (xds_client.c:
 * stream and requests; cds.c: cluster updates; eds.c: endpoint watches).
 * Main thread only, like xds_client.h.
 */
#ifndef XDSNODE_XDS_INTERNAL_H
#define XDSNODE_XDS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "xdsnode/strbuf.h"
#include "xdsnode/xds_client.h"
#include "xdsnode/xds_transport.h"

/* A resource held by name with its version (Delta initial_resource_versions,
 * EDS assignments). Kept sorted by name. */
typedef struct {
    char *name;
    char *version;
    uint8_t *bytes; /* NULL for CDS entries (the cluster manager has them) */
    size_t len;
} held_resource;

typedef struct {
    held_resource *items;
    size_t n, cap;
} held_set;

/* Per-type subscription state. */
typedef struct {
    const char *type_url;
    char *version; /* SotW: last accepted version_info; "" before */
    char *nonce;   /* last response nonce on this stream; "" before */
    held_set held; /* EDS: the assignments held, service -> version (bytes live in
                      the cluster manager); unused for CDS (cm has the versions) */
    xds_failure failure;
} type_state;

/* An EDS cluster waiting for (or holding) endpoints. Sorted by cluster. */
typedef struct {
    char *cluster;
    char *service;        /* eds_cluster_config.service_name or the cluster name */
    double fetch_timeout; /* seconds; 0 waits forever */
    ev_timer timer;
    int timer_active;
    struct xds_client *owner;
} eds_watch;

typedef enum { CDS_STAT_UPDATE_ATTEMPT, CDS_STAT_UPDATE_SUCCESS, CDS_STAT_UPDATE_FAILURE,
               CDS_STAT_UPDATE_REJECTED, CDS_STAT_VERSION, CDS_STAT_INIT_FETCH_TIMEOUT,
               CDS_STAT_COUNT } cds_stat;

typedef enum { CP_STAT_CONNECTED_STATE, CP_STAT_RATE_LIMIT_ENFORCED, CP_STAT_PENDING_REQUESTS,
               CP_STAT_COUNT } cp_stat;

struct xds_client {
    struct ev_loop *loop;
    xds_transport *transport;
    cluster_manager *cm;
    dns_resolver *dns; /* NULL in unit tests */
    stats_store *store;
    stats_scope *cds_stats; /* cluster_manager.cds.* */
    stats_scope *cp_stats;  /* control_plane.* */
    int delta;
    int node_first_only;
    Envoy__Config__Core__V3__Node *node; /* owned copy, with user agent */
    int node_sent;       /* on the current stream */
    int stream_healthy;  /* a response arrived on the current stream */
    type_state cds, eds;
    char **eds_names;    /* current EDS subscription, sorted, unique */
    size_t n_eds_names;
    char **eds_sent;     /* what the server was last told (Delta), sorted */
    size_t n_eds_sent;
    eds_watch **watches; /* sorted by cluster; each allocated once (timers never move) */
    size_t n_watches, cap_watches;
    eds_watch **by_service; /* the same watches sorted by service; rebuilt when dirty */
    int by_service_dirty;
    ev_timer retry_timer;
    double backoff_s;
    ev_timer cds_fetch_timer; /* cds_config.initial_fetch_timeout */
    int cds_received;         /* a CDS update was accepted, or the wait timed out */
    int initialized;          /* latched: initial CDS and its warming are done */
    char target[512];
    /* Unit tests: with no transport, requests go here instead. */
    void (*request_hook)(void *ctx, const ProtobufCMessage *request);
    void *request_hook_ctx;
};

/* Unit tests: a client with no transport whose requests go to `hook`;
 * the stream counts as open. Free with xds_client_destroy(). */
struct xds_client *xds_client_create_detached(struct ev_loop *loop, int delta, cluster_manager *cm,
                                              stats_store *store,
                                              void (*hook)(void *, const ProtobufCMessage *),
                                              void *hook_ctx);

/* xds_client.c */
void xds_send_sotw(struct xds_client *c, type_state *ts, char **names, size_t n,
                   const Google__Rpc__Status *error);
void xds_send_delta(struct xds_client *c, const char *type_url, char **sub, size_t n_sub,
                    char **unsub, size_t n_unsub, const held_set *initial, const char *nonce,
                    const Google__Rpc__Status *error);
void xds_ack_or_nack(struct xds_client *c, type_state *ts, const char *version, const char *nonce,
                     const char *error);
char *xds_strdup(const char *s);
void xds_set_string(char **field, const char *value);
void xds_failure_clear(xds_failure *f);
void xds_failure_record(xds_failure *f, const char *version, const char *details);
int xds_failure_add(xds_failure *f, const char *name, const uint8_t *bytes, size_t len,
                    const char *details);
uint64_t xds_version_hash(const char *version);

/* held.c-like helpers (in xds_client.c) */
held_resource *held_find(const held_set *h, const char *name);
int held_put(held_set *h, const char *name, const char *version, const uint8_t *bytes, size_t len);
void held_remove(held_set *h, const char *name);
void held_clear(held_set *h);

/* cds.c */
void cds_on_sotw(struct xds_client *c, const Envoy__Service__Discovery__V3__DiscoveryResponse *r);
void cds_on_delta(struct xds_client *c, const Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r);
void cds_initial_versions(struct xds_client *c, held_set *out);

/* eds.c */
void eds_on_sotw(struct xds_client *c, const Envoy__Service__Discovery__V3__DiscoveryResponse *r);
void eds_on_delta(struct xds_client *c, const Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r);
/* Adds, updates or (cluster == NULL config) removes the watch of a cluster;
 * returns whether the cluster must warm (no assignment known yet). */
int eds_watch_cluster(struct xds_client *c, const pb_cluster *cluster);
void eds_unwatch_cluster(struct xds_client *c, const char *cluster);
/* Recomputes the EDS subscription from the watches and tells the server
 * when it changed (force: send even when unchanged, e.g. a new stream). */
void eds_sync_subscription(struct xds_client *c, int force);
void eds_start_warming_timer(struct xds_client *c, const char *cluster);
void eds_destroy(struct xds_client *c);

#endif
