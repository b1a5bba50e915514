/*
 * pb_registry.h: the table of every protobuf message type xdsnode compiled.
 *
 * Owns: nothing; the table is generated at build time
 * (scripts/gen-registry.sh) and is constant data.
 * Threads: any thread may read it.
 * Used by the JSON mapping (pbjson.h) to resolve google.protobuf.Any type
 * URLs; look types up through pbjson_type_lookup(), not this table.
 */
#ifndef XDSNODE_PB_REGISTRY_H
#define XDSNODE_PB_REGISTRY_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

extern const ProtobufCMessageDescriptor *const pb_registry_messages[];
extern const size_t pb_registry_n_messages;

#endif
