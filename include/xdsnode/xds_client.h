/*
 * xds_client.h: the ADS client. Subscribes to CDS (wildcard) and to EDS for
 * every EDS cluster, over State-of-the-World or Delta gRPC as the
 * bootstrap's dynamic_resources.ads_config says; validates every update,
 * ACKs or NACKs it as Envoy does, applies accepted ones to the cluster
 * manager (warming until the first assignment or initial_fetch_timeout),
 * and reconnects with jittered exponential backoff while the last good
 * configuration keeps serving.
 *
 * Owns: its transport (xds_transport.h), subscription state, the EDS
 * resources it holds, warming timers, the record of the last rejected
 * update, and the stats scopes cluster_manager.cds.* and control_plane.*.
 * Threads: main thread only (the transport hands events to it).
 * Lifetime: the bootstrap, cluster manager and stats store must outlive it.
 */
#ifndef XDSNODE_XDS_CLIENT_H
#define XDSNODE_XDS_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "xdsnode/cluster_manager.h"
#include "xdsnode/dns.h"
#include "xdsnode/envoy_types.h"
#include "xdsnode/stats.h"

struct ev_loop;

#define XDS_CDS_TYPE_URL "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define XDS_EDS_TYPE_URL "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#define XDS_SOTW_METHOD "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define XDS_DELTA_METHOD "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
/* Envoy's default ConfigSource.initial_fetch_timeout. */
#define XDS_DEFAULT_INITIAL_FETCH_TIMEOUT_S 15.0
/* google.rpc.Code INVALID_ARGUMENT, sent in a NACK's error_detail. */
#define XDS_NACK_CODE 3

/* One resource of a rejected update, kept for /config_dump error_state. */
typedef struct {
    char *name;
    uint8_t *bytes; /* the resource as received (serialized) */
    size_t len;
    char *details;  /* why it was rejected */
} xds_rejected_resource;

/* The last rejected update of one type. */
typedef struct {
    int present;
    char *version_info;          /* the version that was rejected */
    struct timespec when;        /* CLOCK_REALTIME */
    char *details;               /* the NACK's error_detail.message */
    xds_rejected_resource *resources;
    size_t n_resources;
} xds_failure;

typedef struct xds_client xds_client;

/* Whether the bootstrap asks for xDS (dynamic_resources with ads_config). */
int xds_client_wanted(const pb_bootstrap *b);

/* Resolves the ADS server's gRPC target from the bootstrap: the first
 * endpoint of the envoy_grpc static cluster ("ip:port", "[v6]:port",
 * "unix:/path" for a pipe) or google_grpc.target_uri. */
int xds_client_target(const pb_bootstrap *b, char *out, size_t outlen, char *err, size_t errlen);

/* Creates the client and opens the first stream. The bootstrap's node is
 * sent as the Node (with user_agent_name "xdsnode" and the version added).
 * DNS clusters that arrive over CDS are handed to `dns`. */
int xds_client_create(struct ev_loop *loop, const pb_bootstrap *b, cluster_manager *cm,
                      stats_store *store, dns_resolver *dns, xds_client **out, char *err,
                      size_t errlen);
void xds_client_destroy(xds_client *c);

/* Whether the initial fetch is done, as Envoy's init manager sees it:
 * the first CDS update was accepted (or cds_config.initial_fetch_timeout
 * passed) and none of its clusters is still warming. Once true it stays
 * true. The server is LIVE (and /ready 200) only then. */
int xds_client_initialized(xds_client *c);

/* The last accepted CDS version ("" before the first). */
const char *xds_client_cds_version(const xds_client *c);

/* The last rejected CDS update (present == 0 when none since the last
 * accepted one). */
const xds_failure *xds_client_cds_failure(const xds_client *c);

/* The EDS resource held for a service name (serialized
 * ClusterLoadAssignment) and its version, or NULL. */
const uint8_t *xds_client_eds_resource(const xds_client *c, const char *service, size_t *len,
                                       const char **version);

#endif
