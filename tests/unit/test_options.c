/* Unit tests: Envoy-compatible command line parsing. */
#include <criterion/criterion.h>
#include <string.h>

#include "xdsnode/options.h"

static int parse(options *o, char *err, size_t errlen, int argc, char **argv)
{
    return options_parse(argc, argv, o, err, errlen);
}

#define ARGV(...) ((char *[]){"xdsnode", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"xdsnode", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(o, err, ...) parse(o, err, sizeof(err), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

Test(options, defaults)
{
    options o;
    char err[256];
    cr_assert_eq(options_parse(1, (char *[]){"xdsnode", NULL}, &o, err, sizeof(err)), 0);
    cr_assert_null(o.config_path);
    cr_assert_null(o.config_yaml);
    cr_assert_geq(o.concurrency, 1);
    cr_assert_eq(o.level, LOG_INFO);
    cr_assert_eq(o.mode, MODE_SERVE);
    cr_assert_str_eq(o.service_node, "");
}

Test(options, envoy_flags_both_forms)
{
    options o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "-c", "a.yaml", "--concurrency=3", "-l", "debug", "--mode",
                       "validate", "--service-node", "n1", "--service-cluster=c1",
                       "--config-yaml", "admin: {}"), 0, "%s", err);
    cr_assert_str_eq(o.config_path, "a.yaml");
    cr_assert_eq(o.concurrency, 3);
    cr_assert_eq(o.level, LOG_DEBUG);
    cr_assert_eq(o.mode, MODE_VALIDATE);
    cr_assert_str_eq(o.service_node, "n1");
    cr_assert_str_eq(o.service_cluster, "c1");
    cr_assert_str_eq(o.config_yaml, "admin: {}");
}

Test(options, long_config_path_and_warning_level)
{
    options o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "--config-path", "b.json", "--log-level", "warning"), 0);
    cr_assert_str_eq(o.config_path, "b.json");
    cr_assert_eq(o.level, LOG_WARN);
}

Test(options, zero_concurrency_means_one)
{
    options o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "--concurrency", "0"), 0);
    cr_assert_eq(o.concurrency, 1);
}

Test(options, errors_are_precise)
{
    options o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "--bogus"), -1);
    cr_assert_str_eq(err, "unknown argument \"--bogus\" (see --help)");
    cr_assert_eq(PARSE(&o, err, "-c"), -1);
    cr_assert_str_eq(err, "--config-path: missing value");
    cr_assert_eq(PARSE(&o, err, "--concurrency", "-2"), -1);
    cr_assert_str_eq(err, "--concurrency: expected an integer from 0 to 1024, got \"-2\"");
    cr_assert_eq(PARSE(&o, err, "--mode", "init_only"), -1);
    cr_assert_str_eq(err, "--mode: expected serve or validate, got \"init_only\"");
    cr_assert_eq(PARSE(&o, err, "--log-level", "loud"), -1);
    cr_assert_str_eq(err, "--log-level: unknown level \"loud\"");
    cr_assert_eq(PARSE(&o, err, "--version=1"), -1);
    cr_assert_str_eq(err, "--version takes no value");
}

Test(options, version_and_help)
{
    options o;
    char err[256];
    cr_assert_eq(PARSE(&o, err, "--version"), 0);
    cr_assert(o.show_version);
    cr_assert_eq(PARSE(&o, err, "-h"), 0);
    cr_assert(o.show_help);
}
