/*
 * yaml_json.h: YAML text to a jansson JSON tree (libyaml), so YAML
 * bootstraps and scenario files go through the one JSON mapping (pbjson.h).
 *
 * Owns: nothing; the returned tree belongs to the caller (json_decref()).
 * Threads: any thread.
 * Rules (as Envoy's YAML loader): plain scalars that are YAML 1.2 core-schema
 * integers, floats, booleans (true/false) or null (null, ~, empty) become
 * JSON numbers/booleans/null; quoted scalars are always strings; anchors
 * and aliases are expanded; merge keys (<<) are supported; a document must
 * have exactly one root; duplicate keys in a mapping are an error; an
 * empty document is an empty object.
 */
#ifndef XDSNODE_YAML_JSON_H
#define XDSNODE_YAML_JSON_H

#include <stddef.h>
#include <jansson.h>

/* Returns a new JSON value, or NULL with "line L, column C: reason" in err
 * (lines and columns 1-based). */
json_t *yaml_json_parse(const char *text, size_t len, char *err, size_t errlen);

#endif
