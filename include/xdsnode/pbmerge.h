/*
 * pbmerge.h: protobuf MergeFrom over protobuf-c descriptors, as Envoy
 * merges --config-yaml over the bootstrap file: set scalars in `src`
 * replace those in `dst`, singular messages merge recursively, repeated
 * fields (and maps) append, a oneof member set in `src` replaces
 * whatever member `dst` had.
 *
 * Owns: nothing; `dst` keeps ownership of everything it ends up holding
 * (deep copies of src's parts), all allocated with malloc so that
 * protobuf_c_message_free_unpacked(dst, NULL) frees it.
 * Threads: any.
 */
#ifndef XDSNODE_PBMERGE_H
#define XDSNODE_PBMERGE_H

#include <protobuf-c/protobuf-c.h>

/* Returns 0, or -1 when memory ran out (dst is then still valid). */
int pb_merge(ProtobufCMessage *dst, const ProtobufCMessage *src);

/* A deep copy of msg, or NULL when memory ran out. */
ProtobufCMessage *pb_clone(const ProtobufCMessage *msg);

#endif
