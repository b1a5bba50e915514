/*
 * config_dump.h: builds Envoy's /config_dump (envoy.admin.v3.ConfigDump as
 * pretty-printed proto3 JSON) from the node's configuration.
 *
 * Owns: nothing; it reads the sources it is given and returns new text.
 * Threads: main thread (the sources belong to it).
 *
 * Query parameters, as Envoy's ConfigDumpHandler:
 *   resource=FIELD  output each element of that repeated field of the dumps
 *                   as its own config (404 "FIELD not found in config dump";
 *                   400 when FIELD is not repeated);
 *   mask=PATHS      comma-separated field paths (FieldMask); without
 *                   resource, dumps the mask does not fit are left out (400
 *                   if none is left); with resource, paths may reach into
 *                   the resource's Any (e.g. cluster.name,last_updated);
 *   name_regex=RE   only resources whose name matches (POSIX extended RE,
 *                   whole-name match);
 *   include_eds     adds the EndpointsConfigDump: the endpoints in force of
 *                   every active cluster (static_/dynamic_endpoint_configs).
 * Dynamic clusters are listed as dynamic_active_clusters and
 * dynamic_warming_clusters with their CDS version_info; the last rejected
 * CDS update shows as error_state (failed_configuration, details,
 * last_update_attempt, version_info) and client_status NACKED on the entry
 * of the cluster it tried to change, or on an entry of its own when the
 * node does not hold that cluster.
 * Configs appear in Envoy's order: bootstrap, clusters, endpoints (with
 * include_eds), listeners (the bootstrap's static listeners).
 */
#ifndef XDSNODE_CONFIG_DUMP_H
#define XDSNODE_CONFIG_DUMP_H

#include <time.h>

#include "xdsnode/admin.h"
#include "xdsnode/cluster_manager.h"
#include "xdsnode/envoy_types.h"
#include "xdsnode/xds_client.h"

typedef struct {
    const pb_bootstrap *bootstrap;
    struct timespec bootstrap_loaded; /* CLOCK_REALTIME */
    const cluster_manager *clusters;
    const xds_client *xds; /* NULL without dynamic_resources */
} config_dump_sources;

/* Fills resp (status, content type, body) for a /config_dump request with
 * the raw query string `query`. Returns 0 (errors are HTTP answers), or -1
 * when memory ran out. */
int config_dump_render(const config_dump_sources *src, const char *query, admin_response *resp);

#endif
