/* bootstrap.c: bootstrap loading, merging and overrides (see bootstrap.h). */
#include "xdsnode/bootstrap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/config_file.h"
#include "xdsnode/pbmerge.h"
#include "xdsnode/validate.h"

int bootstrap_parse_text(const char *text, size_t len, int is_json, const char *source,
                         pb_bootstrap **out, char *err, size_t errlen)
{
    ProtobufCMessage *msg = NULL;
    if (config_text_decode(PB_BOOTSTRAP_DESC, text, len, is_json, source, &msg, err, errlen) != 0)
        return -1;
    *out = (pb_bootstrap *)msg;
    return 0;
}

static int set_string(char **field, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return -1;
    if (*field != NULL && *field != protobuf_c_empty_string)
        free(*field);
    *field = copy;
    return 0;
}

/* --service-node, --service-cluster and --service-zone override the node,
 * as in Envoy. */
static int apply_node_overrides(pb_bootstrap *b, const options *opts)
{
    if (!opts->service_node[0] && !opts->service_cluster[0] && !opts->service_zone[0])
        return 0;
    if (b->node == NULL) {
        b->node = malloc(sizeof(*b->node));
        if (b->node == NULL)
            return -1;
        envoy__config__core__v3__node__init(b->node);
    }
    if (opts->service_node[0] && set_string(&b->node->id, opts->service_node) != 0)
        return -1;
    if (opts->service_cluster[0] && set_string(&b->node->cluster, opts->service_cluster) != 0)
        return -1;
    if (opts->service_zone[0]) {
        if (b->node->locality == NULL) {
            b->node->locality = malloc(sizeof(*b->node->locality));
            if (b->node->locality == NULL)
                return -1;
            envoy__config__core__v3__locality__init(b->node->locality);
        }
        if (set_string(&b->node->locality->zone, opts->service_zone) != 0)
            return -1;
    }
    return 0;
}

static int load_sources(const options *opts, pb_bootstrap **out, char *err, size_t errlen)
{
    pb_bootstrap *file_b = NULL, *yaml_b = NULL;

    if (opts->config_path) {
        char *text;
        size_t len;
        if (config_file_read(opts->config_path, BOOTSTRAP_MAX_BYTES, &text, &len, err, errlen) != 0)
            return -1;
        int rc = bootstrap_parse_text(text, len, config_path_is_json(opts->config_path),
                                      opts->config_path, &file_b, err, errlen);
        free(text);
        if (rc != 0)
            return -1;
    }
    if (opts->config_yaml) {
        if (bootstrap_parse_text(opts->config_yaml, strlen(opts->config_yaml), 0,
                                 "--config-yaml", &yaml_b, err, errlen) != 0) {
            bootstrap_free(file_b);
            return -1;
        }
    }
    if (file_b && yaml_b) {
        /* Envoy merges --config-yaml over the file with MergeFrom. */
        int rc = pb_merge(&file_b->base, &yaml_b->base);
        bootstrap_free(yaml_b);
        if (rc != 0) {
            snprintf(err, errlen, "--config-yaml: out of memory while merging");
            bootstrap_free(file_b);
            return -1;
        }
        *out = file_b;
        return 0;
    }
    *out = file_b ? file_b : yaml_b;
    return 0;
}

int bootstrap_load(const options *opts, pb_bootstrap **out, char *err, size_t errlen)
{
    if (opts->config_path == NULL && opts->config_yaml == NULL) {
        snprintf(err, errlen, "no configuration: give a bootstrap with -c <path> or --config-yaml");
        return -1;
    }
    pb_bootstrap *b = NULL;
    if (load_sources(opts, &b, err, errlen) != 0)
        return -1;
    if (apply_node_overrides(b, opts) != 0) {
        snprintf(err, errlen, "out of memory");
        bootstrap_free(b);
        return -1;
    }
    char why[1024];
    if (validate_bootstrap(b, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", opts->config_path ? opts->config_path : "--config-yaml", why);
        bootstrap_free(b);
        return -1;
    }
    *out = b;
    return 0;
}

void bootstrap_free(pb_bootstrap *b)
{
    if (b)
        protobuf_c_message_free_unpacked(&b->base, NULL);
}
