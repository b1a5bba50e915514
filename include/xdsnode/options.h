/*
 * options.h: the command line, with Envoy's flags and meanings.
 *
 * Owns: the options struct it fills; strings point into argv (not copied)
 * and so live as long as the process.
 * Threads: main thread, once at start-up.
 *
 * Flags: -c/--config-path, --config-yaml, --concurrency, -l/--log-level,
 * --mode serve|validate, --service-node, --service-cluster,
 * --service-zone, --admin-address-path, --version, -h/--help. Both
 * "--flag value" and "--flag=value" are accepted, as Envoy (TCLAP) does.
 */
#ifndef XDSNODE_OPTIONS_H
#define XDSNODE_OPTIONS_H

#include <stddef.h>

#include "xdsnode/log.h"

#define XDSNODE_VERSION "0.1.0"

typedef enum { MODE_SERVE = 0, MODE_VALIDATE } run_mode;

typedef struct {
    const char *config_path;        /* -c, NULL if absent */
    const char *config_yaml;        /* --config-yaml, NULL if absent */
    unsigned concurrency;           /* --concurrency; default: online CPUs */
    log_level level;                /* -l/--log-level; default info */
    run_mode mode;                  /* --mode; default serve */
    const char *service_node;       /* --service-node, "" if absent */
    const char *service_cluster;    /* --service-cluster, "" if absent */
    const char *service_zone;       /* --service-zone, "" if absent */
    const char *admin_address_path; /* --admin-address-path, NULL if absent */
    int show_version;               /* --version */
    int show_help;                  /* -h/--help */
} options;

/* Parses argv. Returns 0, or -1 with a one-line reason in err (an unknown
 * flag, a missing or malformed value). */
int options_parse(int argc, char **argv, options *out, char *err, size_t errlen);

/* Writes the usage text to `f` (a FILE *). */
void options_usage(void *f, const char *argv0);

#endif
