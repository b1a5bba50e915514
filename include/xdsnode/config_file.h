/*
 * config_file.h: reading a YAML or JSON configuration file (bootstrap,
 * control plane scenario) and decoding it into a protobuf message through
 * the one JSON mapping (pbjson.h), with errors that name the source.
 *
 * Owns: nothing beyond what each call returns (text: free(); message:
 * protobuf_c_message_free_unpacked(msg, NULL)).
 * Threads: any.
 */
#ifndef XDSNODE_CONFIG_FILE_H
#define XDSNODE_CONFIG_FILE_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

/* Reads a whole regular file of at most max bytes, NUL-terminated.
 * Returns 0, or -1 with "PATH: reason". */
int config_file_read(const char *path, size_t max, char **text, size_t *len, char *err,
                     size_t errlen);

/* Whether a file is read as JSON (".json"), as Envoy chooses; anything
 * else is YAML. */
int config_path_is_json(const char *path);

/* Decodes YAML or JSON text into a new message of type desc. Errors are
 * "SOURCE: line L, column C: reason" (syntax) or "SOURCE: PATH: reason". */
int config_text_decode(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                       int is_json, const char *source, ProtobufCMessage **out, char *err,
                       size_t errlen);

#endif
