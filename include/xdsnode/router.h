/*
 * router.h: an inline RouteConfiguration translated for the request path,
 * and the matching Envoy's router does: virtual host by Host/:authority
 * (exact, then longest "*.suffix"/"*suffix", then longest "prefix*", then
 * "*"), first route whose prefix / path / safe_regex matches, then the
 * action's cluster (cluster, cluster_header, weighted_clusters, or the
 * xdsnode Istio egress extension, see README).
 *
 * Owns: a route_table owns all its strings, compiled regexes and arrays.
 * Threads: built on the main thread, then read-only from any worker.
 */
#ifndef XDSNODE_ROUTER_H
#define XDSNODE_ROUTER_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "xdsnode/envoy_types.h"
#include "envoy/config/route/v3/route.pb-c.h"

/* RouteAction.timeout (0 disables) */
#define ROUTE_DEFAULT_TIMEOUT_MS 15000
/* RetryPolicy.num_retries */
#define ROUTE_DEFAULT_NUM_RETRIES 1
/* Route metadata that turns on the Istio egress extension:
 * metadata.filter_metadata["xdsnode"].istio_egress = true */
#define EGRESS_METADATA_NAMESPACE "xdsnode"
#define EGRESS_METADATA_KEY "istio_egress"

typedef enum { DOMAIN_EXACT, DOMAIN_SUFFIX, DOMAIN_PREFIX, DOMAIN_ANY } domain_kind;
typedef enum { MATCH_PREFIX, MATCH_PATH, MATCH_REGEX } path_match_kind;
typedef enum { ACTION_CLUSTER, ACTION_CLUSTER_HEADER, ACTION_WEIGHTED, ACTION_EGRESS } action_kind;

/* RetryPolicy.retry_on conditions we implement. */
enum {
    RETRY_ON_5XX = 1 << 0,
    RETRY_ON_GATEWAY_ERROR = 1 << 1,
    RETRY_ON_CONNECT_FAILURE = 1 << 2,
    RETRY_ON_RESET = 1 << 3,
    RETRY_ON_RETRIABLE_STATUS = 1 << 4,
};

typedef struct {
    char *name;
    uint32_t weight;
} weighted_target;

typedef struct {
    path_match_kind match;
    char *pattern;
    size_t pattern_len;
    regex_t regex;
    int case_sensitive;
    action_kind action;
    char *cluster;        /* ACTION_CLUSTER: name; ACTION_CLUSTER_HEADER: header */
    weighted_target *targets;
    size_t n_targets;
    uint64_t total_weight;
    uint64_t timeout_ms;  /* 0: none */
    int priority;         /* PRIORITY_DEFAULT / PRIORITY_HIGH */
    int not_found_status; /* cluster_not_found_response_code: 503 or 404 */
    unsigned retry_on;
    uint32_t num_retries;
    uint32_t *retriable_status;
    size_t n_retriable_status;
} route_entry;

typedef struct {
    domain_kind kind;
    char *text; /* lower-cased, without the '*' */
    size_t len;
} domain_pattern;

typedef struct {
    char *name;
    domain_pattern *domains;
    size_t n_domains;
    route_entry *routes;
    size_t n_routes;
} virtual_host;

typedef struct {
    virtual_host *vhosts;
    size_t n_vhosts;
    int validate_clusters;
    int ignore_port;
} route_table;

/* Translates an inline RouteConfiguration. `path` prefixes errors.
 * Returns 0, or -1 with "PATH: reason" in err. */
int route_table_translate(const Envoy__Config__Route__V3__RouteConfiguration *rc, const char *path,
                          route_table *out, char *err, size_t errlen);
void route_table_free(route_table *rt);

/* The virtual host for a Host value (may include ":port"), or NULL. */
const virtual_host *router_find_vhost(const route_table *rt, const char *host, size_t host_len);

/* The first route of vh whose path match accepts `path` (without query),
 * or NULL. */
const route_entry *router_find_route(const virtual_host *vh, const char *path, size_t path_len);

/* Istio egress cluster name "outbound|P||H" for a Host header value; P is
 * the Host header's port, else default_port. Returns the length written
 * (truncated to outlen-1), or -1 if host is empty. */
int router_egress_cluster(const char *host, size_t host_len, unsigned default_port, char *out,
                          size_t outlen);

/* Picks a weighted target by a random draw. */
const char *router_pick_weighted(const route_entry *r, uint64_t random);

#endif
