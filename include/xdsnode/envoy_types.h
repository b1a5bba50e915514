/*
 * envoy_types.h: short names for the generated Envoy v3 protobuf-c types
 * xdsnode uses most, so code stays readable.
 *
 * Owns: nothing (aliases only). Threads: any.
 */
#ifndef XDSNODE_ENVOY_TYPES_H
#define XDSNODE_ENVOY_TYPES_H

#include "envoy/admin/v3/config_dump.pb-c.h"
#include "envoy/admin/v3/config_dump_shared.pb-c.h"
#include "envoy/admin/v3/server_info.pb-c.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

typedef Envoy__Config__Bootstrap__V3__Bootstrap pb_bootstrap;
typedef Envoy__Config__Cluster__V3__Cluster pb_cluster;
typedef Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions pb_http_protocol_options;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment pb_cla;
typedef Envoy__Config__Core__V3__Node pb_node;
typedef Envoy__Config__Core__V3__Address pb_address;
typedef Google__Protobuf__Any pb_any;
typedef Google__Protobuf__Duration pb_duration;

#define PB_BOOTSTRAP_DESC (&envoy__config__bootstrap__v3__bootstrap__descriptor)
#define PB_CLUSTER_DESC (&envoy__config__cluster__v3__cluster__descriptor)
#define PB_CLA_DESC (&envoy__config__endpoint__v3__cluster_load_assignment__descriptor)

/* Extension names (typed_extension_protocol_options keys and Any types). */
#define HTTP_PROTOCOL_OPTIONS_NAME "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#define RAW_BUFFER_SOCKET_NAME "envoy.transport_sockets.raw_buffer"
#define RAW_BUFFER_SOCKET_TYPE "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"

#endif
