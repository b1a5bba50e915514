/*
 * dns.h: endpoint resolution for STRICT_DNS and LOGICAL_DNS clusters.
 *
 * The hostnames of a DNS cluster's load_assignment are resolved on a
 * resolver thread (getaddrinfo); the result becomes the cluster's
 * assignment in the cluster manager (STRICT_DNS: every address of every
 * hostname; LOGICAL_DNS: the first address only), which also finishes the
 * cluster's warming, as Envoy's first resolution does. Resolution repeats
 * every dns_refresh_rate (default DNS_DEFAULT_REFRESH_S). A hostname that
 * does not resolve contributes no endpoint and is logged.
 *
 * Owns: the resolver thread, its job and result queues, one watch per DNS
 * cluster (with its refresh timer and a copy of the configured endpoints).
 * Threads: every function runs on the main thread; the resolver thread
 * only runs getaddrinfo and hands results back through an ev_async.
 */
#ifndef XDSNODE_DNS_H
#define XDSNODE_DNS_H

#include <stddef.h>

#include "xdsnode/cluster_manager.h"
#include "xdsnode/envoy_types.h"

struct ev_loop;

/* Envoy's default Cluster.dns_refresh_rate. */
#define DNS_DEFAULT_REFRESH_S 5.0

typedef struct dns_resolver dns_resolver;

/* Whether the cluster's type is STRICT_DNS or LOGICAL_DNS. */
int dns_cluster_is_dns(const pb_cluster *c);

int dns_resolver_create(struct ev_loop *loop, cluster_manager *cm, dns_resolver **out, char *err,
                        size_t errlen);
/* Stops the thread (an in-flight getaddrinfo finishes first). */
void dns_resolver_destroy(dns_resolver *r);

/* Starts resolving a DNS cluster now, replacing any earlier watch of the
 * same name (config changed). Returns 0, or -1 when memory ran out. */
int dns_resolver_watch(dns_resolver *r, const pb_cluster *c);

/* Stops resolving a cluster (removed, or no longer a DNS cluster). */
void dns_resolver_unwatch(dns_resolver *r, const char *cluster);

#endif
