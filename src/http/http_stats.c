/* http_stats.c: definition tables for the HCM's stats (http_stats.h). */
#include "xdsnode/http_stats.h"

#define STAT_DEF(id, name, type) [HTTP_STAT_##id] = {name, type},
static const stat_def http_stat_defs[HTTP_STAT_COUNT] = {HTTP_STATS(STAT_DEF)};
#undef STAT_DEF

#define STAT_DEF(id, name, type) [HTTP2_STAT_##id] = {name, type},
static const stat_def http2_stat_defs[HTTP2_STAT_COUNT] = {HTTP2_CODEC_STATS(STAT_DEF)};
#undef STAT_DEF

stats_scope *http_stats_scope_create(const char *stat_prefix)
{
    return stats_scope_create_named("http.", stat_prefix, http_stat_defs, HTTP_STAT_COUNT,
                                    "envoy_http_conn_manager_prefix");
}

stats_scope *http2_codec_stats_scope_create(void)
{
    return stats_scope_create("http2.", http2_stat_defs, HTTP2_STAT_COUNT, NULL, NULL, NULL);
}
