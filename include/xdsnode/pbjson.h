/*
 * pbjson.h: the one proto3 JSON mapping, both directions, over protobuf-c
 * descriptors. It serves the bootstrap loader, the mock control plane's
 * scenario files and the admin /config_dump output.
 *
 * Owns: nothing beyond what each call returns. The type registry (every
 * message protoc-c compiled, see pb_registry.h) is built once, lazily and
 * thread-safely, and is read-only afterwards.
 * Threads: every function may be called from any thread.
 * Memory: a message returned by pbjson_decode() is freed with
 * protobuf_c_message_free_unpacked(msg, NULL); a json_t returned by
 * pbjson_encode() is released with json_decref().
 *
 * Mapping rules (proto3 JSON, as Envoy reads and writes it):
 *  - input field names: proto name (snake_case) or lowerCamelCase;
 *    output: proto names (Envoy's config_dump form);
 *  - enums by name or number on input, by name on output (an unknown
 *    number is printed as a number);
 *  - int64/uint64/fixed64 as decimal strings on output, string or number on
 *    input; 32-bit integers as numbers (strings accepted on input);
 *  - float/double: numbers, plus "NaN", "Infinity", "-Infinity";
 *  - bytes as base64 (standard or URL-safe alphabet accepted on input);
 *  - google.protobuf.Any as {"@type": URL, fields...}, "@type" first; for
 *    a well-known type with a special JSON form, {"@type": URL, "value": X};
 *  - Duration as "1.5s" (up to 9 fractional digits; output uses 0, 3, 6
 *    or 9 digits as protobuf does); Timestamp as RFC 3339 "...Z";
 *  - wrappers (BoolValue, UInt32Value, ...) as their plain value;
 *  - Struct/Value/ListValue/NullValue as plain JSON;
 *  - FieldMask as a comma-separated lowerCamel path string;
 *  - map<K,V> fields (repeated XxxEntry messages with key=1, value=2) as
 *    JSON objects;
 *  - null for a field means "default" on input.
 * Proto3 defaults (0, "", false, empty repeated) are not printed, as
 * protobuf's printer does by default. Unknown JSON field names are an
 * error. An oneof given twice is an error.
 */
#ifndef XDSNODE_PBJSON_H
#define XDSNODE_PBJSON_H

#include <stddef.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#define PBJSON_TYPE_URL_PREFIX "type.googleapis.com/"

/*
 * Decodes JSON into a newly allocated message of type `desc`.
 * `path` prefixes error locations (may be NULL or "" for the root).
 * On error returns -1 and writes "PATH: reason" into err, where PATH is the
 * dotted proto-name path to the offending value, with [i] for list indexes
 * and ["key"] for map keys, e.g.
 *   static_resources.clusters[2].connect_timeout: invalid duration "5x"
 *   static_resources.clusters[0].foo: unknown field "foo"
 * Returns 0 and sets *out on success.
 */
int pbjson_decode(const ProtobufCMessageDescriptor *desc, const json_t *json,
                  const char *path, ProtobufCMessage **out,
                  char *err, size_t errlen);

/*
 * Encodes a message as a new JSON value (an object, or for well-known types
 * their special form). Returns NULL and fills err when the message cannot
 * be expressed (for example an Any whose type is not in the registry, or
 * whose bytes do not parse).
 */
json_t *pbjson_encode(const ProtobufCMessage *msg, char *err, size_t errlen);

/* pbjson_encode_ex() flag: also print fields without presence that hold
 * their default (proto3 scalars and enums, empty repeated and map fields),
 * like protobuf's always_print_primitive_fields; unset sub-messages and
 * oneof members stay omitted. */
#define PBJSON_EMIT_DEFAULTS 0x1u

/* pbjson_encode() with PBJSON_* flags. */
json_t *pbjson_encode_ex(const ProtobufCMessage *msg, unsigned flags, char *err,
                         size_t errlen);

/* Looks up a message type by full name ("envoy.config.cluster.v3.Cluster")
 * or type URL (anything up to the last '/' is ignored). NULL if unknown. */
const ProtobufCMessageDescriptor *pbjson_type_lookup(const char *name_or_url);

/* Packs `msg` into `any` (type_url "type.googleapis.com/<full name>", value
 * = serialized bytes, both malloc'd and owned by `any`; any->base must be
 * initialised). Returns 0, or -1 on allocation failure. */
int pbjson_any_pack(ProtobufCMessage *any, const ProtobufCMessage *msg);

/* Unpacks an Any (google.protobuf.Any) into a new message of its type,
 * freed with protobuf_c_message_free_unpacked(). Returns 0 or -1 with err. */
int pbjson_any_unpack(const ProtobufCMessage *any, ProtobufCMessage **out,
                      char *err, size_t errlen);

/* Formats a Duration as proto3 JSON does ("5s", "0.250s", "-1.000000001s")
 * into buf. Returns buf. */
char *pbjson_format_duration(long long seconds, int nanos, char *buf, size_t buflen);

/* Parses a proto3 JSON duration string. Returns 0, or -1 for bad syntax or
 * a value outside +-315576000000 s. */
int pbjson_parse_duration(const char *text, long long *seconds, int *nanos);

#endif
