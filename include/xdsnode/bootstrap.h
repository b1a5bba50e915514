/*
 * bootstrap.h: loads the Envoy v3 bootstrap from -c (YAML or JSON, chosen
 * by file extension as Envoy does) and --config-yaml (merged over the file
 * with protobuf merge semantics), applies --service-node/-cluster/-zone,
 * and validates it.
 *
 * Owns: the returned bootstrap message (free with bootstrap_free()).
 * Threads: main thread, at start-up.
 * Errors name the source ("FILE" or "--config-yaml"), the field path and
 * the reason, e.g.
 *   testdata/x.yaml: static_resources.clusters[2].connect_timeout: invalid duration "5x"
 */
#ifndef XDSNODE_BOOTSTRAP_H
#define XDSNODE_BOOTSTRAP_H

#include <stddef.h>

#include "xdsnode/envoy_types.h"
#include "xdsnode/options.h"

/* Largest bootstrap file accepted. */
#define BOOTSTRAP_MAX_BYTES (64u * 1024u * 1024u)

/* Returns 0 and a new bootstrap in *out, or -1 with err. */
int bootstrap_load(const options *opts, pb_bootstrap **out, char *err, size_t errlen);

/* Decodes one YAML or JSON document text into a bootstrap (no validation).
 * `source` names it in errors; `is_json` picks the parser. */
int bootstrap_parse_text(const char *text, size_t len, int is_json, const char *source,
                         pb_bootstrap **out, char *err, size_t errlen);

void bootstrap_free(pb_bootstrap *b);

#endif
