/*
 * validate.h: semantic checks Envoy makes on a decoded bootstrap or Cluster
 * (its protoc-gen-validate rules and cluster factory checks) that the JSON
 * mapping cannot express, plus the settings xdsnode does not support yet.
 *
 * Owns: nothing; pure functions over borrowed messages.
 * Threads: any.
 * Errors are "PATH: reason", PATH in proto field names with [i] indexes,
 * prefixed by the caller's `path` (e.g. "static_resources.clusters[2]").
 */
#ifndef XDSNODE_VALIDATE_H
#define XDSNODE_VALIDATE_H

#include <stddef.h>

#include "xdsnode/envoy_types.h"

/* Checks values a binary resource can carry that Envoy refuses: unknown
 * enum values, Durations out of range or with mixed signs, Percents
 * outside 0..100, and Any fields of a known type that do not parse
 * (checked inside too). Returns 0, or -1 with "PATH: reason". */
int validate_message_values(const ProtobufCMessage *m, const char *path, char *err, size_t errlen);

/* Checks one Cluster (including validate_message_values). Returns 0, or
 * -1 with err. */
int validate_cluster(const pb_cluster *c, const char *path, char *err, size_t errlen);

/* Lists (comma-separated, into out) the fields set on `c` that xdsnode
 * keeps and shows but does not act on (e.g. outlier_detection, metadata).
 * Returns how many there are. */
size_t validate_cluster_ignored_fields(const pb_cluster *c, char *out, size_t outlen);

/* Checks the node metadata keys istiod decodes (xds-facts §4.4): values
 * that must be strings (INSTANCE_IPS, ISTIO_VERSION, NAMESPACE, ...,
 * and "true"/"false" flags) and ones that must be objects (LABELS,
 * ANNOTATIONS, PROXY_CONFIG). Returns 0, or -1 with err. */
int validate_node_metadata(const pb_node *node, const char *path, char *err, size_t errlen);

/* Checks a whole bootstrap (clusters, names unique, admin address, and the
 * parts xdsnode cannot serve yet). Returns 0, or -1 with err. */
int validate_bootstrap(const pb_bootstrap *b, char *err, size_t errlen);

/* Whether a (proto3) field of m holds a non-default value (a repeated
 * field: any element; a oneof member: the chosen one). */
int validate_field_is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/* Checks an IPv4/IPv6 literal and port, as a STATIC or EDS endpoint or an
 * admin address needs. Returns 0, or -1 with err ("PATH: reason"). */
int validate_socket_address(const pb_address *a, const char *path, char *err, size_t errlen);

#endif
