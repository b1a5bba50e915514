/* bootstrap.c: bootstrap loading, merging and overrides (see bootstrap.h). */
#include "xdsnode/bootstrap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xdsnode/pbjson.h"
#include "xdsnode/pbmerge.h"
#include "xdsnode/validate.h"
#include "xdsnode/yaml_json.h"

static int read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    if ((unsigned long long)st.st_size > BOOTSTRAP_MAX_BYTES) {
        snprintf(err, errlen, "%s: file larger than %u bytes", path, BOOTSTRAP_MAX_BYTES);
        fclose(f);
        return -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return -1;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        snprintf(err, errlen, "%s: read error", path);
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int bootstrap_parse_text(const char *text, size_t len, int is_json, const char *source,
                         pb_bootstrap **out, char *err, size_t errlen)
{
    char why[1024];
    json_t *root;

    if (is_json) {
        json_error_t jerr;
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL) {
            snprintf(err, errlen, "%s: line %d, column %d: %s", source, jerr.line, jerr.column,
                     jerr.text);
            return -1;
        }
    } else {
        root = yaml_json_parse(text, len, why, sizeof(why));
        if (root == NULL) {
            snprintf(err, errlen, "%s: %s", source, why);
            return -1;
        }
    }
    ProtobufCMessage *msg = NULL;
    int rc = pbjson_decode(PB_BOOTSTRAP_DESC, root, "", &msg, why, sizeof(why));
    json_decref(root);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", source, why);
        return -1;
    }
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
        if (read_file(opts->config_path, &text, &len, err, errlen) != 0)
            return -1;
        int rc = bootstrap_parse_text(text, len, ends_with(opts->config_path, ".json"),
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
