/* options.c: Envoy-compatible command line parsing (see options.h). */
#include "xdsnode/options.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum {
    OPT_CONFIG_PATH,
    OPT_CONFIG_YAML,
    OPT_CONCURRENCY,
    OPT_LOG_LEVEL,
    OPT_MODE,
    OPT_SERVICE_NODE,
    OPT_SERVICE_CLUSTER,
    OPT_SERVICE_ZONE,
    OPT_ADMIN_ADDRESS_PATH,
    OPT_VERSION,
    OPT_HELP,
} opt_id;

typedef struct {
    const char *long_name;
    char short_name;
    int takes_value;
    opt_id id;
    const char *help;
} opt_spec;

static const opt_spec specs[] = {
    {"config-path", 'c', 1, OPT_CONFIG_PATH, "Path to the bootstrap file (YAML or JSON)"},
    {"config-yaml", 0, 1, OPT_CONFIG_YAML, "Bootstrap YAML merged over the file"},
    {"concurrency", 0, 1, OPT_CONCURRENCY, "Number of worker threads (default: online cores)"},
    {"log-level", 'l', 1, OPT_LOG_LEVEL,
     "trace, debug, info, warning/warn, error, critical, off (default: info)"},
    {"mode", 0, 1, OPT_MODE, "serve (default) or validate"},
    {"service-node", 0, 1, OPT_SERVICE_NODE, "Node id (overrides node.id)"},
    {"service-cluster", 0, 1, OPT_SERVICE_CLUSTER, "Node cluster (overrides node.cluster)"},
    {"service-zone", 0, 1, OPT_SERVICE_ZONE, "Node zone (overrides node.locality.zone)"},
    {"admin-address-path", 0, 1, OPT_ADMIN_ADDRESS_PATH,
     "Write the admin address to this file once listening"},
    {"version", 0, 0, OPT_VERSION, "Print the version and exit"},
    {"help", 'h', 0, OPT_HELP, "Print this help and exit"},
};

#define N_SPECS (sizeof(specs) / sizeof(specs[0]))

static const opt_spec *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SPECS; i++) {
        if (strlen(specs[i].long_name) == len && strncmp(specs[i].long_name, name, len) == 0)
            return &specs[i];
    }
    return NULL;
}

static const opt_spec *find_short(char c)
{
    for (size_t i = 0; i < N_SPECS; i++) {
        if (specs[i].short_name == c)
            return &specs[i];
    }
    return NULL;
}

static unsigned default_concurrency(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int parse_concurrency(const char *v, unsigned *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (*v == '\0' || *v == '-' || *end != '\0' || errno != 0 || n > 1024) {
        snprintf(err, errlen, "--concurrency: expected an integer from 0 to 1024, got \"%s\"", v);
        return -1;
    }
    /* Envoy treats 0 as 1 worker. */
    *out = n == 0 ? 1 : (unsigned)n;
    return 0;
}

static int apply(options *o, const opt_spec *s, const char *v, char *err, size_t errlen)
{
    switch (s->id) {
    case OPT_CONFIG_PATH: o->config_path = v; return 0;
    case OPT_CONFIG_YAML: o->config_yaml = v; return 0;
    case OPT_CONCURRENCY: return parse_concurrency(v, &o->concurrency, err, errlen);
    case OPT_LOG_LEVEL:
        if (log_level_parse(v, &o->level) != 0) {
            snprintf(err, errlen, "--log-level: unknown level \"%s\"", v);
            return -1;
        }
        return 0;
    case OPT_MODE:
        if (strcmp(v, "serve") == 0) {
            o->mode = MODE_SERVE;
        } else if (strcmp(v, "validate") == 0) {
            o->mode = MODE_VALIDATE;
        } else {
            snprintf(err, errlen, "--mode: expected serve or validate, got \"%s\"", v);
            return -1;
        }
        return 0;
    case OPT_SERVICE_NODE: o->service_node = v; return 0;
    case OPT_SERVICE_CLUSTER: o->service_cluster = v; return 0;
    case OPT_SERVICE_ZONE: o->service_zone = v; return 0;
    case OPT_ADMIN_ADDRESS_PATH: o->admin_address_path = v; return 0;
    case OPT_VERSION: o->show_version = 1; return 0;
    case OPT_HELP: o->show_help = 1; return 0;
    }
    return 0;
}

static void set_defaults(options *o)
{
    memset(o, 0, sizeof(*o));
    o->concurrency = default_concurrency();
    o->level = LOG_INFO;
    o->mode = MODE_SERVE;
    o->service_node = "";
    o->service_cluster = "";
    o->service_zone = "";
}

int options_parse(int argc, char **argv, options *out, char *err, size_t errlen)
{
    set_defaults(out);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const opt_spec *s = NULL;
        const char *value = NULL;

        if (strncmp(arg, "--", 2) == 0) {
            const char *eq = strchr(arg + 2, '=');
            size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
            s = find_long(arg + 2, len);
            if (eq)
                value = eq + 1;
        } else if (arg[0] == '-' && arg[1] != '\0' && arg[2] == '\0') {
            s = find_short(arg[1]);
        }
        if (s == NULL) {
            snprintf(err, errlen, "unknown argument \"%s\" (see --help)", arg);
            return -1;
        }
        if (!s->takes_value && value != NULL) {
            snprintf(err, errlen, "--%s takes no value", s->long_name);
            return -1;
        }
        if (s->takes_value && value == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s: missing value", s->long_name);
                return -1;
            }
            value = argv[++i];
        }
        if (apply(out, s, value, err, errlen) != 0)
            return -1;
    }
    return 0;
}

void options_usage(void *fp, const char *argv0)
{
    FILE *f = fp;
    fprintf(f, "USAGE: %s -c <path> [options]\n\n", argv0);
    fprintf(f, "xdsnode %s: an Envoy-compatible data-plane node.\n\n", XDSNODE_VERSION);
    for (size_t i = 0; i < N_SPECS; i++) {
        char name[64];
        if (specs[i].short_name)
            snprintf(name, sizeof(name), "-%c, --%s%s", specs[i].short_name, specs[i].long_name,
                     specs[i].takes_value ? " <value>" : "");
        else
            snprintf(name, sizeof(name), "    --%s%s", specs[i].long_name,
                     specs[i].takes_value ? " <value>" : "");
        fprintf(f, "  %-36s %s\n", name, specs[i].help);
    }
}
