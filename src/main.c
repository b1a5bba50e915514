/* main.c: xdsnode's entry point: Envoy's command line, then serve or validate. */
#include <stdio.h>
#include <stdlib.h>

#include "xdsnode/bootstrap.h"
#include "xdsnode/log.h"
#include "xdsnode/options.h"
#include "xdsnode/server.h"

int main(int argc, char **argv)
{
    options opts;
    char err[2048];

    if (options_parse(argc, argv, &opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (opts.show_help) {
        options_usage(stdout, argv[0]);
        return 0;
    }
    if (opts.show_version) {
        printf("\nxdsnode  version: %s/Clean/RELEASE/OpenSSL\n\n", XDSNODE_VERSION);
        return 0;
    }
    log_set_level(opts.level);

    pb_bootstrap *bootstrap = NULL;
    if (bootstrap_load(&opts, &bootstrap, err, sizeof(err)) != 0) {
        if (opts.mode == MODE_VALIDATE)
            printf("error initializing configuration: %s\n", err);
        log_critical("error initializing configuration: %s", err);
        return 1;
    }
    if (opts.mode == MODE_VALIDATE) {
        printf("configuration '%s' OK\n", opts.config_path ? opts.config_path : "--config-yaml");
        bootstrap_free(bootstrap);
        return 0;
    }
    int rc = server_run(&opts, bootstrap, err, sizeof(err));
    if (rc != 0)
        log_critical("%s", err);
    bootstrap_free(bootstrap);
    return rc == 0 ? 0 : 1;
}
